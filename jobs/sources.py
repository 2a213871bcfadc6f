"""Read a job's source: format, projection, partition filter, with errors that name the cause.

A source is a :class:`Source`, one class per ``source.format``, chosen once by
:func:`open_source`: :class:`FileSource` (Parquet, CSV, JSON, binaryFile), :class:`DeltaSource`,
and :class:`~batch_scoring.jobs.jdbc_source.JdbcSource` (PostgreSQL, Redshift).

Paths may be local or ``s3://`` / ``s3a://`` URIs. Off EMR, ``s3://`` is read through Hadoop's
s3a connector (the profile's ``s3_scheme``); on EMR, EMRFS serves ``s3://`` itself.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from pyspark.errors import AnalysisException, ParseException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from batch_scoring.jobs.config import SourceConfig
from batch_scoring.jobs.errors import ConfigError, InputError
from batch_scoring.jobs.filesystem import hadoop_filesystem, path_exists
from batch_scoring.jobs.locations import is_inside, resolve_path
from batch_scoring.jobs.read_failures import find_read_failure
from batch_scoring.jobs.sinks import delta_version
from batch_scoring.jobs.text_records import TEXT_FORMATS, corrupt_column, header_error, load_text_records
from batch_scoring.udfs.contract import did_you_mean

MEGABYTE = 1024 * 1024


class Source(ABC):
    """Where a job's rows come from, behind one interface: one class per ``source.format``.

    Chosen once per run from the config (:func:`open_source`). The job reads through
    :meth:`read`, records what it read through :meth:`describe_inputs`, and learns which
    locations the source occupies (for the output-overlap check and the session's S3 settings)
    from :meth:`locations`; a new kind of source plugs in here and nowhere else.

    Args:
        config: the job's ``source`` section.
        s3_scheme: how ``s3://`` paths are reached (the profile's; see
            :func:`~batch_scoring.jobs.locations.resolve_path`).
    """

    def __init__(self, config: SourceConfig, s3_scheme: str = "s3a") -> None:
        self.config = config
        self.s3_scheme = s3_scheme

    @property
    @abstractmethod
    def name(self) -> str:
        """The source as messages name it (``source.path`` as configured, or the table)."""

    @abstractmethod
    def read(self, spark: SparkSession, columns: Sequence[str] | None) -> DataFrame:
        """The source's rows: exactly ``columns`` (source types; None = all), ``source.filter``
        applied (pushed down where the format allows).

        Raises:
            ConfigError: a ``source.filter`` that does not parse or names an unknown column.
            InputError: a source that does not exist or lacks a needed column (the message
                lists the missing and the available columns).
        """

    @abstractmethod
    def describe_inputs(self, spark: SparkSession) -> dict[str, Any]:
        """What the run read, for its manifest (files with sizes, a table version...)."""

    def locations(self) -> list[str]:
        """The file-system locations the source occupies ([] for a database table)."""
        return []

    def input_files(self, rows: DataFrame) -> list[tuple[str, int]]:
        """``(path, bytes)`` of each file a read of the source reads, sorted ([] when it reads
        no files)."""
        return []

    def unreadable_error(self, error: BaseException) -> InputError | None:
        """The :class:`InputError` a Spark error reading the source stands for, or None."""
        return None


class FileSource(Source):
    """Files under ``source.path``: Parquet, CSV, JSON or binaryFile (local or S3).

    For CSV and JSON :meth:`read` also returns the corrupt-record column (split off with
    :func:`~batch_scoring.jobs.text_records.split_malformed`).
    """

    @property
    def name(self) -> str:
        return self.config.path

    @property
    def path(self) -> str:
        """``source.path`` as Spark reads it on this profile."""
        return resolve_path(self.config.path, self.s3_scheme)

    def locations(self) -> list[str]:
        return [self.config.path]

    def read(self, spark: SparkSession, columns: Sequence[str] | None) -> DataFrame:
        """See :meth:`Source.read`.

        Raises:
            ConfigError: also when csv/json lacks ``source.schema``, or when
                ``spark.sql.files.ignoreCorruptFiles`` (session or ``source.options``) is on:
                unreadable files would be skipped and their rows lost without a reject.

        A file that is corrupt or whose column types differ from the others' fails when the
        data is read (at the job's first action, or here when it is the file Spark takes the
        schema from): :meth:`unreadable_error` turns that Spark error into an ``InputError``.
        """
        source = self.config
        check_corrupt_files_not_ignored(spark, source)
        if source.format in ("csv", "json") and not source.ddl_schema:
            raise ConfigError(
                f"source.schema is required for format {source.format} (e.g. 'cell_id string, "
                "hour int, load double'): inferring a schema reads the data twice and guesses types"
            )
        if not path_exists(spark, self.path):
            raise InputError(f"source.path {source.path} does not exist; check the path or run date")
        df = _load(spark, source, self.path)
        corrupt = corrupt_column(source) if source.format in TEXT_FORMATS else None
        available = [c for c in df.columns if c != corrupt]
        columns = available if columns is None else columns
        missing = [c for c in columns if c not in available]
        if missing:
            raise missing_columns(source.path, missing, available)
        kept = [*columns, corrupt] if corrupt else list(columns)
        return apply_filter(df.select(*kept), source.filter)

    def input_files(self, rows: DataFrame) -> list[tuple[str, int]]:
        """``(path, bytes)`` of each file ``rows`` (a :meth:`read` of this source) reads, after
        partition pruning: one distinct query over Spark's ``_metadata`` column."""
        found = rows.select("_metadata.file_path", "_metadata.file_size").distinct().collect()
        return sorted((r["file_path"], int(r["file_size"])) for r in found)

    def describe_inputs(self, spark: SparkSession) -> dict[str, Any]:
        """``{"path", "files": [{"file", "bytes"}], "file_count", "total_bytes"}``: every data
        file under the path (at most :data:`MAX_LISTED_FILES` listed, all counted)."""
        return {"path": self.config.path, **_listed_files(spark, self.path)}

    def unreadable_error(self, error: BaseException) -> InputError | None:
        return unreadable_file_error(error, self.config)


class DeltaSource(FileSource):
    """A Delta table at ``source.path``, read through its log (at its latest version)."""

    def describe_inputs(self, spark: SparkSession) -> dict[str, Any]:
        """``{"path", "delta_version"}``: the table version the run read."""
        return {"path": self.config.path, "delta_version": delta_version(spark, self.path)}


SOURCES: dict[str, type[Source]] = {
    "parquet": FileSource, "csv": FileSource, "json": FileSource, "binaryFile": FileSource,
    "delta": DeltaSource,
}


def open_source(config: SourceConfig, s3_scheme: str = "s3a") -> Source:
    """The :class:`Source` for the job's ``source`` section (one class per ``source.format``)."""
    if config.format == "jdbc":
        from batch_scoring.jobs.jdbc_source import JdbcSource

        return JdbcSource(config, s3_scheme)
    return SOURCES[config.format](config, s3_scheme)


MAX_LISTED_FILES = 10_000


def _listed_files(spark: SparkSession, source: str) -> dict[str, Any]:
    filesystem, root = hadoop_filesystem(spark, source)
    files, count, total, iterator = [], 0, 0, filesystem.listFiles(root, True)
    while iterator.hasNext():
        status = iterator.next()
        if status.getPath().getName().startswith(("_", ".")):
            continue
        count, total = count + 1, total + status.getLen()
        if count <= MAX_LISTED_FILES:
            files.append({"file": status.getPath().toString(), "bytes": status.getLen()})
    return {"files": files, "file_count": count, "total_bytes": total}


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


def apply_filter(df: DataFrame, predicate: str | None) -> DataFrame:
    """``df`` with ``source.filter`` applied (pushed down where the format allows).

    Raises:
        ConfigError: when the predicate does not parse or names an unknown column.
    """
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
