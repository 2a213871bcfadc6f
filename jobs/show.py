"""``batch-score show OUTPUT``: what an output holds, read as its readers must read it.

A Delta output keeps the files of replaced runs until ``VACUUM``, so reading its folder with
``pandas.read_parquet`` or ``pyarrow`` shows old and new rows together; ``show`` reads Delta
through its log (the table's current version) and Parquet by its ``run_date=`` partitions,
and prints the rows held per run date and run, then the rows of one run date::

    batch-score show output/data_pricing                      # run dates, latest one's rows
    batch-score show output/data_pricing --run-date 2026-11-22 --limit 5
    batch-score show output/data_pricing_rejects --profile conf/emr.yaml   # S3, the profile's settings

Exit codes: 0, 2 (bad flags or profile), 3 (no output at ``OUTPUT``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from batch_scoring.jobs.config import PlatformProfile, load_profile
from batch_scoring.jobs.errors import ConfigError, InputError, JobError
from batch_scoring.jobs.filesystem import path_exists
from batch_scoring.jobs.locations import resolve_path
from batch_scoring.jobs.redaction import redact_text
from batch_scoring.jobs.sinks import delta_table_exists

DEFAULT_LIMIT = 20
LISTED_RUNS = 30
LOCAL = PlatformProfile(name="local", master="local[2]", spark_conf={
    "spark.sql.session.timeZone": "UTC", "spark.ui.showConsoleProgress": False, "spark.log.level": "WARN",
})


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse ``batch-score show``'s flags (see ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="batch-score show",
        description="Print what an output (or rejects) table holds: rows per run date and run, "
                    "then one run date's rows. Delta is read through its log, never its raw files.",
        epilog="example: batch-score show output/data_pricing --run-date 2026-11-22 --limit 5",
    )
    parser.add_argument("output", help="the output or rejects path (local, s3://...)")
    parser.add_argument("--run-date", type=dt.date.fromisoformat,
                        help="the run date whose rows to print (default: the latest)")
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT,
                        help="rows to print (default %(default)s)")
    parser.add_argument("--profile", help="platform profile YAML for S3 and Spark settings "
                        "(default: local[2], UTC)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``batch-score show``; return the exit code."""
    args = parse_args(argv)
    try:
        profile = load_profile(args.profile) if args.profile else LOCAL
        if args.limit < 0:
            raise ConfigError(f"--limit {args.limit} is negative; give the number of rows to print")
        from batch_scoring.jobs.session import build_reader_session

        path = resolve_path(args.output, profile.s3_scheme)
        spark = build_reader_session(profile, path)
        print(show(spark, path, args.run_date, args.limit))
    except JobError as error:
        print(f"error: {redact_text(str(error))}", file=sys.stderr)
        return error.exit_code
    return 0


def show(spark: SparkSession, path: str, run_date: dt.date | None, limit: int) -> str:
    """The text ``batch-score show`` prints for the table at ``path``.

    Returns:
        A header line (path, format, rows held), up to :data:`LISTED_RUNS` lines ``run_date
        run_id rows`` (latest first), then ``limit`` rows of ``run_date`` (default: the latest
        run date) as a table, with the count of that run date's rows.

    Raises:
        InputError: nothing at ``path``, or it holds no ``run_date`` column (not an output of
            this package), or ``run_date`` has no rows (naming the dates it has).
    """
    table, fmt = read_table(spark, path)
    runs = (table.groupBy("run_date", "run_id").count()
            .orderBy(F.col("run_date").desc(), "run_id").limit(LISTED_RUNS).collect())
    total = sum(r["count"] for r in runs)
    lines = [f"{path} ({fmt}): {table.count():,} rows" if len(runs) == LISTED_RUNS
             else f"{path} ({fmt}): {total:,} rows"]
    lines += [f"  run_date={r['run_date']}  run_id={r['run_id']}  {r['count']:,} rows" for r in runs]
    if not runs:
        return "\n".join(lines)
    chosen = run_date or runs[0]["run_date"]
    rows = table.where(F.col("run_date") == F.lit(chosen))
    count = rows.count()
    if count == 0:
        dates = sorted({str(r["run_date"]) for r in runs}, reverse=True)
        raise InputError(f"{path} holds no rows of run_date {chosen}; it holds {', '.join(dates)}")
    shown = rows.limit(limit).toPandas()
    lines += ["", f"run_date={chosen}: {count:,} rows" + (f", first {len(shown):,}" if count > len(shown) else ""),
              shown.to_string(index=False)]
    return "\n".join(lines)


def read_table(spark: SparkSession, path: str) -> tuple[DataFrame, str]:
    """The table at ``path`` and its format: Delta through its log, else Parquet by partitions.

    Raises:
        InputError: nothing at ``path``, or a table without a ``run_date`` column.
    """
    if delta_table_exists(spark, path):
        table, fmt = spark.read.format("delta").load(path), "delta"
    elif path_exists(spark, path):
        try:
            table, fmt = spark.read.option("mergeSchema", "true").parquet(path), "parquet"
        except AnalysisException as error:
            raise InputError(f"{path} holds no Parquet table ({str(error).splitlines()[0]})") from None
    else:
        raise InputError(f"{path} does not exist; give an output.path or rejects path of a job")
    if "run_date" not in table.columns:
        raise InputError(f"{path} has no run_date column: it is not an output of a batch-scoring job")
    return table, fmt


if __name__ == "__main__":
    sys.exit(main())
