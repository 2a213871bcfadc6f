"""Unit-of-work packing: turn a stream of Arrow batches into whole units of work.

Spark hands a ``mapInPandas`` function the rows of one partition as a stream of pandas
DataFrames of at most ``spark.sql.execution.arrow.maxRecordsPerBatch`` rows. When the partition
was sorted by the unit-of-work keys, each unit's rows are contiguous, but a unit may straddle two
or more batches. :func:`iter_whole_units` re-cuts the stream so that every chunk it yields holds
only whole units: the trailing unit of each batch is carried over until a later batch shows a
different key (or the stream ends). A unit is never split and never merged into two chunks, and
the work per chunk is bounded by the batch size plus the largest unit.

:func:`apply_to_units` runs a :class:`~batch_scoring.udfs.contract.UnitFunction` on those
chunks, in its ``unit`` or ``batch`` shape, and checks each result against the declared output.
All of this is plain pandas, so it runs the same way on an executor, in a test or on a laptop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np
import pandas as pd


class FunctionOutputError(ValueError):
    """A unit-of-work function returned columns that differ from its declared output."""


def iter_whole_units(
    batches: Iterable[pd.DataFrame], keys: Sequence[str]
) -> Iterator[pd.DataFrame]:
    """Re-cut a key-sorted stream of DataFrames into chunks of whole units of work.

    Args:
        batches: DataFrames whose concatenation is sorted (or at least grouped) by ``keys``;
            any columns, any dtypes; empty frames are skipped.
        keys: the unit-of-work key columns.

    Yields:
        Non-empty DataFrames with the input's columns and a fresh RangeIndex, each holding one
        or more whole units in input order. Rows are neither dropped nor duplicated.

    Cost: O(rows); a unit spanning many batches is concatenated once, when it completes.
    """
    carry: list[pd.DataFrame] = []
    for batch in batches:
        if batch.empty:
            continue
        tail_start = _last_unit_start(batch, keys)
        if tail_start == 0 and carry and _same_unit(carry[-1], batch, keys):
            carry.append(batch)
            continue
        if tail_start == 0:
            if carry:
                yield _concat(carry)
            carry = [batch]
            continue
        yield _concat([*carry, batch.iloc[:tail_start]])
        carry = [batch.iloc[tail_start:]]
    if carry:
        yield _concat(carry)


def _last_unit_start(batch: pd.DataFrame, keys: Sequence[str]) -> int:
    """Return the row position where the batch's last unit of work begins."""
    same = np.ones(len(batch), dtype=bool)
    for key in keys:
        column = batch[key]
        last = column.iloc[-1]
        same &= (column.isna() if pd.isna(last) else column.eq(last)).to_numpy(dtype=bool)
    different = np.flatnonzero(~same)
    return int(different[-1]) + 1 if len(different) else 0


def _same_unit(previous: pd.DataFrame, batch: pd.DataFrame, keys: Sequence[str]) -> bool:
    return all(_same_value(previous[k].iloc[-1], batch[k].iloc[0]) for k in keys)


def _same_value(left: object, right: object) -> bool:
    """Equality where all missing values (None, NaN, NaT, pd.NA) are equal to each other."""
    left_missing, right_missing = pd.isna(left), pd.isna(right)
    if left_missing or right_missing:
        return bool(left_missing and right_missing)
    return bool(left == right)


def _concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    if len(parts) == 1:
        return parts[0].reset_index(drop=True)
    return pd.concat(parts, ignore_index=True)


def apply_to_units(
    chunks: Iterable[pd.DataFrame],
    fn: Callable[..., pd.DataFrame],
    shape: str,
    keys: Sequence[str],
    output_columns: Sequence[str],
    function_name: str,
) -> Iterator[pd.DataFrame]:
    """Apply a bound unit-of-work function to chunks of whole units.

    Args:
        chunks: DataFrames of whole units (from :func:`iter_whole_units`, or one unit each).
        fn: the function with its parameters bound: ``fn(key, pdf)`` for ``shape="unit"``,
            ``fn(pdf, keys)`` for ``shape="batch"``.
        shape: ``"unit"`` or ``"batch"``.
        keys: the unit-of-work key columns.
        output_columns: the full output column order, keys first.
        function_name: used in error messages.

    Yields:
        One DataFrame per chunk with exactly ``output_columns``; for the ``unit`` shape the key
        columns are filled in from the unit's key when the function did not return them.

    Raises:
        FunctionOutputError: when a result is not a DataFrame, lacks a declared column or has
            an undeclared one.
    """
    for chunk in chunks:
        if shape == "batch":
            result = fn(chunk, list(keys))
            yield conform_output(result, output_columns, function_name)
        else:
            yield _apply_per_unit(chunk, fn, keys, output_columns, function_name)


def _apply_per_unit(
    chunk: pd.DataFrame,
    fn: Callable[..., pd.DataFrame],
    keys: Sequence[str],
    output_columns: Sequence[str],
    function_name: str,
) -> pd.DataFrame:
    results = []
    for key, unit in chunk.groupby(list(keys), sort=False, dropna=False):
        result = fn(key, unit.reset_index(drop=True))
        if isinstance(result, pd.DataFrame):
            absent = {n: v for n, v in zip(keys, key) if n not in result.columns}
            result = result.assign(**absent) if absent else result
        results.append(conform_output(result, output_columns, function_name))
    if not results:
        return pd.DataFrame({name: pd.Series(dtype=object) for name in output_columns})
    return pd.concat(results, ignore_index=True)


def conform_output(
    result: object, output_columns: Sequence[str], function_name: str
) -> pd.DataFrame:
    """Check a function's result against the declared output and put columns in order.

    Raises:
        FunctionOutputError: naming the function and the missing or undeclared columns.
    """
    if not isinstance(result, pd.DataFrame):
        raise FunctionOutputError(
            f"function {function_name} returned {type(result).__name__}, expected a pandas "
            "DataFrame"
        )
    if result.empty and len(result.columns) == 0:
        return pd.DataFrame({name: pd.Series(dtype=object) for name in output_columns})
    missing = [c for c in output_columns if c not in result.columns]
    extra = [c for c in result.columns if c not in output_columns]
    if missing or extra:
        raise FunctionOutputError(
            f"function {function_name} returned columns that differ from its declared output: "
            f"missing {missing}, undeclared {extra}. Return exactly {list(output_columns)} "
            "(declare new columns in function.output_schema)."
        )
    return result[list(output_columns)]
