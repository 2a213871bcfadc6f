"""CSV and JSON sources: columns bound by name, malformed records kept with their raw text.

Text formats carry no types, so each record is parsed against ``source.schema`` and can fail
in two ways, both kept as rejects with the record's original text in ``reject_raw``:

* ``malformed_record``: the record's structure is broken (a CSV line with more or fewer
  fields than the header, a JSON line that is not one JSON object, trailing text after it);
* ``unparseable``: the structure is fine but a value does not parse as its declared type
  (``abc`` in a double column, ``2026-02-30`` as a date, a number that overflows bigint);
  ``reject_column`` names the first such column and ``reject_rule`` its declared type.

Spark's PERMISSIVE parser with a corrupt-record column finds both (Spark SQL docs, "CSV
Files" / "JSON Files", ``columnNameOfCorruptRecord``); DROPMALFORMED is refused by the config.

**CSV headers** are checked against ``source.schema`` in every file (Spark's
``enforceSchema=false``): a header with other, missing, extra or reordered names stops the run
(exit 3) naming the file, its header and the schema. Refusing, rather than mapping by name,
was chosen because Spark binds a CSV file's columns by position, so mapping each file by name
would need every file's header read on the driver and one read per distinct header; and a
header that changed usually means the producer changed, which the job's owner should see.
JSON binds by field name already.

**CSV column pruning** must be off (``spark.sql.csv.parser.columnPruning.enabled=false``,
set by the entry point for CSV sources): with pruning, Spark checks only the columns a query
reads, so a line with an extra field would be read as good by one query and as malformed by
another, and rows would be counted twice.
"""

from __future__ import annotations

import re

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from batch_scoring.jobs.config import SourceConfig
from batch_scoring.jobs.errors import ConfigError, InputError
from batch_scoring.jobs.locations import local_path

CORRUPT_RECORD = "_corrupt_record"
MALFORMED_RECORD = "malformed_record"
UNPARSEABLE = "unparseable"
CSV_PRUNING = "spark.sql.csv.parser.columnPruning.enabled"
TEXT_FORMATS = ("csv", "json")
_PARSER_OPTIONS = {
    "csv": ("sep", "delimiter", "quote", "escape", "comment", "nullvalue", "emptyvalue",
            "ignoreleadingwhitespace", "ignoretrailingwhitespace", "charToEscapeQuoteEscaping",
            "locale", "unescapedquotehandling"),
}


def corrupt_column(source: SourceConfig) -> str:
    """Name of the corrupt-record column: ``source.options.columnNameOfCorruptRecord`` or
    ``_corrupt_record``."""
    options = {k.lower(): v for k, v in source.options.items()}
    return options.get("columnnameofcorruptrecord", CORRUPT_RECORD)


def check_csv_pruning_off(spark: SparkSession) -> None:
    """Refuse to read CSV while Spark prunes CSV columns (see the module docstring).

    Raises:
        ConfigError: naming the setting and where to set it.
    """
    if str(spark.conf.get(CSV_PRUNING, "true")).lower() != "false":
        raise ConfigError(
            f"{CSV_PRUNING} is on: Spark would check only the CSV columns a query reads, so "
            "malformed lines could be priced by one pass and rejected by another. Set it to "
            "false in the session (the batch-score entry point does so for CSV sources)"
        )


def load_text_records(spark: SparkSession, source: SourceConfig, path: str) -> DataFrame:
    """Read a CSV or JSON source with ``source.schema`` plus the corrupt-record column.

    Returns:
        The declared columns (declared types), partition columns found in the folder names,
        and the corrupt-record column (string: the raw record when it failed to parse, else
        null). JSON Lines are read as text and parsed with ``from_json`` so that a line with
        text after its object is caught too; blank lines are skipped as Spark's JSON reader
        skips them.
    """
    schema = T._parse_datatype_string(source.ddl_schema)
    corrupt = corrupt_column(source)
    with_corrupt = T.StructType([*schema.fields, T.StructField(corrupt, T.StringType())])
    options = dict(source.options)
    if source.format == "csv":
        check_csv_pruning_off(spark)
        options.setdefault("header", "true")
        options.setdefault("enforceSchema", "false")
        options.setdefault("columnNameOfCorruptRecord", corrupt)
        return spark.read.options(**options).schema(with_corrupt).csv(path)
    if options.get("multiLine", options.get("multiline", "false")).lower() == "true":
        options.setdefault("columnNameOfCorruptRecord", corrupt)
        return spark.read.options(**options).schema(with_corrupt).json(path)
    return _json_lines(spark, path, options, with_corrupt, corrupt)


def _json_lines(spark: SparkSession, path: str, options: dict[str, str], schema: T.StructType,
                corrupt: str) -> DataFrame:
    file_options = {k: v for k, v in options.items()
                    if k.lower() in ("recursivefilelookup", "pathglobfilter", "modifiedbefore",
                                     "modifiedafter", "basepath")}
    lines = spark.read.options(**file_options).text(path)
    lines = lines.where(F.trim("value") != "")
    parse_options = {**options, "columnNameOfCorruptRecord": corrupt}
    parsed = F.from_json("value", schema, parse_options).alias("_parsed")
    partitions = [c for c in lines.columns if c != "value" and c not in schema.names]
    trailing = ~F.rtrim("value").endswith("}")
    return lines.select(parsed, "value", *partitions).select(
        *(F.col(f"_parsed.{f.name}").alias(f.name) for f in schema.fields if f.name != corrupt),
        *partitions,
        F.when(F.col(f"_parsed.{corrupt}").isNotNull() | trailing, F.col("value")).alias(corrupt),
    )


def split_malformed(df: DataFrame, source: SourceConfig) -> tuple[DataFrame, DataFrame | None]:
    """Split rows whose record failed to parse from the rest.

    Args:
        df: a source read by :func:`load_text_records` (any projection that kept the
            corrupt-record column); other sources pass through unchanged.
        source: the ``source`` section (format, schema and parser options).

    Returns:
        ``(clean, rejects)``: ``clean`` is ``df`` without the corrupt-record column and
        without the failed records; ``rejects`` has ``df``'s other columns plus
        ``reject_reason`` (``malformed_record`` or ``unparseable``), ``reject_column`` (the
        first column whose text does not parse, or null), ``reject_rule`` (its declared type,
        or ``a well-formed <format> record``) and ``reject_raw`` (the raw record). ``rejects``
        is None for a source without a corrupt-record column.
    """
    corrupt = corrupt_column(source)
    if source.format not in TEXT_FORMATS or corrupt not in df.columns:
        return df, None
    columns = [c for c in df.columns if c != corrupt]
    failed = F.col(corrupt).isNotNull()
    clean = df.where(~failed).select(*columns)
    column, rule = _first_unparseable(df, source, corrupt, columns)
    rejects = df.where(failed).select(
        *columns,
        F.when(column.isNull(), F.lit(MALFORMED_RECORD)).otherwise(F.lit(UNPARSEABLE)).alias("reject_reason"),
        column.alias("reject_column"),
        F.coalesce(rule, F.lit(f"a well-formed {source.format} record")).alias("reject_rule"),
        F.col(corrupt).alias("reject_raw"),
    )
    return clean, rejects


def _first_unparseable(df: DataFrame, source: SourceConfig, corrupt: str,
                       columns: list[str]) -> tuple[Column, Column]:
    """Columns naming the first declared column whose text is there but did not parse, and
    its type; null for a record whose structure is broken."""
    declared = T._parse_datatype_string(source.ddl_schema)
    texts = _texts(source, corrupt, declared)
    name, rule = F.lit(None).cast("string"), F.lit(None).cast("string")
    for field in reversed([f for f in declared.fields if f.name in columns]):
        unparsed = F.col(field.name).isNull() & texts(field.name).isNotNull()
        name = F.when(unparsed, F.lit(field.name)).otherwise(name)
        rule = F.when(unparsed, F.lit(f"parses as {field.dataType.simpleString()}")).otherwise(rule)
    if source.format == "csv":
        broken = _csv_has_extra_fields(source, corrupt, len(declared.fields))
        name = F.when(broken, F.lit(None).cast("string")).otherwise(name)
        rule = F.when(broken, F.lit(None).cast("string")).otherwise(rule)
    return name, rule


def _texts(source: SourceConfig, corrupt: str, declared: T.StructType):
    """A function from a column name to that column's text in the raw record."""
    if source.format == "csv":
        strings = T.StructType([T.StructField(f.name, T.StringType()) for f in declared.fields])
        options = _csv_parser_options(source)
        parsed = F.from_csv(F.col(corrupt), strings.simpleString(), options)
        return lambda name: parsed.getField(name)
    parsed = F.from_json(F.col(corrupt), T.MapType(T.StringType(), T.StringType()))
    return lambda name: parsed.getItem(name)


def _csv_parser_options(source: SourceConfig) -> dict[str, str]:
    wanted = {o.lower() for o in _PARSER_OPTIONS["csv"]}
    return {k: v for k, v in source.options.items() if k.lower() in wanted}


def _csv_has_extra_fields(source: SourceConfig, corrupt: str, fields: int) -> Column:
    """True when the raw CSV line has more fields than the schema: parsed by the same parser
    into one string column more, the extra one has a value. (A line with too few fields
    needs no test: its missing values have no text, so no column is found unparseable.)"""
    names = [f"c{i}" for i in range(fields + 1)]
    wide = F.from_csv(F.col(corrupt), ", ".join(f"{n} string" for n in names), _csv_parser_options(source))
    return wide.getField(names[-1]).isNotNull()


_HEADER_MISMATCH = re.compile(
    r"CSV header does not conform to the schema\.\s*Header: (?P<header>[^\n]*)\s*"
    r"Schema: (?P<schema>[^\n]*)\s*Expected: (?P<expected>[^\n]*)\s*CSV file: (?P<file>\S+)"
)


def header_error(error: BaseException, source: SourceConfig) -> InputError | None:
    """The :class:`InputError` for a CSV file whose header disagrees with ``source.schema``,
    or None when ``error`` is not that."""
    match = _HEADER_MISMATCH.search(str(error))
    if match is None:
        return None
    file = local_path(match.group("file"))
    return InputError(
        f"source file {file} has the header [{match.group('header')}] but source.schema lists "
        f"[{match.group('schema')}] ({match.group('expected').strip()}). CSV columns are bound "
        "by name: a header with other, missing, extra or reordered names would put values in "
        "the wrong columns. Write source.schema in the file's header order (all files must "
        "share it), or fix the file; nothing was committed"
    )
