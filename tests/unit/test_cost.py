"""What a run cost (jobs/cost.py) and the limit a dry run checks (jobs/cost_estimate.py)."""

from __future__ import annotations

import pytest

from batch_scoring.jobs.config import PricesConfig
from batch_scoring.jobs.cost import _rest_time, _seconds_up, billed_cost, core_seconds_cost
from batch_scoring.jobs.cost_estimate import CostEstimate, _priced_rate, check_cost_limit
from batch_scoring.jobs.errors import CostLimitExceeded


def test_billed_resources_are_priced_at_the_default_us_east_1_prices():
    cost = billed_cost({"vCPUHour": 10.0, "memoryGBHour": 40.0, "storageGBHour": 200.0}, PricesConfig(), 2_000_000)
    assert cost.amount == pytest.approx(10 * 0.052624 + 40 * 0.005786 + 200 * 0.000111)  # 0.779
    assert cost.per_million_rows == pytest.approx(cost.amount / 2)
    assert cost.resources == {"vcpu_hours": 10.0, "memory_gb_hours": 40.0, "storage_gb_hours": 200.0}
    assert cost.describe() == ("USD 0.7799, USD 0.3899 per million rows; 10 vCPU-hours, 40 memory GB-hours, "
                               "200 storage GB-hours at prices of 2026-12")


def test_a_missing_utilisation_field_counts_as_zero_and_unknown_rows_give_no_rate():
    cost = billed_cost({"vCPUHour": 1.0}, PricesConfig(vcpu_hour=0.1, currency="EUR"), None)
    assert (cost.amount, cost.currency, cost.per_million_rows) == (0.1, "EUR", None)


def test_core_seconds_are_priced_only_with_a_core_hour_price():
    priced = core_seconds_cost(7200.0, 3600.0, PricesConfig(core_hour=0.25), 500_000)
    assert (priced.amount, priced.per_million_rows) == (0.5, 1.0)
    unpriced = core_seconds_cost(7200.0, 3600.0, PricesConfig(), 500_000)
    assert (unpriced.amount, unpriced.per_million_rows) == (None, None)
    assert unpriced.describe().startswith("7,200 executor core-seconds allocated, 3,600 busy (no price")


def test_executor_uptime_comes_from_the_rest_api_times():
    assert _rest_time("2026-12-06T21:48:49.500GMT") == pytest.approx(1796593729.5)
    added, removed = "2026-12-06T21:00:00.000GMT", "2026-12-06T21:10:00.000GMT"
    assert _seconds_up({"addTime": added, "removeTime": removed}, now=0.0) == 600.0
    still_up = {"addTime": added}
    assert _seconds_up(still_up, now=_rest_time(added) + 30) == 30.0
    assert _seconds_up({}, now=1e9) == 0.0


def estimate(amount: float, currency: str = "USD") -> CostEstimate:
    return CostEstimate(amount=amount, currency=currency, rows=1_000, per_million_rows=amount * 1000,
                        basis="executor core-seconds", run_date="2026-11-21", run_id="r1")


def test_a_plan_above_max_cost_is_refused_and_one_at_or_below_it_passes():
    with pytest.raises(CostLimitExceeded, match=r"estimated to cost about USD 2\.0000 .* above output.max_cost "
                                                r"USD 1\.5000"):
        check_cost_limit(estimate(2.0), 1.5, "USD")
    check_cost_limit(estimate(1.5), 1.5, "USD")
    check_cost_limit(None, 1.5, "USD")
    check_cost_limit(estimate(99.0), None, "USD")


def test_an_estimate_in_another_currency_is_not_compared():
    with pytest.raises(CostLimitExceeded, match="output.max_cost is in USD .* the estimate is in EUR"):
        check_cost_limit(estimate(0.1, "EUR"), 1.0, "USD")


def test_the_rate_prefers_the_bill_and_needs_a_succeeded_priced_run_with_rows():
    billed = {"amount": 3.0, "currency": "USD", "basis": "EMR Serverless billed resources"}
    measured = {"amount": 1.0, "currency": "USD", "basis": "executor core-seconds"}
    run = {"status": "succeeded", "rows": {"in": 2_000_000}, "cost": measured}
    assert _priced_rate({**run, "remote": {"cost": billed}}) == (1.5, "USD", "EMR Serverless billed resources")
    assert _priced_rate(run) == (0.5, "USD", "executor core-seconds")
    assert _priced_rate({**run, "status": "failed"}) is None
    assert _priced_rate({**run, "cost": {**measured, "amount": None}}) is None
    assert _priced_rate({**run, "rows": {"in": 0}}) is None
