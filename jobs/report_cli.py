"""``batch-score report OUTPUT``: a run's summary from its manifest, and where its report is.

    batch-score report output/data_pricing                        # the latest run date's latest run
    batch-score report output/data_pricing --run-date 2026-11-22 --run-id R
    batch-score report s3://bucket/prices --profile conf/emr.yaml

Prints the run (status, seconds, rows in / out / rejected and rejected per reason, phases, the
drift per column against the previous run, the notes), for an EMR Serverless run the facts
``batch-score submit`` recorded (``remote``: the job run, its log folder, how to open its Spark
UI, its cost) and the path of its HTML report.
Exit codes: 0, 2 (bad flags or profile), 3 (no manifest of that run under ``OUTPUT``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence
from typing import Any

from pyspark.sql import SparkSession

from batch_scoring.jobs.config import load_profile
from batch_scoring.jobs.cost import RunCost
from batch_scoring.jobs.errors import ConfigError, InputError, JobError
from batch_scoring.jobs.filesystem import path_exists
from batch_scoring.jobs.locations import resolve_path
from batch_scoring.jobs.manifest import (
    MANIFEST_FOLDER,
    manifest_dates,
    manifest_path,
    read_manifest,
    run_date_manifests,
)
from batch_scoring.jobs.redaction import redact_text
from batch_scoring.jobs.run_report import report_path
from batch_scoring.jobs.show import LOCAL


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse ``batch-score report``'s flags (see ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="batch-score report",
        description="Print a run's summary from its manifest and the path of its HTML run report.",
        epilog="example: batch-score report output/data_pricing --run-date 2026-11-22",
    )
    parser.add_argument("output", help="the job's output path (local, s3://...), as in output.path")
    parser.add_argument("--run-date", type=dt.date.fromisoformat, help="the run date (default: the latest)")
    parser.add_argument("--run-id", help="the run's id (default: the run date's latest finished run)")
    parser.add_argument("--profile", help="platform profile YAML for S3 and Spark settings "
                        "(default: local[2], UTC)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``batch-score report``; return the exit code."""
    args = parse_args(argv)
    try:
        profile = load_profile(args.profile) if args.profile else LOCAL
        from batch_scoring.jobs.session import build_reader_session

        path = resolve_path(args.output, profile.s3_scheme)
        spark = build_reader_session(profile, path)
        manifest = find_manifest(spark, path, args.run_date, args.run_id)
        print(describe(manifest, _existing_report(spark, manifest, path)))
    except JobError as error:
        print(f"error: {redact_text(str(error))}", file=sys.stderr)
        return error.exit_code
    return 0


def find_manifest(
    spark: SparkSession, output: str, run_date: dt.date | None, run_id: str | None,
) -> dict[str, Any]:
    """The manifest of run ``run_id`` of ``run_date`` under ``output`` (defaults: the latest
    run date, its latest finished attempt).

    Raises:
        InputError: no manifests under ``output``, none for ``run_date``, or none for
            ``run_id`` (naming what there is).
        ConfigError: ``--run-id`` without ``--run-date``.
    """
    if run_id is not None and run_date is None:
        raise ConfigError("--run-id needs --run-date: a run id is looked up within its run date")
    dates = manifest_dates(spark, output)
    if not dates:
        raise InputError(f"{output} holds no run manifests ({output.rstrip('/')}/{MANIFEST_FOLDER} is "
                         "missing or empty); give the job's output.path")
    date = run_date or dates[0]
    if date not in dates:
        raise InputError(f"{output} has no run of run_date {date}; it has "
                         f"{', '.join(str(d) for d in dates[:10])}")
    if run_id is not None:
        path = manifest_path(output, date, run_id)
        if not path_exists(spark, path):
            raise InputError(f"{output} has no manifest of run {run_id!r} on run_date {date} ({path})")
        return read_manifest(spark, path)
    manifests = run_date_manifests(spark, output, date)
    if not manifests:
        raise InputError(f"{output} holds no manifest of run_date {date}")
    return manifests[0]


def _existing_report(spark: SparkSession, manifest: dict[str, Any], output: str) -> str | None:
    path = report_path(manifest_path(output, dt.date.fromisoformat(manifest["run_date"]), manifest["run_id"]))
    return path if path_exists(spark, path) else None


def remote_lines(remote: dict[str, Any] | None) -> list[str]:
    """The lines of a manifest's ``remote`` field (none without one): the job run and its
    state, its logs, the command that opens its Spark UI, and its cost."""
    if not remote:
        return []
    cost = remote.get("cost")
    return [
        f"remote: {remote.get('service')} application {remote.get('application_id')}, "
        f"job run {remote.get('job_run_id')}: {remote.get('state')}",
        f"logs: {remote.get('log_uri') or 'none recorded'}",
        f"Spark UI: a link valid for about an hour from: {remote.get('spark_ui_command')}",
        f"cost: {RunCost(**cost).describe() if cost else 'unknown (GetJobRun did not answer)'}",
    ]


def describe(manifest: dict[str, Any], report: str | None) -> str:
    """The text ``batch-score report`` prints for one manifest (see the module docstring)."""
    lines = [f"{manifest['job']} run_date={manifest['run_date']} run_id={manifest['run_id']}: "
             f"{manifest['status']} in {manifest.get('seconds', 0):,.1f} s"]
    rows = manifest.get("rows") or {}
    if rows:
        lines.append("rows: " + ", ".join(f"{rows[k]:,} {label}" for k, label in
                                          (("in", "in"), ("out", "out"), ("rejected", "rejected"), ("units", "units"))
                                          if rows.get(k) is not None))
        lines += [f"  rejected {reason}: {count:,}" for reason, count in (rows.get("rejected_by_reason") or {}).items()]
    error = manifest.get("error")
    if error:
        lines.append(f"error (exit {error.get('exit_code')}, phase {error.get('phase')}): {error.get('message')}")
    phases = manifest.get("phases") or {}
    if phases:
        lines.append("phases: " + ", ".join(f"{name} {seconds:,.1f} s" for name, seconds in phases.items()))
    if manifest.get("cost"):
        lines.append(f"cost: {RunCost(**manifest['cost']).describe()}")
    facts = manifest.get("report") or {}
    previous = facts.get("previous_run")
    if previous:
        lines.append(f"drift against run_date={previous['run_date']} (PSI; 0.1 moderate, 0.25 major):")
        lines += [f"  {column}: {d['psi']:.3f} {d['band']}" for column, d in facts.get("drift", {}).items()]
    elif facts:
        lines.append("drift: no earlier run date to compare with")
    lines += [f"note: {note}" for note in facts.get("notes", [])]
    lines += remote_lines(manifest.get("remote"))
    lines.append(f"report: {report}" if report else "report: none (the run failed, or report.enabled is false)")
    return "\n".join(lines)
