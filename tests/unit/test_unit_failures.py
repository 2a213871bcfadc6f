"""A unit whose function raises is isolated and reported; every other unit is priced (pandas only)."""

from __future__ import annotations

import pandas as pd
import pandas.testing as pdt
import pytest

from batch_scoring.udfs.contract import describe_error
from batch_scoring.udfs.engine.unit_of_work import (
    FunctionOutputError,
    apply_to_units,
    unit_starts,
)

KEYS = ["seg", "loc"]
OUT = ["seg", "loc", "total"]
SALES = pd.DataFrame({
    "seg": ["a", "a", "a", "b", "b", "c", "d", "d"],
    "loc": [1, 1, 2, 1, 1, 1, 1, 1],
    "price": [1.0, 3.0, 10.0, 5.0, -7.0, 2.0, 4.0, 4.0],
})  # units (a,1) 2 rows, (a,2) 1, (b,1) 2 with a negative price, (c,1) 1, (d,1) 2


def per_unit(key, pdf):
    if (pdf["price"] < 0).any():
        raise ValueError(f"negative price in segment {key[0]}")
    return pd.DataFrame({"total": [pdf["price"].sum()]})


def status_of(frames):
    """(output rows, failed-unit rows, tally) of one chunk's two frames."""
    output, status = frames
    failed = status[status["_failure"].notna()].reset_index(drop=True)
    tally = status[status["_failure"].isna()]["_rows"].tolist()
    return output, failed, tally


def test_a_raising_unit_is_reported_with_its_key_rows_and_error_and_the_others_are_priced():
    frames = list(apply_to_units([SALES], per_unit, "unit", KEYS, OUT, "m:per_unit", True))
    output, failed, tally = status_of(frames)
    assert len(frames) == 2
    pdt.assert_frame_equal(
        output[OUT],
        pd.DataFrame({"seg": ["a", "a", "c", "d"], "loc": [1, 2, 1, 1], "total": [4.0, 10.0, 2.0, 8.0]}),
    )
    assert output["_failure"].isna().all() and output["_rows"].isna().all()
    assert failed[["seg", "loc", "_failure", "_rows"]].values.tolist() == [
        ["b", 1, "ValueError: negative price in segment b", 2],
    ]
    assert failed["total"].isna().all()
    assert tally == [6]


def test_a_batch_call_that_raises_is_retried_on_halves_until_the_raising_units_stand_alone():
    calls = []

    def totals(pdf, keys):
        calls.append(sorted(set(zip(pdf["seg"], pdf["loc"]))))
        if (pdf["price"] < 0).any() or (pdf["seg"] == "d").any():
            raise ZeroDivisionError("bad batch")
        return pdf.groupby(keys, as_index=False, sort=False)["price"].sum().rename(columns={"price": "total"})

    frames = list(apply_to_units([SALES], totals, "batch", KEYS, OUT, "m:totals", True))
    output, failed, tally = status_of(frames)
    assert pd.concat([output]).sort_values(KEYS)[OUT].values.tolist() == [
        ["a", 1, 4.0], ["a", 2, 10.0], ["c", 1, 2.0],
    ]
    assert failed[["seg", "loc", "_failure", "_rows"]].values.tolist() == [
        ["b", 1, "ZeroDivisionError: bad batch", 2], ["d", 1, "ZeroDivisionError: bad batch", 2],
    ]
    assert tally == [4]
    # 5 units: all; then (a1, a2) | (b1, c1, d1); then (b1) | (c1, d1); then (c1) | (d1)
    assert calls == [
        [("a", 1), ("a", 2), ("b", 1), ("c", 1), ("d", 1)],
        [("a", 1), ("a", 2)],
        [("b", 1), ("c", 1), ("d", 1)],
        [("b", 1)],
        [("c", 1), ("d", 1)],
        [("c", 1)],
        [("d", 1)],
    ]


def test_sub_batches_keep_units_whole_and_start_at_index_zero():
    seen = []

    def check(pdf, keys):
        seen.append((pdf.index.tolist(), len(pdf)))
        if len(pdf) == len(SALES):
            raise RuntimeError("too big")
        return pdf.groupby(keys, as_index=False, sort=False)["price"].sum().rename(columns={"price": "total"})

    frames = list(apply_to_units([SALES], check, "batch", KEYS, OUT, "m:check", True))
    assert frames[0]["total"].tolist() == [4.0, 10.0, -2.0, 2.0, 8.0]
    assert seen[1:] == [([0, 1, 2], 3), ([0, 1, 2, 3, 4], 5)]  # (a1, a2) | (b1, c1, d1)


def test_without_isolation_the_function_error_still_fails_the_chunk():
    with pytest.raises(ValueError, match="negative price"):
        list(apply_to_units([SALES], per_unit, "unit", KEYS, OUT, "m:per_unit"))


def test_a_wrong_output_declaration_is_not_isolated_as_a_unit_failure():
    def sloppy(key, pdf):
        return pd.DataFrame({"total": [1.0], "oops": [1]})

    with pytest.raises(FunctionOutputError, match=r"undeclared \['oops'\]"):
        list(apply_to_units([SALES], sloppy, "unit", KEYS, OUT, "m:sloppy", True))


def test_a_chunk_where_every_unit_raises_reports_every_unit_and_a_zero_tally():
    frames = list(apply_to_units([SALES], lambda pdf, keys: 1 / 0, "batch", KEYS, OUT, "m:f", True))
    output, failed, tally = status_of(frames)
    assert output.empty and list(output.columns) == [*OUT, "_failure", "_rows"]
    assert failed[["seg", "loc", "_rows"]].values.tolist() == [
        ["a", 1, 2], ["a", 2, 1], ["b", 1, 2], ["c", 1, 1], ["d", 1, 2],
    ]
    assert set(failed["_failure"]) == {"ZeroDivisionError: division by zero"}
    assert tally == [0]


def test_failed_unit_rows_keep_the_chunks_key_dtypes():
    frames = list(apply_to_units([SALES], per_unit, "unit", KEYS, OUT, "m:per_unit", True))
    status = frames[1]
    assert status["seg"].dtype == object and status["loc"].dtype == "float64"  # the tally row is NaN
    assert status["_rows"].dtype == "int64"


def test_unit_starts_treat_missing_keys_as_equal():
    df = pd.DataFrame({"k": ["a", "a", None, None, "b"], "j": [1.0, 1.0, float("nan"), float("nan"), 2.0]})
    assert unit_starts(df, ["k", "j"]).tolist() == [0, 2, 4]
    assert unit_starts(df.iloc[0:0], ["k"]).tolist() == []


def test_describe_error_is_one_line_and_cut_to_the_limit():
    assert describe_error(KeyError("price")) == "KeyError: 'price'"
    assert describe_error(ValueError("line one\n   line two")) == "ValueError: line one line two"
    long = describe_error(RuntimeError("x" * 2000))
    assert len(long) == 500 and long.startswith("RuntimeError: xxx") and long.endswith("...")
