"""Read a job's source: format, projection, partition filter, with errors that name the cause.

Paths may be local or ``s3://`` / ``s3a://`` URIs. Off EMR, ``s3://`` is read through Hadoop's
s3a connector (the profile's ``s3_scheme``); on EMR, EMRFS serves ``s3://`` itself.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.errors import AnalysisException, ParseException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from batch_scoring.jobs.config import SourceConfig
from batch_scoring.jobs.errors import ConfigError, InputError

MEGABYTE = 1024 * 1024


def resolve_path(path: str, s3_scheme: str) -> str:
    """Return ``path`` with ``s3://`` rewritten to ``s3a://`` when ``s3_scheme`` is ``s3a``."""
    if s3_scheme == "s3a" and path.startswith("s3://"):
        return "s3a://" + path.removeprefix("s3://")
    return path


def hadoop_filesystem(spark: SparkSession, path: str):
    """``(FileSystem, Path)`` JVM objects of Hadoop for ``path`` (local, s3a, hdfs...)."""
    hadoop_path = spark.sparkContext._jvm.org.apache.hadoop.fs.Path(path)
    return hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), hadoop_path


def path_exists(spark: SparkSession, path: str) -> bool:
    """True when ``path`` exists, asked through Hadoop's FileSystem."""
    filesystem, hadoop_path = hadoop_filesystem(spark, path)
    return bool(filesystem.exists(hadoop_path))


def read_source(
    spark: SparkSession, source: SourceConfig, columns: Sequence[str] | None, s3_scheme: str = "s3a"
) -> DataFrame:
    """Read the source, keep only ``columns``, and apply ``source.filter``.

    Args:
        spark: the session.
        source: the ``source`` section of the job config.
        columns: columns the job needs (keys, order, function inputs), in order; None = all.
        s3_scheme: see :func:`resolve_path`.

    Returns:
        The source DataFrame with exactly ``columns`` (source types), filtered.

    Raises:
        ConfigError: when csv/json lacks ``source.schema``, or ``source.filter`` does not parse
            or names an unknown column.
        InputError: when ``source.path`` does not exist, holds no readable data, or lacks a
            needed column (the message lists the missing and the available columns).
    """
    path = resolve_path(source.path, s3_scheme)
    if source.format in ("csv", "json") and not source.ddl_schema:
        raise ConfigError(
            f"source.schema is required for format {source.format} (e.g. 'cell_id string, "
            "hour int, load double'): inferring a schema reads the data twice and guesses types"
        )
    if not path_exists(spark, path):
        raise InputError(f"source.path {source.path} does not exist; check the path or run date")
    df = _load(spark, source, path)
    columns = df.columns if columns is None else columns
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(
            f"source {source.path} lacks column(s) {missing} needed by the job (unit_of_work "
            f"keys/order_by or the function's inputs); it has {df.columns}"
        )
    return _apply_filter(df.select(*columns), source.filter)


def _load(spark: SparkSession, source: SourceConfig, path: str) -> DataFrame:
    try:
        return _reader(spark, source).load(path)
    except AnalysisException as error:
        first_line = str(error).strip().splitlines()[0]
        hint = NANOS_HINT if "TIMESTAMP(NANOS" in first_line else "check source.format and the files"
        raise InputError(
            f"source.path {source.path} cannot be read as {source.format}: {first_line}; {hint}"
        ) from None


NANOS_HINT = (
    "the files hold nanosecond timestamps (pandas' default), which Spark cannot read: rewrite "
    "them with pyarrow's coerce_timestamps='us' (df.to_parquet(path, coerce_timestamps='us'))"
)


def _reader(spark: SparkSession, source: SourceConfig):
    reader = spark.read.format(source.format).options(**source.options)
    if source.ddl_schema:
        reader = reader.schema(source.ddl_schema)
    if source.format == "csv" and "header" not in source.options:
        reader = reader.option("header", "true")
    return reader


def _apply_filter(df: DataFrame, predicate: str | None) -> DataFrame:
    if not predicate:
        return df
    try:
        return df.where(F.expr(predicate))
    except (ParseException, AnalysisException) as error:
        first_line = str(error).strip().splitlines()[0]
        raise ConfigError(f"source.filter {predicate!r} is not valid here: {first_line}") from None


def estimate_input_bytes(df: DataFrame) -> int:
    """Spark's optimizer estimate of the bytes ``df`` reads (after projection and filters)."""
    return int(str(df._jdf.queryExecution().optimizedPlan().stats().sizeInBytes()))


def choose_buckets(df: DataFrame, buckets: int | str, target_mb: int) -> int:
    """Number of unit-of-work buckets: the configured count, or one per ``target_mb``.

    With ``buckets="auto"`` the count is ``ceil(input bytes / target_mb)``, at least Spark's
    default parallelism so every core has work.
    """
    if buckets != "auto":
        return int(buckets)
    parallelism = df.sparkSession.sparkContext.defaultParallelism
    size = estimate_input_bytes(df)
    return max(parallelism, -(-size // (target_mb * MEGABYTE)))
