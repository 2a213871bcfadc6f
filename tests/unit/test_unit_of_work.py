"""Unit tests for batch_scoring.udfs.engine.unit_of_work (pandas only).

The core guarantee: every unit of work arrives whole, exactly once, and a chunk never holds
part of a unit, whatever the batch boundaries are.
"""

from __future__ import annotations

import math
import random
from collections import Counter

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest

from batch_scoring.udfs.engine.unit_of_work import (
    FunctionOutputError,
    UnitTooLargeError,
    _last_unit_start,
    apply_to_units,
    check_unit_rows,
    conform_output,
    iter_whole_units,
    join_batches,
    unit_starts,
    unit_too_large_message,
)

# --------------------------------------------------------------------------- helpers


def frame(keys: dict[str, list], n: int | None = None) -> pd.DataFrame:
    """Key columns plus a row counter and a value column."""
    n = len(next(iter(keys.values()))) if n is None else n
    return pd.DataFrame(
        {**keys, "row": np.arange(n, dtype=np.int64), "value": np.arange(n, dtype=np.float64) / 4}
    )


def cut(df: pd.DataFrame, sizes: list[int]) -> list[pd.DataFrame]:
    """Slice ``df`` into consecutive batches of the given sizes (0 = an empty batch)."""
    batches, start = [], 0
    for size in sizes:
        batches.append(df.iloc[start : start + size])
        start += size
    assert start == len(df), "sizes must cover the frame"
    return batches


def unit_rows(chunk: pd.DataFrame, keys: list[str]) -> Counter:
    """Rows per unit key of a frame, nulls normalised to one marker, in order of appearance."""
    return Counter(
        tuple("<null>" if pd.isna(v) else v for v in row)
        for row in chunk[keys].itertuples(index=False, name=None)
    )


def check_whole_units(
    df: pd.DataFrame, chunks: list[pd.DataFrame], keys: list[str], batches: list[pd.DataFrame]
) -> None:
    """Assert the unit-of-work guarantee of iter_whole_units for one input."""
    rows_per_unit = unit_rows(df, keys)

    # 1. nothing dropped, duplicated or reordered; dtypes kept.
    if chunks:
        pdt.assert_frame_equal(pd.concat(chunks, ignore_index=True), df.reset_index(drop=True))
    else:
        assert df.empty
    seen: set[tuple] = set()
    largest_batch = max((len(b) for b in batches), default=0)
    largest_unit = max(rows_per_unit.values(), default=0)
    for chunk in chunks:
        # 2. every chunk is non-empty, with a fresh RangeIndex and the input's columns.
        assert len(chunk) > 0
        assert chunk.index.equals(pd.RangeIndex(len(chunk)))
        assert list(chunk.columns) == list(df.columns)
        # 3. no unit appears in two chunks, and each unit in a chunk has all of its rows.
        counts = unit_rows(chunk, keys)
        assert seen.isdisjoint(counts), f"unit(s) {seen & set(counts)} split across chunks"
        seen.update(counts)
        for uid, n in counts.items():
            assert n == rows_per_unit[uid], f"unit {uid}: {n} of {rows_per_unit[uid]} rows"
        # 4. the work per chunk is bounded by a batch plus the largest unit.
        assert len(chunk) <= largest_batch + largest_unit
    assert seen == set(rows_per_unit)


def random_sorted_frame(rng: random.Random, kind: str) -> tuple[pd.DataFrame, list[str]]:
    """Random key-sorted data: 0..12 units of 1..9 rows (sometimes one of 40 rows)."""
    n_units = rng.randint(0, 12)
    sizes = [rng.randint(1, 9) for _ in range(n_units)]
    if sizes and rng.random() < 0.3:
        sizes[rng.randrange(len(sizes))] = 40
    if kind == "str":
        names = sorted(rng.sample([f"u{i:03d}" for i in range(200)], n_units))
        keys = {"unit": [name for name, size in zip(names, sizes) for _ in range(size)]}
    elif kind == "int":
        values = sorted(rng.sample(range(-1000, 1000), n_units))
        keys = {"unit": np.repeat(np.array(values, dtype=np.int64), sizes)}
    elif kind == "two":
        pairs = sorted(rng.sample([(s, h) for s in "abcd" for h in range(24)], n_units))
        keys = {
            "cell": [s for (s, _), size in zip(pairs, sizes) for _ in range(size)],
            "hour": np.repeat(np.array([h for _, h in pairs], dtype=np.int64), sizes),
        }
    elif kind == "float_nan":
        # sorted with NaN last, as Spark sorts nulls; the NaN rows form one unit.
        values = sorted(rng.sample(range(100), n_units))
        floats = [float(v) / 2 for v in values]
        if floats and rng.random() < 0.7:
            floats[-1] = math.nan
        keys = {"unit": np.repeat(np.array(floats, dtype=np.float64), sizes)}
    else:
        raise AssertionError(kind)
    n = sum(sizes)
    df = frame({k: (v if len(v) else np.array([], dtype=np.int64)) for k, v in keys.items()}, n)
    return df, list(keys)


def random_sizes(rng: random.Random, total: int) -> list[int]:
    """Batch sizes summing to ``total``: many 1s and 0s (empty batches), some larger."""
    sizes, left = [], total
    while left > 0 or rng.random() < 0.3:
        size = rng.choice([0, 1, 1, rng.randint(1, 5), rng.randint(1, 20), rng.randint(1, 60)])
        size = min(size, left)
        sizes.append(size)
        left -= size
        if left == 0 and rng.random() < 0.5:
            break
    return sizes


# --------------------------------------------------------------------------- property test


@pytest.mark.parametrize("kind", ["str", "int", "two", "float_nan"])
def test_every_unit_arrives_whole_exactly_once(kind):
    for seed in range(60):
        rng = random.Random(f"{kind}-{seed}")
        df, keys = random_sorted_frame(rng, kind)
        batches = cut(df, random_sizes(rng, len(df)))
        try:
            chunks = list(iter_whole_units(iter(batches), keys))
            check_whole_units(df, chunks, keys, batches)
        except AssertionError as error:
            raise AssertionError(
                f"kind={kind} seed={seed} batch sizes={[len(b) for b in batches]}: {error}"
            ) from error


@pytest.mark.parametrize("min_rows", [2, 7, 50])
def test_joined_batches_still_give_every_unit_whole_exactly_once(min_rows):
    for seed in range(40):
        rng = random.Random(f"join-{min_rows}-{seed}")
        df, keys = random_sorted_frame(rng, "two")
        batches = cut(df, random_sizes(rng, len(df)))
        joined = list(join_batches(iter(batches), min_rows))
        assert all(len(j) >= min_rows for j in joined[:-1]), [len(j) for j in joined]
        check_whole_units(df, list(iter_whole_units(iter(joined), keys)), keys, joined)


def test_join_batches_gathers_at_least_min_rows_in_order():
    df = frame({"unit": list("abcdefghij"), "v": range(10)})
    joined = list(join_batches(iter(cut(df, [3, 0, 2, 4, 1])), 5))
    assert [j["v"].tolist() for j in joined] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    assert [list(j.index) for j in joined] == [list(range(5)), list(range(5))]


def test_join_batches_keeps_a_short_tail_and_passes_frames_through_at_one():
    df = frame({"unit": list("abcdefg")})
    batches = cut(df, [3, 3, 1])
    assert [len(j) for j in join_batches(iter(batches), 4)] == [6, 1]
    assert [len(j) for j in join_batches(iter(batches), 1)] == [3, 3, 1]
    assert [list(j.index) for j in join_batches(iter(batches), 1)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert [list(j.index) for j in join_batches(iter(batches), 0)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(join_batches(iter([df.iloc[:0]]), 4)) == []


def test_join_batches_counts_afresh_after_each_joined_frame():
    df = frame({"unit": list("abcdefghijkl")})
    assert [len(j) for j in join_batches(iter(cut(df, [2] * 6)), 4)] == [4, 4, 4]


def test_units_grouped_in_descending_key_order_are_not_merged_across_batches():
    df = frame({"unit": ["b", "b", "a", "a"]})

    chunks = list(iter_whole_units(cut(df, [2, 2]), ["unit"]))

    assert [chunk["unit"].tolist() for chunk in chunks] == [["b", "b"], ["a", "a"]]


def test_property_generator_covers_the_edge_cases():
    """Guard against a generator that silently stops producing the cases the test relies on."""
    empty_batches = singles = straddles = 0
    for seed in range(60):
        rng = random.Random(f"two-{seed}")
        df, keys = random_sorted_frame(rng, "two")
        batches = cut(df, random_sizes(rng, len(df)))
        empty_batches += sum(b.empty for b in batches)
        singles += sum(len(b) == 1 for b in batches)
        edges = np.cumsum([len(b) for b in batches])[:-1] if batches else []
        straddles += sum(
            0 < e < len(df) and tuple(df[keys].iloc[e - 1]) == tuple(df[keys].iloc[e]) for e in edges
        )
    assert empty_batches > 30 and singles > 30 and straddles > 30


# --------------------------------------------------------------------------- specific cases


def test_unit_straddling_two_batches():
    df = frame({"unit": ["a"] * 3 + ["b"] * 4 + ["c"] * 2})
    chunks = list(iter_whole_units(cut(df, [5, 4]), ["unit"]))

    assert [c["unit"].tolist() for c in chunks] == [["a"] * 3, ["b"] * 4, ["c"] * 2]
    pdt.assert_frame_equal(chunks[1], df.iloc[3:7].reset_index(drop=True))


def test_one_huge_unit_spanning_fifty_batches():
    # batch 0: a x3 + big x7; batches 1..48: big x10; batch 49: big x5 + z x5.
    units = ["a"] * 3 + ["big"] * (7 + 48 * 10 + 5) + ["z"] * 5
    df = frame({"unit": units})
    batches = cut(df, [10] * 49 + [10])
    assert sum("big" in set(b["unit"]) for b in batches) == 50

    chunks = list(iter_whole_units(batches, ["unit"]))

    assert [c["unit"].iloc[0] for c in chunks] == ["a", "big", "z"]
    assert [len(c) for c in chunks] == [3, 492, 5]
    pdt.assert_frame_equal(chunks[1], df.iloc[3:495].reset_index(drop=True))


def test_a_stream_of_one_unit_is_one_chunk():
    df = frame({"unit": [7] * 500})

    chunks = list(iter_whole_units(cut(df, [10] * 50), ["unit"]))

    assert len(chunks) == 1
    pdt.assert_frame_equal(chunks[0], df)


def test_only_empty_batches_yield_nothing():
    empty = frame({"unit": []}, 0)

    assert list(iter_whole_units([empty] * 5, ["unit"])) == []


def test_empty_iterator_yields_nothing():
    assert list(iter_whole_units(iter([]), ["unit"])) == []


def test_each_batch_one_whole_unit():
    df = frame({"unit": ["a"] * 2 + ["b"] * 3 + ["c"]})
    batches = cut(df, [2, 3, 1])

    chunks = list(iter_whole_units(batches, ["unit"]))

    assert len(chunks) == 3
    for chunk, batch in zip(chunks, batches):
        pdt.assert_frame_equal(chunk, batch.reset_index(drop=True))


def test_unit_cut_exactly_at_batch_boundary_is_merged():
    df = frame({"unit": ["a"] * 2 + ["b"] * 2 + ["b"] * 3 + ["c"]})

    chunks = list(iter_whole_units(cut(df, [2, 2, 3, 1]), ["unit"]))

    assert [c["unit"].tolist() for c in chunks] == [["a"] * 2, ["b"] * 5, ["c"]]


def test_two_column_key_units_differ_in_second_column_only():
    df = frame({"cell": ["x"] * 6, "hour": [1, 1, 2, 2, 2, 3]})

    chunks = list(iter_whole_units(cut(df, [3, 1, 2]), ["cell", "hour"]))

    assert [c["hour"].tolist() for c in chunks] == [[1, 1], [2, 2, 2], [3]]


@pytest.mark.parametrize(
    "nulls",
    [
        pytest.param([None, None, None], id="object-None"),
        pytest.param([np.nan, np.nan, np.nan], id="float-NaN"),
        pytest.param([pd.NaT, pd.NaT, pd.NaT], id="datetime-NaT"),
    ],
)
def test_null_key_values_form_one_unit(nulls):
    first = pd.Timestamp("2024-01-01") if nulls[0] is pd.NaT else ("a" if nulls[0] is None else 1.0)
    df = frame({"unit": pd.Series([first, first, *nulls])})

    chunks = list(iter_whole_units(cut(df, [1, 2, 1, 0, 1]), ["unit"]))

    assert [len(c) for c in chunks] == [2, 3]
    assert chunks[1]["unit"].isna().all()
    pdt.assert_frame_equal(pd.concat(chunks, ignore_index=True), df)


def test_null_in_one_column_of_a_two_column_key():
    df = frame({"seg": ["a", "a", "a", "a", "b"], "loc": [1.0, np.nan, np.nan, np.nan, np.nan]})

    chunks = list(iter_whole_units(cut(df, [2, 1, 2]), ["seg", "loc"]))

    assert [c["row"].tolist() for c in chunks] == [[0], [1, 2, 3], [4]]


@pytest.mark.parametrize(
    "column",
    [
        pytest.param(pd.array([1, 1, None, None, None], dtype="Int64"), id="Int64"),
        pytest.param(pd.array(["a", "a", None, None, None], dtype="string"), id="string"),
    ],
)
def test_nullable_dtype_null_keys_form_one_unit(column):
    df = frame({"unit": column})

    chunks = list(iter_whole_units(cut(df, [3, 1, 1]), ["unit"]))

    assert [c["row"].tolist() for c in chunks] == [[0, 1], [2, 3, 4]]


def test_chunks_are_yielded_while_the_stream_is_read():
    """A completed unit is yielded before later batches are pulled (no whole-partition buffer)."""
    df = frame({"unit": ["a", "b", "b", "c", "c", "d"]})
    pulled = []

    def stream():
        for i, batch in enumerate(cut(df, [2, 2, 2])):
            pulled.append(i)
            yield batch

    chunks = iter_whole_units(stream(), ["unit"])

    assert next(chunks)["unit"].tolist() == ["a"]
    assert pulled == [0]
    assert next(chunks)["unit"].tolist() == ["b", "b"]
    assert pulled == [0, 1]


def test_input_batches_are_not_modified():
    df = frame({"unit": ["a", "a", "b", "b", "c"]})
    batches = cut(df, [3, 2])
    copies = [b.copy() for b in batches]

    for chunk in iter_whole_units(batches, ["unit"]):
        chunk["value"] = -1.0

    for batch, original in zip(batches, copies):
        pdt.assert_frame_equal(batch, original)


# --------------------------------------------------------------------------- apply_to_units


KEYS = ["seg", "loc"]
SALES = pd.DataFrame(
    {
        "seg": ["a", "a", "a", "a", "b", "b"],
        "loc": [1, 1, 2, 2, 1, 1],
        "price": [1.0, 3.0, 10.0, 20.0, 5.0, 7.0],
    }
)


def test_unit_shape_calls_fn_once_per_whole_unit_and_fills_keys():
    calls = []

    def summarise(key, pdf):
        calls.append((key, pdf.copy()))
        return pd.DataFrame({"total": [pdf["price"].sum()], "n": [len(pdf)]})

    chunks = list(iter_whole_units(cut(SALES, [3, 1, 2]), KEYS))
    out = list(
        apply_to_units(chunks, summarise, "unit", KEYS, ["seg", "loc", "n", "total"], "m:summarise")
    )

    assert [key for key, _ in calls] == [("a", 1), ("a", 2), ("b", 1)]
    pdt.assert_frame_equal(calls[0][1], SALES.iloc[0:2].reset_index(drop=True))
    pdt.assert_frame_equal(calls[1][1], SALES.iloc[2:4].reset_index(drop=True))
    pdt.assert_frame_equal(calls[2][1], SALES.iloc[4:6].reset_index(drop=True))
    assert len(out) == len(chunks)
    pdt.assert_frame_equal(
        pd.concat(out, ignore_index=True),
        pd.DataFrame(
            {"seg": ["a", "a", "b"], "loc": [1, 2, 1], "n": [2, 2, 2], "total": [4.0, 30.0, 12.0]}
        ),
    )


def test_unit_shape_calls_units_in_input_order_not_sorted_order():
    chunk = pd.DataFrame({"seg": ["b", "b", "a"], "loc": [2, 2, 1], "price": [1.0, 2.0, 5.0]})
    seen = []

    def total(key, pdf):
        seen.append(key)
        return pd.DataFrame({"total": [pdf["price"].sum()]})

    out = list(apply_to_units([chunk], total, "unit", KEYS, ["seg", "loc", "total"], "f"))

    assert seen == [("b", 2), ("a", 1)]
    assert out[0].values.tolist() == [["b", 2, 3.0], ["a", 1, 5.0]]


def test_unit_shape_keeps_key_columns_the_function_returned():
    def relabel(key, pdf):
        # returns `seg` (changed) but not `loc`, two rows per unit, columns out of order.
        return pd.DataFrame({"price": pdf["price"] * 2, "seg": key[0].upper()})

    out = list(apply_to_units([SALES], relabel, "unit", KEYS, ["seg", "loc", "price"], "m:f"))

    assert len(out) == 1
    pdt.assert_frame_equal(
        out[0],
        pd.DataFrame(
            {
                "seg": ["A", "A", "A", "A", "B", "B"],
                "loc": [1, 1, 2, 2, 1, 1],
                "price": [2.0, 6.0, 20.0, 40.0, 10.0, 14.0],
            }
        ),
    )


def test_unit_shape_passes_null_key_unit_whole():
    df = pd.DataFrame({"seg": ["a", None, None], "price": [1.0, 2.0, 3.0]})
    calls = []

    def count(key, pdf):
        calls.append(len(pdf))
        return pd.DataFrame({"n": [len(pdf)]})

    out = list(apply_to_units([df], count, "unit", ["seg"], ["seg", "n"], "m:count"))

    assert calls == [1, 2]
    assert out[0]["n"].tolist() == [1, 2]
    assert out[0]["seg"].iloc[0] == "a"
    assert pd.isna(out[0]["seg"].iloc[1])


def test_unit_shape_empty_chunk_gives_empty_declared_columns():
    out = list(
        apply_to_units([SALES.iloc[0:0]], lambda k, p: 1 / 0, "unit", KEYS, ["seg", "loc", "n"], "f")
    )

    assert len(out) == 1
    assert out[0].empty
    assert list(out[0].columns) == ["seg", "loc", "n"]


def test_unit_shape_wrong_result_raises_with_function_name():
    with pytest.raises(FunctionOutputError, match=r"function m:bad returned NoneType"):
        list(apply_to_units([SALES], lambda key, pdf: None, "unit", KEYS, ["seg", "loc"], "m:bad"))

    def extra(key, pdf):
        return pd.DataFrame({"total": [1.0], "oops": [1]})

    with pytest.raises(FunctionOutputError, match=r"missing \['n'\], undeclared \['oops'\]"):
        list(apply_to_units([SALES], extra, "unit", KEYS, ["seg", "loc", "n", "total"], "m:extra"))


def test_batch_shape_calls_fn_once_per_chunk():
    calls = []

    def totals(pdf, keys):
        calls.append((pdf.copy(), keys))
        out = pdf.groupby(keys, as_index=False, sort=False)["price"].sum()
        return out.rename(columns={"price": "total"})[["total", *keys]]

    chunks = list(iter_whole_units(cut(SALES, [3, 1, 2]), KEYS))
    out = list(apply_to_units(chunks, totals, "batch", tuple(KEYS), ["seg", "loc", "total"], "f"))

    assert len(calls) == len(chunks) == len(out) == 3
    for (pdf, keys), chunk in zip(calls, chunks):
        pdt.assert_frame_equal(pdf, chunk)
        assert keys == KEYS and type(keys) is list
    assert [list(o.columns) for o in out] == [["seg", "loc", "total"]] * 3
    pdt.assert_frame_equal(
        pd.concat(out, ignore_index=True),
        pd.DataFrame({"seg": ["a", "a", "b"], "loc": [1, 2, 1], "total": [4.0, 30.0, 12.0]}),
    )


def test_a_batch_shape_read_from_config_text_is_compared_by_value():
    shape = "".join(["bat", "ch"])  # equal to "batch" but not the same object, as parsed from YAML
    calls = []

    def totals(pdf, keys):
        calls.append(len(pdf))
        out = pdf.groupby(keys, as_index=False, sort=False)["price"].sum()
        return out.rename(columns={"price": "total"})

    out = list(apply_to_units([SALES], totals, shape, KEYS, ["seg", "loc", "total"], "f"))
    isolated = list(apply_to_units([SALES], totals, shape, KEYS, ["seg", "loc", "total"], "f", True))

    assert calls == [len(SALES), len(SALES)]
    assert out[0]["total"].tolist() == isolated[0]["total"].tolist() == [4.0, 30.0, 12.0]


def test_batch_shape_does_not_fill_keys():
    with pytest.raises(FunctionOutputError, match=r"function m:f .*missing \['seg', 'loc'\]"):
        list(
            apply_to_units(
                [SALES], lambda pdf, keys: pdf[["price"]], "batch", KEYS, ["seg", "loc", "price"], "m:f"
            )
        )


# --------------------------------------------------------------------------- conform_output


def test_conform_output_reorders_columns():
    result = pd.DataFrame({"b": [1, 2], "c": ["x", "y"], "a": [0.5, 1.5]})

    out = conform_output(result, ["a", "b", "c"], "f")

    assert list(out.columns) == ["a", "b", "c"]
    assert out["a"].tolist() == [0.5, 1.5]
    assert out["c"].tolist() == ["x", "y"]


@pytest.mark.parametrize(
    ("columns", "missing", "undeclared"),
    [
        (["a", "b"], ["c"], []),
        (["a", "b", "c", "extra"], [], ["extra"]),
        (["b", "zz"], ["a", "c"], ["zz"]),
    ],
)
def test_conform_output_names_missing_and_undeclared(columns, missing, undeclared):
    result = pd.DataFrame({c: [1] for c in columns})

    with pytest.raises(FunctionOutputError) as info:
        conform_output(result, ["a", "b", "c"], "my_prices:summarise")

    message = str(info.value)
    assert message.startswith("function my_prices:summarise returned columns that differ")
    assert f"missing {missing}, undeclared {undeclared}" in message
    assert "Return exactly ['a', 'b', 'c']" in message


@pytest.mark.parametrize(
    ("result", "type_name"),
    [({"a": [1]}, "dict"), (None, "NoneType"), (pd.Series([1.0], name="a"), "Series")],
)
def test_conform_output_rejects_non_dataframe(result, type_name):
    with pytest.raises(FunctionOutputError) as info:
        conform_output(result, ["a"], "m:f")

    assert str(info.value) == f"function m:f returned {type_name}, expected a pandas DataFrame"


def test_conform_output_columnless_empty_frame_becomes_declared_empty():
    out = conform_output(pd.DataFrame(), ["seg", "total"], "f")

    assert out.empty
    assert list(out.columns) == ["seg", "total"]


def test_conform_output_checks_the_columns_of_an_empty_result_too():
    with pytest.raises(FunctionOutputError, match=r"missing \['total'\], undeclared \['oops'\]"):
        conform_output(pd.DataFrame({"seg": [], "oops": []}), ["seg", "total"], "f")

    typed = pd.DataFrame({"total": pd.Series([], dtype="float64"), "seg": pd.Series([], dtype=object)})
    out = conform_output(typed, ["seg", "total"], "f")
    assert out.dtypes.astype(str).tolist() == ["object", "float64"]


def test_function_output_error_is_a_value_error():
    assert issubclass(FunctionOutputError, ValueError)


# --------------------------------------------------------------------------- max_unit_rows


def too_large_text(key: str, rows: int, limit: int) -> str:
    return (
        f"unit of work ({key}) has {rows} rows so far, more than unit_of_work.max_unit_rows = "
        f"{limit}; a unit is processed whole by one Python worker: raise "
        "unit_of_work.max_unit_rows (--set unit_of_work.max_unit_rows=N) if the executors have "
        "the memory, or split such units with finer unit_of_work.keys"
    )


def test_a_carried_unit_over_the_limit_stops_the_stream_before_it_is_read_whole():
    df = frame({"seg": ["a"] * 3 + ["big"] * 95 + ["z"] * 2, "loc": [np.int64(7)] * 100})
    pulled = []

    def stream():
        for i, batch in enumerate(cut(df, [10] * 10)):
            pulled.append(i)
            yield batch

    chunks = iter_whole_units(stream(), ["seg", "loc"], max_unit_rows=25)
    assert next(chunks)["seg"].tolist() == ["a"] * 3
    with pytest.raises(UnitTooLargeError) as info:
        next(chunks)

    assert str(info.value) == too_large_text("seg='big', loc=7", 27, 25)
    assert pulled == [0, 1, 2]  # 7 + 10 + 10 rows carried: stopped at the third batch


def test_a_unit_over_the_limit_inside_one_batch_is_found_with_its_exact_size():
    df = frame({"unit": ["a"] * 2 + ["big"] * 30 + ["z"] * 3})

    with pytest.raises(UnitTooLargeError) as info:
        list(iter_whole_units([df], ["unit"], max_unit_rows=29))

    assert str(info.value) == too_large_text("unit='big'", 30, 29)


def test_a_trailing_unit_over_the_limit_in_its_first_batch_stops_the_stream():
    df = frame({"unit": ["a"] * 2 + ["big"] * 8})
    chunks = iter_whole_units([df, frame({"unit": ["z"]})], ["unit"], max_unit_rows=5)

    assert next(chunks)["unit"].tolist() == ["a", "a"]
    with pytest.raises(UnitTooLargeError) as info:
        next(chunks)
    assert str(info.value) == too_large_text("unit='big'", 8, 5)


def test_of_two_units_over_the_limit_in_one_chunk_the_first_is_named():
    df = frame({"unit": ["a"] * 2 + ["big"] * 30 + ["huge"] * 40 + ["z"] * 3})

    with pytest.raises(UnitTooLargeError) as info:
        list(iter_whole_units([df], ["unit"], max_unit_rows=29))

    assert str(info.value) == too_large_text("unit='big'", 30, 29)


def test_a_unit_starting_on_the_last_row_of_a_batch_is_named_when_it_grows_over_the_limit():
    chunks = iter_whole_units([frame({"unit": ["a", "a", "big"]}), frame({"unit": ["big"] * 6})], ["unit"], 5)

    assert next(chunks)["unit"].tolist() == ["a", "a"]
    with pytest.raises(UnitTooLargeError) as info:
        next(chunks)
    assert str(info.value) == too_large_text("unit='big'", 7, 5)


def test_a_unit_of_exactly_the_limit_passes_when_carried_and_inside_a_longer_chunk():
    df = frame({"unit": ["a"] * 4 + ["b"] + ["c"] * 4 + ["d"]})

    chunks = list(iter_whole_units(cut(df, [2, 2, 6]), ["unit"], max_unit_rows=4))

    assert [chunk["unit"].tolist() for chunk in chunks] == [["a"] * 4 + ["b"] + ["c"] * 4, ["d"]]


def test_units_at_the_limit_pass_unchanged():
    df = frame({"unit": ["a"] * 4 + ["b"] * 4 + ["c"] * 3})
    batches = cut(df, [3, 3, 5])

    limited = list(iter_whole_units(batches, ["unit"], max_unit_rows=4))

    unlimited = list(iter_whole_units(batches, ["unit"]))
    assert len(limited) == len(unlimited)
    for got, expected in zip(limited, unlimited):
        pdt.assert_frame_equal(got, expected)


def test_check_unit_rows_and_the_message_found_in_a_spark_error_text():
    unit = frame({"cell": ["C1"] * 6, "hour": [np.int32(24)] * 6})
    check_unit_rows(unit, ["cell", "hour"], 6)
    check_unit_rows(unit, ["cell", "hour"], 7)
    check_unit_rows(unit, ["cell", "hour"], None)
    with pytest.raises(UnitTooLargeError) as info:
        check_unit_rows(unit, ["cell", "hour"], 5)

    message = too_large_text("cell='C1', hour=24", 6, 5)
    assert str(info.value) == message
    spark_text = (
        "An exception was thrown from the Python worker. Please see the stack trace below.\n"
        "Traceback (most recent call last):\n  File \"x.py\", line 1, in f\n"
        f"batch_scoring.udfs.engine.unit_of_work.UnitTooLargeError: {message}\n\n\tat org.apache..."
    )
    assert unit_too_large_message(spark_text) == message
    assert unit_too_large_message("ValueError: something else") is None


def test_a_nullable_integer_key_holding_na_splits_units_at_each_change():
    """An Int64 key with <NA> (Arrow gives nullable dtypes) compares NA == NA, value != NA."""
    chunk = pd.DataFrame({"k": pd.array([1, 1, None, None, 2], dtype="Int64")})
    assert unit_starts(chunk, ["k"]).tolist() == [0, 2, 4]
    assert _last_unit_start(chunk, ["k"]) == 4
    assert _last_unit_start(chunk.iloc[:4], ["k"]) == 2


def test_a_batch_ending_on_an_na_key_is_not_merged_with_a_next_batch_starting_on_a_value():
    first = pd.DataFrame({"k": pd.array([1, None], dtype="Int64"), "row": [0, 1]})
    second = pd.DataFrame({"k": pd.array([2, 2], dtype="Int64"), "row": [2, 3]})
    third = pd.DataFrame({"k": pd.array([None], dtype="Int64"), "row": [4]})

    chunks = list(iter_whole_units([first, second, third], ["k"]))

    assert [chunk["row"].tolist() for chunk in chunks] == [[0], [1], [2, 3], [4]]


@pytest.mark.parametrize("tail", [1, 2, 3, 7, 64, 100])
@pytest.mark.parametrize("rows", [1, 2, 5, 100, 1_000])
def test_the_last_unit_start_is_found_at_every_length_of_batch_and_tail(rows, tail):
    tail = min(tail, rows)
    head = rows - tail
    batch = pd.DataFrame({
        "a": ["x"] * head + ["y"] * tail,
        "same_a": ["x"] * rows,
        "b": pd.array([*range(head), *([None] * tail)], dtype="Int64"),
    })
    assert _last_unit_start(batch, ["a"]) == head
    assert _last_unit_start(batch, ["same_a"]) == 0
    # the unit is told apart by its second key only, a missing value equal to itself
    assert _last_unit_start(batch, ["same_a", "b"]) == head
