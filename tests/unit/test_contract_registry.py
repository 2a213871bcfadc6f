"""Unit tests for batch_scoring.udfs.contract and batch_scoring.udfs.registry (no Spark)."""

from __future__ import annotations

import functools
import importlib
import os
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pydantic
import pytest

from batch_scoring.jobs.config import load_job
from batch_scoring.udfs.contract import (
    ParamsError,
    bind_signature_params,
    ColumnRule,
    UnitFunction,
    parse_ddl_columns,
    unit_of_work_function,
)
from batch_scoring.udfs.pricing import data_pricing, voice_pricing
from batch_scoring.udfs.pricing.data_pricing import DATA_PRICING_OUTPUT_COLUMNS, DataPricingParams
from batch_scoring.udfs.pricing.voice_pricing import VOICE_PRICING_OUTPUT_COLUMNS, VoicePricingParams
from batch_scoring.udfs.registry import BUILTINS, FunctionNotFoundError, resolve_function

JOB_FILE = Path(__file__).resolve().parents[2] / "conf" / "jobs" / "data_pricing.yaml"

# --------------------------------------------------------------------------- parse_ddl_columns


def test_parse_ddl_simple_keeps_order():
    columns = parse_ddl_columns("price double, n bigint, rule string")

    assert columns == {"price": "double", "n": "bigint", "rule": "string"}
    assert list(columns) == ["price", "n", "rule"]


def test_parse_ddl_keeps_nested_types_whole():
    ddl = (
        "amount decimal(10,2), tags map<string,int>, "
        "items array<struct<sku:string,qty:int>>, ok boolean"
    )

    assert parse_ddl_columns(ddl) == {
        "amount": "decimal(10,2)",
        "tags": "map<string,int>",
        "items": "array<struct<sku:string,qty:int>>",
        "ok": "boolean",
    }


def test_parse_ddl_whitespace_and_backticks():
    ddl = "\n  `price`   double ,\n  rule string,\n"

    assert parse_ddl_columns(ddl) == {"price": "double", "rule": "string"}


def test_parse_ddl_backticked_name_with_space():
    assert parse_ddl_columns("`unit price` double, n bigint") == {
        "unit price": "double",
        "n": "bigint",
    }


def test_parse_ddl_duplicate_name():
    with pytest.raises(ValueError, match=r"output schema names column 'price' twice"):
        parse_ddl_columns("price double, n bigint, price string")


@pytest.mark.parametrize("ddl", ["", "   ", " , ,"])
def test_parse_ddl_empty(ddl):
    with pytest.raises(ValueError, match=r"output schema is empty"):
        parse_ddl_columns(ddl)


@pytest.mark.parametrize(("ddl", "entry"), [("price double, n", "n"), ("price", "price")])
def test_parse_ddl_entry_without_type(ddl, entry):
    with pytest.raises(ValueError) as info:
        parse_ddl_columns(ddl)

    assert str(info.value) == f"output schema entry {entry!r} is not 'name type'"


# --------------------------------------------------------------------------- decorator


def test_decorator_attaches_unit_function():
    @unit_of_work_function(output_schema="avg_price double, n bigint")
    def summarise(key, pdf):
        return pd.DataFrame({"avg_price": [pdf["price"].mean()], "n": [len(pdf)]})

    contract = summarise.__unit_function__
    assert isinstance(contract, UnitFunction)
    assert contract.fn is summarise
    assert contract.name == f"{__name__}:{summarise.__qualname__}"
    assert contract.name.endswith("test_decorator_attaches_unit_function.<locals>.summarise")
    assert contract.shape == "unit"
    assert contract.output_columns == {"avg_price": "double", "n": "bigint"}
    assert tuple(contract.input_rules(None)) == ()
    assert contract.params_model is None
    # the decorated function is the same, still callable as before.
    out = summarise(("a",), pd.DataFrame({"price": [1.0, 3.0]}))
    assert out.to_dict("list") == {"avg_price": [2.0], "n": [2]}


def test_decorator_batch_shape_mapping_schema_and_rules():
    rules = [ColumnRule("price", "numeric", minimum=0, minimum_exclusive=True)]

    @unit_of_work_function(
        output_schema={"total": "double", "rule": "string"}, shape="batch", input_rules=rules
    )
    def totals(pdf, keys):
        return pdf

    contract = totals.__unit_function__
    assert contract.shape == "batch"
    assert contract.output_columns == {"total": "double", "rule": "string"}
    assert contract.input_rules({"any": "params"}) == (rules[0],)
    rules.append(ColumnRule("other"))  # the decorator kept its own copy
    assert contract.input_rules(None) == (ColumnRule("price", "numeric", minimum=0, minimum_exclusive=True),)


def test_decorator_rejects_bad_shape():
    with pytest.raises(ValueError, match=r"shape must be 'unit' or 'batch', got 'rows'"):
        unit_of_work_function(output_schema="x double", shape="rows")


def test_decorator_rejects_bad_schema():
    with pytest.raises(ValueError, match=r"twice"):
        unit_of_work_function(output_schema="x double, x double")


# --------------------------------------------------------------------------- ColumnRule


@pytest.mark.parametrize(
    ("rule", "text"),
    [
        (ColumnRule("price", "numeric", minimum=0, minimum_exclusive=True), "> 0"),
        (ColumnRule("volume", "numeric", minimum=0), ">= 0"),
        (ColumnRule("share", maximum=1, maximum_exclusive=True), "< 1"),
        (ColumnRule("hour", "integer", maximum=23), "<= 23"),
        (ColumnRule("hour", "integer", minimum=0, maximum=23), ">= 0 and <= 23"),
        (
            ColumnRule("u", minimum=0.5, maximum=1.5, minimum_exclusive=True, maximum_exclusive=True),
            "> 0.5 and < 1.5",
        ),
        (ColumnRule("x", minimum=-2.25), ">= -2.25"),
        (ColumnRule("anything"), "any value"),
        (ColumnRule("flag", "string", minimum_exclusive=True), "any value"),
    ],
)
def test_describe_domain(rule, text):
    assert rule.describe_domain() == text


def test_describe_domain_keeps_bound_exact():
    assert ColumnRule("amount", "numeric", maximum=1234567).describe_domain() == "<= 1234567"


def test_column_rule_defaults():
    rule = ColumnRule("x")

    assert (rule.dtype, rule.nullable, rule.minimum, rule.maximum) == ("any", False, None, None)


# --------------------------------------------------------------------------- built-ins


def test_builtins_are_the_two_pricing_functions():
    assert set(BUILTINS) == {"data_pricing", "voice_pricing"}


def test_resolve_data_pricing():
    function = resolve_function("data_pricing")

    assert function is BUILTINS["data_pricing"]
    assert function.name == "data_pricing"
    assert function.shape == "batch"
    assert function.fn is data_pricing.price_data_units
    assert dict(function.output_columns) == DATA_PRICING_OUTPUT_COLUMNS
    assert list(function.output_columns)[:3] == ["n_rows", "n_obs", "last_date"]
    assert function.params_model is DataPricingParams
    assert function.prepare is data_pricing.prepare_spark
    assert function.prepare_pandas is data_pricing.prepare_pandas
    rules = function.input_rules(DataPricingParams(price_col="p"))
    assert [(r.name, r.dtype, r.describe_domain()) for r in rules] == [
        ("sale_date", "date", "any value"),
        ("p", "numeric", "> 0"),
        ("volume", "numeric", ">= 0"),
        ("unit_cost", "numeric", ">= 0"),
    ]


def test_resolve_voice_pricing():
    function = resolve_function("voice_pricing")

    assert function is BUILTINS["voice_pricing"]
    assert function.shape == "batch"
    assert dict(function.output_columns) == VOICE_PRICING_OUTPUT_COLUMNS
    assert function.params_model is VoicePricingParams
    assert function.prepare is None and function.prepare_pandas is None
    rules = function.input_rules(VoicePricingParams())
    assert [(r.name, r.describe_domain()) for r in rules] == [
        ("traffic_date", "any value"),
        ("load_erlangs", ">= 0"),
        ("capacity_erlangs", "> 0"),
        ("base_price_per_min", "> 0"),
        ("hour", ">= 0 and <= 23"),
    ]
    no_hour = function.input_rules(VoicePricingParams(hour_col=None))
    assert [r.name for r in no_hour] == [
        "traffic_date",
        "load_erlangs",
        "capacity_erlangs",
        "base_price_per_min",
    ]


def test_data_pricing_validate_params_from_real_job():
    params = BUILTINS["data_pricing"].validate_params(load_job(JOB_FILE).function.params)

    assert isinstance(params, DataPricingParams)
    assert params.history_days == 120
    assert params.max_step == 0.15
    assert params.min_margin == 0.10
    assert params.pool_by == ["segment"]
    assert params.min_own_weight == 0.8  # default


def test_data_pricing_validate_params_rejects_a_wrong_type():
    with pytest.raises(pydantic.ValidationError) as info:
        BUILTINS["data_pricing"].validate_params({"max_step": "lots"})

    assert [e["loc"] for e in info.value.errors()] == [("max_step",)]


def test_data_pricing_validate_params_names_the_nearest_field():
    with pytest.raises(ParamsError) as info:
        BUILTINS["data_pricing"].validate_params({"histroy_days": 90})

    message = str(info.value)
    assert message.startswith("function.params.histroy_days: data_pricing has no parameter")
    assert "(did you mean 'history_days'?)" in message
    assert "Accepted parameters: date_col, price_col" in message


def test_validate_params_without_model_returns_a_copy():
    function = UnitFunction(
        "f", fn=lambda pdf, keys, factor: pdf, shape="batch", output_columns={}
    )
    given = {"factor": 2}

    params = function.validate_params(given)

    assert params == {"factor": 2}
    assert params is not given


# --------------------------------------------------------------------------- bind


def sales(location: str, prices) -> pd.DataFrame:
    prices = np.asarray(prices, dtype=np.float64)
    n = len(prices)
    return pd.DataFrame(
        {
            "segment": ["s"] * n,
            "location": [location] * n,
            "product": ["p"] * n,
            "sale_date": pd.date_range("2026-05-01", periods=n),
            "price": prices,
            "volume": 1000.0 * prices**-2.0,
            "unit_cost": np.full(n, 4.0),
        }
    )


def test_bind_builtin_passes_params_and_context():
    function = BUILTINS["data_pricing"]
    keys = ["segment", "location", "product"]
    params = function.validate_params({"max_step": 0.15, "min_margin": 0.1})
    flat = sales("l", [10.0, 10.0, 10.0])  # no price variation: no own elasticity
    # context from another unit of the segment with elasticity exactly -2 (q = 1000 p^-2).
    context = data_pricing.prepare_pandas(sales("m", [8, 9, 10, 11, 12]), keys, params)

    bound = function.bind(params, context=context)

    assert isinstance(bound, functools.partial)
    assert bound.keywords == {"params": params, "context": context}
    row = bound(flat, keys).iloc[0]
    # the prior -2 from the context: Lerner p* = 4 * -2 / (1 - 2) = 8, capped at 15 % below 10.
    assert row["elasticity_prior"] == pytest.approx(-2.0)
    assert row["optimal_price"] == pytest.approx(8.0)
    assert row["price"] == pytest.approx(8.5)
    assert row["rule"] == "bounded"
    # without a context the unit's own (flat) history gives no elasticity: keep the price.
    alone = function.bind(params)(flat, keys).iloc[0]
    assert alone["price"] == pytest.approx(10.0)
    assert alone["rule"] == "fallback"


def test_bind_builtin_without_prepare_passes_only_params():
    function = BUILTINS["voice_pricing"]
    params = function.validate_params({"alpha": 1.0})  # forecast = last utilisation

    bound = function.bind(params)

    assert bound.keywords == {"params": params}
    pdf = pd.DataFrame(
        {
            "cell_id": [1, 1, 2, 2],
            "hour": [9, 9, 9, 9],
            "traffic_date": pd.to_datetime(["2024-03-01", "2024-03-02"] * 2),
            "load_erlangs": [18.0, 4.0, 10.0, 16.0],
            "capacity_erlangs": [20.0] * 4,
            "base_price_per_min": [0.10, 0.10, 0.20, 0.20],
        }
    )
    out = bound(pdf, ["cell_id", "hour"])
    # cell 1: forecast 0.2, raw discount 1 - 3.5^(-1/1.8) = 0.50 -> capped at 0.40.
    assert out["forecast_utilisation"].tolist() == pytest.approx([0.2, 0.8])
    assert out["discount"].tolist() == pytest.approx([0.4, 0.0])
    assert out["tier"].tolist() == ["discount_40", "none"]
    assert out["price_per_min"].tolist() == pytest.approx([0.06, 0.20])


def test_bind_plain_function_passes_keywords_and_context():
    def fn(pdf, keys, factor, context=None):
        return pdf.assign(total=pdf["price"] * factor + context)

    function = UnitFunction(
        "m:fn", fn=fn, shape="batch", output_columns={"total": "double"}, prepare_pandas=lambda *a: 1
    )

    bound = function.bind(function.validate_params({"factor": 3}), context=0.5)

    assert bound.keywords == {"factor": 3, "context": 0.5}
    assert bound(pd.DataFrame({"price": [1.0, 2.0]}), [])["total"].tolist() == [3.5, 6.5]


# --------------------------------------------------------------------------- user functions

USER_MODULE = '''
import pandas as pd

from batch_scoring.udfs.contract import ColumnRule, unit_of_work_function

PRICE_RULE = ColumnRule("price", "numeric", minimum=0, minimum_exclusive=True)


@unit_of_work_function(output_schema="avg_price double, n bigint", input_rules=[PRICE_RULE])
def summarise(key, pdf, markup=0.0):
    return pd.DataFrame({"avg_price": [pdf["price"].mean() * (1 + markup)], "n": [len(pdf)]})


def plain_total(pdf, keys, factor=1.0, label="x"):
    out = pdf.groupby(keys, as_index=False, sort=False)["price"].sum()
    return out.assign(total=out.pop("price") * factor, label=label)


NOT_CALLABLE = 42
'''


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
    """tmp_path as the cwd holding my_prices.py; sys.path and sys.modules restored after."""
    (tmp_path / "my_prices.py").write_text(USER_MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    modules_before = set(sys.modules)
    importlib.invalidate_caches()
    yield tmp_path
    for name in set(sys.modules) - modules_before:
        module_file = getattr(sys.modules[name], "__file__", None) or ""
        if module_file.startswith(str(tmp_path)):
            del sys.modules[name]


def test_resolve_decorated_user_function(user_dir):
    function = resolve_function("my_prices:summarise")

    module = sys.modules["my_prices"]
    assert module.__file__ == str(user_dir / "my_prices.py")
    assert os.getcwd() in sys.path
    assert function.name == "my_prices:summarise"
    assert function.fn is module.summarise
    assert function.shape == "unit"
    assert dict(function.output_columns) == {"avg_price": "double", "n": "bigint"}
    assert function.params_model is None
    assert tuple(function.input_rules(None)) == (module.PRICE_RULE,)
    bound = function.bind(function.validate_params({"markup": 0.1}))
    out = bound(("a",), pd.DataFrame({"price": [1.0, 3.0]}))
    assert out["avg_price"].tolist() == pytest.approx([2.2])
    assert out["n"].tolist() == [2]


def test_resolve_decorated_user_function_with_overrides(user_dir):
    extra = ColumnRule("volume", "numeric", minimum=0)

    function = resolve_function(
        "my_prices:summarise", shape="batch", output_schema="x double", input_rules=[extra]
    )

    assert function.shape == "batch"
    assert dict(function.output_columns) == {"x": "double"}
    assert [r.name for r in function.input_rules(None)] == ["price", "volume"]


def test_resolve_plain_user_function(user_dir):
    function = resolve_function(
        "my_prices:plain_total", shape="batch", output_schema="total double, label string"
    )

    assert function.fn is sys.modules["my_prices"].plain_total
    assert function.shape == "batch"
    assert dict(function.output_columns) == {"total": "double", "label": "string"}
    assert tuple(function.input_rules(None)) == ()
    bound = function.bind(function.validate_params({"factor": 2.0, "label": "y"}))
    assert bound.keywords == {"factor": 2.0, "label": "y"}
    pdf = pd.DataFrame({"seg": ["a", "a", "b"], "price": [1.0, 2.0, 5.0]})
    pdt.assert_frame_equal(
        bound(pdf, ["seg"]),
        pd.DataFrame({"seg": ["a", "b"], "total": [6.0, 10.0], "label": ["y", "y"]}),
    )


@pytest.mark.parametrize(
    ("shape", "output_schema"), [(None, "total double"), ("batch", None), (None, None)]
)
def test_plain_user_function_needs_shape_and_schema(user_dir, shape, output_schema):
    with pytest.raises(ValueError) as info:
        resolve_function("my_prices:plain_total", shape=shape, output_schema=output_schema)

    message = str(info.value)
    assert message.startswith("function my_prices:plain_total is a plain function")
    assert "function.shape" in message
    assert "function.output_schema" in message


def test_plain_user_function_bad_schema(user_dir):
    with pytest.raises(ValueError, match=r"'total' is not 'name type'"):
        resolve_function("my_prices:plain_total", shape="batch", output_schema="total")


def test_resolve_function_in_a_package(user_dir):
    package = user_dir / "my_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "rules.py").write_text("def price(key, pdf):\n    return pdf[['price']] * 2\n")

    function = resolve_function("my_pkg.rules:price", shape="unit", output_schema="price double")

    assert function.fn(None, pd.DataFrame({"price": [1.5]}))["price"].tolist() == [3.0]


@pytest.mark.parametrize("name", ["my_prices.plain_total", "unknown_builtin", ":fn", "my_prices:"])
def test_bad_path_is_not_found(user_dir, name):
    with pytest.raises(FunctionNotFoundError) as info:
        resolve_function(name)

    message = str(info.value)
    assert message.startswith(f"function.name {name!r} is not a built-in (data_pricing, voice_pricing)")
    assert "package.module:function" in message


def test_missing_module_is_not_found(user_dir):
    with pytest.raises(FunctionNotFoundError) as info:
        resolve_function("no_such_module_xyz:fn", shape="unit", output_schema="x double")

    message = str(info.value)
    assert message.startswith("function.name 'no_such_module_xyz:fn': module 'no_such_module_xyz'")
    assert "does not import" in message


def test_module_with_missing_dependency_is_not_found(user_dir):
    (user_dir / "my_needs_dep.py").write_text("import not_installed_dep_xyz\n\ndef f(k, p):\n    return p\n")

    with pytest.raises(FunctionNotFoundError) as info:
        resolve_function("my_needs_dep:f", shape="unit", output_schema="x double")

    assert "'my_needs_dep:f'" in str(info.value)
    assert "not_installed_dep_xyz" in str(info.value)


def test_module_with_syntax_error_is_not_found(user_dir):
    (user_dir / "my_broken.py").write_text("def f(key, pdf)\n    return pdf\n")

    with pytest.raises(FunctionNotFoundError, match=r"'my_broken:f'"):
        resolve_function("my_broken:f", shape="unit", output_schema="x double")


@pytest.mark.parametrize("attribute", ["nope", "summarise.nope"])
def test_missing_attribute_is_not_found(user_dir, attribute):
    name = f"my_prices:{attribute}"

    with pytest.raises(FunctionNotFoundError) as info:
        resolve_function(name)

    assert str(info.value) == (
        f"function.name {name!r}: module 'my_prices' has no attribute {attribute!r}"
        "; its functions: summarise, plain_total"
    )


def test_non_callable_attribute_is_not_found(user_dir):
    with pytest.raises(FunctionNotFoundError) as info:
        resolve_function("my_prices:NOT_CALLABLE")

    assert str(info.value) == "function.name 'my_prices:NOT_CALLABLE' is not callable"


def test_function_not_found_error_is_a_lookup_error():
    assert issubclass(FunctionNotFoundError, LookupError)
    assert not issubclass(FunctionNotFoundError, ValueError)


# --------------------------------------------------------------------------- params bound to the signature


def _markup_unit(key, pdf, markup: float, floor: float = 0.0):
    return pdf.assign(price=pdf["price"] * (1 + markup)).clip(lower=floor)


def _untyped_batch(pdf, keys, factor, label="x", context=None):
    return pdf


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"markupp": 0.05}, ["function.params.markupp", "has no parameter 'markupp'",
                             "(did you mean 'markup'?)", "Accepted parameters: markup, floor"]),
        ({}, ["function.params: m:f needs parameter(s) markup without a default",
              "set function.params.markup"]),
        ({"markup": "lots"}, ["function.params.markup: 'lots' is not a valid float for m:f",
                              "Input should be a valid number"]),
        ({"markup": 0.1, "key": 1}, ["function.params.key", "Accepted parameters: markup, floor"]),
    ],
)
def test_unit_function_params_bound_to_its_signature(params, words):
    function = UnitFunction("m:f", fn=_markup_unit, shape="unit", output_columns={"price": "double"})

    with pytest.raises(ParamsError) as info:
        function.validate_params(params)

    for word in words:
        assert word in str(info.value)


def test_signature_params_are_coerced_by_annotation():
    function = UnitFunction("m:f", fn=_markup_unit, shape="unit", output_columns={"price": "double"})

    assert function.validate_params({"markup": "0.05"}) == {"markup": 0.05}
    assert function.validate_params({"markup": 1, "floor": 2}) == {"markup": 1.0, "floor": 2.0}


def test_context_is_engine_supplied_only_with_a_prepare_step():
    with_prepare = UnitFunction("m:g", fn=_untyped_batch, shape="batch", output_columns={},
                                prepare_pandas=lambda *a: None)
    without = UnitFunction("m:g", fn=_untyped_batch, shape="batch", output_columns={})

    assert with_prepare.validate_params({"factor": "any"}) == {"factor": "any"}
    with pytest.raises(ParamsError, match="has no parameter 'context'.*factor, label$"):
        with_prepare.validate_params({"factor": 1, "context": 2})
    assert without.validate_params({"factor": 1, "context": 2}) == {"factor": 1, "context": 2}


def test_var_keyword_function_accepts_any_name_but_still_needs_required_ones():
    def fn(pdf, keys, factor: int, **rest):
        return pdf

    assert bind_signature_params(fn, {"factor": "3", "anything": 1}) == {"factor": 3, "anything": 1}
    with pytest.raises(ParamsError, match="needs parameter\\(s\\) factor"):
        bind_signature_params(fn, {"anything": 1})


PARAMS_MODEL_MODULE = '''
    import pandas as pd
    from pydantic import BaseModel, Field
    from batch_scoring.udfs.contract import unit_of_work_function

    class Markup(BaseModel):
        markup: float = Field(gt=0)
        label: str = "priced"

    @unit_of_work_function(output_schema="price double, label string", params_model=Markup)
    def marked(key, pdf, params):
        return pd.DataFrame({"price": [pdf["price"].mean() * (1 + params.markup)],
                             "label": [params.label]})
'''


def test_decorator_params_model_validates_and_binds(tmp_path):
    from tests.user_modules import importable_module

    with importable_module(tmp_path, "marked_prices", PARAMS_MODEL_MODULE) as module:
        function = resolve_function(f"{module}:marked")
        assert function.params_model is sys.modules[module].Markup

        params = function.validate_params({"markup": "0.5"})
        out = function.bind(params)(("a",), pd.DataFrame({"price": [2.0, 4.0]}))
        assert out.to_dict("records") == [{"price": 4.5, "label": "priced"}]

        with pytest.raises(ParamsError, match="\\(did you mean 'markup'\\?\\)"):
            function.validate_params({"markupp": 0.5})
        with pytest.raises(pydantic.ValidationError, match="greater than 0"):
            function.validate_params({"markup": -1})


def test_a_misspelt_function_gets_the_nearest_name_and_the_module_functions(user_dir):
    with pytest.raises(FunctionNotFoundError) as info:
        resolve_function("my_prices:sumarise")

    assert str(info.value) == (
        "function.name 'my_prices:sumarise': module 'my_prices' has no attribute 'sumarise' "
        "(did you mean 'summarise'?); its functions: summarise, plain_total"
    )


def test_a_misspelt_builtin_gets_the_nearest_builtin():
    with pytest.raises(FunctionNotFoundError, match=r"\(did you mean 'data_pricing'\?\)"):
        resolve_function("data_prcing")
