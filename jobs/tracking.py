"""Record a succeeded run in MLflow: one MLflow run per run attempt, i.e. per manifest.

On when the job's ``tracking.uri`` (or ``$MLFLOW_TRACKING_URI``) is set and
``tracking.enabled`` is true. The entry point calls :func:`record_run` after the run committed
and its report was written, in the experiment ``tracking.experiment`` (default: the job name,
created when missing). The MLflow run is named after the run id and holds:

* params: the job as run (the manifest's ``config``, secrets already redacted), flattened to
  dotted paths (``source.path``, ``unit_of_work.keys``, ``function.params.max_step``); a list is
  one param holding its JSON text; values longer than MLflow's 6,000 characters are truncated;
* metrics: ``rows_in``, ``rows_out``, ``rows_rejected``, ``units``, ``buckets``,
  ``rows_rejected.<reason>``, ``seconds``, ``phase_seconds.<phase>``, ``drift_psi.<column>``
  (when the report compared the run with an earlier one) and ``cost.<field>`` for every
  number in the manifest's ``cost`` (``cost.amount``, ``cost.per_million_rows``,
  ``cost.resources.busy_core_seconds``), when it has one;
* tags: ``batch_scoring.run_id``, ``.run_date``, ``.job``, ``.status``, ``.manifest`` (its path),
  ``.version`` (the package's), ``.source_sha256``, ``.replaces`` (the run ids whose rows of
  the run date this run replaced), ``.attempt_key`` (see below), ``.cost_currency`` (the
  currency of ``cost.amount``) and, for model jobs, ``.model_uri``, ``.model_version``,
  ``.model_sha256``;
* artifacts: the manifest (``<run id>.json``) and the run report (``<run id>.html``) when one
  was written, read from wherever the run wrote them (local, ``s3a://``, HDFS).

One MLflow run per manifest: a rerun with the same ``--run-id`` and run date rewrites the same
manifest, and so replaces the MLflow run recorded for it. The new run is recorded first; then
the earlier one (found by the tag ``batch_scoring.attempt_key``, the SHA-256 of the manifest's
path) is deleted, MLflow's soft delete (``mlflow runs restore --run-id`` brings it back), with
the tag ``batch_scoring.replaced_by`` naming the new run. Attempts with other run ids, failed
or not, are other manifests and other MLflow runs; failed runs are not recorded.

Tracking never fails a run: an unreachable server or any MLflow error is one warning naming
the URI and the error (secrets redacted), and the exit code stays 0. MLflow's HTTP client
retries each call up to 7 times with exponential backoff (minutes against a dead server);
these calls are bounded to ``tracking.timeout_seconds`` per try and two retries
(:func:`bounded_http`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import math
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from batch_scoring.jobs.config import JobConfig
from batch_scoring.jobs.filesystem import read_text
from batch_scoring.jobs.redaction import redact_text

log = logging.getLogger("batch_scoring")

# MLflow's limits (mlflow.utils.validation): the server refuses a batch beyond them.
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
MAX_KEY_LENGTH = 250
MAX_PARAMS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000
TRUNCATED = " ... (truncated)"

HTTP_MAX_RETRIES = 2
HTTP_BACKOFF_FACTOR = 1
TAG = "batch_scoring."

_NOT_KEY_CHARACTERS = re.compile(r"[^A-Za-z0-9_.\- ]+")


@dataclasses.dataclass(frozen=True)
class TrackedRun:
    """Where a run was recorded.

    Attributes:
        tracking_uri: the tracking URI, secrets redacted.
        experiment_id: the experiment's id.
        run_id: the MLflow run's id (32 hex digits on a tracking server).
        url: the run's page in the MLflow UI for an ``http(s)`` URI, else None.
        replaced: ids of the MLflow runs of the same manifest that this one replaced (deleted).
    """

    tracking_uri: str
    experiment_id: str
    run_id: str
    url: str | None
    replaced: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict (``replaced`` a list)."""
        return {**dataclasses.asdict(self), "replaced": list(self.replaced)}

    def describe(self) -> str:
        """The run's UI address, or ``<run id> (experiment <id> at <uri>)`` without one."""
        return self.url or f"{self.run_id} (experiment {self.experiment_id} at {self.tracking_uri})"


def tracking_uri(job: JobConfig) -> str | None:
    """The tracking URI the job's runs are recorded at: ``tracking.uri``, else
    ``$MLFLOW_TRACKING_URI``; None when neither is set (empty counts as unset) or
    ``tracking.enabled`` is false."""
    if not job.tracking.enabled:
        return None
    return job.tracking.uri or os.environ.get("MLFLOW_TRACKING_URI") or None


def record_run(
    spark: SparkSession, job: JobConfig, manifest: Mapping[str, Any], manifest_path: str,
    report_path: str | None,
) -> TrackedRun | None:
    """Record the succeeded run whose manifest is ``manifest`` as an MLflow run.

    Args:
        manifest: the run's manifest as written last (``ManifestRecorder.last_document``).
        manifest_path, report_path: where the manifest and the report (None: no report) are.

    Returns:
        The recorded run, or None when tracking is off or failed (a warning says why). Never
        raises for an MLflow, network or file-system error.
    """
    uri = tracking_uri(job)
    if uri is None:
        return None
    try:
        with bounded_http(job.tracking.timeout_seconds):
            tracked = _record(spark, uri, job.tracking.experiment or job.job, manifest,
                              manifest_path, report_path)
    except Exception as error:  # noqa: BLE001 - the committed run must not fail on its tracking
        log.warning("the run could not be recorded in MLflow at %s: %s; the run's outputs and "
                    "manifest are committed", redact_text(uri), _one_line(error))
        log.debug("tracking failure", exc_info=True)
        return None
    log.info("recorded in MLflow: %s", tracked.describe())
    return tracked


def _record(spark: SparkSession, uri: str, experiment: str, manifest: Mapping[str, Any],
            manifest_path: str, report_path: str | None) -> TrackedRun:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment_id = experiment_id_of(client, experiment)
    tags = run_tags(manifest, manifest_path)
    earlier = _runs_of_attempt(client, experiment_id, tags[TAG + "attempt_key"])
    run_id = client.create_run(experiment_id, start_time=_millis(manifest.get("started_at")),
                               tags=tags, run_name=manifest["run_id"]).info.run_id
    try:
        _log_values(client, run_id, run_params(manifest.get("config") or {}), run_metrics(manifest))
        _log_files(client, spark, run_id, [p for p in (manifest_path, report_path) if p])
    except Exception as error:
        _flag_incomplete(client, run_id, error)
        raise
    client.set_terminated(run_id, "FINISHED", end_time=_millis(manifest.get("finished_at")))
    for replaced in earlier:
        client.set_tag(replaced, f"{TAG}replaced_by", run_id)
        client.delete_run(replaced)
    return TrackedRun(redact_text(uri), experiment_id, run_id, run_url(uri, experiment_id, run_id),
                      tuple(earlier))


def _runs_of_attempt(client, experiment_id: str, key: str) -> list[str]:
    """Ids of the active MLflow runs recorded for the manifest whose :func:`attempt_key` is ``key``."""
    found = client.search_runs([experiment_id], f"tags.`{TAG}attempt_key` = '{key}'")
    return [run.info.run_id for run in found]


def _log_files(client, spark: SparkSession, run_id: str, paths: list[str]) -> None:
    """Log each file (any Hadoop file system) as an artifact of the run, under its own name."""
    with tempfile.TemporaryDirectory(prefix="batch-score-tracking-") as folder:
        for path in paths:
            local = Path(folder) / _file_name(path)
            local.write_text(read_text(spark, path), encoding="utf-8")
            client.log_artifact(run_id, str(local))


def experiment_id_of(client, name: str) -> str:
    """The id of the experiment ``name`` on ``client``'s server, created when it does not exist.

    Raises:
        ValueError: when the experiment exists but is deleted (runs cannot be created in it).
        mlflow.exceptions.MlflowException: for any other MLflow error.
    """
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            return client.create_experiment(name)
        except MlflowException as error:
            if error.error_code != "RESOURCE_ALREADY_EXISTS":  # created meanwhile by another run
                raise
            experiment = client.get_experiment_by_name(name)
    if experiment.lifecycle_stage == "deleted":
        raise ValueError(f"experiment {name!r} is deleted; restore it (mlflow experiments restore "
                         f"--experiment-id {experiment.experiment_id}) or set tracking.experiment")
    return experiment.experiment_id


def _log_values(client, run_id: str, params: dict[str, str], metrics: dict[str, float]) -> None:
    from mlflow.entities import Metric, Param

    now = int(dt.datetime.now(dt.timezone.utc).timestamp() * 1000)
    for batch in chunks([Param(k, v) for k, v in params.items()], MAX_PARAMS_PER_BATCH):
        client.log_batch(run_id, params=batch)
    for batch in chunks([Metric(k, v, now, 0) for k, v in metrics.items()], MAX_METRICS_PER_BATCH):
        client.log_batch(run_id, metrics=batch)


def _flag_incomplete(client, run_id: str, error: BaseException) -> None:
    """Mark a run whose logging broke off, if the server still answers."""
    try:
        client.set_tag(run_id, f"{TAG}tracking_incomplete", truncate(_one_line(error), MAX_TAG_VALUE_LENGTH))
        client.set_terminated(run_id, "FINISHED")
    except Exception:  # noqa: BLE001 - the first error is the one reported
        log.debug("could not flag the MLflow run %s as incomplete", run_id, exc_info=True)


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """A nested mapping as ``{dotted.path: leaf}``; lists and empty mappings are leaves.

    ``{"source": {"path": "in"}, "unit_of_work": {"keys": ["a", "b"]}}`` ->
    ``{"source.path": "in", "unit_of_work.keys": ["a", "b"]}``.
    """
    if not isinstance(node, Mapping) or (not node and prefix):
        return {prefix: node}
    flat: dict[str, Any] = {}
    for key, value in node.items():
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def param_value(value: Any) -> str:
    """A config leaf as MLflow param text: strings as they are, anything else as JSON
    (``true``, ``16``, ``["segment", "location"]``, ``{}``), at most
    :data:`MAX_PARAM_VALUE_LENGTH` characters."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return truncate(text, MAX_PARAM_VALUE_LENGTH)


def run_params(config: Mapping[str, Any]) -> dict[str, str]:
    """The MLflow params of a (redacted) job config: flattened, keys made valid and unique
    (:func:`unique_keys`), values as :func:`param_value`."""
    flat = flatten(config)
    return {key: param_value(flat[original]) for original, key in unique_keys(flat).items()}


def run_metrics(manifest: Mapping[str, Any]) -> dict[str, float]:
    """The MLflow metrics of a succeeded manifest (see the module docstring); a field that is
    missing, null or not a finite number is left out. Keys are valid MLflow keys."""
    rows = manifest.get("rows") or {}
    metrics: dict[str, Any] = {f"rows_{name}": rows.get(name) for name in ("in", "out", "rejected")}
    metrics.update({name: rows.get(name) for name in ("units", "buckets")})
    metrics.update({f"rows_rejected.{r}": n for r, n in (rows.get("rejected_by_reason") or {}).items()})
    metrics["seconds"] = manifest.get("seconds")
    metrics.update({f"phase_seconds.{p}": s for p, s in (manifest.get("phases") or {}).items()})
    drift = ((manifest.get("report") or {}).get("drift")) or {}
    metrics.update({f"drift_psi.{column}": facts.get("psi") for column, facts in drift.items()})
    if isinstance(manifest.get("cost"), Mapping):
        metrics.update(flatten(manifest["cost"], "cost"))
    numbers = {k: float(v) for k, v in metrics.items() if _is_number(v)}
    return {key: numbers[original] for original, key in unique_keys(numbers).items()}


def run_tags(manifest: Mapping[str, Any], manifest_path: str) -> dict[str, str]:
    """The MLflow tags of a manifest: ``batch_scoring.*`` (see the module docstring), values
    at most :data:`MAX_TAG_VALUE_LENGTH` characters; a tag whose value is unknown is left out."""
    model = manifest.get("model") or {}
    replaces = (manifest.get("replaces") or {}).get("runs") or {}
    values = {
        "run_id": manifest.get("run_id"),
        "run_date": manifest.get("run_date"),
        "job": manifest.get("job"),
        "status": manifest.get("status"),
        "manifest": manifest_path,
        "attempt_key": attempt_key(manifest_path),
        "version": (manifest.get("code") or {}).get("package_version"),
        "source_sha256": (manifest.get("code") or {}).get("source_sha256"),
        "replaces": ", ".join(replaces) if replaces else None,
        "model_uri": model.get("uri"),
        "model_version": model.get("version"),
        "model_sha256": model.get("sha256"),
        "cost_currency": (manifest.get("cost") or {}).get("currency"),
    }
    return {TAG + name: truncate(str(value), MAX_TAG_VALUE_LENGTH)
            for name, value in values.items() if value not in (None, "")}


def attempt_key(manifest_path: str) -> str:
    """The hex SHA-256 of the manifest's path: the same for every rerun that rewrites that
    manifest (same output, run date and run id), different for any other attempt."""
    return hashlib.sha256(manifest_path.encode("utf-8", "surrogatepass")).hexdigest()


def sanitize_key(key: str) -> str:
    """``key`` as a valid MLflow param or metric key: characters other than ``A-Z a-z 0-9 _ .
    - space`` become ``_``, no leading ``.`` or space (MLflow refuses keys that a path
    normalization would change), at most :data:`MAX_KEY_LENGTH` characters; ``_`` for an
    empty key. ``rows_rejected.bad/reason:x`` -> ``rows_rejected.bad_reason_x``."""
    cleaned = _NOT_KEY_CHARACTERS.sub("_", key).lstrip(". ")
    return (cleaned or "_")[:MAX_KEY_LENGTH]


def unique_keys(keys: Sequence[str] | Mapping[str, Any]) -> dict[str, str]:
    """Original key -> sanitized key (:func:`sanitize_key`), distinct for distinct originals:
    a sanitized key that is taken gets ``-`` and 8 hex digits of the original's SHA-256."""
    taken: dict[str, str] = {}
    for original in keys:
        key = sanitize_key(original)
        if key in taken.values():
            suffix = "-" + hashlib.sha256(original.encode("utf-8", "surrogatepass")).hexdigest()[:8]
            key = key[: MAX_KEY_LENGTH - len(suffix)] + suffix
        taken[original] = key
    return taken


def truncate(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, ending in :data:`TRUNCATED` when cut."""
    return text if len(text) <= limit else text[: limit - len(TRUNCATED)] + TRUNCATED


def chunks(items: Sequence[Any], size: int) -> list[list[Any]]:
    """``items`` in consecutive lists of at most ``size`` (> 0) items; [] for no items."""
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


def run_url(uri: str, experiment_id: str, run_id: str) -> str | None:
    """The run's page in the MLflow UI of an ``http(s)`` tracking server (secrets redacted):
    ``http://host:5000/#/experiments/1/runs/<run id>``; None for other URIs."""
    if not uri.lower().startswith(("http://", "https://")):
        return None
    return f"{redact_text(uri).rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


@contextlib.contextmanager
def bounded_http(timeout_seconds: int) -> Iterator[None]:
    """Within the block, MLflow's HTTP calls wait at most ``timeout_seconds`` per try and are
    retried at most :data:`HTTP_MAX_RETRIES` times, at most 2 seconds apart (MLflow's
    ``MLFLOW_HTTP_REQUEST_*`` environment variables, read on each call, are set and restored),
    and urllib3's line per retry is not logged (the caller reports the outcome once)."""
    bounds = {
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(timeout_seconds),
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(HTTP_MAX_RETRIES),
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": str(HTTP_BACKOFF_FACTOR),
        "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0",
    }
    saved = {name: os.environ.get(name) for name in bounds}
    retries_log = logging.getLogger("urllib3.connectionpool")  # one warning per retry, else
    saved_level = retries_log.level
    os.environ.update(bounds)
    retries_log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        retries_log.setLevel(saved_level)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _millis(timestamp: str | None) -> int | None:
    return int(dt.datetime.fromisoformat(timestamp).timestamp() * 1000) if timestamp else None


def _file_name(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def _one_line(error: BaseException) -> str:
    return redact_text(" ".join(f"{type(error).__name__}: {error}".split()))[:500]
