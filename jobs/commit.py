"""What every job kind shares after its rows are computed: targets, checks, commit, summary.

A run writes two outputs, the result and the rejects, both partitioned by ``run_date`` and
replaced idempotently (see :mod:`~batch_scoring.jobs.sinks`). Before writing anything,
:func:`commit_checked` counts the rows read and rejected and refuses to commit a run that
rejected more than ``output.max_reject_fraction`` of its rows (:class:`RejectBudgetExceeded`)
or whose counts do not add up (:class:`ReconciliationError`); an earlier run of the same date
then stays untouched.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, ContextManager

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from batch_scoring.jobs.config import JobConfig
from batch_scoring.jobs.errors import (
    ConcurrentRunError,
    ConfigError,
    ReconciliationError,
    RejectBudgetExceeded,
    WriteFailed,
)
from batch_scoring.jobs.locations import canonical, overlaps
from batch_scoring.jobs.ownership import check_owner, claims_of, manifest_jobs, write_claim
from batch_scoring.jobs.phases import PhaseRecord, RunPhases
from batch_scoring.jobs.quarantine import with_reject_columns
from batch_scoring.jobs.run_date_claim import RunDateTaken, check_unclaimed
from batch_scoring.jobs.run_date_claim import claim as claim_run_date
from batch_scoring.jobs.run_date_claim import release as release_run_date
from batch_scoring.jobs.schema_change import align_rejects, check_output_schema
from batch_scoring.jobs.sinks import RunTargets, Sink

if TYPE_CHECKING:
    from batch_scoring.jobs.run_context import RunContext

log = logging.getLogger("batch_scoring")


@dataclass(frozen=True)
class RunSummary:
    """What a run did, in numbers (rows are counts of rows; seconds are wall-clock).

    ``units`` counts distinct unit-of-work keys in the output (scored rows for a model job).
    The ``model_*`` fields are set for model jobs: URI, registry version, content hash, the
    backend each model was scored with (:meth:`~batch_scoring.jobs.model_backend.BackendChoice.describe`;
    a list for routed jobs); and
    ``arrow_batches``, the Arrow batches the model scored (a Spark accumulator: a task that ran
    twice counts its batches twice).
    """

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
    model_uri: str | None = None
    model_version: str | None = None
    model_sha256: str | None = None
    model_backend: dict[str, Any] | list[dict[str, Any]] | None = None
    arrow_batches: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """The summary as a JSON-ready dict (model fields only when set)."""
        return {k: v for k, v in asdict(self).items()
                if v is not None or not (k.startswith("model_") or k == "arrow_batches")}


@dataclass(frozen=True)
class RunCounts:
    """Rows of a run, counted before its commit.

    ``rows_in``: rows read (after ``source.filter``); ``rows_done``: rows priced (input rows of
    the units whose function call did not raise) or scored; ``rows_rejected``: rows in the
    run's rejects. A sound run has ``rows_in == rows_done + rows_rejected``.
    """

    rows_in: int
    rows_done: int
    rows_rejected: int

    @property
    def reject_fraction(self) -> float:
        """``rows_rejected / rows_in`` (0 for an empty input)."""
        return self.rows_rejected / self.rows_in if self.rows_in else 0.0


@dataclass(frozen=True)
class BucketCheck:
    """What reconciling a function job per unit-of-work bucket needs.

    ``keys`` and ``buckets`` are the ``repartition(buckets, *keys)`` of the packed engine;
    ``rows_done`` is the rows priced in each bucket, as the engine counted them.
    """

    keys: Sequence[str]
    buckets: int
    rows_done: dict[int, int]


@contextmanager
def persisted(df: DataFrame) -> Iterator[DataFrame]:
    """``df`` persisted for the block (memory, spilling to local disk), unpersisted after it.

    Cost: the rows are kept once, serialised, on the executors; the first action over them
    computes them, every later one reads the cache instead of recomputing.

    A block left by an exception keeps that exception: an unpersist that fails then (the JVM
    stopping on the same stop signal) is logged, never raised in its place.
    """
    cached = df.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        yield cached
    except BaseException:
        try:
            cached.unpersist()
        except Exception:  # noqa: BLE001 - the block's own error is the one to report
            log.debug("could not unpersist after the block failed", exc_info=True)
        raise
    cached.unpersist()


def new_run_id(run_date: dt.date) -> str:
    """A fresh run id: run date, UTC time and 8 random hex digits, e.g. 20261122-041502-9f1c2ab0."""
    now = dt.datetime.now(dt.timezone.utc)
    return f"{run_date:%Y%m%d}-{now:%H%M%S}-{uuid.uuid4().hex[:8]}"


def check_paths(job: JobConfig) -> None:
    """Refuse outputs that overlap the source or each other, compared as locations.

    ``output.path`` and ``output.rejects_path`` must not be, lie inside or contain
    ``source.path`` (or a Redshift source's ``source.jdbc.unload.s3_uri``, whose run folders are
    deleted after the run), and must not overlap each other (a database source or rejects table
    has no path and is left out). Paths are compared after
    :func:`~batch_scoring.jobs.locations.canonical` (``file://`` URIs, symlinks, ``.``/``..``,
    trailing slashes, ``s3://``/``s3a://``/``s3n://`` as one).

    Raises:
        ConfigError: naming the clashing fields, as written and as resolved.
    """
    outputs = [("output.path", job.output.path)]
    if job.output.format != "jdbc":  # a database output's rejects are a table, not a folder
        outputs.append(("output.rejects_path", job.output.rejects))
    inputs = [("source.path", job.source.path)] if job.source.path else []
    if job.source.jdbc is not None and job.source.jdbc.unload is not None:  # deleted after the run
        inputs.append(("source.jdbc.unload.s3_uri", job.source.jdbc.unload.s3_uri))
    pairs = [(field, path, source_field, source) for field, path in outputs for source_field, source in inputs]
    if len(outputs) == 2:
        (output_field, output), (rejects_field, rejects) = outputs
        pairs.append((rejects_field, rejects, output_field, output))
    for field, path, other_field, other in pairs:
        if overlaps(path, other):
            raise ConfigError(
                f"{field} {path} overlaps {other_field} {other} (they resolve to "
                f"{canonical(path)} and {canonical(other)}): a run must never write into its "
                "own input or mix its outputs; choose separate folders"
            )


def check_partition_columns(job: JobConfig, available: Sequence[str]) -> None:
    """Refuse ``output.partition_by`` columns that the output will not have.

    Raises:
        ConfigError: naming the unknown columns and the ones to choose from.
    """
    unknown = [c for c in job.output.partition_by if c not in available]
    if unknown:
        raise ConfigError(
            f"output.partition_by names {unknown}, which the output does not have; choose "
            f"from {list(available)}"
        )


def check_targets(spark: SparkSession, job: JobConfig, targets: RunTargets, run_date: dt.date) -> None:
    """Check who owns the output and rejects tables and enforce ``output.mode``; reads only.

    Raises:
        OwnershipError: when a root belongs to another job or holds foreign files
            (:func:`~batch_scoring.jobs.ownership.check_owner`).
        RunDateTaken: when ``output.mode`` is ``fail_if_run_exists`` and the run date has rows
            or is claimed.
    """
    legacy = functools.cache(lambda: job.job in manifest_jobs(spark, targets.output))
    for field, root, claim in claims_of(job, targets):
        check_owner(spark, root, claim, field, legacy)
    if job.output.mode == "fail_if_run_exists":
        check_run_date_free(spark, job, targets, run_date)


def check_run_date_free(spark: SparkSession, job: JobConfig, targets: RunTargets, run_date: dt.date) -> None:
    """Refuse a ``fail_if_run_exists`` run whose date holds rows or is claimed (before the work).

    Raises:
        RunDateTaken: naming the run(s) that hold the date.
    """
    if targets.output_sink.has_run(run_date):
        holders = other_run_ids(targets.output_sink, run_date, "")
        raise RunDateTaken(
            f"output.mode is fail_if_run_exists and {job.output.path} already holds run_date "
            f"{run_date} (run {', '.join(holders) or 'unknown'}); nothing of this run was "
            "written. Choose another --run-date or set output.mode=replace_run"
        )
    check_unclaimed(spark, targets.output, run_date)


@dataclass
class CommitJournal:
    """Hears the run's phases, when it starts committing and when each table committed.

    ``phases`` times and logs each phase (:mod:`~batch_scoring.jobs.phases`); the commit
    hooks are no-ops here. The entry point's :class:`~batch_scoring.jobs.manifest.ManifestRecorder`
    records all of it in the attempt's manifest, so an attempt stopped at any moment leaves a
    manifest saying the phase it was in and which tables it committed.
    """

    phases: RunPhases = field(default_factory=RunPhases, kw_only=True)

    def phase(self, name: str) -> ContextManager[PhaseRecord]:
        """The block in which the run is in phase ``name`` (see :meth:`RunPhases.phase`)."""
        return self.phases.phase(name)

    def started(self, ctx: RunContext) -> None:
        """Called once the run's source and tables are opened, before its checks."""

    def committing(self, targets: RunTargets) -> None:
        """Called once before the first write, with the tables about to be written.

        Raises whatever stops the run before anything is written (e.g. an unwritable
        manifest folder).
        """

    def committed(self, table: str) -> None:
        """Called after ``table`` (``output`` or ``rejects``) committed."""


def commit(ctx: RunContext, result: DataFrame, rejects: DataFrame) -> None:
    """Check both tables, then write the result and the rejects of the run (result first).

    With ``output.mode: fail_if_run_exists`` the run date is claimed first
    (:mod:`~batch_scoring.jobs.run_date_claim`), before anything of the tables is read (a run
    that lost the claim must not read files the winner is moving), and released again if
    nothing committed. Then, before the first write: files this package did not write under
    the run date (Parquet), the output's and the rejects' schemas against the existing tables
    (:mod:`~batch_scoring.jobs.schema_change`), then ``journal.committing``. Then each root's
    ownership marker is written (first commit only), the output, the rejects.

    Args:
        ctx: the run (its job, run date, run id, tables and journal).
        result: the rows to write to the output table.
        rejects: every rejected row of the run.

    Raises:
        InputError: foreign files in the run date's folders, or a schema change the policy
            refuses; nothing written.
        RunDateTaken: ``fail_if_run_exists`` and another run claimed the date first.
        ConcurrentRunError: another run committed the same run date meanwhile.
        WriteFailed: a write failed; the message gives the deepest cause and the path.
    """
    spark, job, targets, journal = ctx.spark, ctx.job, ctx.targets, ctx.journal
    run_date, run_id, out = ctx.run_date, ctx.run_id, job.output
    exclusive = out.mode == "fail_if_run_exists"
    if exclusive:  # first: a loser must not read the tables the winner is writing
        claim_run_date(spark, targets.output, run_date, run_id)
    done: list[str] = []
    try:
        for _, sink in targets.sinks():
            sink.check_replaceable(run_date)
        add_output = check_output_schema(result, targets.output_sink, ["run_date", *out.partition_by],
                                         out.schema_change)
        rejects, add_rejects = align_rejects(with_reject_columns(rejects), targets.rejects_sink)
        journal.committing(targets)
        for field, root, claim in claims_of(job, targets):
            write_claim(spark, root, claim, field)
        keys = job.unit_of_work.keys if job.unit_of_work is not None else []
        tables = (("output", result, targets.output_sink, out.partition_by, add_output, keys),
                  ("rejects", rejects, targets.rejects_sink, [], add_rejects, [*keys, "reject_reason"]))
        for table, rows, sink, partition_by, add_columns, stats_columns in tables:
            try:
                sink.write_run(rows, partition_by, run_date, run_id, add_columns, stats_columns)
            except Exception as error:
                raise (concurrent_run_error(error, sink, run_date, run_id, table, done)
                       or write_error(error, sink.location, table, done)) from error
            journal.committed(table)
            done.append(table)
    except BaseException:
        if exclusive and not done:
            release_run_date(spark, targets.output, run_date)
        raise


def write_error(error: BaseException, path: str, table: str, committed: Sequence[str]) -> WriteFailed | None:
    """A :class:`WriteFailed` naming the deepest cause of a failed write, or None when the
    error carries no Java cause (then it is raised as it is)."""
    cause = root_cause(error)
    if cause is None:
        return None
    kept = (f"this run's {', '.join(committed)} was committed, its {table} was not: rerun"
            if committed else "nothing of this run was committed")
    return WriteFailed(f"writing the run's {table} to {path} failed: {cause}; {kept}")


def root_cause(error: BaseException) -> str | None:
    """``Class: message`` of the deepest Java exception inside a py4j error (e.g.
    ``java.io.IOException: No space left on device``), or None for a Python error."""
    java = getattr(error, "java_exception", None) or getattr(error, "_origin", None)
    if java is None:
        return None
    try:
        while java.getCause() is not None and java.getCause() != java:
            java = java.getCause()
        return f"{java.getClass().getName()}: {java.getMessage()}"
    except Exception:  # noqa: BLE001 - the gateway may be gone; keep the original error
        return None


_CONCURRENT_DELTA = re.compile(
    r"Concurrent(Append|DeleteRead|DeleteDelete|Transaction|Write)Exception|"
    r"MetadataChangedException|ProtocolChangedException|DELTA_CONCURRENT"
)
_CONCURRENT_FILES = re.compile(r"FileNotFoundException|FileAlreadyExistsException|No such file")


def concurrent_run_error(
    error: BaseException, sink: Sink, run_date: dt.date, run_id: str, table: str,
    committed: Sequence[str],
) -> ConcurrentRunError | None:
    """The :class:`ConcurrentRunError` a failed write stands for, or None.

    A write lost a race when Delta reports a concurrent-modification conflict, or when a
    Parquet write failed on vanished or already-existing files and the run date now holds
    another run's rows.
    """
    text = str(error)
    if not (_CONCURRENT_DELTA.search(text) or _CONCURRENT_FILES.search(text)):
        return None
    others = other_run_ids(sink, run_date, run_id)
    if not others and not _CONCURRENT_DELTA.search(text):
        return None
    kept = (f"this run's {', '.join(committed)} was committed and its {table} was not: rerun "
            "to make the run date whole" if committed else "nothing of this run was committed")
    holder = f"run {', '.join(others)}" if others else "another run"
    return ConcurrentRunError(
        f"{holder} committed run_date {run_date} of {sink.location} while this run ({run_id}) was "
        f"writing its {table}; {kept}. Two runs of one run date must not run at once: check "
        "the scheduler (retries, overlapping schedules)"
    )


def other_run_ids(sink: Sink, run_date: dt.date, run_id: str) -> list[str]:
    """Run ids other than ``run_id`` that the table holds for ``run_date`` (at most 5)."""
    try:
        rows = sink.read_run(run_date)
        if rows is None:
            return []
        found = rows.where(F.col("run_id") != run_id).select("run_id").distinct().limit(5)
        return sorted(r["run_id"] for r in found.collect())
    except Exception:  # noqa: BLE001 - a table being rewritten may not read; say "another run"
        return []


def commit_checked(
    ctx: RunContext, result: DataFrame, rejects: DataFrame, source: DataFrame, rows_done: int,
    bucket_check: BucketCheck | None = None,
) -> RunCounts:
    """Count the run's rows, check them, and only then write the result and the rejects.

    Args:
        ctx: the run; its journal is told when the commit starts and as each table commits
            (see :func:`commit`).
        result: the rows to commit (ideally persisted: it is only written here).
        rejects: every rejected row of the run (any stage).
        source: the rows read (after ``source.filter``), counted here.
        rows_done: the rows priced or scored, as counted by the engine.
        bucket_check: when given, the counts are also reconciled per bucket: rows read in
            a bucket (the bucket of their keys) = rows priced there + rows rejected there.

    Returns:
        The :class:`RunCounts` that were checked.

    Raises:
        ReconciliationError: when ``rows_in != rows_done + rows_rejected``, in the run or in
            a bucket.
        RejectBudgetExceeded: when ``rows_rejected / rows_in`` exceeds
            ``output.max_reject_fraction``.
        Either is raised before anything is written.

    An empty source (no rows after ``source.filter``) is not an error: the run commits an
    empty output and empty rejects, which replace the run date's earlier rows (the run owns
    its date), and a warning is logged.

    Cost: one pass over ``source`` to count it (the summary reuses the count), and the
    rejects are persisted for the call: the count computes them once and the write reads
    the cache (memory, spilling to disk: about the size of the rejects).
    """
    journal = ctx.journal
    with persisted(rejects) as cached:
        with journal.phase("reconcile") as phase:
            if bucket_check is None:
                counts = RunCounts(source.count(), rows_done, cached.count())
            else:
                counts = reconcile_buckets(bucket_check, source, cached, rows_done)
            phase.rows = f"{counts.rows_in:,} rows read, {counts.rows_rejected:,} rejected"
            if counts.rows_in == 0:
                log.warning("source %s has no rows (after source.filter): run_date %s commits an "
                            "empty output, replacing its earlier rows", ctx.source.name, ctx.run_date)
            reconcile(counts)
            check_reject_budget(ctx.job.output.max_reject_fraction, counts, cached)
        with journal.phase("write"):
            commit(ctx, result, cached)
    return counts


def reconcile(counts: RunCounts) -> None:
    """Raise unless every row read was priced (or scored) or rejected, exactly once.

    Raises:
        ReconciliationError: naming the three counts and the difference.
    """
    accounted = counts.rows_done + counts.rows_rejected
    if counts.rows_in != accounted:
        raise ReconciliationError(
            f"rows read {counts.rows_in:,} != rows priced or scored {counts.rows_done:,} + rows "
            f"rejected {counts.rows_rejected:,} (difference {counts.rows_in - accounted:+,}): "
            "rows were lost or duplicated; nothing was committed"
        )


def reconcile_buckets(
    check: BucketCheck, source: DataFrame, rejects: DataFrame, rows_done: int
) -> RunCounts:
    """Count rows read and rejected per bucket and raise unless every bucket adds up.

    The source is counted in one aggregation by bucket (the same single pass a plain count
    makes); the rejects, persisted, are grouped the same way. A row's bucket is that of its
    key values, so a rejected row (null key, contract break, raising unit) is counted in the
    bucket it was read in.

    Returns:
        The run's :class:`RunCounts` (sums over the buckets).

    Raises:
        ReconciliationError: naming the buckets whose counts differ (at most five).
    """
    from batch_scoring.udfs.engine.spark_execution import bucket_of

    bucket = bucket_of(check.keys, check.buckets).alias("bucket")
    read = _counts_by(source.groupBy(bucket))
    rejected = _counts_by(rejects.groupBy(bucket))
    wrong = [
        f"bucket {b}: read {read.get(b, 0):,} != priced {check.rows_done.get(b, 0):,} + "
        f"rejected {rejected.get(b, 0):,}"
        for b in sorted(set(read) | set(rejected) | set(check.rows_done))
        if read.get(b, 0) != check.rows_done.get(b, 0) + rejected.get(b, 0)
    ]
    if wrong:
        raise ReconciliationError(
            f"{len(wrong)} of {check.buckets} buckets do not reconcile ({'; '.join(wrong[:5])}): "
            "rows were lost or duplicated; nothing was committed"
        )
    return RunCounts(sum(read.values()), rows_done, sum(rejected.values()))


def _counts_by(grouped) -> dict[int, int]:
    return {int(r["bucket"]): int(r["count"]) for r in grouped.count().collect()}


def check_reject_budget(limit: float | None, counts: RunCounts, rejects: DataFrame) -> None:
    """Raise when the run rejected a larger share of its rows than ``limit`` (None: no limit).

    Raises:
        RejectBudgetExceeded: with the counts, the fraction, the limit and the rejects per
            reason (one aggregation over ``rejects``, only when the budget is exceeded).
    """
    if limit is None or counts.reject_fraction <= limit:
        return
    reasons = rejects.groupBy("reject_reason").count().orderBy("reject_reason").collect()
    by_reason = ", ".join(f"{r['reject_reason']} {r['count']:,}" for r in reasons)
    raise RejectBudgetExceeded(
        f"{counts.rows_rejected:,} of {counts.rows_in:,} rows read were rejected "
        f"({counts.reject_fraction:.2%}), more than output.max_reject_fraction {limit:g} allows "
        f"({by_reason}); nothing was committed, earlier runs are untouched",
        rows={"in": counts.rows_in, "priced_or_scored": counts.rows_done, "rejected": counts.rows_rejected,
              "rejected_by_reason": {r["reject_reason"]: r["count"] for r in reasons}},
    )


def summarise(
    ctx: RunContext, counts: RunCounts, unit_keys: Sequence[str], buckets: int,
    **model: str | int | None,
) -> RunSummary:
    """Read back the run's output and build its :class:`RunSummary`.

    Rows read and rejected come from ``counts`` (counted before the commit); rows out and
    units are read back from the committed output. ``unit_keys`` empty counts output rows
    as units.
    """
    targets = ctx.targets
    output = targets.output_sink.read_run(ctx.run_date)
    rows_out = output.count() if output is not None else 0
    units = output.select(*unit_keys).distinct().count() if output is not None and unit_keys else rows_out
    return RunSummary(
        job=ctx.job.job,
        run_date=ctx.run_date.isoformat(),
        run_id=ctx.run_id,
        rows_in=counts.rows_in,
        rows_rejected=counts.rows_rejected,
        units=units,
        rows_out=rows_out,
        buckets=buckets,
        output_path=targets.output,
        rejects_path=targets.rejects,
        seconds=round(ctx.seconds(), 1),
        **model,
    )
