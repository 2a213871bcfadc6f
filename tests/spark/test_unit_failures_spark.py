"""A unit whose function raises goes to rejects; every other unit is priced (local Spark, Delta)."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from batch_scoring.jobs.config import load_job
from batch_scoring.jobs.errors import RejectBudgetExceeded
from batch_scoring.jobs.failure_budget import FailedWorkExceeded
from batch_scoring.jobs.pipeline import run
from batch_scoring.udfs.engine.spark_execution import apply_packed, apply_reference, split_status
from batch_scoring.udfs.registry import resolve_function
from user_modules import importable_module

ROOT = Path(__file__).resolve().parents[2]
KEYS = ["segment", "location", "product"]
READ = [*KEYS, "sale_date", "price"]  # keys, order_by and the functions' declared inputs
DAY = dt.date(2026, 11, 22)
UNLUCKY_UNITS = (2, 5)  # one row of each has the price 13.13, on which the functions raise
NEGATIVE_UNIT = 6  # its first row has price -1: quarantined (out_of_range), the rest priced

MODULE = '''
import pandas as pd
from batch_scoring.udfs.contract import ColumnRule, unit_of_work_function

RULES = [ColumnRule("price", "numeric", minimum=0, minimum_exclusive=True)]


@unit_of_work_function(output_schema="last_price double, days bigint", input_rules=RULES)
def last_price(key, pdf):
    if (pdf["price"] == 13.13).any():
        raise ValueError("unlucky price 13.13\\nin this unit")
    return pd.DataFrame({"last_price": [pdf["price"].iloc[-1]], "days": [len(pdf)]})


@unit_of_work_function(output_schema="last_price double, days bigint", shape="batch",
                       input_rules=RULES)
def last_price_batch(pdf, keys):
    if (pdf["price"] == 13.13).any():
        raise ValueError("unlucky price 13.13 in this batch")
    return pdf.groupby(keys, as_index=False, sort=False).agg(
        last_price=("price", "last"), days=("price", "size"))
'''


@pytest.fixture(scope="module")
def unlucky_module(tmp_path_factory):
    """The module ``unlucky_pricing`` (two decorated functions) importable on the driver."""
    with importable_module(tmp_path_factory.mktemp("unlucky"), "unlucky_pricing", MODULE) as name:
        yield name


def make_sales(unlucky: bool = True) -> pd.DataFrame:
    """8 units x 4 days; price 10 + unit + day / 2, with the (unlucky and) negative rows set."""
    rows = []
    for unit in range(8):
        for day in range(4):
            price = 10.0 + unit + day / 2
            if unlucky and unit in UNLUCKY_UNITS and day == unit % 4:
                price = 13.13
            if unit == NEGATIVE_UNIT and day == 0:
                price = -1.0
            rows.append({"segment": f"s{unit // 4}", "location": f"l{unit // 2 % 2}",
                         "product": f"p{unit % 2}", "sale_date": dt.date(2026, 11, 1 + day),
                         "price": price, "volume": 100 + day})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def sales_source(tmp_path_factory):
    path = tmp_path_factory.mktemp("sales") / "sales.parquet"
    make_sales().sample(frac=1.0, random_state=3).to_parquet(path)  # shuffled: the engine sorts
    return path


def unit_keys(units) -> list[tuple]:
    return [(f"s{u // 4}", f"l{u // 2 % 2}", f"p{u % 2}") for u in units]


def expected_output() -> pd.DataFrame:
    sales = make_sales()
    valid = sales[sales["price"] > 0]
    priced = valid[~valid.set_index(KEYS).index.isin(unit_keys(UNLUCKY_UNITS))]
    out = priced.groupby(KEYS, as_index=False).agg(last_price=("price", "last"), days=("price", "size"))
    return out.sort_values(KEYS).reset_index(drop=True)


def expected_rejects(message: str) -> pd.DataFrame:
    sales = make_sales()[READ]
    failed = sales[sales.set_index(KEYS).index.isin(unit_keys(UNLUCKY_UNITS))].assign(
        reject_reason="function_raised", reject_column="segment,location,product",
        reject_rule=message)
    negative = sales[sales["price"] < 0].assign(
        reject_reason="out_of_range", reject_column="price", reject_rule="> 0")
    both = pd.concat([failed, negative])
    return both.sort_values([*KEYS, "sale_date"]).reset_index(drop=True)


def function_job(tmp_path, source, function, engine="packed", *overrides):
    """The job of ``function`` on ``source``; its 2 raising units allowed unless overridden."""
    return load_job(ROOT / "conf/jobs/data_pricing.yaml", [
        f"source.path={source}", "source.filter=null", f"function.name={function}",
        f"function.allowed_modules=[{function.partition(':')[0]}]", "function.max_failed_units=2",
        "function.params={}", f"unit_of_work.engine={engine}", "unit_of_work.buckets=3",
        f"output.path={tmp_path / 'prices'}", "output.partition_by=[]", *overrides,
    ])


def read_delta(spark, path, sort_by) -> pd.DataFrame:
    pdf = spark.read.format("delta").load(str(path)).toPandas()
    return pdf.sort_values(sort_by).reset_index(drop=True)


@pytest.mark.parametrize("function, engine, message", [
    ("last_price", "packed", "ValueError: unlucky price 13.13 in this unit"),
    ("last_price_batch", "packed", "ValueError: unlucky price 13.13 in this batch"),
    ("last_price", "reference", "ValueError: unlucky price 13.13 in this unit"),
])
def test_units_whose_function_raises_go_to_rejects_with_their_original_rows(
    spark, tmp_path, sales_source, unlucky_module, function, engine, message
):
    job = function_job(tmp_path, sales_source, f"{unlucky_module}:{function}", engine)
    summary = run(spark, job, DAY, "unlucky")

    out = read_delta(spark, job.output.path, KEYS)
    pd.testing.assert_frame_equal(out.drop(columns=["run_date", "run_id"]), expected_output(),
                                  check_dtype=False)
    rejects = read_delta(spark, job.output.rejects, [*KEYS, "sale_date"])
    assert list(rejects.columns) == [*READ, "reject_reason", "reject_column", "reject_rule",
                                     "reject_raw", "run_date", "run_id"]
    assert rejects["reject_raw"].isna().all()  # raw text is kept for text sources only
    pd.testing.assert_frame_equal(rejects.drop(columns=["reject_raw", "run_date", "run_id"]),
                                  expected_rejects(message), check_dtype=False)
    assert set(rejects["run_id"]) == {"unlucky"} and set(rejects["run_date"]) == {DAY}
    assert (summary.rows_in, summary.rows_rejected, summary.units, summary.rows_out) == (32, 9, 6, 6)


def test_the_packed_batch_engine_isolates_units_across_small_arrow_batches(
    spark, sales_source, unlucky_module, arrow_batch_rows
):
    arrow_batch_rows(3)  # every unit (4 rows) straddles Arrow batches
    source = spark.read.parquet(str(sales_source)).where("price > 0")
    batch = resolve_function(f"{unlucky_module}:last_price_batch")
    per_unit = resolve_function(f"{unlucky_module}:last_price")
    packed = apply_packed(source, batch, batch.bind({}), KEYS, ["sale_date"], 2, True).cache()
    reference = apply_reference(source, per_unit, per_unit.bind({}), KEYS, ["sale_date"], True).cache()
    try:
        fast, slow = split_status(packed, KEYS), split_status(reference, KEYS)
        assert (fast.rows_priced, fast.units_failed, fast.rows_failed) == (23, 2, 8)
        assert (slow.rows_priced, slow.units_failed, slow.rows_failed) == (23, 2, 8)
        got = fast.priced.toPandas().sort_values(KEYS).reset_index(drop=True)
        pd.testing.assert_frame_equal(got, expected_output(), check_dtype=False)
        assert sorted(tuple(r)[:3] for r in fast.failures.collect()) == unit_keys(UNLUCKY_UNITS)
        assert {r["_failure"] for r in fast.failures.collect()} == {
            "ValueError: unlucky price 13.13 in this batch"}
    finally:
        packed.unpersist()
        reference.unpersist()


def delta_state(spark, path) -> tuple[pd.DataFrame, int]:
    """A Delta table's rows (sorted) and its number of commits."""
    rows = spark.read.format("delta").load(str(path)).toPandas()
    versions = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").count()
    return rows.sort_values(list(rows.columns)).reset_index(drop=True), versions


def test_a_run_over_its_reject_budget_commits_nothing_and_keeps_the_previous_run(
    spark, tmp_path, sales_source, unlucky_module
):
    clean = tmp_path / "clean.parquet"
    make_sales(unlucky=False).to_parquet(clean)
    function = f"{unlucky_module}:last_price"
    kept = run(spark, function_job(tmp_path, clean, function, "packed",
                                   "output.max_reject_fraction=0.25"), DAY, "kept")
    assert (kept.rows_in, kept.rows_rejected, kept.rows_out) == (32, 1, 8)
    job = function_job(tmp_path, sales_source, function, "packed", "output.max_reject_fraction=0.25")
    output_before = delta_state(spark, job.output.path)
    rejects_before = delta_state(spark, job.output.rejects)

    with pytest.raises(RejectBudgetExceeded) as error:
        run(spark, job, DAY, "over-budget")

    assert str(error.value) == (
        "9 of 32 rows read were rejected (28.12%), more than output.max_reject_fraction 0.25 "
        "allows (function_raised 8, out_of_range 1); nothing was committed, earlier runs are "
        "untouched"
    )
    output_after = delta_state(spark, job.output.path)
    rejects_after = delta_state(spark, job.output.rejects)
    pd.testing.assert_frame_equal(output_after[0], output_before[0])
    pd.testing.assert_frame_equal(rejects_after[0], rejects_before[0])
    assert (output_after[1], rejects_after[1]) == (output_before[1], rejects_before[1])
    assert set(output_after[0]["run_id"]) == {"kept"} and len(output_after[0]) == 8


def test_a_run_exactly_at_its_reject_budget_commits(spark, tmp_path, sales_source, unlucky_module):
    job = function_job(tmp_path, sales_source, f"{unlucky_module}:last_price", "packed",
                       "output.max_reject_fraction=0.28125")  # 9 of 32 rows
    summary = run(spark, job, DAY, "at-limit")
    assert (summary.rows_in, summary.rows_rejected, summary.rows_out) == (32, 9, 6)
    assert set(read_delta(spark, job.output.path, KEYS)["run_id"]) == {"at-limit"}


@pytest.mark.parametrize("budget", ["0", "1", "'20%'"])
def test_raising_units_over_the_failed_unit_budget_fail_the_run_and_commit_nothing(
    spark, tmp_path, sales_source, unlucky_module, budget
):
    clean = tmp_path / "clean.parquet"
    make_sales(unlucky=False).to_parquet(clean)
    function = f"{unlucky_module}:last_price"
    run(spark, function_job(tmp_path, clean, function), DAY, "kept")
    job = function_job(tmp_path, sales_source, function, "packed",
                       f"function.max_failed_units={budget}")
    before = [delta_state(spark, p) for p in (job.output.path, job.output.rejects)]

    with pytest.raises(FailedWorkExceeded) as error:
        run(spark, job, DAY, "over-budget")

    assert error.value.exit_code == 4
    shown = budget.strip("'")
    assert str(error.value).startswith(
        f"2 of 8 units raised in the function (25.00%), more than function.max_failed_units = "
        f"{shown} allows; nothing was committed. First: "
        "(segment='s0', location='l1', product='p0'): ValueError: unlucky price 13.13 in this unit; "
        "(segment='s1', location='l0', product='p1'): ValueError: unlucky price 13.13 in this unit. "
    )
    assert "--set function.max_failed_units=N" in str(error.value)
    assert error.value.rows == {"units_failed": 2, "units_reached": 8}  # the manifest's rows
    after = [delta_state(spark, p) for p in (job.output.path, job.output.rejects)]
    for (rows_before, versions_before), (rows_after, versions_after) in zip(before, after):
        pd.testing.assert_frame_equal(rows_after, rows_before)
        assert versions_after == versions_before


def test_raising_units_within_a_percentage_budget_go_to_rejects(
    spark, tmp_path, sales_source, unlucky_module
):
    job = function_job(tmp_path, sales_source, f"{unlucky_module}:last_price", "packed",
                       "function.max_failed_units='25%'")  # 2 of 8 units

    summary = run(spark, job, DAY, "within")

    assert (summary.rows_in, summary.rows_rejected, summary.rows_out) == (32, 9, 6)


def test_the_printed_summary_counts_failed_units_and_rejects_per_reason(
    spark, tmp_path, sales_source, unlucky_module, capsys
):
    from batch_scoring.jobs import run_job

    function = f"{unlucky_module}:last_price"
    overrides = [
        f"source.path={sales_source}", "source.filter=null", f"function.name={function}",
        f"function.allowed_modules=[{unlucky_module}]", "function.max_failed_units=2",
        "function.params={}", "unit_of_work.buckets=3", f"output.path={tmp_path / 'prices'}",
        "output.partition_by=[]",
    ]
    args = ["--job", str(ROOT / "conf/jobs/data_pricing.yaml"), "--run-date", DAY.isoformat(),
            "--summary-json", str(tmp_path / "summary.json")]
    for override in overrides:
        args += ["--set", override]

    assert run_job.main(args) == 0

    printed = capsys.readouterr().out
    for measure, value in [("rows in", "32"), ("rows out", "6"), ("rows rejected", "9"),
                           ("rejected function_raised", "8"), ("rejected out_of_range", "1"),
                           ("units priced", "6"), ("units failed", "2")]:
        assert re.search(rf"│ +{measure} +│ +{value} │", printed), (measure, printed)
    written = json.loads((tmp_path / "summary.json").read_text())
    assert written["units_failed"] == 2
    assert written["rejected_by_reason"] == {"function_raised": 8, "out_of_range": 1}
