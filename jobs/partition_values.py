"""Partition values that a folder name cannot carry faithfully, found before the work.

Spark writes a partition value into a folder name ``<column>=<value>`` with Hive-style
escaping (Spark's ``ExternalCatalogUtils.escapePathName``): the control characters
``\\x01``-``\\x1F``, ``\\x7F`` and ``" # % ' * / : = ? [ \\ ] ^ {`` become ``%XX``; every other
character, unicode included, is kept as its UTF-8 bytes. Such values read back exactly. Two
kinds of value do not:

* the empty string: Spark writes it as ``__HIVE_DEFAULT_PARTITION__`` (Parquet) or a null
  partition value (Delta), so it reads back as null and looks like a quarantined null key.
  It is rejected as ``empty_partition_value`` (naming the column) unless
  ``output.empty_partition_value`` names a token to write instead;
* a value whose folder name (``column=`` plus the escaped value) is longer than 255 bytes, the
  limit of most file systems and object-store tools for one path segment: the write would fail
  after the whole run's work. ``output.long_partition_value: fail`` (default) stops the run
  before any unit is priced (exit 3, naming the column, the value's start and its length);
  ``reject`` quarantines those rows as ``partition_value_too_long``.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from batch_scoring.jobs.errors import InputError

MAX_SEGMENT_BYTES = 255
EMPTY_PARTITION_VALUE = "empty_partition_value"
PARTITION_VALUE_TOO_LONG = "partition_value_too_long"
ESCAPED_CHARACTERS = "".join(chr(c) for c in range(1, 32)) + "\"#%'*/:=?[\\]^{\x7f"
_KEPT = "[^" + "".join(f"\\x{ord(c):02x}" for c in ESCAPED_CHARACTERS) + "]"


def escape_path_name(value: str) -> str:
    """``value`` escaped as Spark escapes a partition value in a folder name."""
    return "".join(f"%{ord(c):02X}" if c in ESCAPED_CHARACTERS else c for c in value)


def segment_limit(column: str) -> int:
    """Bytes left for the escaped value in the folder name ``<column>=<value>``."""
    return MAX_SEGMENT_BYTES - len(escape_path_name(column).encode("utf-8")) - 1


def escaped_bytes(column: str) -> Column:
    """The UTF-8 byte length of ``column``'s value once escaped for a folder name (int)."""
    value = F.col(column).cast("string")
    escaped = F.length(F.regexp_replace(value, _KEPT, ""))
    return F.octet_length(value) + 2 * escaped


def too_long(column: str) -> Column:
    """True where the value's folder name would exceed :data:`MAX_SEGMENT_BYTES`."""
    return F.coalesce(escaped_bytes(column) > segment_limit(column), F.lit(False))


def is_empty(column: str) -> Column:
    """True where the value is the empty string (never for null)."""
    return F.coalesce(F.col(column).cast("string") == "", F.lit(False))


def row_checks(columns: Sequence[str], long_policy: str, empty_token: str | None):
    """Reject checks ``(condition, reason, column, rule)`` for the partition columns.

    Empty strings are checked unless a token replaces them; too long values only when
    ``long_policy`` is ``reject`` (``fail`` stops the run in :func:`check_lengths`).
    """
    checks = []
    for column in columns:
        if empty_token is None:
            checks.append((is_empty(column), EMPTY_PARTITION_VALUE, column,
                           "not an empty string (a partition value)"))
        if long_policy == "reject":
            checks.append((too_long(column), PARTITION_VALUE_TOO_LONG, column,
                           f"at most {segment_limit(column)} bytes escaped (a partition value)"))
    return checks


def with_empty_token(df: DataFrame, columns: Sequence[str], token: str | None) -> DataFrame:
    """``df`` with empty strings in ``columns`` replaced by ``token`` (unchanged for None)."""
    if token is None:
        return df
    for column in columns:
        df = df.withColumn(column, F.when(is_empty(column), F.lit(token)).otherwise(F.col(column)))
    return df


def check_lengths(df: DataFrame, columns: Sequence[str], where: str) -> None:
    """Stop the run when a value of ``columns`` cannot be a folder name.

    Cost: one pass over ``columns`` of ``df`` (a filter and ``limit(1)`` per column, together).

    Raises:
        InputError: naming the column, the value's first 40 characters, its length in bytes
            escaped, the limit and the two ways out.
    """
    if not columns:
        return
    flagged = df.where(F.greatest(*(too_long(c) for c in columns), F.lit(False)))
    row = flagged.select(*columns).limit(1).collect()
    if not row:
        return
    for column in columns:
        value = row[0][column]
        if value is not None and len(escape_path_name(str(value)).encode("utf-8")) > segment_limit(column):
            size = len(escape_path_name(str(value)).encode("utf-8"))
            raise InputError(
                f"{where} column {column!r} (in output.partition_by) holds a value whose folder "
                f"name would be {size + len(column) + 1} bytes, over the {MAX_SEGMENT_BYTES}-byte "
                f"limit of a path segment: {str(value)[:40]!r}... ({size} bytes escaped). Nothing "
                "was priced or committed. Shorten the values upstream, leave the column out of "
                "output.partition_by, or set output.long_partition_value: reject to quarantine "
                "those rows"
            )


def check_output_values(df: DataFrame, columns: Sequence[str], token: str | None) -> DataFrame:
    """The function's output with its partition columns checked (columns the source lacks).

    Empty strings become ``token``; without a token they, and too long values, stop the run.

    Raises:
        InputError: naming the column and the problem; nothing was committed.
    """
    df = with_empty_token(df, columns, token)
    if token is None and columns:
        empty = df.where(F.greatest(*(is_empty(c) for c in columns), F.lit(False))).limit(1).collect()
        if empty:
            column = next(c for c in columns if empty[0][c] == "")
            raise InputError(
                f"the function's output column {column!r} (in output.partition_by) holds an empty "
                "string, which a partition folder cannot carry (it reads back as null). Nothing "
                "was committed. Set output.empty_partition_value to a token to write instead, or "
                "have the function return a value"
            )
    check_lengths(df, columns, "the function's output")
    return df


def source_partition_columns(df: DataFrame, partition_by: Sequence[str]) -> list[str]:
    """The ``output.partition_by`` columns that ``df`` (a source) already has."""
    return [c for c in partition_by if c in df.columns]


def checked_source(df: DataFrame, output, where: str) -> tuple[DataFrame, list[tuple]]:
    """A source's partition columns made writable, and the row checks to quarantine with.

    Args:
        df: the source as read.
        output: the job's :class:`~batch_scoring.jobs.config.OutputConfig`.
        where: names the source in messages.

    Returns:
        ``(df, checks)``: ``df`` with ``output.empty_partition_value``'s token applied, and the
        :func:`row_checks` for :func:`~batch_scoring.jobs.quarantine.split_rejects`.

    Raises:
        InputError: with ``long_partition_value: fail``, for a value too long for a folder
            name (:func:`check_lengths`; one pass over the partition columns).
    """
    columns = source_partition_columns(df, output.partition_by)
    df = with_empty_token(df, columns, output.empty_token)
    if output.long_partition_value == "fail":
        check_lengths(df, columns, where)
    return df, row_checks(columns, output.long_partition_value, output.empty_token)
