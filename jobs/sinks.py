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
import re
from collections.abc import Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from batch_scoring.jobs.errors import ConfigError, InputError
from batch_scoring.jobs.filesystem import delete, list_children, list_files, qualified

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
    add_columns: bool = False,
) -> None:
    """Write ``df`` as run ``run_date`` under ``path``, replacing that run's previous rows.

    Args:
        df: rows to write (any schema without ``run_date``/``run_id`` columns).
        path: table folder or URI.
        output_format: ``delta`` or ``parquet`` (zstd-compressed).
        partition_by: partition columns after ``run_date``.
        add_columns: the rows may add columns to the table (Delta ``mergeSchema``; Parquet
            files of different schemas are read with ``mergeSchema``); checked beforehand by
            :mod:`~batch_scoring.jobs.schema_change`.

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
        (writer.format("delta").option("replaceWhere", f"run_date = DATE'{run_date}'")
         .option("mergeSchema", str(add_columns).lower()).save(path))
        return
    run_folder = qualified(df.sparkSession, f"{path.rstrip('/')}/run_date={run_date}")
    before = set(list_files(df.sparkSession, run_folder))
    writer.option("partitionOverwriteMode", "dynamic").option("compression", "zstd").parquet(path)
    _delete_stale_partitions(df.sparkSession, run_folder, before)


def _delete_stale_partitions(spark: SparkSession, run_folder: str, before: set[str]) -> None:
    """Delete this package's files in partition folders of the run date that this attempt
    did not write, then the folders left empty; any other file stays where it is."""
    after = list_files(spark, run_folder)
    fresh = {_parent(f) for f in after if f not in before}
    stale = {_parent(f) for f in after} - fresh
    for folder in sorted(stale if fresh else {_parent(f) for f in after}):
        for file in list_files(spark, folder):
            if _parent(file) == folder and is_own_data_file(file):
                delete(spark, file)
        _delete_if_empty(spark, folder, run_folder)


def _delete_if_empty(spark: SparkSession, folder: str, stop_at: str) -> None:
    """Delete ``folder``, then its parents up to and including ``stop_at``, while each is empty."""
    while folder == stop_at or folder.startswith(stop_at + "/"):
        if list_children(spark, folder) or not delete(spark, folder):
            return
        folder = _parent(folder)


_OWN_DATA_FILE = re.compile(
    r"^part-\d{5}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"(?:[.-]c\d{3})?(?:\.\w+)?\.parquet$"
)


def is_own_data_file(file: str) -> bool:
    """True when ``file``'s name is one Spark's writers give (``part-00000-<uuid>.c000.zstd.parquet``),
    i.e. a file this package's writes create; anything else is someone else's."""
    return bool(_OWN_DATA_FILE.match(_name(file)))


def foreign_files(spark: SparkSession, path: str, run_date: dt.date) -> list[str]:
    """Files under the run date's partition folder of a Parquet table that Spark did not write.

    A dynamic partition overwrite deletes whole partition folders, so a run refuses to commit
    while such files are there (:func:`check_no_foreign_files`).
    """
    run_folder = f"{path.rstrip('/')}/run_date={run_date}"
    return [f for f in list_files(spark, run_folder) if not is_own_data_file(f)]


def check_no_foreign_files(spark: SparkSession, path: str, output_format: str, run_date: dt.date, field: str) -> None:
    """Refuse to replace a Parquet run date whose folders hold files this package did not write.

    Raises:
        InputError: naming up to five such files and the field of the table.
    """
    if output_format != "parquet":
        return
    foreign = foreign_files(spark, path, run_date)
    if foreign:
        raise InputError(
            f"{field} {path} holds {len(foreign)} file(s) under run_date={run_date} that this "
            f"package did not write ({', '.join(foreign[:5])}): replacing the run date would "
            "delete them. Move them out of the table folder and rerun; nothing was committed"
        )


def _name(file: str) -> str:
    return file.rsplit("/", 1)[-1]


def _parent(file: str) -> str:
    return file.rsplit("/", 1)[0]


def read_run(spark: SparkSession, path: str, output_format: str, run_date: dt.date) -> DataFrame | None:
    """Read back one run's rows (all columns, including ``run_date`` and ``run_id``).

    Returns None when the output holds no rows of that run (never written, or empty).
    """
    if not run_exists(spark, path, output_format, run_date, check_rows=False):
        return None
    if output_format == "parquet":
        return (spark.read.option("mergeSchema", "true").option("basePath", path)
                .parquet(f"{path.rstrip('/')}/run_date={run_date}"))
    table = spark.read.format("delta").load(path)
    return table.where(F.col("run_date") == F.lit(run_date))


def delta_table_exists(spark: SparkSession, path: str) -> bool:
    """True when ``path`` holds a Delta table with at least one commit.

    A ``_delta_log`` folder alone is not enough: a concurrent run's first write creates it a
    moment before its first commit, and reading the table then fails with
    ``DELTA_TABLE_NOT_FOUND``. ``DeltaTable.isDeltaTable`` asks the log for a version.
    """
    from delta.tables import DeltaTable

    return bool(DeltaTable.isDeltaTable(spark, path))


def run_exists(
    spark: SparkSession, path: str, output_format: str, run_date: dt.date, check_rows: bool = True
) -> bool:
    """True when the output at ``path`` already holds rows of ``run_date``.

    With ``check_rows=False`` a Delta table only has to exist (cheaper, for reading back).
    """
    if output_format == "parquet":
        return bool(list_files(spark, f"{path.rstrip('/')}/run_date={run_date}"))
    if not delta_table_exists(spark, path):
        return False
    if not check_rows:
        return True
    rows = spark.read.format("delta").load(path).where(F.col("run_date") == F.lit(run_date))
    return not rows.limit(1).isEmpty()
