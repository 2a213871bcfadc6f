"""Errors a job run can end with, each with its own process exit code.

| exit code | error                 | meaning                                                   |
|-----------|-----------------------|-----------------------------------------------------------|
| 0         | -                     | the run committed its output                              |
| 1         | any other exception   | runtime failure (Spark, I/O, a function that raised)      |
| 2         | :class:`ConfigError`  | the job config, a profile or a command-line flag is wrong |
| 3         | :class:`InputError`   | the source breaks the job's input contract                |
| 5         | :class:`DeployError`  | packaging, upload or submission to a cluster failed, or   |
|           |                       | the submitted run did not end in success                  |
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


class DeployError(JobError):
    """Packaging, staging or submitting a job to a cluster failed, or the remote run failed.

    The message names the AWS resource or file and, for a failed run, where its logs are.
    """

    exit_code = 5
