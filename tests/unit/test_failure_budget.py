"""The failed-work budget: a count or a percentage, default zero (issue 18, finding 2; no Spark)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from batch_scoring.jobs.config import load_job
from batch_scoring.jobs.errors import ConfigError
from batch_scoring.jobs.failure_budget import FailedWorkExceeded, check_failed_work, parse_budget

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("value", "total", "allowed"), [
    (0, 1000, 0), (3, 10, 3), ("3", 10, 3), ("2%", 544, 10), ("2.5 %", 200, 5), ("100%", 7, 7),
])
def test_a_budget_is_a_count_or_a_share_rounded_down(value, total, allowed):
    assert parse_budget(value).allowed(total) == allowed


@pytest.mark.parametrize("value", [-1, "-1", "lots", "101%", "2%%", True])
def test_a_budget_that_is_neither_is_refused(value):
    with pytest.raises(ValueError, match="is (not a count|negative)"):
        parse_budget(value)


def test_the_defaults_are_zero_and_a_bad_budget_is_a_config_error_naming_the_field():
    assert load_job(ROOT / "conf/jobs/data_pricing.yaml").function.max_failed_units == 0
    assert load_job(ROOT / "conf/jobs/model_scoring.yaml").model.max_failed_rows == 0

    with pytest.raises(ConfigError) as info:
        load_job(ROOT / "conf/jobs/data_pricing.yaml", ["function.max_failed_units=lots"])
    assert "function.max_failed_units" in str(info.value)
    assert "is not a count (e.g. 3) or a percentage" in str(info.value)


def test_over_budget_names_counts_field_and_first_failures():
    with pytest.raises(FailedWorkExceeded) as info:
        check_failed_work("function.max_failed_units", "2%", 84, 544, "units raised in the function",
                          ["(unit='a'): TypeError: can't multiply sequence by non-int of type 'float'"])

    assert info.value.exit_code == 4
    assert str(info.value).startswith(
        "84 of 544 units raised in the function (15.44%), more than function.max_failed_units = 2% "
        "allows; nothing was committed. First: (unit='a'): TypeError: can't multiply sequence"
    )
    check_failed_work("function.max_failed_units", "2%", 10, 544, "units", [])  # 10 <= 10: fine


def test_fewer_failures_than_the_budget_allows_pass():
    check_failed_work("function.max_failed_units", "2%", 3, 544, "units raised in the function", [])
    check_failed_work("model.max_failed_rows", 5, 0, 100, "rows raised in the model", [])


def test_over_budget_rows_name_units_or_rows_by_the_first_word_of_what():
    with pytest.raises(FailedWorkExceeded) as units:
        check_failed_work("function.max_failed_units", 0, 2, 9, "units raised in the function", ["a"])
    with pytest.raises(FailedWorkExceeded) as rows:
        check_failed_work("model.max_failed_rows", "10%", 3, 20, "rows raised in the model", ["r1"])

    assert units.value.rows == {"units_failed": 2, "units_reached": 9}
    assert rows.value.rows == {"rows_failed": 3, "rows_reached": 20}


def test_a_parsed_budget_is_frozen_and_hashable():
    budget = parse_budget("2%")
    with pytest.raises(dataclasses.FrozenInstanceError):
        budget.fraction = 0.5
    assert {budget: "share"}[parse_budget("2%")] == "share"
