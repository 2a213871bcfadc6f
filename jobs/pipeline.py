"""The job pipeline: ``run(spark, job, run_date, run_id)``, from source to committed output.

``run`` sends a model job to :mod:`~batch_scoring.jobs.model_job`, and runs function jobs and
chained jobs (model, then function) here:

    read (projection + filter) -> check contract -> quarantine bad rows
      -> prepare (driver-side context, e.g. pooled priors) -> repartition by unit-of-work key
      -> function per chunk of whole units (pandas UDF; a unit whose call raises is reported,
         not fatal) -> persist the function's output -> rows of failed units to rejects
      -> count rows read and rejected -> reconcile, reject budget -> write output and rejects
      -> RunSummary

Passes over the data of a function job: the function's pass (read, shuffle, function; its
output, about one row per unit, is persisted), one count of the source, one pass computing the
rejects (persisted while counted and written), plus, only when some unit raised, one more read
of the function's input joined with the failed keys. The output is written from the cache. A
function with a driver-side ``prepare`` step (pooled priors) reads its input once more for it,
unless it comes in summary stages (the built-in data pricing,
:class:`~batch_scoring.udfs.contract.SummaryStages`): then the function's pass computes one
summary row per unit, the context comes from those, and the output is finished from them.

Library code: it takes the session as an argument and never changes Spark settings.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError
from pyspark.sql import DataFrame, SparkSession

from batch_scoring.jobs.commit import (
    BucketCheck,
    CommitJournal,
    RunCounts,
    RunSummary,
    check_partition_columns,
    check_paths,
    check_targets,
    commit_checked,
    new_run_id,
    persisted,
    summarise,
)
from batch_scoring.jobs.config import JobConfig, format_validation_error
from batch_scoring.jobs.errors import ConfigError, InputError, JobError
from batch_scoring.jobs.failure_budget import FailedWorkExceeded, check_failed_work
from batch_scoring.jobs.model_job import model_fields, preflight_model, run_model_job, scored_source
from batch_scoring.jobs.partition_values import check_output_values, checked_source
from batch_scoring.jobs.quarantine import (
    check_columns,
    failed_unit_rejects,
    split_rejects,
    union_rejects,
)
from batch_scoring.jobs.run_context import RunContext
from batch_scoring.jobs.sources import Source, choose_buckets
from batch_scoring.jobs.text_records import split_malformed
from batch_scoring.udfs.contract import ColumnRule, ParamsError, UnitFunction
from batch_scoring.udfs.engine.spark_execution import (
    UnitStatus,
    apply_packed,
    apply_reference,
    apply_summarised,
    split_status,
)
from batch_scoring.udfs.engine.unit_of_work import unit_too_large_message
from batch_scoring.udfs.models.model_scoring import model_broken_message
from batch_scoring.udfs.registry import FunctionNotFoundError, resolve_function

log = logging.getLogger("batch_scoring")


class NotChecked(enum.Enum):
    """The type of :data:`NOT_CHECKED`: ``run`` was not given the result of the checks."""

    NOT_CHECKED = "not checked"


NOT_CHECKED: Literal[NotChecked.NOT_CHECKED] = NotChecked.NOT_CHECKED


@dataclass(frozen=True)
class PreparedFunction:
    """A resolved function with its validated parameters and input rules."""

    function: UnitFunction
    params: Any
    rules: tuple[ColumnRule, ...]


def prepare_function(job: JobConfig) -> PreparedFunction:
    """Resolve the job's function and validate its parameters, without Spark.

    Raises:
        ConfigError: naming ``function.name``/``function.params``/``function.output_schema``
            when the function cannot be found or its parameters are invalid.
    """
    spec = job.function
    try:
        function = resolve_function(spec.name, spec.shape, spec.output_schema)
        params = function.validate_params(spec.params)
    except (FunctionNotFoundError, ParamsError) as error:
        raise ConfigError(str(error)) from None
    except ValidationError as error:
        raise ConfigError(format_validation_error(error, "function.params")) from None
    except ValueError as error:
        raise ConfigError(f"function: {error}") from None
    return PreparedFunction(function, params, tuple(function.input_rules(params)))


def preflight(job: JobConfig) -> PreparedFunction:
    """All checks of a function job that need no Spark: function, params, paths, partitions.

    Raises:
        ConfigError: the first problem found, naming its config field.
    """
    prepared = prepare_function(job)
    check_paths(job)
    check_partition_columns(job, [*job.unit_of_work.keys, *prepared.function.output_columns])
    return prepared


def preflight_job(job: JobConfig) -> PreparedFunction | None:
    """Every check of the job that needs no Spark: its function's, its model's, or both.

    Returns:
        The prepared function, or None for a model-only job.

    Raises:
        ConfigError: the first problem found, naming its config field.
    """
    prepared = preflight(job) if job.function is not None else None
    if job.model is not None:
        preflight_model(job)
    return prepared


def needed_columns(job: JobConfig, rules: tuple[ColumnRule, ...]) -> list[str] | None:
    """Columns to read, or None for all of them.

    ``source.columns`` plus keys, order_by and the function's declared inputs; a function
    that declares no inputs (a plain user function) and no ``source.columns`` reads all.
    """
    if not rules and not job.source.columns:
        return None
    uow = job.unit_of_work
    base = job.source.columns or []
    return list(dict.fromkeys([*base, *uow.keys, *uow.order_by, *(r.name for r in rules)]))


def run(
    spark: SparkSession,
    job: JobConfig,
    run_date: dt.date,
    run_id: str | None = None,
    s3_scheme: str = "s3a",
    journal: CommitJournal | None = None,
    prepared: PreparedFunction | None | NotChecked = NOT_CHECKED,
) -> RunSummary:
    """Run the job for ``run_date`` and, when its counts pass the checks, commit its output
    and rejects.

    Args:
        spark: an active session with Delta enabled when the job uses Delta.
        job: the validated job config (a unit-of-work function or a model job).
        run_date: the run's date; the run owns the ``run_date=`` partition of its outputs.
        run_id: the attempt's id; a fresh one when None.
        s3_scheme: how ``s3://`` paths are read (see ``locations.resolve_path``).
        journal: told when the commit starts and as each table commits (the entry point's
            manifest recorder); None records nothing.
        prepared: what :func:`preflight_job` returned when the caller already ran it (the
            entry point runs it before Spark starts), so the user's module is imported and
            its parameters validated once per run; by default the checks run here.

    Returns:
        The :class:`~batch_scoring.jobs.commit.RunSummary`.

    Raises:
        ConfigError: bad function, model, parameters, paths, filter or partition columns.
        InputError: missing source, columns, incompatible column types, or a source that
            cannot satisfy the model's signature.
        batch_scoring.udfs.engine.unit_of_work.FunctionOutputError: (inside a Spark error) when the
            function returns undeclared or misses declared columns.
        RejectBudgetExceeded: more rows rejected than ``output.max_reject_fraction`` allows;
            nothing committed.
        ReconciliationError: rows read != rows priced or scored + rows rejected; nothing
            committed.
        InputError: also for Spark errors the user can act on (see :func:`input_error_from`):
            a source file that is corrupt or whose column types differ from the others', or
            a unit of work larger than ``unit_of_work.max_unit_rows``; nothing committed
            (every read of the source happens before the first write).
    """
    ctx = RunContext.open(spark, job, run_date, run_id or new_run_id(run_date), s3_scheme, journal)
    ctx.journal.started(ctx)
    try:
        with ctx.journal.phase("checks"):
            if prepared is NOT_CHECKED:
                prepared = preflight_job(job)
            check_targets(spark, job, ctx.targets, run_date)
        if job.model is not None and prepared is not None:
            summary = run_chained_job(ctx, prepared)
        elif job.model is not None:
            summary = run_model_job(ctx)
        else:
            summary = run_function_job(ctx, prepared)
        ctx.source.release(spark)  # committed: e.g. a Redshift UNLOAD's files go
        return summary
    except JobError:
        raise
    except Exception as error:
        mapped = input_error_from(error, ctx.source)
        if mapped is None:
            raise
        log.debug("Spark error reported as an input error", exc_info=error)
        raise mapped from None


def input_error_from(error: BaseException, source: Source) -> JobError | None:
    """The :class:`JobError` a Spark error stands for, or None when it is none of these.

    * a source Spark cannot read (a corrupt or truncated file, not the format, a column type
      that differs from the other files'): the message names the file
      (:meth:`~batch_scoring.jobs.sources.Source.unreadable_error`);
    * a unit of work over ``unit_of_work.max_unit_rows``, raised on an executor as
      ``UnitTooLargeError`` and received inside a ``PythonException``: its message (key
      values, rows so far, the field to raise) is recognised in the error's text;
    * a model that raised on a whole batch and on each probe row alone
      (``ModelBrokenError``): a :class:`FailedWorkExceeded` (exit 4).
    """
    unreadable = source.unreadable_error(error)
    if unreadable is not None:
        return unreadable
    too_large = unit_too_large_message(str(error))
    if too_large:
        return InputError(too_large)
    broken = model_broken_message(str(error))
    if broken:
        return FailedWorkExceeded(
            f"{broken}. Nothing was committed; check the model's libraries and their versions "
            "against the ones it was saved with (its requirements.txt)"
        )
    return None


def run_function_job(ctx: RunContext, prepared: PreparedFunction) -> RunSummary:
    """Run a unit-of-work function job (see :func:`run`), after its checks."""
    job, keys = ctx.job, ctx.job.unit_of_work.keys
    with ctx.journal.phase("read"):
        read = ctx.source.read(ctx.spark, needed_columns(job, prepared.rules))
        source, partition_checks = checked_source(read, job.output, f"source {ctx.source.name}")
        parsed, malformed = split_malformed(source, job.source)
        check_columns(parsed, prepared.rules, ctx.source.name)
    produced = [c for c in job.output.partition_by if c not in parsed.columns]
    priced = PricingInput(parsed, source, partition_checks, produced, malformed)
    counts, buckets = price_and_commit(ctx, prepared, priced)
    return summarise(ctx, counts, keys, buckets)


def run_chained_job(ctx: RunContext, prepared: PreparedFunction) -> RunSummary:
    """Score rows with the model, then run the function per unit of work on the scored rows.

    The function's inputs come from the model's passthrough and prediction columns. The
    scored rows are persisted (:func:`scored_source`), so the model runs once although the
    function's stages (priors, quarantine, units) read them several times. Rejects of both
    stages go to one rejects output (columns of either stage, missing ones null).
    """
    job = ctx.job
    with ctx.journal.phase("read"):
        source = ctx.source.read(ctx.spark, None)
        parsed, malformed = split_malformed(source, job.source)
    with scored_source(ctx.spark, job, parsed, ctx.journal) as scoring:
        check_columns(scoring.scored, prepared.rules,
                      f"{ctx.source.name} (scored by {job.model.uri or 'routes'})")
        priced = PricingInput(scoring.scored, source, (), job.output.partition_by, malformed,
                              earlier_rejects=scoring.rejects)
        counts, buckets = price_and_commit(ctx, prepared, priced)
    return summarise(ctx, counts, job.unit_of_work.keys, buckets,
                     **model_fields(scoring.plan, job.model))


@dataclass(frozen=True)
class PricingInput:
    """The rows the function stage prices, and what it needs to account for them.

    Attributes:
        rows: the rows to quarantine and price (the parsed source, or the scored rows).
        source: the rows read, counted in the reconciliation.
        partition_checks: row checks of partition values read from the source (see
            :func:`~batch_scoring.jobs.partition_values.checked_source`).
        produced: ``output.partition_by`` columns the function produces (checked on its output).
        malformed: malformed source records (CSV/JSON) to reject, or None.
        earlier_rejects: rejects of an earlier stage (the model's), or None.
    """

    rows: DataFrame
    source: DataFrame
    partition_checks: Sequence[tuple]
    produced: Sequence[str]
    malformed: DataFrame | None
    earlier_rejects: DataFrame | None = None


def price_and_commit(ctx: RunContext, prepared: PreparedFunction, priced: PricingInput) -> tuple[RunCounts, int]:
    """The function stage shared by function and chained jobs: quarantine, bucket, price every
    unit, reject the units that raised (within ``function.max_failed_units``), then count,
    check and commit (:func:`~batch_scoring.jobs.commit.commit_checked`).

    Returns:
        The run's :class:`RunCounts` and the number of buckets (0 for the reference engine).

    Raises:
        FailedWorkExceeded: more units raised than the budget allows; nothing written.
        RejectBudgetExceeded, ReconciliationError: see ``commit_checked``.
    """
    job, journal, keys = ctx.job, ctx.journal, ctx.job.unit_of_work.keys
    with journal.phase("quarantine"):
        valid, rejects = split_rejects(priced.rows, prepared.rules, keys, priced.partition_checks)
    with ExitStack() as held:
        with journal.phase("bucket"):
            apply, buckets = _planned(valid, job, prepared, held)
        with journal.phase("price") as phase:
            raw = held.enter_context(persisted(apply()))  # kept until the commit is done
            status = split_status(raw, keys)
            phase.rows = f"{status.rows_priced:,} rows priced, {status.units_failed:,} units failed"
            rejects = with_failed_units(rejects, valid, status, keys, job.function.max_failed_units)
        if priced.earlier_rejects is not None:
            rejects = union_rejects(priced.earlier_rejects, rejects)
        output = check_output_values(status.priced, priced.produced, job.output.empty_token)
        counts = commit_checked(ctx, output, union_rejects(rejects, priced.malformed), priced.source,
                                status.rows_priced, bucket_check(job, status, buckets))
    return counts, buckets


def bucket_check(job: JobConfig, status: UnitStatus, buckets: int) -> BucketCheck | None:
    """What reconciling per bucket needs: the packed engine's buckets and rows priced in each.

    None for the reference engine (applyInPandas's shuffle partitions are not the job's
    buckets); its runs are reconciled as a whole.
    """
    if status.rows_priced_by_bucket is None or not buckets:
        return None
    return BucketCheck(job.unit_of_work.keys, buckets, status.rows_priced_by_bucket)


def with_failed_units(
    rejects: DataFrame, rows: DataFrame, status: UnitStatus, keys: list[str],
    max_failed_units: int | str = 0,
) -> DataFrame:
    """The contract rejects plus the rows of the units whose function raised (if any).

    Args:
        max_failed_units: ``function.max_failed_units``, the failed-unit budget (a count or
            ``"2%"``, see :mod:`~batch_scoring.jobs.failure_budget`).

    Raises:
        FailedWorkExceeded: (exit 4) when more units raised than the budget allows, naming
            the first failed units (by key) and their exception's ``Type: message``; raised
            before anything is written.

    Cost: nothing when no unit raised; otherwise one count of the units priced (over the
    persisted function output) and one more scan of ``rows`` (the function's input), joined
    with the few failed keys (see ``quarantine.failed_unit_rejects``).
    """
    if not status.units_failed:
        return rejects
    examples = [
        f"({', '.join(f'{k}={v!r}' for k, v in zip(keys, tuple(r)[:-1]))}): {r[-1]}"
        for r in status.failures.orderBy(*keys).limit(3).collect()
    ]
    units_priced = status.priced.select(*keys).distinct().count()
    check_failed_work("function.max_failed_units", max_failed_units, status.units_failed,
                      status.units_failed + units_priced, "units raised in the function",
                      examples)
    log.warning("%d unit(s) (%d rows) raised in the function and go to rejects "
                "(function.max_failed_units = %s), e.g. %s",
                status.units_failed, status.rows_failed, max_failed_units, "; ".join(examples))
    return rejects.unionByName(failed_unit_rejects(rows, status.failures, keys))


def _planned(
    valid: DataFrame, job: JobConfig, prepared: PreparedFunction, held: ExitStack
) -> tuple[Callable[[], DataFrame], int]:
    """How the function's output with status rows (``isolate_failures``) is made, and the
    bucket count (0 for the reference engine).

    The returned callable builds that output: lazily for a plain function (whose ``prepare``
    step, e.g. the reference engine's pooled priors, has run here); for a function with summary
    stages (the built-in data pricing on the packed engine) it runs the one pass over ``valid``
    and the driver's context, and its per-unit summaries stay persisted until ``held`` closes.
    """
    uow, function = job.unit_of_work, prepared.function
    if uow.engine == "packed" and function.stages is not None:
        buckets = choose_buckets(valid, uow.buckets, uow.target_bucket_mb)
        hold = lambda df: held.enter_context(persisted(df))  # noqa: E731
        return (lambda: apply_summarised(valid, function, prepared.params, uow.keys, uow.order_by,
                                         buckets, hold, uow.max_unit_rows, uow.rows_per_call)), buckets
    context = function.prepare(valid, uow.keys, prepared.params) if function.prepare else None
    bound = function.bind(prepared.params, context)
    if uow.engine == "reference":
        return (lambda: apply_reference(valid, function, bound, uow.keys, uow.order_by, True,
                                        uow.max_unit_rows)), 0
    buckets = choose_buckets(valid, uow.buckets, uow.target_bucket_mb)
    return (lambda: apply_packed(valid, function, bound, uow.keys, uow.order_by, buckets, True,
                                 uow.max_unit_rows, uow.rows_per_call)), buckets
