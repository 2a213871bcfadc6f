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
import json
import logging
import sys
from collections.abc import Sequence

from batch_scoring.jobs.config import PlatformProfile, load_job, load_profile, parse_run_date
from batch_scoring.jobs.errors import JobError
from batch_scoring.jobs.commit import RunSummary, new_run_id
from batch_scoring.jobs.manifest import ManifestRecorder
from batch_scoring.jobs.pipeline import preflight_job, run
from batch_scoring.jobs.redaction import install_log_redaction, redact, redact_text
from batch_scoring.jobs.run_ids import check_run_id
from batch_scoring.jobs.session import build_session, spark_settings

log = logging.getLogger("batch_scoring")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the job's command line (see ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="batch-score run", description="Run one batch-scoring job on Spark."
    )
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
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the job described by ``argv``; return the process exit code.

    Config, function and parameter errors, and an unusable ``--run-id``
    (:func:`~batch_scoring.jobs.run_ids.check_run_id`), are reported before Spark starts (exit
    2). Once Spark has started, the manifest's folder is probed for writing before anything
    commits, so a non-zero exit never follows a commit; every run then ends with a manifest
    (:mod:`~batch_scoring.jobs.manifest`), written after the outputs committed or, for a
    failed run, with the error. Log lines, printed errors and the manifest go through
    :mod:`~batch_scoring.jobs.redaction`.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_log_redaction()
    args = parse_args(argv)
    try:
        run_id = check_run_id(args.run_id) if args.run_id is not None else None
        job = load_job(args.job, args.set)
        profile = load_profile(args.profile) if args.profile else PlatformProfile(name="submitted")
        run_date = parse_run_date(args.run_date, job.schedule.timezone if job.schedule else "UTC")
        preflight_job(job)
    except JobError as error:
        print(f"error: {redact_text(str(error))}", file=sys.stderr)
        return error.exit_code
    spark = build_session(profile, job)
    log.info("Spark settings: %s", redact(spark_settings(profile, job)))
    recorder = ManifestRecorder(spark, job, run_date, run_id or new_run_id(run_date), profile.s3_scheme)
    try:
        recorder.check_writable()
    except JobError as error:
        print(f"error: {redact_text(str(error))}", file=sys.stderr)
        return error.exit_code
    try:
        summary = run(spark, job, run_date, recorder.run_id, profile.s3_scheme)
    except JobError as error:
        recorder.failed(error, error.exit_code)
        print(f"error: {redact_text(str(error))}", file=sys.stderr)
        return error.exit_code
    except Exception as error:
        recorder.failed(error, 1)
        raise
    print_summary(summary)
    print(f"manifest: {recorder.succeeded(summary)}")
    if args.summary_json:
        with open(args.summary_json, "w") as file:
            json.dump(summary.as_dict(), file, indent=2)
    return 0


def print_summary(summary: RunSummary) -> None:
    """Print the run summary as a table on standard output."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{summary.job} run {summary.run_date} ({summary.run_id})")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for name, value in summary.as_dict().items():
        if name not in ("job", "run_date", "run_id"):
            table.add_row(name.replace("_", " "), f"{value:,}" if isinstance(value, int) else str(value))
    Console(width=110).print(table)


if __name__ == "__main__":
    sys.exit(main())
