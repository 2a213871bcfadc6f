"""The input contract on a pandas DataFrame: reason, column and rule of the first broken rule (no Spark)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from batch_scoring.udfs.contract import ColumnRule
from batch_scoring.udfs.models.pandas_quarantine import split_rejects_pandas


def reasons(rejects: pd.DataFrame) -> list[list]:
    return rejects[["reject_reason", "reject_column", "reject_rule"]].values.tolist()


def test_inclusive_bounds_keep_the_bounds_and_reject_values_outside():
    pdf = pd.DataFrame({"hour": [-1, 0, 12, 23, 24]}, index=[10, 11, 12, 13, 14])
    valid, rejects = split_rejects_pandas(pdf, [ColumnRule("hour", "integer", minimum=0, maximum=23)])

    assert valid["hour"].tolist() == [0, 12, 23]
    assert valid.index.tolist() == [11, 12, 13]
    assert rejects.index.tolist() == [10, 14]
    assert reasons(rejects) == [["out_of_range", "hour", ">= 0 and <= 23"]] * 2


def test_exclusive_bounds_reject_the_bounds_themselves_and_values_beyond():
    pdf = pd.DataFrame({"share": [-0.1, 0.0, 0.5, 1.0, 1.5]})
    rule = ColumnRule("share", "numeric", minimum=0, maximum=1, minimum_exclusive=True, maximum_exclusive=True)
    valid, rejects = split_rejects_pandas(pdf, [rule])

    assert valid["share"].tolist() == [0.5]
    assert rejects["share"].tolist() == [-0.1, 0.0, 1.0, 1.5]
    assert reasons(rejects) == [["out_of_range", "share", "> 0 and < 1"]] * 4


def test_a_lower_bound_alone_or_an_upper_bound_alone_is_checked():
    pdf = pd.DataFrame({"price": [-0.5, 0.0, 7.0], "qty": [1, 100, 101]})
    rules = [ColumnRule("price", "numeric", minimum=0), ColumnRule("qty", "integer", maximum=100)]
    valid, rejects = split_rejects_pandas(pdf, rules)

    assert valid.index.tolist() == [1]
    assert reasons(rejects) == [["out_of_range", "price", ">= 0"], ["out_of_range", "qty", "<= 100"]]


def test_the_first_broken_rule_is_reported_keys_first_then_rules_in_order():
    pdf = pd.DataFrame({
        "unit": [None, "u2", "u3", "u4"],
        "a": [np.nan, np.nan, 5.0, 1.0],
        "b": [-1.0, -1.0, -1.0, 1.0],
    })
    rules = [ColumnRule("a", "numeric", maximum=4), ColumnRule("b", "numeric", minimum=0)]
    valid, rejects = split_rejects_pandas(pdf, rules, keys=["unit"])

    assert valid.index.tolist() == [3]
    assert reasons(rejects) == [
        ["null_key", "unit", "not null"],
        ["null_value", "a", "not null"],
        ["out_of_range", "a", "<= 4"],
    ]


def test_a_nullable_column_keeps_its_missing_values_even_with_bounds():
    pdf = pd.DataFrame({
        "note": ["x", None, "z"],
        "score": pd.array([1, pd.NA, 3], dtype="Int64"),
    })
    rules = [ColumnRule("note", nullable=True), ColumnRule("score", "integer", nullable=True, minimum=0, maximum=5)]
    valid, rejects = split_rejects_pandas(pdf, rules)

    assert valid.index.tolist() == [0, 1, 2]
    assert rejects.empty
    assert list(rejects.columns) == ["note", "score", "reject_reason", "reject_column", "reject_rule"]


def test_every_row_lands_in_exactly_one_side_with_the_columns_kept():
    pdf = pd.DataFrame({"id": [1, 2, 3, 4], "x": [1.0, None, 3.0, None]})
    valid, rejects = split_rejects_pandas(pdf, [ColumnRule("x", "numeric")])

    assert list(valid.columns) == ["id", "x"]
    assert valid["id"].tolist() == [1, 3]
    assert rejects["id"].tolist() == [2, 4]
    assert reasons(rejects) == [["null_value", "x", "not null"]] * 2


def test_no_rules_and_no_keys_keep_every_row():
    pdf = pd.DataFrame({"id": [1, 2]})
    valid, rejects = split_rejects_pandas(pdf, [])

    assert valid["id"].tolist() == [1, 2]
    assert rejects.empty
