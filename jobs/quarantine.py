"""Check the source against a function's input contract and quarantine rows that break it.

Columns that are missing or of the wrong type class stop the job before any work
(:class:`~batch_scoring.jobs.errors.InputError`). Rows are checked one by one: a row with a
null unit-of-work key, a null or NaN required value, or a value outside its domain is kept out
of the function's input and written to the rejects output with a reason, never dropped.
The rows of a unit whose function call raised join them later (:func:`failed_unit_rejects`),
in the same columns, so a reader sees one rejects table.

Reject columns added to the source columns:

| column          | type   | meaning                                                      |
|-----------------|--------|--------------------------------------------------------------|
| reject_reason   | string | null_key, null_value, not_a_number, out_of_range,            |
|                 |        | empty_partition_value, partition_value_too_long,             |
|                 |        | function_raised (the unit's function call raised)            |
| reject_column   | string | the column whose value broke the contract (first one found); |
|                 |        | for function_raised the unit-of-work key columns, comma-sep. |
| reject_rule     | string | the rule, e.g. ``not null`` or ``> 0``; for function_raised  |
|                 |        | the exception, ``"Type: message"`` (at most 500 characters)  |
| reject_raw      | string | the raw record for malformed_record and unparseable (CSV and |
|                 |        | JSON sources, see :mod:`~batch_scoring.jobs.text_records`);  |
|                 |        | null for every other reason                                  |
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from batch_scoring.jobs.errors import InputError
from batch_scoring.udfs.contract import ColumnRule, did_you_mean
from batch_scoring.udfs.engine.unit_of_work import FAILURE_COLUMN

TYPE_CLASSES: dict[str, tuple[type[T.DataType], ...]] = {
    "numeric": (T.NumericType,),
    "integer": (T.IntegralType,),
    "string": (T.StringType,),
    "date": (T.DateType, T.TimestampType, T.TimestampNTZType),
}
TYPE_CLASS_TEXT: dict[str, str] = {
    "numeric": "numeric (tinyint, smallint, int, bigint, float, double or decimal)",
    "integer": "integer (tinyint, smallint, int or bigint)",
    "string": "string",
    "date": "date (date, timestamp or timestamp_ntz)",
}
REJECT_COLUMNS = ["reject_reason", "reject_column", "reject_rule"]
REJECT_RAW = "reject_raw"
FUNCTION_RAISED = "function_raised"


def check_columns(df: DataFrame, rules: Sequence[ColumnRule], source_path: str) -> None:
    """Raise if a rule's column is missing or of an incompatible type.

    A column of any type in the rule's type class is accepted as it is and reaches the
    function with its source type (``volume`` as double where a bigint is usual: a
    ``numeric`` rule); nothing is cast, so a number stored as a string is a mismatch.

    Raises:
        InputError: listing every missing column and every type mismatch (column, found
            type, expected type class) in one message.
    """
    types = {f.name: f.dataType for f in df.schema.fields}
    problems = []
    for rule in rules:
        if rule.name not in types:
            problems.append(f"column {rule.name!r} is missing{did_you_mean(rule.name, list(types))}")
        elif rule.dtype in TYPE_CLASSES and not isinstance(types[rule.name], TYPE_CLASSES[rule.dtype]):
            problems.append(
                f"column {rule.name!r} is {types[rule.name].simpleString()}, expected "
                f"{TYPE_CLASS_TEXT[rule.dtype]}"
            )
    if problems:
        raise InputError(
            f"source {source_path} breaks the function's input contract: " + "; ".join(problems)
            + ". Fix the data, or map the function's column parameters to your columns."
        )


def reject_reason(
    rules: Sequence[ColumnRule], keys: Sequence[str], extra: Sequence[tuple] = ()
) -> Column:
    """A struct column (reason, column, rule) naming the first broken rule, or null.

    Checked in order: null keys, the ``extra`` checks ``(condition, reason, column, rule)``
    (partition values, see :mod:`~batch_scoring.jobs.partition_values`), then ``rules``.
    """
    checks = [(F.col(k).isNull(), "null_key", k, "not null") for k in keys]
    checks.extend(extra)
    for rule in rules:
        checks.extend(_checks_of(rule))
    reason = F.lit(None).cast("struct<reason:string,column:string,rule:string>")
    for condition, code, column, text in reversed(checks):
        reason = F.when(condition, F.struct(
            F.lit(code).alias("reason"), F.lit(column).alias("column"), F.lit(text).alias("rule")
        )).otherwise(reason)
    return reason


def _checks_of(rule: ColumnRule) -> list[tuple[Column, str, str, str]]:
    column = F.col(rule.name)
    checks = []
    if not rule.nullable:
        checks.append((column.isNull(), "null_value", rule.name, "not null"))
    if rule.dtype in ("numeric", "integer"):
        checks.append((F.isnan(column), "not_a_number", rule.name, "a number"))
    if rule.minimum is not None or rule.maximum is not None:
        checks.append((_out_of_range(column, rule), "out_of_range", rule.name, rule.describe_domain()))
    return checks


def _out_of_range(column: Column, rule: ColumnRule) -> Column:
    outside = F.lit(False)
    if rule.minimum is not None:
        outside = outside | (column <= rule.minimum if rule.minimum_exclusive else column < rule.minimum)
    if rule.maximum is not None:
        outside = outside | (column >= rule.maximum if rule.maximum_exclusive else column > rule.maximum)
    return F.coalesce(outside, F.lit(False))


def split_rejects(
    df: DataFrame, rules: Sequence[ColumnRule], keys: Sequence[str], extra: Sequence[tuple] = ()
) -> tuple[DataFrame, DataFrame]:
    """Split ``df`` into rows that keep the contract and rejected rows with their reason.

    ``extra``: more row checks, see :func:`reject_reason`.

    Returns:
        ``(valid, rejects)``: ``valid`` has ``df``'s schema; ``rejects`` has ``df``'s columns
        plus :data:`REJECT_COLUMNS` (strings). Every input row lands in exactly one of them.
    """
    flagged = df.withColumn("_reject", reject_reason(rules, keys, extra))
    valid = flagged.where(F.col("_reject").isNull()).drop("_reject")
    rejects = flagged.where(F.col("_reject").isNotNull()).select(
        *df.columns,
        F.col("_reject.reason").alias("reject_reason"),
        F.col("_reject.column").alias("reject_column"),
        F.col("_reject.rule").alias("reject_rule"),
    )
    return valid, rejects


def failed_unit_rejects(rows: DataFrame, failures: DataFrame, keys: Sequence[str]) -> DataFrame:
    """The input rows of the units whose function call raised, as rejects with the error.

    Args:
        rows: the function's input (rows that kept the contract), original values.
        failures: one row per failed unit: ``keys`` and ``_failure`` (``"Type: message"``);
            small (it is broadcast).
        keys: the unit-of-work key columns (never null in ``rows``).

    Returns:
        ``rows``' columns plus :data:`REJECT_COLUMNS`: ``function_raised``, the key column
        names joined by ``,``, and the error text; every row of every failed unit once.

    Cost: one scan of ``rows`` (a broadcast hash join on the keys); run it only when a unit
    failed.
    """
    errors = F.broadcast(failures.withColumnRenamed(FAILURE_COLUMN, "_error"))
    return rows.join(errors, on=list(keys), how="inner").select(
        *rows.columns,
        F.lit(FUNCTION_RAISED).alias("reject_reason"),
        F.lit(",".join(keys)).alias("reject_column"),
        F.col("_error").alias("reject_rule"),
    )


def with_reject_columns(rejects: DataFrame) -> DataFrame:
    """``rejects`` with every reject column, ``reject_raw`` added as null when absent, so
    the rejects table has one schema whatever the source format."""
    if REJECT_RAW in rejects.columns:
        return rejects
    return rejects.withColumn(REJECT_RAW, F.lit(None).cast("string"))


def union_rejects(first: DataFrame, second: DataFrame | None) -> DataFrame:
    """Both sets of rejects in one DataFrame (columns of either, missing ones null)."""
    if second is None:
        return first
    return with_reject_columns(first).unionByName(with_reject_columns(second), allowMissingColumns=True)
