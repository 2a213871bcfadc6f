"""The run manifest: one JSON file per run attempt that says exactly what happened.

Written when the outputs committed (or when the run failed), under the output root::

    <output.path>/_manifests/run_date=2026-11-22/<file name derived from run_id>.json

The file name is :func:`~batch_scoring.jobs.run_ids.manifest_file_name` of the run id (the id
itself when it is a plain name, else a sanitized prefix and a hash), so no run id can name a
path outside that folder; the id itself is stored verbatim in the ``run_id`` field.

Spark, Delta and Parquet readers skip folders whose names start with ``_``, so the manifest
never shows up as data. It is written to a hidden temporary name and renamed into place
(an atomic rename on local and HDFS file systems; on S3 the object appears whole or not at
all), so a reader never sees half a manifest.

Fields: ``job``, ``run_date``, ``run_id``, ``status`` (``committing`` | ``succeeded`` |
``failed``),
``started_at`` / ``finished_at`` (UTC ISO), ``seconds``, ``config`` (the job as run, secrets
redacted) and ``config_sha256``, ``code`` (package version and a hash of its source files),
``spark`` (application id, version, master), ``inputs`` (source files with sizes in bytes, or
the Delta table version; at most 10,000 files are listed, all are counted), ``model`` (URI,
version, SHA-256, and ``backend``: the backend each model scored with, why, the model's and the
compiled library's SHA-256 and the sample timings, :mod:`~batch_scoring.jobs.model_backend`), ``rows`` (in, out, rejected, units, buckets, and rejected by reason; for a
run stopped by a budget, exit 4, the counts it had made), ``phases`` (seconds per phase,
:mod:`~batch_scoring.jobs.phases`), ``commit`` (the tables the attempt commits and, in order,
those that committed; null when it never reached its commit),
``replaces`` (the rows of the run date the commit replaces and the runs that wrote them, null
when the date held none), ``error`` (type, message, exit code, phase, signal), ``cost`` (the
executor core-seconds of the attempt, allocated and busy, and their amount at the profile's
``prices.core_hour``: :mod:`~batch_scoring.jobs.cost`; null while committing or without the
Spark UI), and, once the
run report is written (:mod:`~batch_scoring.jobs.run_report`), ``report`` (its path, the
previous run compared with, and the drift per column).

For an EMR Serverless run that ``batch-score submit`` waited for, the submitter rewrites the
manifest once the run ended with ``remote``
(:func:`~batch_scoring.jobs.deploy.remote_run.remote_field`): the job run (``service``,
``region``, ``application_id``, ``job_run_id``), its final ``state``, ``log_uri``,
``spark_ui_command`` and ``spark_ui_requested_at`` (how to open its Spark UI; the pre-signed
link itself is never stored), ``execution_seconds``, ``billed`` (GetJobRun's
``billedResourceUtilization``) and ``cost``.

An attempt writes its manifest twice more while it commits: with ``status: committing``
before its first write (which also proves the folder writable before anything is committed),
and again after each table committed. So an attempt killed at any moment of its commit leaves
a manifest whose ``commit.committed`` says which tables hold its rows; ``status:
committing`` on a finished process means the attempt was stopped there.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import importlib.metadata
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyspark.sql import SparkSession

from batch_scoring.jobs.commit import CommitJournal, RunSummary
from batch_scoring.jobs.config import JobConfig, PricesConfig
from batch_scoring.jobs.cost import core_seconds_cost, executor_core_seconds
from batch_scoring.jobs.errors import ConfigError
from batch_scoring.jobs.filesystem import (
    hadoop_filesystem,
    list_children,
    path_exists,
    write_text,
    write_text_without_jvm,
    writes_without_jvm,
)
from batch_scoring.jobs.locations import resolve_path
from batch_scoring.jobs.redaction import redact, redact_text
from batch_scoring.jobs.run_ids import manifest_file_name
from batch_scoring.jobs.sinks import RunTargets, Sink
from batch_scoring.jobs.sources import Source, open_source

if TYPE_CHECKING:
    from batch_scoring.jobs.run_context import RunContext

log = logging.getLogger("batch_scoring")

MANIFEST_FOLDER = "_manifests"


@dataclasses.dataclass
class ManifestRecorder(CommitJournal):
    """Collects a run's facts from its start and writes its manifest when it ends.

    Args:
        spark: the run's session.
        job: the job as run (overrides applied).
        run_date: the run date.
        run_id: the attempt's id.
        s3_scheme: how ``s3://`` paths are reached (the profile's).
        prices: the profile's prices, for the run's ``cost``.
    """

    spark: SparkSession
    job: JobConfig
    run_date: dt.date
    run_id: str
    s3_scheme: str = "s3a"
    prices: PricesConfig = dataclasses.field(default_factory=PricesConfig)
    started_at: dt.datetime = dataclasses.field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))
    commit: dict[str, Any] | None = None

    replaces: dict[str, Any] | None = None
    targets: RunTargets | None = dataclasses.field(default=None, repr=False)
    source: Source | None = dataclasses.field(default=None, repr=False)
    last_document: dict[str, Any] | None = dataclasses.field(default=None, repr=False)

    @property
    def path(self) -> str:
        """Where this attempt's manifest goes (``s3://`` resolved for this profile)."""
        return manifest_path(resolve_path(self.job.output.path, self.s3_scheme), self.run_date, self.run_id)

    def started(self, ctx: RunContext) -> None:
        """Keep the run's source and tables: the manifest describes what this run read (a
        database source's partitions and bounds as it read them) and reads its rejects back."""
        self.source, self.targets = ctx.source, ctx.targets

    def committing(self, targets: RunTargets) -> None:
        """Write the manifest with ``status: committing`` before the run's first write.

        A crash from here on leaves this manifest; ``commit.committed`` lists the tables that
        committed before it (:meth:`committed` rewrites the manifest after each one).

        Raises:
            ConfigError: when the manifest folder cannot be written (naming it); the run then
                stops before anything of it is committed, so a non-zero exit never follows a
                commit.
        """
        self.targets = targets
        self.commit = {"tables": {table: sink.location for table, sink in targets.sinks()}, "committed": []}
        self.replaces = replaced_run(self.spark, targets.output_sink, targets.output, self.run_date)
        if self.replaces:
            log.warning("replacing %s", describe_replaced(self.replaces, self.run_date))
        try:
            self._write(self._document("committing", None, None))
        except Exception as error:  # noqa: BLE001 - py4j, URI and OS errors alike
            folder = self.path.rsplit("/", 1)[0]
            raise ConfigError(
                f"the run manifest cannot be written to {folder}: {redact_text(str(error))[:500]}; "
                "make the output.path folder writable for the job. Nothing was committed"
            ) from error

    def committed(self, table: str) -> None:
        """Record that ``table`` (``output`` or ``rejects``) committed, in the manifest."""
        self.commit["committed"].append(table)
        self._write(self._document("committing", None, None))

    def succeeded(self, summary: RunSummary) -> str:
        """Write the manifest of a run that committed; return its path.

        Raises:
            py4j.protocol.Py4JJavaError: when the output root cannot be written.
        """
        return self._write(self._document("succeeded", summary, None))

    def failed(self, error: BaseException, exit_code: int, signal: str | None = None) -> str | None:
        """Write the manifest of a failed run; return its path, or None if it could not be written.

        The error records the ``phase`` the run was in (:mod:`~batch_scoring.jobs.phases`;
        in ``write``, ``commit.committed`` says which tables are in) and ``signal`` the
        signal that stopped it (``SIGTERM``). ``rows`` holds the counts an over-budget run
        (exit 4) had made (its error's ``rows``), else null. When the JVM is gone (a signal to
        the whole process group stops it too), a local or S3 manifest is written from Python
        directly. A failure to write it is logged in the manifest's place, never raised, so it
        does not hide the run's own error.
        """
        failure = {"type": type(error).__name__, "message": redact_text(str(error))[:4000],
                   "exit_code": exit_code, "phase": self.phases.current}
        if signal:
            failure["signal"] = signal
        try:
            return self._write(self._document("failed", None, failure, getattr(error, "rows", None)))
        except Exception as write_error:  # noqa: BLE001 - the run's error matters more
            print(f"warning: the failed run's manifest could not be written to {self.path}: "
                  f"{redact_text(str(write_error))}")
            return None

    def _document(self, status: str, summary: RunSummary | None, error,
                  rows: dict[str, Any] | None = None) -> dict[str, Any]:
        finished = dt.datetime.now(dt.timezone.utc)
        config = redact(self.job.model_dump(mode="json", by_alias=True, exclude_none=True))
        return {
            "job": self.job.job,
            "run_date": self.run_date.isoformat(),
            "run_id": self.run_id,
            "status": status,
            "started_at": self.started_at.isoformat(),
            "finished_at": finished.isoformat(),
            "seconds": round((finished - self.started_at).total_seconds(), 3),
            "config": config,
            "config_sha256": hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest(),
            "code": code_version(),
            "spark": self._spark_facts(),
            "inputs": redact(self._inputs()),
            "model": redact(_model(summary)),
            "rows": (rows := _rows(summary, self.targets) if summary else rows),
            "phases": {k: round(v, 3) for k, v in self.phases.seconds.items()},
            "commit": self.commit,
            "replaces": self.replaces,
            "error": error,
            "cost": self._cost(rows) if status != "committing" else None,
        }

    def _cost(self, rows: dict[str, Any] | None) -> dict[str, Any] | None:
        measured = executor_core_seconds(self.spark)
        if measured is None:
            return None
        return core_seconds_cost(*measured, self.prices, (rows or {}).get("in")).as_dict()

    def __post_init__(self) -> None:
        context = self.spark.sparkContext  # read now: a stopped run may have lost the JVM
        self.spark_facts = {"application_id": context.applicationId, "version": self.spark.version,
                            "master": context.master}

    def _spark_facts(self) -> dict[str, str]:
        return self.spark_facts

    def _inputs(self) -> dict[str, Any]:
        source = self.source or open_source(self.job.source, self.s3_scheme)
        try:
            return source.describe_inputs(self.spark)
        except Exception as error:  # noqa: BLE001 - a manifest of a failed read still gets written
            return {"path": source.name, "error": f"could not list the source: {error}"[:500]}

    def reported(self, report: dict[str, Any]) -> str:
        """Rewrite the succeeded manifest with its ``report`` (path, previous run, drift), the
        phases so far (``report`` included) and ``finished_at`` / ``seconds`` now; return its path."""
        finished = dt.datetime.now(dt.timezone.utc)
        document = {**self.last_document, "finished_at": finished.isoformat(),
                    "seconds": round((finished - self.started_at).total_seconds(), 3),
                    "phases": {k: round(v, 3) for k, v in self.phases.seconds.items()}, "report": report,
                    "cost": self._cost(self.last_document.get("rows"))}
        return self._write(document)

    def _write(self, document: dict[str, Any]) -> str:
        self.last_document = document
        text = json.dumps(document, indent=2, default=str)
        try:
            write_text(self.spark, self.path, text)
        except Exception:
            if not writes_without_jvm(self.path):
                raise
            write_text_without_jvm(self.path, text)
        return self.path


def manifest_path(output_root: str, run_date: dt.date, run_id: str) -> str:
    """The manifest of run ``run_id`` of ``run_date`` under the (resolved) output root."""
    return f"{manifest_folder(output_root, run_date)}/{manifest_file_name(run_id)}"


def manifest_folder(output_root: str, run_date: dt.date) -> str:
    """The folder of ``run_date``'s manifests under the (resolved) output root."""
    return f"{output_root.rstrip('/')}/{MANIFEST_FOLDER}/run_date={run_date.isoformat()}"


def manifest_dates(spark: SparkSession, output_root: str) -> list[dt.date]:
    """The run dates that have a manifest folder under the (resolved) output root, latest first;
    empty when there is no ``_manifests`` folder."""
    folder = f"{output_root.rstrip('/')}/{MANIFEST_FOLDER}"
    if not path_exists(spark, folder):
        return []
    names = [_name(child) for child in list_children(spark, folder)]
    return sorted((dt.date.fromisoformat(n.removeprefix("run_date=")) for n in names
                   if n.startswith("run_date=")), reverse=True)


def run_date_manifests(spark: SparkSession, output_root: str, run_date: dt.date) -> list[dict[str, Any]]:
    """Every attempt's manifest of ``run_date`` (hidden temporary files skipped), latest
    ``finished_at`` first."""
    folder = manifest_folder(output_root, run_date)
    names = [_name(child) for child in list_children(spark, folder)]
    manifests = [read_manifest(spark, f"{folder}/{name}") for name in names
                 if name.endswith(".json") and not name.startswith((".", "_"))]
    return sorted(manifests, key=lambda m: m.get("finished_at") or "", reverse=True)


def _name(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def replaced_run(
    spark: SparkSession, output: Sink, output_root: str, run_date: dt.date
) -> dict[str, Any] | None:
    """What a commit of ``run_date`` replaces: ``{"rows": n, "runs": {run_id: finished_at}}``
    for the rows the ``output`` table holds for the date (``finished_at`` from each run's
    manifest under ``output_root``, null when it has none), or None when it holds none.

    Cost: one count by ``run_id`` over the run date's rows, and one manifest read per run
    (at most five are named).
    """
    rows = output.read_run(run_date)
    held = rows.groupBy("run_id").count().collect() if rows is not None else []
    if not held:
        return None
    runs = {}
    for run_id in sorted(r["run_id"] for r in held)[:5]:
        try:
            runs[run_id] = read_manifest(spark, manifest_path(output_root, run_date, run_id)).get("finished_at")
        except Exception:  # noqa: BLE001 - rows without a manifest (an older or foreign writer)
            runs[run_id] = None
    return {"rows": sum(int(r["count"]) for r in held), "runs": runs}


def describe_replaced(replaces: dict[str, Any], run_date: dt.date) -> str:
    """``544 rows of run_date=2026-11-22 written by run R at 2026-11-22T02:00:31+00:00``."""
    runs = ", ".join(f"run {run_id}" + (f" at {finished}" if finished else "")
                     for run_id, finished in replaces["runs"].items())
    return f"{replaces['rows']:,} rows of run_date={run_date.isoformat()} written by {runs}"


def read_manifest(spark: SparkSession, path: str) -> dict[str, Any]:
    """Read one manifest back (any Hadoop file system); used by tests and tooling."""
    filesystem, hadoop_path = hadoop_filesystem(spark, path)
    stream = filesystem.open(hadoop_path)
    try:
        reader = spark.sparkContext._jvm.java.io.BufferedReader(
            spark.sparkContext._jvm.java.io.InputStreamReader(stream, "UTF-8"))
        return json.loads("\n".join(iter(reader.readLine, None)))
    finally:
        stream.close()


def code_version() -> dict[str, str]:
    """The installed package's version and a SHA-256 over its Python source files."""
    jobs_folder = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for folder in (jobs_folder, jobs_folder.parent / "udfs"):
        for file in sorted(folder.rglob("*.py")):
            digest.update(str(file.relative_to(folder.parent)).encode())
            digest.update(file.read_bytes())
    return {"package_version": package_version(), "source_sha256": digest.hexdigest()}


def package_version() -> str:
    """The installed package's version (``unknown (not installed)`` from a bare checkout)."""
    try:
        return importlib.metadata.version("batch-scoring")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


def _model(summary: RunSummary | None) -> dict[str, str | None] | None:
    if summary is None or summary.model_uri is None:
        return None
    return {"uri": summary.model_uri, "version": summary.model_version, "sha256": summary.model_sha256,
            "backend": summary.model_backend}


def _rows(summary: RunSummary | None, targets: RunTargets | None) -> dict[str, Any] | None:
    if summary is None:
        return None
    return {"in": summary.rows_in, "out": summary.rows_out, "rejected": summary.rows_rejected,
            "units": summary.units, "buckets": summary.buckets,
            "rejected_by_reason": _rejects_by_reason(summary, targets)}


def _rejects_by_reason(summary: RunSummary, targets: RunTargets | None) -> dict[str, int]:
    if summary.rows_rejected == 0 or targets is None:
        return {}
    rejects = targets.rejects_sink.read_run(dt.date.fromisoformat(summary.run_date))
    if rejects is None:
        return {}
    return {row["reject_reason"]: row["count"] for row in rejects.groupBy("reject_reason").count().collect()}
