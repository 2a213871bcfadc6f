"""``batch-score run --dry-run``: the run's plan, checked as far as it can be without the work.

After the pre-flight (config, function and parameters, local paths, Parquet footers), the dry
run starts Spark and, writing nothing anywhere:

* checks who owns the output and rejects roots and, for ``fail_if_run_exists``, that the run
  date is free (:func:`~batch_scoring.jobs.commit.check_targets`, which only reads);
* reads the source's schema and checks it against the function's input contract or the
  model's signature (the model resolved into a temporary folder, not shipped);
* lists the input files and their bytes after ``source.filter``'s partition pruning, from the
  files' metadata columns (``_metadata.file_path`` / ``file_size``: a scan that reads no data
  column);
* counts the rows it would read and estimates the units of work (``approx_count_distinct`` of
  the keys, HyperLogLog++, relative standard deviation 5 %) in the same pass, and the buckets
  the run would use;
* estimates the run's cost from the job's latest priced run
  (:mod:`~batch_scoring.jobs.cost_estimate`), which ``output.max_cost`` is checked against.

Cost: one metadata scan of the pruned files and one pass over the key columns (a model job:
one row count, for Parquet and Delta answered from file metadata where Spark can).
"""

from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from batch_scoring.jobs.commit import check_targets
from batch_scoring.jobs.config import JobConfig
from batch_scoring.jobs.cost_estimate import CostEstimate, estimate_cost
from batch_scoring.jobs.quarantine import check_columns
from batch_scoring.jobs.sinks import open_targets
from batch_scoring.jobs.sources import choose_buckets, open_source
from batch_scoring.udfs.contract import ColumnRule

LISTED_FILES = 20


@dataclass
class RunPlan:
    """What a run of the job would do: ``files`` (path, bytes) read after pruning, ``input_bytes``,
    ``rows`` read, ``units`` (estimated distinct unit-of-work keys; None for a model job),
    ``buckets`` (None for a model job or the reference engine), ``model`` (URI, version,
    SHA-256 of the model), ``cost`` (the estimate, None without an earlier priced run)."""

    job: str
    run_date: str
    output: str
    rejects: str
    files: list[tuple[str, int]] = field(default_factory=list)
    input_bytes: int = 0
    units: int | None = None
    buckets: int | None = None
    model: dict[str, str | None] | None = None
    rows: int = 0
    cost: CostEstimate | None = None

    def describe(self) -> str:
        """The plan as the text ``--dry-run`` prints."""
        lines = [f"dry run of {self.job} for run_date {self.run_date}: nothing is written",
                 f"  output   {self.output}", f"  rejects  {self.rejects}",
                 f"  input    {len(self.files):,} file(s), {self.input_bytes:,} bytes after pruning"]
        lines += [f"           {path} ({size:,} bytes)" for path, size in self.files[:LISTED_FILES]]
        if len(self.files) > LISTED_FILES:
            lines.append(f"           ... and {len(self.files) - LISTED_FILES:,} more")
        if self.model:
            lines.append(f"  model    {self.model['uri']} version {self.model['version']} "
                         f"sha256 {self.model['sha256']}")
        if self.units is not None:
            lines.append(f"  units    about {self.units:,} (approx_count_distinct of the keys)")
        if self.buckets is not None:
            lines.append(f"  buckets  {self.buckets:,}")
        lines.append(f"  rows     {self.rows:,} read")
        lines.append(f"  cost     {self.cost.describe()}" if self.cost else
                     "  cost     no estimate: no earlier run of this output recorded a cost "
                     "(output.max_cost is not checked)")
        return "\n".join(lines)


def plan_run(
    spark: SparkSession, job: JobConfig, run_date: dt.date, s3_scheme: str = "s3a",
    rules: tuple[ColumnRule, ...] | None = None,
) -> RunPlan:
    """The :class:`RunPlan` of a run of ``job`` for ``run_date``; writes nothing.

    Args:
        rules: the function's input rules when the caller already ran the function's
            preflight (the entry point does, before Spark starts); None runs it here.

    Cost: one pass over the source for the rows and, for a function job, the estimated units
    together (one aggregation); the model's check reads a sample.

    Raises:
        OwnershipError, RunDateTaken: as the run would (roots of another job, a taken date).
        InputError: the source is missing, lacks columns or breaks the contract or signature.
        ConfigError: the function, parameters or model are unusable.
    """
    targets = open_targets(spark, job.output, s3_scheme)
    check_targets(spark, job, targets, run_date)
    reader = open_source(job.source, s3_scheme)
    source = reader.read(spark, None)
    plan = RunPlan(job.job, run_date.isoformat(), targets.output_sink.location, targets.rejects_sink.location)
    plan.files = reader.input_files(source)
    plan.input_bytes = sum(size for _, size in plan.files)
    if job.model is not None and job.model.route is None:
        plan.model = _checked_model(job, source)
    if job.function is not None:
        check_columns(source, rules if rules is not None else _function_rules(job), job.source.path)
        plan.rows, plan.units = _rows_and_units(source, job.unit_of_work.keys)
        if job.unit_of_work.engine == "packed":
            plan.buckets = choose_buckets(source, job.unit_of_work.buckets, job.unit_of_work.target_bucket_mb)
    else:
        plan.rows = source.count()
    plan.cost = estimate_cost(spark, targets.output, plan.rows)
    return plan


def _rows_and_units(source: DataFrame, keys: list[str]) -> tuple[int, int]:
    """Rows, and units estimated by ``approx_count_distinct`` of the keys, in one pass."""
    row = source.agg(F.count(F.lit(1)), F.approx_count_distinct(F.struct(*keys))).first()
    return int(row[0]), int(row[1])


def _function_rules(job: JobConfig) -> tuple[ColumnRule, ...]:
    from batch_scoring.jobs.pipeline import preflight

    return preflight(job).rules


def _checked_model(job: JobConfig, source: DataFrame) -> dict[str, str | None]:
    from batch_scoring.jobs.model_job import check_source, resolve, scoring_spec

    with tempfile.TemporaryDirectory(prefix="batch-scoring-dry-run-") as folder:
        resolved = resolve(job.model, job.model.uri, folder)
        check_source(source, scoring_spec(job.model, resolved, source.columns), job, resolved)
    return {"uri": resolved.uri, "version": resolved.version, "sha256": resolved.sha256}
