"""Routing units of work to models: templated URIs, one resolution per URI, fallback."""

from __future__ import annotations

from pathlib import Path

import pytest

from batch_scoring.jobs.config import load_job
from batch_scoring.jobs.errors import ConfigError
from batch_scoring.jobs.model_resolution import ModelNotFoundError, ModelResolutionError, ResolvedModel
from batch_scoring.jobs.model_routing import resolve_routes, route_uri

ROOT = Path(__file__).resolve().parents[2]


def fake_model(uri: str) -> ResolvedModel:
    return ResolvedModel(uri=uri, local_path="/m", sha256=uri, run_id=None, version="1",
                         flavors=("python_function",), signature=None)


class Registry:
    """Resolves the URIs it holds, counts the calls, raises like the real resolver."""

    def __init__(self, known: set[str], unreachable: set[str] = frozenset()):
        self.known, self.unreachable, self.calls = known, unreachable, []

    def __call__(self, uri: str) -> ResolvedModel:
        self.calls.append(uri)
        if uri in self.unreachable:
            raise ModelResolutionError(f"tracking server for {uri} cannot be reached")
        if uri not in self.known:
            raise ModelNotFoundError(f"no model {uri}")
        return fake_model(uri)


def test_route_uri_fills_placeholders_from_the_key():
    assert route_uri("models:/demand_{segment}@{stage}", ["segment", "stage"], ("youth", "prod")) == \
        "models:/demand_youth@prod"


def test_each_uri_is_resolved_once_and_missing_models_take_the_fallback():
    registry = Registry({"models:/d_youth/1", "models:/d_base/1"})
    keys = [("youth", 1), ("youth", 2), ("retired", 1)]
    routes = resolve_routes(keys, ["segment", "region"], "models:/d_{segment}/1", "models:/d_base/1", registry)
    assert {k: (r.model.uri, r.fallback) for k, r in routes.items()} == {
        ("youth", 1): ("models:/d_youth/1", False),
        ("youth", 2): ("models:/d_youth/1", False),
        ("retired", 1): ("models:/d_base/1", True),
    }
    assert registry.calls == ["models:/d_youth/1", "models:/d_retired/1", "models:/d_base/1"]


def test_without_fallback_a_key_without_model_has_no_route_model():
    routes = resolve_routes([("a",), ("b",)], ["k"], "models:/m_{k}/1", None, Registry({"models:/m_a/1"}))
    assert routes[("a",)].model is not None and routes[("b",)].model is None


def test_an_unreachable_server_is_an_error_not_a_fallback():
    registry = Registry({"models:/base/1"}, unreachable={"models:/m_a/1"})
    with pytest.raises(ModelResolutionError, match="cannot be reached"):
        resolve_routes([("a",)], ["k"], "models:/m_{k}/1", "models:/base/1", registry)


def test_a_missing_fallback_model_is_an_error():
    with pytest.raises(ModelNotFoundError):
        resolve_routes([("a",)], ["k"], "models:/m_{k}/1", "models:/base/9", Registry(set()))


def job_with(*overrides):
    return load_job(ROOT / "conf/jobs/model_scoring.yaml", list(overrides))


def test_route_config_rejects_placeholders_that_are_not_keys_and_needs_uri_or_route():
    with pytest.raises(ConfigError, match=r"uses \['region'\], which are not in 'by'"):
        job_with("model.uri=null", "model.route={by: [segment], uri_template: 'models:/m_{region}/1'}")
    with pytest.raises(ConfigError, match="exactly one of model.uri"):
        job_with("model.route={by: [segment], uri_template: 'models:/m_{segment}/1'}")
    with pytest.raises(ConfigError, match="exactly one of model.uri"):
        job_with("model.uri=null")


def test_a_job_needs_a_function_or_a_model_and_a_function_needs_unit_of_work():
    with pytest.raises(ConfigError, match="give 'function'"):
        job_with("model=null")
    with pytest.raises(ConfigError, match="'unit_of_work' is required"):
        job_with("function={name: data_pricing}")
    chained = load_job(ROOT / "conf/jobs/demand_pricing.yaml")
    assert chained.model.output_schema == "expected_volume double"
    assert chained.function.params["volume_col"] == "expected_volume"


def test_a_chained_jobs_function_is_checked_before_spark_starts():
    from batch_scoring.jobs.pipeline import preflight_job

    job = load_job(ROOT / "conf/jobs/demand_pricing.yaml", ["function.name=nowhere_pkg:price", "function.allowed_modules=[nowhere_pkg]"])
    with pytest.raises(ConfigError, match="nowhere_pkg"):
        preflight_job(job)
    assert preflight_job(job_with()) is None  # a model-only job has no function to prepare
