"""Write a run's rows idempotently: a run owns its ``run_date`` partition.

Every row gets ``run_date`` (date) and ``run_id`` (string); ``run_date`` is always the first
partition column. Rerunning a run date replaces that run's rows and nothing else:

* Delta: ``mode("overwrite")`` with ``replaceWhere "run_date = DATE'...'"``: one atomic commit
  that swaps the run's rows, other run dates untouched (Delta docs, "Selectively overwrite data
  with replaceWhere").
* Parquet: ``mode("overwrite")`` with ``partitionOverwriteMode=dynamic``: only the partitions
  the run writes are replaced (Spark SQL docs, "partitionOverwriteMode").

Append is never used, so a retried write cannot duplicate rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from batch_scoring.jobs.errors import ConfigError
from batch_scoring.jobs.sources import path_exists

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
    else:
        (
            writer.option("partitionOverwriteMode", "dynamic")
            .option("compression", "zstd")
            .parquet(path)
        )


def read_run(spark: SparkSession, path: str, output_format: str, run_date: dt.date) -> DataFrame:
    """Read back one run's rows (all columns, including ``run_date`` and ``run_id``)."""
    table = spark.read.format(output_format).load(path)
    return table.where(F.col("run_date") == F.lit(run_date))


def run_exists(spark: SparkSession, path: str, output_format: str, run_date: dt.date) -> bool:
    """True when the output at ``path`` already holds rows of ``run_date``."""
    if not path_exists(spark, path):
        return False
    if output_format == "parquet":
        return path_exists(spark, f"{path.rstrip('/')}/run_date={run_date}")
    return not read_run(spark, path, output_format, run_date).limit(1).isEmpty()
