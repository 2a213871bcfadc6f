"""Find a unit-of-work function by built-in name or by ``package.module:function`` path.

Built-ins: ``data_pricing`` (elasticity + Lerner price per (segment, location, product)) and
``voice_pricing`` (idle-capacity discount per (cell, hour)). Any other name must be a path
``package.module:function`` to a user's function, imported on the driver; the current working
directory is searched first, as ``python -m`` and most CLIs do.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Mapping, Sequence

from batch_scoring.udfs.contract import (
    ColumnRule,
    Shape,
    SummaryStages,
    UnitFunction,
    did_you_mean,
    parse_ddl_columns,
)
from batch_scoring.udfs.pricing import data_pricing, voice_pricing


class FunctionNotFoundError(LookupError):
    """The configured function is neither a built-in nor an importable path."""


def _voice_batch(pdf, keys, params, context=None):
    return voice_pricing.price_voice_units(pdf, params.model_copy(update={"keys": list(keys)}))


def _voice_rules(params: voice_pricing.VoicePricingParams) -> list[ColumnRule]:
    rules = [
        ColumnRule(params.date_col, "date"),
        ColumnRule(params.load_col, "numeric", minimum=0),
        ColumnRule(params.capacity_col, "numeric", minimum=0, minimum_exclusive=True),
        ColumnRule(params.base_price_col, "numeric", minimum=0, minimum_exclusive=True),
    ]
    if params.hour_col:
        rules.append(ColumnRule(params.hour_col, "integer", minimum=0, maximum=23))
    return rules


BUILTINS: Mapping[str, UnitFunction] = {
    "data_pricing": UnitFunction(
        name="data_pricing",
        fn=data_pricing.price_data_units,
        shape="batch",
        output_columns=data_pricing.DATA_PRICING_OUTPUT_COLUMNS,
        input_rules=data_pricing.data_pricing_input_rules,
        params_model=data_pricing.DataPricingParams,
        prepare=data_pricing.prepare_spark,
        prepare_pandas=data_pricing.prepare_pandas,
        stages=SummaryStages(
            summarise=data_pricing.summarise_units,
            summary_columns=data_pricing.SUMMARY_COLUMNS,
            context=data_pricing.priors_from_summaries,
            finish=data_pricing.finish_units,
        ),
    ),
    "voice_pricing": UnitFunction(
        name="voice_pricing",
        fn=_voice_batch,
        shape="batch",
        output_columns=voice_pricing.VOICE_PRICING_OUTPUT_COLUMNS,
        input_rules=_voice_rules,
        params_model=voice_pricing.VoicePricingParams,
    ),
}


def resolve_function(
    name: str,
    shape: Shape | None = None,
    output_schema: str | None = None,
    input_rules: Sequence[ColumnRule] = (),
) -> UnitFunction:
    """Return the :class:`UnitFunction` for a built-in name or a ``module:function`` path.

    Args:
        name: ``data_pricing``, ``voice_pricing`` or ``package.module:function``.
        shape: required for a plain user function (``"unit"`` or ``"batch"``); overrides the
            shape of a decorated one.
        output_schema: DDL of the non-key output columns; required for a plain user function,
            overrides a decorated one's.
        input_rules: extra required input columns for a user function.

    Raises:
        FunctionNotFoundError: when the name is not a built-in, not ``module:function``, the
            module does not import or has no such attribute, or the attribute is not callable.
        ValueError: when a plain function lacks ``shape`` or ``output_schema``, or the schema
            does not parse.
    """
    if name in BUILTINS:
        return BUILTINS[name]
    fn = _import_callable(name)
    declared: UnitFunction | None = getattr(fn, "__unit_function__", None)
    if declared is None and (shape is None or output_schema is None):
        raise ValueError(
            f"function {name} is a plain function: set function.shape ('unit' or 'batch') and "
            "function.output_schema (e.g. 'price double, rule string') in the job config, or "
            "decorate it with batch_scoring.udfs.contract.unit_of_work_function"
        )
    base_rules = declared.input_rules if declared else (lambda params: ())
    rules = tuple(input_rules)
    return UnitFunction(
        name=name,
        fn=fn,
        shape=shape or declared.shape,
        output_columns=(
            parse_ddl_columns(output_schema) if output_schema else declared.output_columns
        ),
        input_rules=lambda params: (*base_rules(params), *rules),
        params_model=declared.params_model if declared else None,
    )


def module_functions(owner: object) -> list[str]:
    """Public functions of a module (or class) defined there, not imported: decorated ones first."""
    names = []
    for name, value in vars(owner).items():
        if name.startswith("_") or not inspect.isfunction(value):
            continue
        if getattr(value, "__module__", None) != getattr(owner, "__name__", value.__module__):
            continue
        names.append(name)
    return sorted(names, key=lambda n: (not hasattr(getattr(owner, n), "__unit_function__"), n))


def _import_callable(path: str):
    module_name, sep, attribute = path.partition(":")
    if not sep or not module_name or not attribute:
        raise FunctionNotFoundError(
            f"function.name {path!r} is not a built-in ({', '.join(BUILTINS)})"
            f"{did_you_mean(path, list(BUILTINS))} and not a path of the form "
            "package.module:function"
        )
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # a user's module may fail to import in any way
        raise FunctionNotFoundError(
            f"function.name {path!r}: module {module_name!r} does not import "
            f"({type(error).__name__}: {error}). Install it in the job's environment or run "
            "from the folder that holds it."
        ) from error
    fn = module
    for part in attribute.split("."):
        fn = getattr(fn, part, None)
        if fn is None:
            functions = module_functions(module)
            raise FunctionNotFoundError(
                f"function.name {path!r}: module {module_name!r} has no attribute {attribute!r}"
                f"{did_you_mean(part, functions)}; its functions: "
                f"{', '.join(functions) if functions else '(none)'}"
            )
    if not callable(fn):
        raise FunctionNotFoundError(f"function.name {path!r} is not callable")
    return fn
