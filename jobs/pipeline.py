"""The job pipeline: ``run(spark, job, run_date, run_id)``, from source to committed output.

    read (projection + filter) -> check contract -> quarantine bad rows
      -> prepare (driver-side context, e.g. pooled priors) -> repartition by unit-of-work key
      -> function per chunk of whole units (pandas UDF) -> write output and rejects
      -> read back counts -> RunSummary

Library code: it takes the session as an argument and never changes Spark settings.
"""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from pydantic import ValidationError
from pyspark.sql import DataFrame, SparkSession

from batch_scoring.jobs.config import JobConfig, format_validation_error
from batch_scoring.jobs.errors import ConfigError
from batch_scoring.jobs.quarantine import check_columns, split_rejects
from batch_scoring.jobs.sinks import read_run, run_exists, write_run
from batch_scoring.jobs.sources import choose_buckets, read_source, resolve_path
from batch_scoring.udfs.contract import ColumnRule, UnitFunction
from batch_scoring.udfs.registry import FunctionNotFoundError, resolve_function
from batch_scoring.udfs.spark_execution import apply_packed, apply_reference


@dataclass(frozen=True)
class RunSummary:
    """What a run did, in numbers (rows are counts of rows; seconds are wall-clock)."""

    job: str
    run_date: str
    run_id: str
    rows_in: int
    rows_rejected: int
    units: int
    rows_out: int
    buckets: int
    output_path: str
    rejects_path: str
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        """The summary as a JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class PreparedFunction:
    """A resolved function with its validated parameters and input rules."""

    function: UnitFunction
    params: Any
    rules: tuple[ColumnRule, ...]


def new_run_id(run_date: dt.date) -> str:
    """A fresh run id: run date, UTC time and 8 random hex digits, e.g. 20261122-041502-9f1c2ab0."""
    now = dt.datetime.now(dt.timezone.utc)
    return f"{run_date:%Y%m%d}-{now:%H%M%S}-{uuid.uuid4().hex[:8]}"


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
    except FunctionNotFoundError as error:
        raise ConfigError(str(error)) from None
    except ValidationError as error:
        raise ConfigError(format_validation_error(error, "function.params")) from None
    except ValueError as error:
        raise ConfigError(f"function: {error}") from None
    return PreparedFunction(function, params, tuple(function.input_rules(params)))


def check_paths(job: JobConfig) -> None:
    """Refuse an output or rejects path equal to, inside, or containing the source path.

    Raises:
        ConfigError: naming the clashing fields.
    """
    source = _comparable(job.source.path)
    for field, path in (("output.path", job.output.path), ("output.rejects_path", job.output.rejects)):
        target = _comparable(path)
        if target.startswith(source) or source.startswith(target):
            raise ConfigError(
                f"{field} {path} overlaps source.path {job.source.path}: a run must never "
                "write into its own input"
            )


def _comparable(path: str) -> str:
    absolute = path if "://" in path else os.path.abspath(path)
    return absolute.replace("s3a://", "s3://").rstrip("/") + "/"


def check_partition_columns(job: JobConfig, function: UnitFunction) -> None:
    """Refuse ``output.partition_by`` columns that the function's output will not have.

    Raises:
        ConfigError: naming the unknown columns and the ones to choose from.
    """
    available = [*job.unit_of_work.keys, *function.output_columns]
    unknown = [c for c in job.output.partition_by if c not in available]
    if unknown:
        raise ConfigError(
            f"output.partition_by names {unknown}, which the output does not have; choose "
            f"from {available}"
        )


def preflight(job: JobConfig) -> PreparedFunction:
    """All checks that need no Spark: function, parameters, paths, partition columns.

    Raises:
        ConfigError: the first problem found, naming its config field.
    """
    prepared = prepare_function(job)
    check_paths(job)
    check_partition_columns(job, prepared.function)
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
) -> RunSummary:
    """Run the job for ``run_date`` and commit its output and rejects.

    Args:
        spark: an active session with Delta enabled when the job uses Delta.
        job: the validated job config.
        run_date: the run's date; the run owns the ``run_date=`` partition of its outputs.
        run_id: the attempt's id; a fresh one when None.
        s3_scheme: how ``s3://`` paths are read (see ``sources.resolve_path``).

    Returns:
        The :class:`RunSummary`.

    Raises:
        ConfigError: bad function, parameters, paths, filter or partition columns.
        InputError: missing source, columns, or incompatible column types.
        batch_scoring.udfs.unit_of_work.FunctionOutputError: (inside a Spark error) when the
            function returns undeclared or misses declared columns.
    """
    started = time.monotonic()
    run_id = run_id or new_run_id(run_date)
    prepared = preflight(job)
    output_path = resolve_path(job.output.path, s3_scheme)
    rejects_path = resolve_path(job.output.rejects, s3_scheme)
    if job.output.mode == "fail_if_run_exists" and run_exists(
        spark, output_path, job.output.format, run_date
    ):
        raise ConfigError(
            f"output.mode is fail_if_run_exists and {job.output.path} already holds run_date "
            f"{run_date}; choose another --run-date or set output.mode=replace_run"
        )
    source = read_source(spark, job.source, needed_columns(job, prepared.rules), s3_scheme)
    check_columns(source, prepared.rules, job.source.path)
    valid, rejects = split_rejects(source, prepared.rules, job.unit_of_work.keys)
    result, buckets = _apply(valid, job, prepared)
    write_run(result, output_path, job.output.format, job.output.partition_by, run_date, run_id)
    write_run(rejects, rejects_path, job.output.format, [], run_date, run_id)
    return _summarise(spark, job, run_date, run_id, source, buckets,
                      (output_path, rejects_path), time.monotonic() - started)


def _apply(valid: DataFrame, job: JobConfig, prepared: PreparedFunction) -> tuple[DataFrame, int]:
    uow, function = job.unit_of_work, prepared.function
    context = function.prepare(valid, uow.keys, prepared.params) if function.prepare else None
    bound = function.bind(prepared.params, context)
    if uow.engine == "reference":
        return apply_reference(valid, function, bound, uow.keys, uow.order_by), 0
    buckets = choose_buckets(valid, uow.buckets, uow.target_bucket_mb)
    return apply_packed(valid, function, bound, uow.keys, uow.order_by, buckets), buckets


def _summarise(
    spark: SparkSession,
    job: JobConfig,
    run_date: dt.date,
    run_id: str,
    source: DataFrame,
    buckets: int,
    paths: tuple[str, str],
    seconds: float,
) -> RunSummary:
    output = read_run(spark, paths[0], job.output.format, run_date)
    rejects = read_run(spark, paths[1], job.output.format, run_date)
    return RunSummary(
        job=job.job,
        run_date=run_date.isoformat(),
        run_id=run_id,
        rows_in=source.count(),
        rows_rejected=rejects.count() if rejects is not None else 0,
        units=output.select(*job.unit_of_work.keys).distinct().count() if output is not None else 0,
        rows_out=output.count() if output is not None else 0,
        buckets=buckets,
        output_path=paths[0],
        rejects_path=paths[1],
        seconds=round(seconds, 1),
    )
