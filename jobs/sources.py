"""Read a job's source: format, projection, partition filter, with errors that name the cause.

Paths may be local or ``s3://`` / ``s3a://`` URIs. Off EMR, ``s3://`` is read through Hadoop's
s3a connector (the profile's ``s3_scheme``); on EMR, EMRFS serves ``s3://`` itself.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pyspark.errors import AnalysisException, ParseException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from batch_scoring.jobs.config import SourceConfig
from batch_scoring.jobs.errors import ConfigError, InputError
from batch_scoring.jobs.filesystem import path_exists
from batch_scoring.jobs.locations import is_inside
from batch_scoring.jobs.read_failures import find_read_failure
from batch_scoring.jobs.text_records import TEXT_FORMATS, corrupt_column, header_error, load_text_records
from batch_scoring.udfs.contract import did_you_mean

MEGABYTE = 1024 * 1024


def resolve_path(path: str, s3_scheme: str) -> str:
    """Return ``path`` with ``s3://`` rewritten to ``s3a://`` when ``s3_scheme`` is ``s3a``."""
    if s3_scheme == "s3a" and path.startswith("s3://"):
        return "s3a://" + path.removeprefix("s3://")
    return path


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
        The source DataFrame with exactly ``columns`` (source types), filtered; for CSV and
        JSON also the corrupt-record column (split off with
        :func:`~batch_scoring.jobs.text_records.split_malformed`).

    Raises:
        ConfigError: when csv/json lacks ``source.schema``, or ``source.filter`` does not parse
            or names an unknown column.
        InputError: when ``source.path`` does not exist, holds no readable data, or lacks a
            needed column (the message lists the missing and the available columns).
        ConfigError: when ``spark.sql.files.ignoreCorruptFiles`` (session or
            ``source.options``) is on: unreadable files would be skipped and their rows lost
            without a reject.

    A file that is corrupt or whose column types differ from the others' fails when the data
    is read (at the job's first action, or here when it is the file Spark takes the schema
    from): :func:`unreadable_file_error` turns that Spark error into an ``InputError``.
    """
    check_corrupt_files_not_ignored(spark, source)
    path = resolve_path(source.path, s3_scheme)
    if source.format in ("csv", "json") and not source.ddl_schema:
        raise ConfigError(
            f"source.schema is required for format {source.format} (e.g. 'cell_id string, "
            "hour int, load double'): inferring a schema reads the data twice and guesses types"
        )
    if not path_exists(spark, path):
        raise InputError(f"source.path {source.path} does not exist; check the path or run date")
    df = _load(spark, source, path)
    corrupt = corrupt_column(source) if source.format in TEXT_FORMATS else None
    available = [c for c in df.columns if c != corrupt]
    columns = available if columns is None else columns
    missing = [c for c in columns if c not in available]
    if missing:
        raise missing_columns(source.path, missing, available)
    kept = [*columns, corrupt] if corrupt else list(columns)
    return _apply_filter(df.select(*kept), source.filter)


def missing_columns(source_path: str, missing: Sequence[str], available: Sequence[str]) -> InputError:
    """The error for columns the job needs that the source lacks: each missing one with the
    nearest column the source has, then all of them."""
    named = ", ".join(f"{c!r}{did_you_mean(c, available)}" for c in missing)
    return InputError(
        f"source {source_path} lacks column(s) {named} needed by the job (unit_of_work "
        f"keys/order_by or the function's inputs); it has {list(available)}"
    )


IGNORE_CORRUPT = "spark.sql.files.ignoreCorruptFiles"


def check_corrupt_files_not_ignored(spark: SparkSession, source: SourceConfig) -> None:
    """Refuse to read with Spark's ``ignoreCorruptFiles`` on (a silent partial read).

    Raises:
        ConfigError: naming the setting, when the session conf or ``source.options`` turns
            it on.
    """
    option = {k.lower(): v for k, v in source.options.items()}.get("ignorecorruptfiles", "")
    session = str(spark.conf.get(IGNORE_CORRUPT, "false"))
    if "true" in (session.lower(), str(option).lower()):
        raise ConfigError(
            f"{IGNORE_CORRUPT} (or source.options.ignoreCorruptFiles) is true: Spark would skip "
            "unreadable source files and their rows would be lost without a reject; remove it "
            "from the profile's or the job's spark_conf and source.options"
        )


def unreadable_file_error(error: BaseException, source: SourceConfig) -> InputError | None:
    """An :class:`InputError` naming the file, for Spark's failure to read one data file.

    Spark reports a truncated or overwritten file, an unreadable footer, a column whose
    Parquet type differs from the table's, or a file gone during the run inside whatever
    exception the driver received (``Py4JJavaError``, a pyspark ``SparkException``...): at the
    first action over the data, or when Spark reads the file's footer for the schema. The
    report differs between Spark 4 and 3.5; :func:`~batch_scoring.jobs.read_failures.find_read_failure`
    reads both.

    Args:
        error: the exception an action (or the read) raised.
        source: the job's ``source`` section (for the message).

    Returns:
        One error whose one-line message names the file (``file:`` prefix removed), what is
        wrong with it and what to do (a file outside ``source.path``, e.g. of an output
        table, gets Spark's own line instead); None when ``error`` is not such a failure.
    """
    header = header_error(error, source)
    if header is not None:
        return header
    failure = find_read_failure(str(error))
    if failure is None:
        return None
    if not is_inside(failure.file, source.path):
        if not failure.named_by_spark:
            return None
        return InputError(f"file {failure.file} cannot be read: {failure.detail}")
    if failure.drift is not None:
        drift = failure.drift
        return InputError(
            f"source file {failure.file} does not match the schema of source.path {source.path}: "
            f"column [{drift.column}] is Parquet {drift.file_type} in this file, but Spark reads "
            f"the source as {drift.table_type}. The files disagree on this column's type (schema "
            "drift): rewrite the file with the type the other files have, or move it out of "
            "source.path, and rerun."
        )
    return InputError(
        f"source file {failure.file} cannot be read as {source.format} ({failure.detail[:300]}); "
        f"the file is corrupt or not {source.format}: replace it with a good copy from its "
        f"producer, or move it out of source.path {source.path}, and rerun. Unreadable files are "
        "never skipped: their rows would be lost without a reject."
    )


def _load(spark: SparkSession, source: SourceConfig, path: str) -> DataFrame:
    try:
        if source.format in TEXT_FORMATS:
            return load_text_records(spark, source, path)
        return _reader(spark, source).load(path)
    except Exception as error:  # noqa: BLE001 - only the two kinds below are translated
        reason = _unreadable_source_reason(error)
        if reason is None:
            raise
        hint = NANOS_HINT if "TIMESTAMP(NANOS" in reason else "check source.format and the files"
        raise InputError(
            f"source.path {source.path} cannot be read as {source.format}: {reason}; {hint}"
        ) from None


def _unreadable_source_reason(error: BaseException) -> str | None:
    """The one line saying why the source cannot be loaded: an AnalysisException's first line,
    or (Spark 3.5, whose schema inference runs as a job) the illegal Parquet type of a file."""
    if isinstance(error, AnalysisException):
        return str(error).strip().splitlines()[0]
    illegal = _ILLEGAL_PARQUET_TYPE.search(str(error))
    return illegal.group(0).rstrip(".") if illegal else None


_ILLEGAL_PARQUET_TYPE = re.compile(r"Illegal Parquet type: [^\n]+")
NANOS_HINT = (
    "the files hold nanosecond timestamps (pandas' default), which Spark cannot read: rewrite "
    "them with pyarrow's coerce_timestamps='us' (df.to_parquet(path, coerce_timestamps='us'))"
)


def _reader(spark: SparkSession, source: SourceConfig):
    reader = spark.read.format(source.format).options(**source.options)
    if source.ddl_schema:
        reader = reader.schema(source.ddl_schema)
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
