"""Errors a job run can end with, each with its own process exit code.

| exit code | error                      | meaning                                                 |
|-----------|----------------------------|---------------------------------------------------------|
| 0         | -                          | the run committed its output                            |
| 1         | :class:`ReconciliationError` | rows read != rows priced or scored + rows rejected;   |
|           |                            | nothing was committed                                   |
| 1         | :class:`WriteFailed`       | writing a table failed; the message names the path and  |
|           |                            | the root cause                                          |
| 1         | any other exception        | runtime failure (Spark, I/O, a lost executor)           |
| 2         | :class:`ConfigError`       | the job config, a profile or a command-line flag is wrong |
| 3         | :class:`InputError`        | the source breaks the job's input contract              |
| 4         | :class:`RejectBudgetExceeded` | more rows were rejected than                         |
|           |                            | ``output.max_reject_fraction`` allows; nothing committed |
| 4         | :class:`CostLimitExceeded` | ``--dry-run``: the run's estimated cost is above        |
|           |                            | ``output.max_cost``                                     |
| 5         | :class:`DeployError`       | packaging, upload or submission to a cluster failed, or |
|           |                            | the submitted run did not end in success                |
| 130, 143  | ``RunStopped``             | stopped by SIGINT / SIGTERM; manifest written (see      |
|           |                            | :mod:`~batch_scoring.jobs.stop_signals`)                |
| 6         | :class:`ConcurrentRunError` | another run of the same run date committed while this  |
|           |                            | one was committing; the message says what of this run   |
|           |                            | was committed (usually nothing)                         |

A unit of work whose function raises, or a row the model raises on, fails the run with exit 4
(:class:`~batch_scoring.jobs.failure_budget.FailedWorkExceeded`, a ``RejectBudgetExceeded``)
unless ``function.max_failed_units`` / ``model.max_failed_rows`` allow it (default 0); within
the budget it goes to the rejects output (reasons ``function_raised``, ``model_raised``).
"""

from __future__ import annotations


class JobError(Exception):
    """Base of the errors a job reports to its user; ``exit_code`` is the process status."""

    exit_code = 1


class ConfigError(JobError):
    """The job config, platform profile or a command-line override is invalid.

    The message names the file and the field path (for example ``output.format``).
    """

    exit_code = 2


class InputError(JobError):
    """The source data cannot satisfy the job: a missing path, column or incompatible type.

    The message names the path, column and config field to fix.
    """

    exit_code = 3


class RejectBudgetExceeded(JobError):
    """The run rejected a larger share of the rows it read than ``output.max_reject_fraction``.

    Raised before anything is written: neither the output nor the rejects of the run are
    committed, and an earlier run of the same date stays as it was. The message gives the
    counts, the fraction, the limit and the reasons.

    Attributes:
        rows: the counts the run had made when it stopped (for its manifest's ``rows``), e.g.
            ``{"in": 600, "out": 540, "rejected": 60, "rejected_by_reason": {...}}``, or None.
    """

    exit_code = 4

    def __init__(self, message: str, rows: dict | None = None) -> None:
        super().__init__(message)
        self.rows = rows


class CostLimitExceeded(JobError):
    """``--dry-run`` estimated the run's cost above ``output.max_cost``; nothing was run.

    The message gives the estimate, the limit, the currency and how the estimate was made
    (:mod:`~batch_scoring.jobs.cost_estimate`).
    """

    exit_code = 4


class ReconciliationError(JobError):
    """Rows read != rows priced or scored + rows rejected: rows were lost or duplicated.

    Raised before anything is written (nothing is committed); the message names the counts.
    """

    exit_code = 1


class DeployError(JobError):
    """Packaging, staging or submitting a job to a cluster failed, or the remote run failed.

    The message names the AWS resource or file and, for a failed run, where its logs are.
    """

    exit_code = 5


class ConcurrentRunError(JobError):
    """Another run wrote the same run date of the same table while this run was committing.

    Delta refuses the later of two overlapping commits (optimistic concurrency); a Parquet
    partition replacement fails when another one moves the same folders. The message names
    the run id that now holds the run date and which tables of this run were committed.
    """

    exit_code = 6


class WriteFailed(JobError):
    """Writing a table failed (exit 1): the message names the path and the deepest cause
    (``No space left on device``, ``File name too long``), not Spark's task wrapper."""

    exit_code = 1
