"""spark-submit entry point of every job: parse, load config, build the session, run.

Usually started by ``spark-submit.sh``, which renders the Spark flags from the profile::

    ./spark-submit.sh local conf/jobs/data_pricing.yaml --run-date 2026-11-22

which amounts to (the Spark settings, ``--packages`` and ``--jars`` included, are in a
properties file of mode 0600 that the script removes after the run, never in the arguments)::

    spark-submit --master 'local[2]' --deploy-mode client --name data_pricing \\
        --properties-file /tmp/batch-score-spark-XXXXXXXX.properties --load-spark-defaults \\
        jobs/run_job.py --job conf/jobs/data_pricing.yaml --profile conf/local.yaml \\
        --run-date 2026-11-22 [--set output.format=parquet ...]

It also runs without spark-submit (``python -m batch_scoring.jobs.run_job ...``), starting
Spark from the profile. Exit codes: see :mod:`batch_scoring.jobs.errors`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
from collections.abc import Sequence

from pyspark.sql import functions as F

from batch_scoring.jobs.commit import RunSummary, new_run_id
from batch_scoring.jobs.config import JobConfig, PlatformProfile, load_job, load_profile, parse_run_date
from batch_scoring.jobs.cost import RunCost
from batch_scoring.jobs.cost_estimate import check_cost_limit
from batch_scoring.jobs.dry_run import plan_run
from batch_scoring.jobs.errors import JobError
from batch_scoring.jobs.manifest import ManifestRecorder, package_version
from batch_scoring.jobs.ownership import OwnershipError
from batch_scoring.jobs.pipeline import preflight_job, run
from batch_scoring.jobs.preflight import preflight_sources
from batch_scoring.jobs.progress import CONSOLE, DEFAULT_INTERVAL_SECONDS, stage_progress
from batch_scoring.jobs.quarantine import FUNCTION_RAISED
from batch_scoring.jobs.redaction import install_log_redaction, redact, redact_text
from batch_scoring.jobs.run_ids import check_run_id
from batch_scoring.jobs.run_report import write_run_report
from batch_scoring.jobs.session import build_session, set_worker_python, spark_settings
from batch_scoring.jobs.sinks import Sink
from batch_scoring.jobs.stop_signals import (
    DEFAULT_STOP_TIMEOUT_SECONDS,
    RunStopped,
    answered_signals,
    start_watchdog,
)
from batch_scoring.jobs.tracking import record_run

log = logging.getLogger("batch_scoring")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the job's command line (see ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="batch-score run", description="Run one batch-scoring job on Spark.",
        epilog="example: batch-score run --job conf/jobs/data_pricing.yaml --profile conf/local.yaml "
               "--run-date 2026-11-22 --set output.format=parquet",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    parser.add_argument("--job", required=True, help="job YAML file, e.g. conf/jobs/data_pricing.yaml")
    parser.add_argument("--profile", help="platform profile YAML, e.g. conf/local.yaml")
    parser.add_argument(
        "--run-date",
        help="the run's date, YYYY-MM-DD, or an ISO timestamp in UTC (a scheduled run's time), "
        "dated in the job's schedule.timezone (default: today, UTC)",
    )
    parser.add_argument(
        "--run-id",
        help="the attempt's id, any printable text up to 512 characters, stored verbatim "
        "(e.g. Airflow's scheduled__2026-11-22T02:00:00+00:00; default: generated)",
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="FIELD=VALUE",
        help="override a job field, e.g. --set output.format=parquet (repeatable)",
    )
    parser.add_argument("--summary-json", help="also write the run summary to this JSON file")
    parser.add_argument("--json", action="store_true",
                        help="print the run summary as JSON on standard output instead of a table")
    parser.add_argument("--dry-run", action="store_true",
                        help="check everything and print the plan (input files and bytes, units, "
                        "buckets, model); write nothing")
    noise = parser.add_mutually_exclusive_group()
    noise.add_argument("--quiet", action="store_true",
                       help="only warnings, errors and the summary; no phase or progress lines")
    noise.add_argument("--verbose", action="store_true",
                       help="debug lines of this package and Spark's own INFO lines")
    parser.add_argument(
        "--progress-interval", type=float, default=DEFAULT_INTERVAL_SECONDS, metavar="SECONDS",
        help="seconds between progress polls of the running Spark stages (default %(default)s)",
    )
    parser.add_argument(
        "--stop-timeout", type=float, default=DEFAULT_STOP_TIMEOUT_SECONDS, metavar="SECONDS",
        help="on SIGTERM or SIGINT, seconds to cancel Spark's jobs and write the manifest before "
        "the process exits anyway (default %(default)s)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the job described by ``argv``; return the process exit code.

    Config, function and parameter errors, an unusable ``--run-id``
    (:func:`~batch_scoring.jobs.run_ids.check_run_id`), and what the file system can tell (a
    missing local source or model folder, Parquet footers against the job's columns and the
    model's signature: :mod:`~batch_scoring.jobs.preflight`) are reported before Spark starts,
    and such a refused run writes nothing, not even a manifest. Once Spark has started, every
    run ends with a manifest (:mod:`~batch_scoring.jobs.manifest`): written as ``committing``
    before the first write (an unwritable manifest folder stops the run there, exit 2, so a
    non-zero exit never follows a commit), after the outputs committed, or, for a failed run,
    with the error; SIGTERM and SIGINT are answered with one too
    (:mod:`~batch_scoring.jobs.stop_signals`) and exit 143 / 130. After the commit the run
    report is written beside the manifest (:mod:`~batch_scoring.jobs.run_report`); a report
    that fails is a warning, and a signal then stops the process with the run succeeded.
    Then, with ``tracking.uri`` or ``$MLFLOW_TRACKING_URI`` set, the run is recorded in MLflow
    (:mod:`~batch_scoring.jobs.tracking`); a tracking failure is a warning too.
    Log lines, printed errors and the manifest go through :mod:`~batch_scoring.jobs.redaction`.
    """
    args = parse_args(argv)
    configure_logging(logging.WARNING if args.quiet else logging.DEBUG if args.verbose else logging.INFO)
    install_log_redaction()
    try:
        run_id = check_run_id(args.run_id) if args.run_id is not None else None
        job = load_job(args.job, args.set)
        profile = load_profile(args.profile) if args.profile else PlatformProfile(name="submitted")
        run_date = parse_run_date(args.run_date, job.schedule.timezone if job.schedule else "UTC")
        prepared = preflight_job(job)
        preflight_sources(job)
    except JobError as error:
        print(f"error: {redact_text(str(error))}", file=sys.stderr)
        return error.exit_code
    worker_python = set_worker_python(profile.master)
    if worker_python:
        log.info("Python workers run %s (PYSPARK_PYTHON was not set)", worker_python)
    spark = build_session(profile, job)
    if args.quiet or args.verbose:
        spark.sparkContext.setLogLevel("ERROR" if args.quiet else "INFO")
    log.info("Spark settings: %s", redact(spark_settings(profile, job)))
    if args.dry_run:
        return dry_run(spark, job, run_date, profile, prepared.rules if prepared is not None else None)
    recorder = ManifestRecorder(spark, job, run_date, run_id or new_run_id(run_date), profile.s3_scheme,
                                profile.prices)
    signals = answered_signals()
    try:
        with signals, stage_progress(spark, lambda: recorder.phases.current,
                                     args.progress_interval, quiet=args.quiet):
            try:
                summary = run(spark, job, run_date, recorder.run_id, profile.s3_scheme, journal=recorder,
                              prepared=prepared)
                manifest = recorder.succeeded(summary)
            except BaseException as error:
                if signals.stop_behind(error) is None:
                    return failed_run(error, recorder)  # a signal meanwhile still raises
                raise
    except BaseException as error:
        stop = signals.stop_behind(error)
        if stop is None:
            raise
        return stopped_run(stop, spark, recorder, args.stop_timeout)
    with stage_progress(spark, lambda: recorder.phases.current, args.progress_interval, quiet=args.quiet):
        report = write_run_report(spark, job, summary, recorder)
    tracked = record_run(spark, job, recorder.last_document, manifest, report)
    details = run_details(job, summary, recorder.targets.rejects_sink if recorder.targets else None,
                          recorder.last_document["rows"]["rejected_by_reason"])
    cost = recorder.last_document.get("cost")
    if args.json:
        print(json.dumps({**summary.as_dict(), **details, "manifest": manifest, "report": report,
                          "cost": cost, "mlflow": tracked.as_dict() if tracked else None}, indent=2))
    else:
        print_summary(summary, job, details)
        print(f"manifest: {manifest}")
        if report:
            print(f"report: {report}")
        if cost:
            print(f"cost: {RunCost(**cost).describe()}")
        if tracked:
            print(f"mlflow run: {tracked.describe()}")
    if args.summary_json:
        with open(args.summary_json, "w") as file:
            json.dump({**summary.as_dict(), **details}, file, indent=2)
    return 0


def configure_logging(level: int) -> None:
    """Log lines of this package at ``level`` on standard error: through ``rich`` on a terminal
    (so they print above the progress bar), plain timestamped lines elsewhere. Like
    ``logging.basicConfig``, a root logger that already has handlers (an application's, a test
    runner's) keeps them."""
    if sys.stderr.isatty():
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(console=CONSOLE, show_path=False)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(handler)
        root.setLevel(logging.WARNING)
    log.setLevel(level)


def dry_run(spark, job: JobConfig, run_date: dt.date, profile: PlatformProfile, rules=None) -> int:
    """Print the run's plan (:mod:`~batch_scoring.jobs.dry_run`) and check its estimated cost
    against ``output.max_cost`` (exit 4 above it); return the exit code. Writes nothing: no
    manifest, no output, no rejects. ``rules``: the function's input rules from the preflight
    already run (None: checked again)."""
    try:
        plan = plan_run(spark, job, run_date, profile.s3_scheme, rules)
        print(plan.describe())
        check_cost_limit(plan.cost, job.output.max_cost, profile.prices.currency)
    except JobError as error:
        print(f"error: {redact_text(str(error))}", file=sys.stderr)
        return error.exit_code
    return 0


def failed_run(error: BaseException, recorder: ManifestRecorder) -> int:
    """Record a run that failed and return its exit code.

    Raises:
        ``error`` itself, after its manifest, when it is not a :class:`JobError`.
    """
    if isinstance(error, OwnershipError):
        print(f"error: {redact_text(str(error))}", file=sys.stderr)
        print("no manifest was written: the output folder is not this job's", file=sys.stderr)
        return error.exit_code
    if isinstance(error, JobError):
        recorder.failed(error, error.exit_code)
        print(f"error: {redact_text(str(error))}", file=sys.stderr)
        return error.exit_code
    recorder.failed(error, 1)
    raise error


def stopped_run(stop: RunStopped, spark, recorder: ManifestRecorder, timeout: float) -> int:
    """Answer a stop signal: cancel Spark's jobs, write the manifest, return 128 + signal.

    Bounded by ``timeout`` seconds (:func:`~batch_scoring.jobs.stop_signals.start_watchdog`).
    """
    start_watchdog(timeout, stop.exit_code)
    try:
        spark.sparkContext.cancelAllJobs()
    except Exception:  # noqa: BLE001 - the JVM may be stopping on the same signal
        log.debug("could not cancel the Spark jobs", exc_info=True)
    path = recorder.failed(stop, stop.exit_code, signal=stop.name)
    print(f"error: the run was stopped by {stop.name}; manifest: {path}", file=sys.stderr)
    return stop.exit_code


def run_details(job: JobConfig, summary: RunSummary, rejects_sink: Sink | None,
                by_reason: dict[str, int]) -> dict:
    """What the summary's counts do not say: rejects per reason and units that failed.

    Args:
        rejects_sink: the run's rejects table (None when the run never reached its commit).
        by_reason: rejected rows per ``reject_reason``, as the manifest recorded them (one
            grouped count over the committed rejects, made once per run for both).

    Returns:
        ``{"rejected_by_reason": {reason: rows}, "units_failed": n}``; ``units_failed`` (units
        whose function raised, within ``function.max_failed_units``) only for function jobs.

    Cost: nothing unless some unit raised; then one distinct count of the failed units' keys
    over the run's rejects.
    """
    details: dict = {"rejected_by_reason": dict(sorted(by_reason.items()))}
    if job.function is None:
        return details
    details["units_failed"] = 0
    rejects = rejects_sink.read_run(dt.date.fromisoformat(summary.run_date)) if (
        by_reason.get(FUNCTION_RAISED) and rejects_sink is not None) else None
    if rejects is not None:
        failed = rejects.where(F.col("reject_reason") == FUNCTION_RAISED)
        details["units_failed"] = failed.select(*job.unit_of_work.keys).distinct().count()
    return details


def summary_rows(summary: RunSummary, job: JobConfig | None = None,
                 details: dict | None = None) -> list[tuple[str, str, bool]]:
    """The printed summary's rows: ``(measure, value, is_a_failure)``.

    A function job shows units priced and units failed; a model job (no ``function``) shows
    rows scored and the Arrow batches scored instead of units and buckets (each row is scored
    alone). Rejected rows are
    shown per reason; rows per second is rows read over the run's wall-clock seconds.
    """
    details = details or {}
    model_only = job is not None and job.function is None
    values = summary.as_dict()
    rows: list[tuple[str, str, bool]] = []

    def add(name: str, value, failure: bool = False) -> None:
        rows.append((name, f"{value:,}" if isinstance(value, int) else str(value), failure))

    add("rows in", summary.rows_in)
    add("rows scored" if model_only else "rows out", summary.rows_out)
    add("rows rejected", summary.rows_rejected, summary.rows_rejected > 0)
    for reason, count in details.get("rejected_by_reason", {}).items():
        add(f"  rejected {reason}", count, True)
    if model_only and summary.arrow_batches is not None:
        add("Arrow batches", summary.arrow_batches)
    if not model_only:
        add("units priced", summary.units)
        if "units_failed" in details:
            add("units failed", details["units_failed"], details["units_failed"] > 0)
        add("buckets", summary.buckets)
    add("seconds", summary.seconds)
    if summary.seconds:
        add("rows per second", int(round(summary.rows_in / summary.seconds)))
    for name in ("output_path", "rejects_path", "model_uri", "model_version", "model_sha256"):
        if name in values:
            add(name.replace("_", " "), values[name])
    return rows


def print_summary(summary: RunSummary, job: JobConfig | None = None, details: dict | None = None) -> None:
    """Print the run summary as a table on standard output (failures in red on a terminal)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{summary.job} run {summary.run_date} ({summary.run_id})")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for name, value, failure in summary_rows(summary, job, details):
        table.add_row(name, value, style="red" if failure else None)
    Console(width=110).print(table)


if __name__ == "__main__":
    sys.exit(main())
