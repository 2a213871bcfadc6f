"""Run a unit-of-work function on Spark: the packed engine and the applyInPandas reference.

The packed engine (:func:`apply_packed`) is ``repartition(buckets, *keys)`` +
``sortWithinPartitions(*keys, *order_by)`` + ``mapInPandas``: every partition arrives as a
stream of Arrow batches sorted by unit, :func:`~batch_scoring.udfs.engine.unit_of_work.iter_whole_units`
re-cuts that stream into whole units, and the function runs once per chunk of many units. This
pays Spark's per-call cost once per Arrow batch instead of once per unit (measured on 2 cores:
5,000 units over 2M rows, 47 s with ``groupBy().applyInPandas`` vs 10 s packed).

:func:`apply_reference` is the plain ``groupBy(keys).applyInPandas`` path, one call per unit,
kept as the reference that tests and benchmarks compare the packed engine against.

Both take ``isolate_failures``: a unit whose function call raises is then reported instead of
failing the task, as a status row in the same output (columns
:data:`~batch_scoring.udfs.engine.unit_of_work.STATUS_COLUMNS`); :func:`split_status` separates the
priced rows from the failed units and the row tally.
"""

from __future__ import annotations

import functools
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from batch_scoring.udfs.contract import UnitFunction
from batch_scoring.udfs.engine.unit_of_work import (
    FAILURE_COLUMN,
    ROWS_COLUMN,
    STATUS_COLUMNS,
    apply_to_units,
    check_unit_rows,
    conform_output,
    iter_whole_units,
    join_batches,
)

BUCKET_COLUMN = "_bucket"


def output_ddl(
    df: DataFrame, keys: Sequence[str], function: UnitFunction, with_status: bool = False
) -> str:
    """Return the Spark DDL of the function's output: keys (source types) then its columns.

    ``with_status`` appends the status columns ``_failure string, _rows bigint``.

    Raises:
        ValueError: when an output column repeats a key column with a different type.
    """
    key_types = {k: df.schema[k].dataType.simpleString() for k in keys}
    columns = dict(key_types)
    for name, dtype in function.output_columns.items():
        if name in key_types and key_types[name] != dtype:
            raise ValueError(
                f"function {function.name} declares output column {name!r} as {dtype}, but it "
                f"is a unit-of-work key of type {key_types[name]}"
            )
        columns.setdefault(name, dtype)
    if with_status:
        columns.update(STATUS_COLUMNS)
    return ", ".join(f"`{name}` {dtype}" for name, dtype in columns.items())


def apply_packed(
    df: DataFrame,
    function: UnitFunction,
    bound: Any,
    keys: Sequence[str],
    order_by: Sequence[str],
    buckets: int,
    isolate_failures: bool = False,
    max_unit_rows: int | None = None,
    rows_per_call: int = 1,
) -> DataFrame:
    """Apply a bound unit-of-work function with many whole units per call.

    Args:
        df: the validated input; any schema holding ``keys`` and ``order_by``.
        function: the function's contract (shape, output columns, name).
        bound: the callable with parameters bound (:meth:`UnitFunction.bind`).
        keys: unit-of-work key columns; rows with null keys must have been removed.
        order_by: columns that order rows inside a unit (e.g. a date).
        buckets: number of partitions to hash the units into (>= 1).
        isolate_failures: report units whose call raises as status rows instead of failing
            the task (see :func:`split_status`).
        max_unit_rows: the most rows one unit may have (``unit_of_work.max_unit_rows``),
            checked while a unit is carried across Arrow batches; None = no limit.
        rows_per_call: consecutive Arrow batches are joined until they hold at least this
            many rows before being cut into whole units (1: one Arrow batch at a time). A
            ``batch`` function's fixed cost per call (pandas column assignments, merges) is
            then paid once per this many rows: pricing 580k rows of 12.5k units took 1.21 s
            in 10k-row calls and 0.36 s in 100k-row calls.

    Returns:
        A DataFrame with schema :func:`output_ddl` (with the status columns and ``_bucket``
        int, the bucket the row was computed in, when isolating); one function call per chunk
        of whole units.

    Raises:
        pyspark.errors.PythonException: (when an action runs) wrapping the function's
            error without ``isolate_failures``, a ``FunctionOutputError`` either way, or a
            ``UnitTooLargeError`` for a unit over ``max_unit_rows`` (find its message with
            :func:`~batch_scoring.udfs.engine.unit_of_work.unit_too_large_message`).
    """
    ddl = output_ddl(df, keys, function, isolate_failures)
    columns = _column_names(df, keys, function)
    _ship_user_module(function)
    shape, name, key_list = function.shape, function.name, list(keys)

    def run_partition(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        chunks = iter_whole_units(join_batches(batches, rows_per_call), key_list, max_unit_rows)
        yield from apply_to_units(chunks, bound, shape, key_list, columns, name, isolate_failures)

    applied = (
        df.repartition(buckets, *keys)
        .sortWithinPartitions(*keys, *order_by)
        .mapInPandas(run_partition, ddl)
    )
    # mapInPandas keeps the hash partitioning, so a row's partition is its unit's bucket
    return applied.withColumn(BUCKET_COLUMN, F.spark_partition_id()) if isolate_failures else applied


def apply_summarised(
    df: DataFrame,
    function: UnitFunction,
    params: Any,
    keys: Sequence[str],
    order_by: Sequence[str],
    buckets: int,
    hold: Callable[[DataFrame], DataFrame],
    max_unit_rows: int | None = None,
    rows_per_call: int = 1,
) -> DataFrame:
    """Run a function with :class:`~batch_scoring.udfs.contract.SummaryStages` in one pass
    over ``df``, failures isolated.

    1. ``summarise`` runs packed (:func:`apply_packed`, ``isolate_failures``): one summary row
       per unit plus the status rows (failed units and tallies of input rows), kept by
       ``hold`` (e.g. persisted; the caller releases it after the commit);
    2. ``context`` runs on the driver over the held summaries (its action runs stage 1);
    3. ``finish`` turns each partition's summary rows into output rows
       (``mapInPandas``, no shuffle), passing the status rows through unchanged.

    Args:
        hold: keeps stage 1's output so stage 2 and 3 read it without recomputing the pass.
        Others: as :func:`apply_packed`; ``params`` is what ``validate_params`` returned.

    Returns:
        The same schema as :func:`apply_packed` with ``isolate_failures``: output rows and
        status rows, with ``_bucket``; the tallies count input rows (stage 1's), so
        :func:`split_status` and the per-bucket reconciliation work unchanged.

    Raises:
        pyspark.errors.PythonException: as :func:`apply_packed`; also when ``finish`` raises
            or returns other columns than declared (``FunctionOutputError``).
    """
    stages = function.stages
    summary_function = UnitFunction(
        name=f"{function.name} (summaries)", fn=stages.summarise, shape="batch",
        output_columns=stages.summary_columns,
    )
    summarise = functools.partial(stages.summarise, params=params)
    summaries_raw = hold(apply_packed(df, summary_function, summarise, keys, order_by, buckets,
                                      True, max_unit_rows, rows_per_call))
    summaries = summaries_raw.where(F.col(ROWS_COLUMN).isNull()).drop(*STATUS_COLUMNS, BUCKET_COLUMN)
    context = stages.context(summaries, list(keys), params)
    finish = functools.partial(stages.finish, params=params, context=context)
    output = _column_names(df, keys, function)
    summary_columns = _column_names(df, keys, summary_function)
    ddl = f"{output_ddl(df, keys, function, True)}, `{BUCKET_COLUMN}` int"
    name, key_list = function.name, list(keys)

    def finish_partition(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            is_status = batch[ROWS_COLUMN].notna().to_numpy()
            done = batch[~is_status]
            if len(done):
                result = conform_output(finish(done[summary_columns].reset_index(drop=True),
                                               key_list), output, name)
                yield result.assign(**{c: None for c in STATUS_COLUMNS},
                                    **{BUCKET_COLUMN: _one_bucket(done[BUCKET_COLUMN])})
            if is_status.any():
                yield _status_rows(batch[is_status], key_list, output)

    return summaries_raw.mapInPandas(finish_partition, ddl)


def _one_bucket(buckets: pd.Series) -> int:
    """The bucket of a batch of stage-1 rows: a partition of the held summaries is one bucket
    (``_bucket`` is the partition id stage 1 ran in, and ``mapInPandas`` keeps partitions), so
    ``finish``'s rows, however many per unit, belong to it."""
    values = buckets.unique()
    if len(values) != 1:
        raise AssertionError(f"a batch of unit summaries spans buckets {sorted(values)[:5]}")
    return int(values[0])


def _status_rows(status: pd.DataFrame, keys: list[str], output: list[str]) -> pd.DataFrame:
    """Status rows of stage 1 in the finished schema: output columns other than keys null."""
    rows = status.reset_index(drop=True)
    nulls = {c: pd.Series([None] * len(rows), dtype=object) for c in output if c not in keys}
    return rows[[*keys, *STATUS_COLUMNS, BUCKET_COLUMN]].assign(**nulls)[
        [*output, *STATUS_COLUMNS, BUCKET_COLUMN]]


def apply_reference(
    df: DataFrame,
    function: UnitFunction,
    bound: Any,
    keys: Sequence[str],
    order_by: Sequence[str],
    isolate_failures: bool = False,
    max_unit_rows: int | None = None,
) -> DataFrame:
    """Apply the function with ``groupBy(keys).applyInPandas``: one call per unit of work.

    Same arguments, output and errors as :func:`apply_packed` (status rows: one tally row per
    unit); slower, and kept as the reference. ``max_unit_rows`` is checked on each group's
    pandas frame (Spark has already gathered it) with the same ``UnitTooLargeError``.
    """
    ddl = output_ddl(df, keys, function, isolate_failures)
    columns = _column_names(df, keys, function)
    _ship_user_module(function)
    shape, name, key_list, order = function.shape, function.name, list(keys), list(order_by)
    all_columns = [*columns, *STATUS_COLUMNS] if isolate_failures else columns

    def run_unit(pdf: pd.DataFrame) -> pd.DataFrame:
        check_unit_rows(pdf, key_list, max_unit_rows)
        unit = pdf.sort_values(order, kind="stable").reset_index(drop=True) if order else pdf
        frames = apply_to_units([unit], bound, shape, key_list, columns, name, isolate_failures)
        filled = [frame for frame in frames if len(frame)]
        if len(filled) > 1:
            with warnings.catch_warnings():
                # the tally row is null in every output column: whichever dtype pandas picks
                # for those columns, Arrow converts them to the declared Spark type
                warnings.simplefilter("ignore", FutureWarning)
                return pd.concat(filled, ignore_index=True)
        return filled[0] if filled else pd.DataFrame(columns=all_columns)

    return df.groupBy(*keys).applyInPandas(run_unit, ddl)


@dataclass(frozen=True)
class UnitStatus:
    """What an isolating run of a function produced, split (see :func:`split_status`).

    Attributes:
        priced: the function's output rows: keys and output columns (:func:`output_ddl`).
        failures: one row per unit whose call raised: the key columns and ``_failure``
            (string, ``"Type: message"``).
        rows_priced: input rows of the units that did not raise.
        units_failed: units that raised.
        rows_failed: input rows of the units that raised.
        rows_priced_by_bucket: ``rows_priced`` per bucket (packed engine only, else None).
    """

    priced: DataFrame
    failures: DataFrame
    rows_priced: int
    units_failed: int
    rows_failed: int
    rows_priced_by_bucket: dict[int, int] | None = None


def split_status(raw: DataFrame, keys: Sequence[str]) -> UnitStatus:
    """Split an isolating run's output into priced rows, failed units and counts.

    ``raw`` is :func:`apply_packed`/:func:`apply_reference` output with ``isolate_failures``;
    persist it first: the counts are one aggregation over it, by bucket when it has
    ``_bucket`` (the action that runs the function), and ``priced``/``failures`` are lazy
    filters over it that read it again.
    """
    status = F.col(ROWS_COLUMN).isNotNull()
    failed = F.col(FAILURE_COLUMN).isNotNull()
    by_bucket = BUCKET_COLUMN in raw.columns
    counts = raw.groupBy(*([BUCKET_COLUMN] if by_bucket else [])).agg(
        F.sum(F.when(status & ~failed, F.col(ROWS_COLUMN))).alias("priced"),
        F.count(F.when(failed, True)).alias("units"),
        F.sum(F.when(failed, F.col(ROWS_COLUMN))).alias("failed"),
    ).collect()
    priced = {int(r[BUCKET_COLUMN]) if by_bucket else 0: int(r["priced"] or 0) for r in counts}
    return UnitStatus(
        priced=raw.where(~status).drop(*STATUS_COLUMNS, BUCKET_COLUMN),
        failures=raw.where(failed).select(*keys, FAILURE_COLUMN),
        rows_priced=sum(priced.values()),
        units_failed=sum(int(r["units"]) for r in counts),
        rows_failed=sum(int(r["failed"] or 0) for r in counts),
        rows_priced_by_bucket=priced if by_bucket else None,
    )


def bucket_of(keys: Sequence[str], buckets: int):
    """The bucket ``repartition(buckets, *keys)`` puts a row in, as a Column (int).

    Spark's hash partitioning: ``pmod(murmur3_hash(keys, seed 42), buckets)``, which is what
    ``F.hash`` computes (Spark ``HashPartitioning.partitionIdExpression``).
    """
    return F.pmod(F.hash(*keys), F.lit(buckets))


def _column_names(df: DataFrame, keys: Sequence[str], function: UnitFunction) -> list[str]:
    return list(dict.fromkeys([*keys, *function.output_columns]))


def _ship_user_module(function: UnitFunction) -> None:
    """Pickle a user's function module by value, so executors need not have it installed."""
    module_name = getattr(function.fn, "__module__", None)
    if not module_name or module_name.startswith("batch_scoring."):
        return
    from pyspark import cloudpickle

    module = sys.modules.get(module_name)
    if module is not None and module_name != "__main__":
        cloudpickle.register_pickle_by_value(module)
