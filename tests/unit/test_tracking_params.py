"""Unit tests for batch_scoring.jobs.tracking's pure parts: what a run's manifest becomes as
MLflow params, metrics and tags, within MLflow's limits. No Spark, no server."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from batch_scoring.jobs.config import load_job
from batch_scoring.jobs.redaction import redact
from batch_scoring.jobs.tracking import (
    MAX_KEY_LENGTH,
    MAX_PARAM_VALUE_LENGTH,
    MAX_PARAMS_PER_BATCH,
    TrackedRun,
    attempt_key,
    bounded_http,
    chunks,
    flatten,
    param_value,
    run_metrics,
    run_params,
    run_tags,
    run_url,
    sanitize_key,
    tracking_uri,
    truncate,
    unique_keys,
)

ROOT = Path(__file__).resolve().parents[2]
JOB_FILE = ROOT / "conf" / "jobs" / "data_pricing.yaml"
MLFLOW_KEY = re.compile(r"^[/\w.\- :]*$")  # mlflow.utils.validation's rule for names


def manifest_config(*overrides: str) -> dict:
    """The ``config`` field a manifest of the sample pricing job holds (as ManifestRecorder builds it)."""
    job = load_job(JOB_FILE, overrides)
    return redact(job.model_dump(mode="json", by_alias=True, exclude_none=True))


def test_the_job_config_becomes_dotted_params_with_lists_as_json():
    params = run_params(manifest_config("unit_of_work.buckets=16"))

    assert params["source.path"] == "data/sample/bundle_sales"
    assert params["unit_of_work.keys"] == '["segment", "location", "product"]'
    assert params["unit_of_work.buckets"] == "16"
    assert params["function.params.max_step"] == "0.15"
    assert params["function.params.pool_by"] == '["segment"]'
    assert params["report.enabled"] == "true"
    assert params["tracking.timeout_seconds"] == "10"
    assert params["source.options"] == "{}"  # an empty section is still shown
    assert "function.params" not in params


def test_secrets_of_the_config_stay_redacted_in_the_params():
    config = manifest_config("spark_conf.spark.hadoop.fs.s3a.secret.key=abc123",
                             "tracking.uri=https://me:pw@mlflow.example.com")

    params = run_params(config)

    assert params["spark_conf.spark.hadoop.fs.s3a.secret.key"] == "***"
    assert params["tracking.uri"] == "https://***@mlflow.example.com"
    assert not any("abc123" in value or "pw@" in value for value in params.values())


def test_flatten_keeps_leaves_and_paths():
    assert flatten({"a": {"b": {"c": 1}, "d": [1, {"e": 2}]}, "f": {}}) == {
        "a.b.c": 1, "a.d": [1, {"e": 2}], "f": {}}
    assert flatten({"x": 1}, "cost") == {"cost.x": 1}
    assert flatten({}) == {}


def test_a_long_value_is_truncated_to_mlflows_limit_and_says_so():
    value = param_value("x" * 10_000)

    assert len(value) == MAX_PARAM_VALUE_LENGTH
    assert value.endswith(" ... (truncated)") and value.startswith("xxx")
    assert param_value("x" * MAX_PARAM_VALUE_LENGTH) == "x" * MAX_PARAM_VALUE_LENGTH
    assert truncate("abcdef", 6) == "abcdef"


def test_params_go_in_batches_of_at_most_100():
    params = run_params({"spark_conf": {f"spark.x{i}": i for i in range(230)}})
    batches = chunks(list(params.items()), MAX_PARAMS_PER_BATCH)

    assert [len(b) for b in batches] == [100, 100, 30]
    assert [item for batch in batches for item in batch] == list(params.items())
    assert chunks([], 100) == []


@pytest.mark.parametrize(("key", "expected"), [
    ("rows_rejected.null_key", "rows_rejected.null_key"),
    ("rows_rejected.bad/reason:x", "rows_rejected.bad_reason_x"),
    ("drift_psi.prix (€)", "drift_psi.prix _"),
    ("..hidden", "hidden"),
    ("", "_"),
    ("/abs", "_abs"),
])
def test_keys_are_made_valid_for_mlflow(key, expected):
    assert sanitize_key(key) == expected
    assert MLFLOW_KEY.match(expected) and not expected.startswith(("..", "/"))


def test_keys_are_cut_to_250_characters_and_stay_distinct():
    long_a, long_b = "p." + "a" * 300, "p." + "a" * 299 + "b"
    keys = unique_keys(["rows_rejected.a/b", "rows_rejected.a:b", long_a, long_b])

    assert keys["rows_rejected.a/b"] == "rows_rejected.a_b"
    assert re.fullmatch(r"rows_rejected\.a_b-[0-9a-f]{8}", keys["rows_rejected.a:b"])
    assert len(set(keys.values())) == 4
    assert all(len(k) <= MAX_KEY_LENGTH for k in keys.values())


MANIFEST = {
    "job": "data_pricing", "run_date": "2026-11-22", "run_id": "scheduled__2026-11-22T02:00:00+00:00",
    "status": "succeeded", "seconds": 41.25,
    "code": {"package_version": "0.1.0", "source_sha256": "ab" * 32},
    "model": None,
    "rows": {"in": 600, "out": 28, "rejected": 3, "units": 28, "buckets": 2,
             "rejected_by_reason": {"null_key": 1, "contract/negative cost": 2}},
    "phases": {"checks": 0.5, "price": 12.0, "report": 3.25},
    "replaces": {"rows": 28, "runs": {"20261122-010000-aaaa": "2026-11-22T01:00:31+00:00"}},
    "report": {"path": "x.html", "drift": {"price": {"psi": 0.031, "band": "stable"},
                                           "elasticity": {"psi": 0.4, "band": "major"}}},
}


def test_a_manifest_becomes_count_timing_and_drift_metrics():
    metrics = run_metrics(MANIFEST)

    assert metrics == {
        "rows_in": 600.0, "rows_out": 28.0, "rows_rejected": 3.0, "units": 28.0, "buckets": 2.0,
        "rows_rejected.null_key": 1.0, "rows_rejected.contract_negative cost": 2.0,
        "seconds": 41.25, "phase_seconds.checks": 0.5, "phase_seconds.price": 12.0,
        "phase_seconds.report": 3.25, "drift_psi.price": 0.031, "drift_psi.elasticity": 0.4,
    }


def test_cost_numbers_become_metrics_and_the_rest_is_left_out():
    manifest = {**MANIFEST, "rows": {"in": 10, "out": 10, "rejected": 0, "units": None, "buckets": None},
                "report": None,
                "cost": {"basis": "executor core-seconds", "currency": "USD", "prices_as_of": "2026-12",
                         "amount": 0.42, "per_million_rows": None, "estimated": True, "nan": float("nan"),
                         "resources": {"allocated_core_seconds": 52.1, "busy_core_seconds": 31}}}

    metrics = run_metrics(manifest)

    assert {k: v for k, v in metrics.items() if k.startswith("cost.")} == {
        "cost.amount": 0.42, "cost.resources.allocated_core_seconds": 52.1,
        "cost.resources.busy_core_seconds": 31.0}
    assert "units" not in metrics and "buckets" not in metrics
    assert not any(k.startswith("drift_psi.") for k in metrics)
    assert run_tags(manifest, "m.json")["batch_scoring.cost_currency"] == "USD"


def test_tags_name_the_run_its_manifest_and_its_model():
    path = "s3a://bucket/prices/_manifests/run_date=2026-11-22/scheduled__2026~3f0c.json"
    model = {"uri": "models:/demand/3", "version": "3", "sha256": "cd" * 32}

    tags = run_tags({**MANIFEST, "model": model}, path)

    assert tags == {
        "batch_scoring.run_id": "scheduled__2026-11-22T02:00:00+00:00",
        "batch_scoring.run_date": "2026-11-22",
        "batch_scoring.job": "data_pricing",
        "batch_scoring.status": "succeeded",
        "batch_scoring.manifest": path,
        "batch_scoring.attempt_key": attempt_key(path),
        "batch_scoring.version": "0.1.0",
        "batch_scoring.source_sha256": "ab" * 32,
        "batch_scoring.replaces": "20261122-010000-aaaa",
        "batch_scoring.model_uri": "models:/demand/3",
        "batch_scoring.model_version": "3",
        "batch_scoring.model_sha256": "cd" * 32,
    }
    assert "batch_scoring.model_uri" not in run_tags(MANIFEST, path)


def test_the_attempt_key_is_one_per_manifest():
    first = attempt_key("out/_manifests/run_date=2026-11-22/r1.json")

    assert first == attempt_key("out/_manifests/run_date=2026-11-22/r1.json")
    assert re.fullmatch(r"[0-9a-f]{64}", first)
    assert first != attempt_key("out/_manifests/run_date=2026-11-23/r1.json")
    assert first != attempt_key("other/_manifests/run_date=2026-11-22/r1.json")


def test_the_run_url_points_at_the_ui_of_an_http_server_only():
    assert run_url("http://127.0.0.1:5000/", "7", "abc") == "http://127.0.0.1:5000/#/experiments/7/runs/abc"
    assert run_url("https://me:pw@mlflow.example.com", "1", "r") == (
        "https://***@mlflow.example.com/#/experiments/1/runs/r")
    assert run_url("databricks", "1", "r") is None
    run = TrackedRun("databricks", "1", "r", None)
    assert run.describe() == "r (experiment 1 at databricks)"
    assert run.as_dict() == {"tracking_uri": "databricks", "experiment_id": "1", "run_id": "r",
                             "url": None, "replaced": []}


def test_tracking_is_on_with_a_uri_from_the_config_or_the_environment(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking_uri(load_job(JOB_FILE)) is None
    assert tracking_uri(load_job(JOB_FILE, ["tracking.uri=http://h:5000"])) == "http://h:5000"

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://env:5000")
    assert tracking_uri(load_job(JOB_FILE)) == "http://env:5000"
    assert tracking_uri(load_job(JOB_FILE, ["tracking.uri=http://h:5000"])) == "http://h:5000"
    assert tracking_uri(load_job(JOB_FILE, ["tracking.enabled=false"])) is None

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "")
    assert tracking_uri(load_job(JOB_FILE, ["tracking.uri="])) is None


def test_bounded_http_sets_mlflows_retry_settings_and_restores_them(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "7")
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_TIMEOUT", raising=False)

    with bounded_http(3):
        assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "3"
        assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "2"

    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "7"
    assert "MLFLOW_HTTP_REQUEST_TIMEOUT" not in os.environ
