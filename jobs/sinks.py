"""Write a run's rows idempotently: a run owns its ``run_date`` partition.

Every row gets ``run_date`` (date) and ``run_id`` (string); ``run_date`` is always the first
partition column. Rerunning a run date replaces that run's rows and nothing else:

* Delta: ``mode("overwrite")`` with ``replaceWhere "run_date = DATE'...'"``: one atomic commit
  that swaps the run's rows, other run dates untouched (Delta docs, "Selectively overwrite data
  with replaceWhere").
* Parquet: ``mode("overwrite")`` with ``partitionOverwriteMode=dynamic``: only the partitions
  the run writes are replaced (Spark SQL docs, "partitionOverwriteMode"). Partitions of the same
  run date that an earlier attempt wrote and this one did not (for example a segment that has
  left the source, or rejects that are now gone) are deleted after the write: files are listed
  before and after, and a leaf partition folder holding no new file is stale.

Append is never used, so a retried write cannot duplicate rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from batch_scoring.jobs.errors import ConfigError
from batch_scoring.jobs.sources import hadoop_filesystem, path_exists

RUN_COLUMNS = ["run_date", "run_id"]


def with_run_columns(df: DataFrame, run_date: dt.date, run_id: str) -> DataFrame:
    """Add ``run_date`` (date) and ``run_id`` (string) to every row."""
    return df.withColumn("run_date", F.lit(run_date)).withColumn("run_id", F.lit(run_id))


def write_run(
    df: DataFrame,
    path: str,
    output_format: str,
    partition_by: Sequence[str],
    run_date: dt.date,
    run_id: str,
) -> None:
    """Write ``df`` as run ``run_date`` under ``path``, replacing that run's previous rows.

    Args:
        df: rows to write (any schema without ``run_date``/``run_id`` columns).
        path: table folder or URI.
        output_format: ``delta`` or ``parquet`` (zstd-compressed).
        partition_by: partition columns after ``run_date``.

    Raises:
        ConfigError: when a ``partition_by`` column is not in the output.
    """
    missing = [c for c in partition_by if c not in df.columns]
    if missing:
        raise ConfigError(
            f"output.partition_by names {missing}, which the function does not output; "
            f"choose from {df.columns}"
        )
    writer = (
        with_run_columns(df, run_date, run_id)
        .write.mode("overwrite")
        .partitionBy("run_date", *partition_by)
    )
    if output_format == "delta":
        writer.format("delta").option("replaceWhere", f"run_date = DATE'{run_date}'").save(path)
        return
    run_folder = f"{path.rstrip('/')}/run_date={run_date}"
    before = set(list_files(df.sparkSession, run_folder))
    writer.option("partitionOverwriteMode", "dynamic").option("compression", "zstd").parquet(path)
    _delete_stale_partitions(df.sparkSession, run_folder, before)


def _delete_stale_partitions(spark: SparkSession, run_folder: str, before: set[str]) -> None:
    after = list_files(spark, run_folder)
    fresh = {_parent(f) for f in after if f not in before}
    stale = {_parent(f) for f in after} - fresh
    for folder in sorted(stale if fresh else {run_folder}):
        if path_exists(spark, folder):
            filesystem, hadoop_path = hadoop_filesystem(spark, folder)
            filesystem.delete(hadoop_path, True)


def list_files(spark: SparkSession, folder: str) -> list[str]:
    """All data files below ``folder`` (recursive; names starting with _ or . skipped)."""
    if not path_exists(spark, folder):
        return []
    fs, root = hadoop_filesystem(spark, folder)
    files, iterator = [], fs.listFiles(root, True)
    while iterator.hasNext():
        status_path = iterator.next().getPath()
        if not status_path.getName().startswith(("_", ".")):
            files.append(status_path.toString())
    return files


def _parent(file: str) -> str:
    return file.rsplit("/", 1)[0]


def read_run(spark: SparkSession, path: str, output_format: str, run_date: dt.date) -> DataFrame | None:
    """Read back one run's rows (all columns, including ``run_date`` and ``run_id``).

    Returns None when the output holds no rows of that run (never written, or empty).
    """
    if not run_exists(spark, path, output_format, run_date, check_rows=False):
        return None
    table = spark.read.format(output_format).load(path)
    return table.where(F.col("run_date") == F.lit(run_date))


def run_exists(
    spark: SparkSession, path: str, output_format: str, run_date: dt.date, check_rows: bool = True
) -> bool:
    """True when the output at ``path`` already holds rows of ``run_date``.

    With ``check_rows=False`` a Delta table only has to exist (cheaper, for reading back).
    """
    if output_format == "parquet":
        return bool(list_files(spark, f"{path.rstrip('/')}/run_date={run_date}"))
    if not path_exists(spark, f"{path.rstrip('/')}/_delta_log"):
        return False
    if not check_rows:
        return True
    rows = spark.read.format("delta").load(path).where(F.col("run_date") == F.lit(run_date))
    return not rows.limit(1).isEmpty()
