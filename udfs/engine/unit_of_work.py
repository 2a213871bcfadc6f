"""Unit-of-work packing: turn a stream of Arrow batches into whole units of work.

Spark hands a ``mapInPandas`` function the rows of one partition as a stream of pandas
DataFrames of at most ``spark.sql.execution.arrow.maxRecordsPerBatch`` rows. When the partition
was sorted by the unit-of-work keys, each unit's rows are contiguous, but a unit may straddle two
or more batches. :func:`iter_whole_units` re-cuts the stream so that every chunk it yields holds
only whole units: the trailing unit of each batch is carried over until a later batch shows a
different key (or the stream ends). A unit is never split and never merged into two chunks, and
the work per chunk is bounded by the batch size plus the largest unit. A unit larger than
``unit_of_work.max_unit_rows`` stops the stream with :class:`UnitTooLargeError` while it is
being carried over, so a worker never holds much more than that many rows of one unit.

:func:`apply_to_units` runs a :class:`~batch_scoring.udfs.contract.UnitFunction` on those
chunks, in its ``unit`` or ``batch`` shape, and checks each result against the declared output.
With ``isolate_failures=True`` a unit whose call raises does not fail the chunk: it is reported
in a status frame (:data:`STATUS_COLUMNS`) and every other unit is priced; a raising ``batch``
call is retried on halves of its units until the raising units stand alone.
All of this is plain pandas, so it runs the same way on an executor, in a test or on a laptop.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from batch_scoring.udfs.contract import describe_error

FAILURE_COLUMN = "_failure"
ROWS_COLUMN = "_rows"
STATUS_COLUMNS: dict[str, str] = {FAILURE_COLUMN: "string", ROWS_COLUMN: "bigint"}


class FunctionOutputError(ValueError):
    """A unit-of-work function returned columns that differ from its declared output."""


MAX_UNIT_ROWS_FIELD = "unit_of_work.max_unit_rows"


class UnitTooLargeError(ValueError):
    """One unit of work holds more rows than ``unit_of_work.max_unit_rows`` allows.

    Raised on an executor, before the function sees the unit; the message is one line naming
    the unit's key values, its rows counted so far and the config field to raise. On the
    driver it arrives inside a Spark ``PythonException``, whose text holds
    ``UnitTooLargeError: <message>``: :func:`unit_too_large_message` finds it there.
    """


def unit_too_large(
    first_row: pd.Series, keys: Sequence[str], rows: int, max_unit_rows: int
) -> UnitTooLargeError:
    """The error for a unit of ``rows`` rows (so far) whose first row is ``first_row``.

    Args:
        first_row: any row of the unit (holds the ``keys`` values).
        keys: the unit-of-work key columns.
        rows: the unit's rows counted when the limit was crossed (> ``max_unit_rows``).
        max_unit_rows: the limit (``unit_of_work.max_unit_rows``).
    """
    key_text = ", ".join(f"{k}={_plain(first_row[k])!r}" for k in keys)
    return UnitTooLargeError(
        f"unit of work ({key_text}) has {rows} rows so far, more than {MAX_UNIT_ROWS_FIELD} = "
        f"{max_unit_rows}; a unit is processed whole by one Python worker: raise "
        f"{MAX_UNIT_ROWS_FIELD} (--set {MAX_UNIT_ROWS_FIELD}=N) if the executors have the memory, "
        "or split such units with finer unit_of_work.keys"
    )


def _plain(value: object) -> object:
    """A numpy scalar as the Python scalar it holds (``repr`` then reads like the data)."""
    return value.item() if isinstance(value, np.generic) else value


_TOO_LARGE = re.compile(
    rf"{UnitTooLargeError.__name__}: (unit of work \(.*?finer unit_of_work\.keys)"
)


def unit_too_large_message(error_text: str) -> str | None:
    """The :class:`UnitTooLargeError` message inside a Spark error's text, or None.

    ``error_text`` is ``str()`` of the exception the driver received (a ``PythonException``
    or a ``Py4JJavaError`` holding the Python worker's traceback).
    """
    match = _TOO_LARGE.search(error_text)
    return match.group(1) if match else None


def check_unit_rows(unit: pd.DataFrame, keys: Sequence[str], max_unit_rows: int | None) -> None:
    """Raise :class:`UnitTooLargeError` when ``unit`` (the rows of one unit) exceeds the limit.

    Raises:
        UnitTooLargeError: when ``max_unit_rows`` is set and ``len(unit) > max_unit_rows``.
    """
    if max_unit_rows is not None and len(unit) > max_unit_rows:
        raise unit_too_large(unit.iloc[0], keys, len(unit), max_unit_rows)


def join_batches(batches: Iterable[pd.DataFrame], min_rows: int) -> Iterator[pd.DataFrame]:
    """Join consecutive DataFrames until each yielded one holds at least ``min_rows`` rows.

    Args:
        batches: DataFrames with the same columns (e.g. the Arrow batches of one partition).
        min_rows: rows to gather before yielding; 1 or less passes the frames through as
            they are.

    Yields:
        Non-empty DataFrames in input row order, each of at least ``min_rows`` rows except
        possibly the last; a fresh RangeIndex when joined (a frame passed through keeps
        its index). Rows are neither dropped nor duplicated; at most ``min_rows`` - 1 rows
        plus one frame are held.
    """
    if min_rows <= 1:
        yield from (batch for batch in batches if not batch.empty)
        return
    pending: list[pd.DataFrame] = []
    held = 0
    for batch in batches:
        if batch.empty:
            continue
        pending.append(batch)
        held += len(batch)
        if held >= min_rows:
            yield _concat(pending)
            pending, held = [], 0
    if pending:
        yield _concat(pending)


def iter_whole_units(
    batches: Iterable[pd.DataFrame], keys: Sequence[str], max_unit_rows: int | None = None
) -> Iterator[pd.DataFrame]:
    """Re-cut a key-sorted stream of DataFrames into chunks of whole units of work.

    Args:
        batches: DataFrames whose concatenation is sorted (or at least grouped) by ``keys``;
            any columns, any dtypes; empty frames are skipped.
        keys: the unit-of-work key columns.
        max_unit_rows: the most rows one unit may have (``unit_of_work.max_unit_rows``);
            None = no limit.

    Yields:
        Non-empty DataFrames with the input's columns and a fresh RangeIndex, each holding one
        or more whole units in input order. Rows are neither dropped nor duplicated.

    Raises:
        UnitTooLargeError: as soon as the unit being carried over grows beyond
            ``max_unit_rows`` (so at most ``max_unit_rows`` + one batch of rows are held), or
            when a chunk about to be yielded holds such a unit.

    Cost: O(rows); a unit spanning many batches is concatenated once, when it completes. The
    limit costs nothing while chunks stay within it: unit sizes are computed only for a chunk
    longer than ``max_unit_rows``.
    """
    carry: list[pd.DataFrame] = []
    carried = 0
    for batch in batches:
        if batch.empty:
            continue
        tail_start = _last_unit_start(batch, keys)
        if tail_start == 0 and carry and _same_unit(carry[-1], batch, keys):
            carry.append(batch)
            carried += len(batch)
            _check_carry(carry, carried, keys, max_unit_rows)
            continue
        if tail_start == 0:
            if carry:
                yield _checked(_concat(carry), keys, max_unit_rows)
            carry, carried = [batch], len(batch)
            _check_carry(carry, carried, keys, max_unit_rows)
            continue
        yield _checked(_concat([*carry, batch.iloc[:tail_start]]), keys, max_unit_rows)
        carry = [batch.iloc[tail_start:]]
        carried = len(carry[0])
        _check_carry(carry, carried, keys, max_unit_rows)
    if carry:
        yield _checked(_concat(carry), keys, max_unit_rows)


def _check_carry(
    carry: list[pd.DataFrame], rows: int, keys: Sequence[str], max_unit_rows: int | None
) -> None:
    """Raise when the carried unit (one unit, ``rows`` rows so far) is over the limit."""
    if max_unit_rows is not None and rows > max_unit_rows:
        raise unit_too_large(carry[0].iloc[0], keys, rows, max_unit_rows)


def _checked(chunk: pd.DataFrame, keys: Sequence[str], max_unit_rows: int | None) -> pd.DataFrame:
    """``chunk``, after checking that none of its units is over the limit."""
    if max_unit_rows is None or len(chunk) <= max_unit_rows:
        return chunk
    starts = unit_starts(chunk, keys)
    sizes = np.diff(np.append(starts, len(chunk)))
    over = np.flatnonzero(sizes > max_unit_rows)
    if len(over):
        first = int(over[0])
        raise unit_too_large(chunk.iloc[int(starts[first])], keys, int(sizes[first]), max_unit_rows)
    return chunk


def _last_unit_start(batch: pd.DataFrame, keys: Sequence[str]) -> int:
    """Return the row position where the batch's last unit of work begins.

    The batch is grouped by unit, so the rows whose keys equal the last row's form its tail:
    "equal to the last key" is false before that position and true from it on. A galloping
    search from the end, then a binary search, finds it in O(log rows) row comparisons
    (missing values equal to each other, as :func:`_same_value`), instead of comparing
    every row.
    """
    columns = [batch[key] for key in keys]
    last = [column.iloc[-1] for column in columns]

    def same(position: int) -> bool:
        return all(_same_value(column.iloc[position], value) for column, value in zip(columns, last))

    high, step = len(batch) - 1, 1  # high: a position known to be in the last unit
    while True:
        probe = high - step
        if probe < 0:
            if same(0):
                return 0
            low = 0
            break
        if not same(probe):
            low = probe  # low: a position known to be before the last unit
            break
        high, step = probe, step * 2
    while high - low > 1:
        middle = (low + high) // 2
        if same(middle):
            high = middle
        else:
            low = middle
    return high


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
    with warnings.catch_warnings():
        # pieces of one source: a piece whose column is all null must not decide its dtype,
        # which is what pandas does today and warns it will stop doing
        warnings.simplefilter("ignore", FutureWarning)
        return pd.concat(parts, ignore_index=True)


def apply_to_units(
    chunks: Iterable[pd.DataFrame],
    fn: Callable[..., pd.DataFrame],
    shape: str,
    keys: Sequence[str],
    output_columns: Sequence[str],
    function_name: str,
    isolate_failures: bool = False,
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
        isolate_failures: report units whose call raises instead of raising (see below).

    Yields:
        Without ``isolate_failures``: one DataFrame per chunk with exactly ``output_columns``;
        for the ``unit`` shape the key columns are filled in from the unit's key when the
        function did not return them. With it, per chunk: that output plus the
        :data:`STATUS_COLUMNS` (all null), then a status frame (:func:`status_frame`) with one
        row per unit whose call raised and one tally row.

    Raises:
        FunctionOutputError: when a result is not a DataFrame, lacks a declared column or has
            an undeclared one (also with ``isolate_failures``: a wrong declaration is not a
            failure of one unit).
        Exception: whatever the function raises, without ``isolate_failures``.

    Cost with ``isolate_failures``: nothing extra while no unit raises. A raising ``unit``
    call costs only itself; a raising ``batch`` call on n units of which k raise is retried
    on halves, about ``2 k log2(n)`` extra calls over at most ``log2(n)`` times the rows.
    """
    for chunk in chunks:
        if not isolate_failures:
            yield _conformed(chunk, fn, shape, keys, output_columns, function_name)
            continue
        results, failures = _isolated(chunk, fn, shape, keys, output_columns, function_name)
        yield _with_null_status(results, output_columns)
        yield status_frame(chunk, failures, keys, output_columns)


def _conformed(chunk, fn, shape, keys, output_columns, function_name) -> pd.DataFrame:
    if shape == "batch":
        return conform_output(fn(chunk, list(keys)), output_columns, function_name)
    results = [
        _conform_unit(fn(key, unit), key, keys, output_columns, function_name)
        for key, unit in _units(chunk, keys)
    ]
    return _concat_or_empty(results, output_columns)


def _units(chunk: pd.DataFrame, keys: Sequence[str]) -> Iterator[tuple[tuple, pd.DataFrame]]:
    for key, unit in chunk.groupby(list(keys), sort=False, dropna=False):
        yield key, unit.reset_index(drop=True)


def _conform_unit(result, key, keys, output_columns, function_name) -> pd.DataFrame:
    if isinstance(result, pd.DataFrame):
        absent = {n: v for n, v in zip(keys, key) if n not in result.columns}
        result = result.assign(**absent) if absent else result
    return conform_output(result, output_columns, function_name)


def _concat_or_empty(results: list[pd.DataFrame], output_columns: Sequence[str]) -> pd.DataFrame:
    if not results:
        return pd.DataFrame({name: pd.Series(dtype=object) for name in output_columns})
    return results[0] if len(results) == 1 else pd.concat(results, ignore_index=True)


@dataclass(frozen=True)
class UnitFailure:
    """A unit whose function call raised: its key columns (a one-row frame), rows, error text."""

    key_row: pd.DataFrame
    rows: int
    message: str


def _isolated(chunk, fn, shape, keys, output_columns, function_name):
    """``(results, failures)`` of one chunk, every raising unit isolated."""
    if shape == "batch":
        return _bisect_units(chunk, fn, keys, output_columns, function_name)
    results, failures = [], []
    for key, unit in _units(chunk, keys):
        try:
            result = fn(key, unit)
        except Exception as error:  # noqa: BLE001 - any error of the user's code rejects the unit
            failures.append(UnitFailure(unit[list(keys)].iloc[:1], len(unit), describe_error(error)))
            continue
        results.append(_conform_unit(result, key, keys, output_columns, function_name))
    return results, failures


def _bisect_units(chunk, fn, keys, output_columns, function_name):
    """Call ``fn`` on the whole chunk; when it raises, on each half of its units, recursively."""
    try:
        result = fn(chunk, list(keys))
    except Exception as error:  # noqa: BLE001 - any error of the user's code is isolated
        starts = unit_starts(chunk, keys)
        if len(starts) == 1:
            return [], [UnitFailure(chunk[list(keys)].iloc[:1], len(chunk), describe_error(error))]
        middle = int(starts[len(starts) // 2])
        halves = (chunk.iloc[:middle], chunk.iloc[middle:].reset_index(drop=True))
        parts = [_bisect_units(h, fn, keys, output_columns, function_name) for h in halves]
        return parts[0][0] + parts[1][0], parts[0][1] + parts[1][1]
    return [conform_output(result, output_columns, function_name)], []


def unit_starts(chunk: pd.DataFrame, keys: Sequence[str]) -> np.ndarray:
    """Row positions where a unit begins in a chunk grouped by ``keys`` (missing == missing)."""
    new = np.zeros(len(chunk), dtype=bool)
    for key in keys:
        values = chunk[key]
        previous = values.shift(1)
        same = values.eq(previous) | (values.isna() & previous.isna())
        new |= ~same.to_numpy(dtype=bool, na_value=False)
    if len(new):
        new[0] = True
    return np.flatnonzero(new)


def _with_null_status(results: list[pd.DataFrame], output_columns: Sequence[str]) -> pd.DataFrame:
    out = _concat_or_empty(results, output_columns)
    return out.assign(**{name: pd.Series([None] * len(out), dtype=object) for name in STATUS_COLUMNS})


def status_frame(
    chunk: pd.DataFrame, failures: Sequence[UnitFailure], keys: Sequence[str],
    output_columns: Sequence[str],
) -> pd.DataFrame:
    """The status of one chunk: a row per failed unit, then a tally row.

    Returns:
        ``output_columns`` + :data:`STATUS_COLUMNS`. A failed unit's row holds its key values
        (dtypes of the chunk), null outputs, ``_failure`` = ``"Type: message"`` and ``_rows`` =
        its input rows. The tally row holds only ``_rows`` = the input rows of the chunk's
        units that did not raise (``_failure`` and everything else null).
    """
    failed = [
        f.key_row.reset_index(drop=True).assign(**{FAILURE_COLUMN: f.message, ROWS_COLUMN: f.rows})
        for f in failures
    ]
    tally = pd.DataFrame({
        FAILURE_COLUMN: [None], ROWS_COLUMN: [len(chunk) - sum(f.rows for f in failures)]
    })
    frame = pd.concat([*failed, tally], ignore_index=True)
    for name in output_columns:
        if name not in frame.columns:
            frame[name] = pd.Series([None] * len(frame), dtype=object)
    return frame[[*output_columns, *STATUS_COLUMNS]]


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
