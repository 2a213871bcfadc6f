"""The run report: one self-contained HTML page beside each succeeded run's manifest.

    <output.path>/_manifests/run_date=2026-11-22/<run id>.html     (the manifest: <run id>.json)

Written by the entry point after the commit (phase ``report``), unless ``report.enabled`` is
false. What it shows: :mod:`~batch_scoring.jobs.report_data`; how: :mod:`~batch_scoring.jobs.report_html`.
A report that cannot be computed or written is a warning: the run's outputs and manifest are
committed already and stay as they are. The manifest is then rewritten once more with a
``report`` field: the report's path, the previous run it was compared with, and the drift
(PSI and band) per column, which ``batch-score report`` prints.
"""

from __future__ import annotations

import logging
from typing import Any

from pyspark.sql import SparkSession

from batch_scoring.jobs.commit import RunSummary
from batch_scoring.jobs.config import JobConfig
from batch_scoring.jobs.filesystem import write_text
from batch_scoring.jobs.manifest import ManifestRecorder
from batch_scoring.jobs.redaction import redact_text
from batch_scoring.jobs.report_data import RunReport, collect_report
from batch_scoring.jobs.report_html import render_report

log = logging.getLogger("batch_scoring")


def report_path(manifest_path: str) -> str:
    """The report beside the manifest at ``manifest_path`` (``.json`` -> ``.html``)."""
    return manifest_path[: -len(".json")] + ".html" if manifest_path.endswith(".json") else manifest_path + ".html"


def write_run_report(
    spark: SparkSession, job: JobConfig, summary: RunSummary, recorder: ManifestRecorder,
    links: dict[str, str] | None = None,
) -> str | None:
    """Compute, render and write the run's report; record it in the manifest.

    Args:
        summary: the committed run's summary (its output and rejects paths).
        recorder: the run's manifest recorder, after :meth:`ManifestRecorder.succeeded`.
        links: name -> URL shown in the report (a remote run's logs, its Spark UI).

    Returns:
        The report's path, or None when ``report.enabled`` is false or the report failed (a
        warning says why; the run stays succeeded).
    """
    if not job.report.enabled:
        return None
    path = report_path(recorder.path)
    try:
        with recorder.phase("report") as phase:
            report = collect_report(spark, job, recorder.last_document, recorder.targets,
                                    recorder.s3_scheme)
            write_text(spark, path, render_report(report, links))
            phase.rows = f"{len(report.numeric) + len(report.text)} columns charted"
        recorder.reported(report_facts(report, path))
    except Exception as error:  # noqa: BLE001 - the committed run must not fail on its report
        log.warning("the run report could not be written to %s: %s; the run's outputs and "
                    "manifest are committed", path, redact_text(str(error))[:500])
        log.debug("report failure", exc_info=True)
        return None
    for column, drift in report.drift().items():
        if drift["band"] != "stable":
            log.warning("output column %s moved against run_date=%s: PSI %.3f (%s)",
                        column, report.previous["run_date"], drift["psi"], drift["band"])
    return path


def report_facts(report: RunReport, path: str) -> dict[str, Any]:
    """The manifest's ``report`` field: ``path``, ``previous_run`` (run date and id, or null),
    ``drift`` (column -> PSI and band) and ``notes``."""
    previous = report.previous
    return {
        "path": path,
        "previous_run": {"run_date": previous["run_date"], "run_id": previous["run_id"]} if previous else None,
        "drift": report.drift(),
        "notes": report.notes,
    }
