"""What a run cost (jobs/cost.py) and the limit a dry run checks (jobs/cost_estimate.py)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import http.server
import json
import threading
from types import SimpleNamespace

import pytest

from batch_scoring.jobs import cost_estimate
from batch_scoring.jobs.config import PricesConfig
from batch_scoring.jobs.cost import _rest_time, _seconds_up, billed_cost, core_seconds_cost, executor_core_seconds
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
    check_cost_limit(estimate(1.0), 1.5, "USD")
    check_cost_limit(estimate(1.0, "".join(["U", "SD"])), 1.5, "USD")  # equal text, another object (JSON)
    check_cost_limit(None, 1.5, "USD")
    check_cost_limit(estimate(99.0), None, "USD")


def test_an_estimate_in_another_currency_is_not_compared():
    with pytest.raises(CostLimitExceeded, match="output.max_cost is in USD .* the estimate is in EUR"):
        check_cost_limit(estimate(0.1, "EUR"), 1.0, "USD")
    with pytest.raises(CostLimitExceeded, match="output.max_cost is in EUR .* the estimate is in USD"):
        check_cost_limit(estimate(0.1, "USD"), 1.0, "EUR")


def test_a_manifest_read_from_json_is_recognised_as_succeeded():
    run = json.loads(json.dumps({"status": "succeeded", "rows": {"in": 1_000_000},
                                 "cost": {"amount": 2.0, "currency": "USD", "basis": "executor core-seconds"}}))
    assert _priced_rate(run) == (2.0, "USD", "executor core-seconds")
    assert _priced_rate({key: value for key, value in run.items() if key != "status"}) is None


def test_the_rate_prefers_the_bill_and_needs_a_succeeded_priced_run_with_rows():
    billed = {"amount": 3.0, "currency": "USD", "basis": "EMR Serverless billed resources"}
    measured = {"amount": 1.0, "currency": "USD", "basis": "executor core-seconds"}
    run = {"status": "succeeded", "rows": {"in": 2_000_000}, "cost": measured}
    assert _priced_rate({**run, "remote": {"cost": billed}}) == (1.5, "USD", "EMR Serverless billed resources")
    assert _priced_rate(run) == (0.5, "USD", "executor core-seconds")
    assert _priced_rate({**run, "status": "failed"}) is None
    assert _priced_rate({**run, "cost": {**measured, "amount": None}}) is None
    assert _priced_rate({**run, "rows": {"in": 0}}) is None


def test_a_price_is_rounded_to_six_decimals_and_core_seconds_to_three():
    cost = core_seconds_cost(3600.12345, 1800.98765, PricesConfig(core_hour=0.1234567), 1_000_000)
    assert cost.resources == {"allocated_core_seconds": 3600.123, "busy_core_seconds": 1800.988}
    assert cost.amount == 0.123461  # 3600.12345 / 3600 * 0.1234567 = 0.12346093...
    assert cost.per_million_rows == 0.123461


def test_no_rows_read_gives_no_rate_and_a_null_utilisation_counts_as_zero():
    cost = billed_cost({"vCPUHour": 2.0, "memoryGBHour": None, "storageGBHour": None},
                       PricesConfig(vcpu_hour=0.5, memory_gb_hour=7.0, storage_gb_hour=11.0), 0)
    assert (cost.amount, cost.per_million_rows) == (1.0, None)
    assert cost.resources == {"vcpu_hours": 2.0, "memory_gb_hours": 0.0, "storage_gb_hours": 0.0}
    nothing = billed_cost({}, PricesConfig(vcpu_hour=0.5, memory_gb_hour=7.0, storage_gb_hour=11.0), 10)
    assert (nothing.amount, nothing.per_million_rows) == (0.0, 0.0)


def test_a_cost_is_a_frozen_json_record_and_describes_itself_without_a_rate_when_rows_are_unknown():
    cost = core_seconds_cost(7200.0, 3600.0, PricesConfig(core_hour=0.25, currency="EUR", as_of="2026-11"), None)
    assert cost.as_dict() == {"basis": "executor core-seconds",
                              "resources": {"allocated_core_seconds": 7200.0, "busy_core_seconds": 3600.0},
                              "amount": 0.5, "currency": "EUR", "prices_as_of": "2026-11", "per_million_rows": None}
    assert cost.describe() == ("EUR 0.5000; 7,200 executor core-seconds allocated, 3,600 busy "
                               "at prices of 2026-11")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cost.amount = 1.0  # type: ignore[misc]


def test_executor_uptime_is_never_negative():
    added, removed = "2026-12-06T21:00:10.000GMT", "2026-12-06T21:00:00.000GMT"  # clock skew
    assert _seconds_up({"addTime": added, "removeTime": removed}, now=0.0) == 0.0
    assert _seconds_up({"addTime": added}, now=_rest_time(added) + 0.25) == 0.25


T0 = "2026-12-06T21:00:00.000GMT"
EXECUTORS = [
    {"id": "1", "totalCores": 2, "addTime": T0, "removeTime": "2026-12-06T21:01:40.000GMT", "totalDuration": 30500},
    {"id": "2", "totalCores": 4, "addTime": T0, "removeTime": "2026-12-06T21:00:50.000GMT", "totalDuration": 10000},
    {"id": "driver", "addTime": T0, "removeTime": "2026-12-06T21:05:00.000GMT"},  # no cores, no tasks
]


@pytest.fixture
def spark_ui():
    """A real HTTP server answering the Spark UI's ``allexecutors`` call of application ``app-7``."""
    body = {"/api/v1/applications/app-7/allexecutors": json.dumps(EXECUTORS).encode(),
            "/api/v1/applications/app-bad/allexecutors": b"<html>not json</html>"}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            payload = body.get(self.path)
            self.send_response(200 if payload else 404)
            self.end_headers()
            self.wfile.write(payload or b"")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def driver(ui, app="app-7", conf=None, broken=False):
    def get_conf():
        if broken:
            raise RuntimeError("py4j: the JVM is gone")
        return SimpleNamespace(get=(conf or {}).get)
    return SimpleNamespace(sparkContext=SimpleNamespace(uiWebUrl=ui, applicationId=app, getConf=get_conf))


def test_executor_core_seconds_are_read_from_the_spark_ui(spark_ui):
    # allocated: 2 cores * 100 s + 4 cores * 50 s (+ the driver's 0 cores); busy: 40.5 s of tasks
    assert executor_core_seconds(driver(spark_ui + "/")) == (400.0, 40.5)
    assert executor_core_seconds(driver(spark_ui, conf={"spark.task.cpus": "2"})) == (400.0, 81.0)


def test_no_executor_core_seconds_without_a_ui_an_answer_or_a_jvm(spark_ui):
    assert executor_core_seconds(driver(None)) is None  # spark.ui.enabled=false
    assert executor_core_seconds(driver(spark_ui, broken=True)) is None
    assert executor_core_seconds(driver(spark_ui, app="app-gone")) is None  # HTTP 404
    assert executor_core_seconds(driver(spark_ui, app="app-bad")) is None  # not JSON


def priced(run_date: str, run_id: str, amount, rows_in=2_000_000, status="succeeded") -> dict:
    return {"run_date": run_date, "run_id": run_id, "status": status, "rows": {"in": rows_in},
            "cost": {"amount": amount, "currency": "USD", "basis": "executor core-seconds"}}


def manifests_of(monkeypatch, by_date: dict[str, list[dict]]):
    """The output root's manifests (no Spark): ``{run date: [manifest, ...]}``, latest date first."""
    dates = sorted((dt.date.fromisoformat(d) for d in by_date), reverse=True)
    monkeypatch.setattr(cost_estimate, "manifest_dates", lambda spark, root: list(dates))
    monkeypatch.setattr(cost_estimate, "run_date_manifests",
                        lambda spark, root, date: by_date[date.isoformat()])


def test_the_estimate_prices_the_rows_at_the_latest_priced_succeeded_run(monkeypatch):
    manifests_of(monkeypatch, {
        "2026-11-22": [priced("2026-11-22", "failed", 9.0, status="failed"), priced("2026-11-22", "unpriced", None)],
        "2026-11-21": [priced("2026-11-21", "latest-priced", 3.0)],
        "2026-11-20": [priced("2026-11-20", "older", 1.0)],
    })
    estimate = cost_estimate.estimate_cost(None, "/out", 3_000_000)
    assert estimate == CostEstimate(amount=4.5, currency="USD", rows=3_000_000, per_million_rows=1.5,
                                    basis="executor core-seconds", run_date="2026-11-21", run_id="latest-priced")
    assert estimate.describe() == ("about USD 4.5000 (3,000,000 rows at USD 1.5000 per million rows, the "
                                   "executor core-seconds of run latest-priced of 2026-11-21)")
    with pytest.raises(dataclasses.FrozenInstanceError):
        estimate.amount = 0.0  # type: ignore[misc]
    assert cost_estimate.estimate_cost(None, "/out", 1_234).amount == 0.001851  # 1.5 * 1234 / 1e6, 6 decimals
    manifests_of(monkeypatch, {"2026-11-21": [priced("2026-11-21", "third", 1.0, rows_in=3_000_000)]})
    assert cost_estimate.estimate_cost(None, "/out", 1_000_000).amount == 0.333333


def test_the_estimate_looks_at_the_latest_30_run_dates_only(monkeypatch):
    start = dt.date(2026, 1, 1)
    days = [(start + dt.timedelta(days=n)).isoformat() for n in range(31)]
    unpriced = {day: [priced(day, f"r{day}", None)] for day in days}
    manifests_of(monkeypatch, {**unpriced, days[1]: [priced(days[1], "thirtieth", 2.0)]})
    assert cost_estimate.estimate_cost(None, "/out", 1_000_000).run_id == "thirtieth"
    manifests_of(monkeypatch, {**unpriced, days[0]: [priced(days[0], "thirty-first", 2.0)]})
    assert cost_estimate.estimate_cost(None, "/out", 1_000_000) is None
    manifests_of(monkeypatch, {})
    assert cost_estimate.estimate_cost(None, "/out", 1_000_000) is None
