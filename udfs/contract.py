"""The contract every unit-of-work function shares with the engine.

A unit-of-work function comes in one of two shapes:

* ``"unit"``:  ``f(key: tuple, pdf: pandas.DataFrame, **params) -> pandas.DataFrame`` is called
  once per unit of work with all of that unit's rows (simplest to write);
* ``"batch"``: ``f(pdf: pandas.DataFrame, keys: list[str], **params) -> pandas.DataFrame`` is
  called with many whole units at once, rows sorted by the keys then by ``order_by`` (fastest:
  the maths can be vectorised across units).

The engine guarantees both the same thing: every unit arrives whole, exactly once.

A :class:`UnitFunction` bundles the callable with what the engine needs to run it safely: its
output columns (Spark DDL types), its input contract (:class:`ColumnRule` per required column,
used to quarantine bad rows before the function sees them), an optional pydantic model for its
parameters, and an optional driver-side ``prepare`` step that computes a small context (for
example pooled priors) from the whole input before the per-unit stage.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, TypeAdapter, ValidationError

Shape = Literal["unit", "batch"]
RuleType = Literal["numeric", "integer", "string", "date", "any"]
ERROR_TEXT_CHARS = 500


def describe_error(error: BaseException, limit: int = ERROR_TEXT_CHARS) -> str:
    """The text a reject records for an exception: ``"Type: message"`` on one line.

    Runs of whitespace (newlines included) become one space; text longer than ``limit``
    characters is cut and ends with ``...``, so a huge message cannot bloat the rejects.
    """
    text = " ".join(f"{type(error).__name__}: {error}".split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ParamsError(ValueError):
    """``function.params`` do not fit the function: an unknown, missing or mistyped parameter.

    The message names the field (``function.params.<name>``), the accepted names and, for an
    unknown name, the nearest accepted one.
    """


def nearest(name: str, candidates: Sequence[str]) -> str | None:
    """The candidate closest to ``name`` by :func:`difflib.get_close_matches` (cutoff 0.6), or None."""
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


def did_you_mean(name: str, candidates: Sequence[str]) -> str:
    """``" (did you mean 'x'?)"`` for the nearest candidate, or ``""`` when none is near."""
    match = nearest(name, candidates)
    return f" (did you mean {match!r}?)" if match else ""


def _unknown_and_missing(
    given: Mapping[str, Any], accepted: Sequence[str], required: Sequence[str], what: str,
    function_name: str,
) -> None:
    """Raise :class:`ParamsError` for the first unknown given name, then for missing ones."""
    names = ", ".join(accepted) if accepted else "(none)"
    for name in given:
        if name not in accepted:
            raise ParamsError(
                f"{what}.{name}: {function_name} has no parameter {name!r}{did_you_mean(name, accepted)}. "
                f"Accepted parameters: {names}"
            )
    missing = [name for name in required if name not in given]
    if missing:
        raise ParamsError(
            f"{what}: {function_name} needs parameter(s) {', '.join(missing)} without a default; "
            f"set {', '.join(f'{what}.{m}' for m in missing)}. Accepted parameters: {names}"
        )


def bind_signature_params(
    fn: Callable[..., Any],
    params: Mapping[str, Any],
    *,
    engine_args: int = 2,
    engine_keywords: Sequence[str] = (),
    what: str = "function.params",
    function_name: str | None = None,
) -> dict[str, Any]:
    """Check ``params`` against ``fn``'s Python signature and validate them by its annotations.

    The first ``engine_args`` positional parameters (the unit's key and rows, or the rows and
    the key names) and the ``engine_keywords`` (``context``) are supplied by the engine and are
    not accepted from the config. A parameter annotated with a type is validated (and coerced,
    pydantic's lax mode: ``"0.05"`` -> ``0.05`` for a ``float``) by a
    :class:`pydantic.TypeAdapter`; unannotated ones are passed as given. A ``**kwargs``
    parameter accepts any further name.

    Returns:
        A new dict: name -> validated value.

    Raises:
        ParamsError: an unknown name (with the accepted names and the nearest one), a missing
            required name, or a value its annotation refuses; the message names
            ``<what>.<name>``.
    """
    function_name = function_name or getattr(fn, "__qualname__", repr(fn))
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin without a signature: nothing to check
        return dict(params)
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # an annotation that does not evaluate: check names only
        hints = {}
    accepted, required, open_keywords = [], [], False
    positional = 0
    for parameter in signature.parameters.values():
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            open_keywords = True
            continue
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            positional = engine_args
            continue
        if positional < engine_args and parameter.kind in (
            inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD
        ):
            positional += 1
            continue
        if parameter.name in engine_keywords or parameter.kind is inspect.Parameter.POSITIONAL_ONLY:
            continue
        accepted.append(parameter.name)
        if parameter.default is inspect.Parameter.empty:
            required.append(parameter.name)
    given = dict(params)
    if open_keywords:
        _unknown_and_missing({k: v for k, v in given.items() if k in accepted}, accepted,
                             required, what, function_name)
    else:
        _unknown_and_missing(given, accepted, required, what, function_name)
    validated = {}
    for name, value in given.items():
        annotation = hints.get(name)
        if annotation is None or annotation is typing.Any:
            validated[name] = value
            continue
        try:
            validated[name] = TypeAdapter(annotation).validate_python(value)
        except ValidationError as error:
            reason = "; ".join(item["msg"] for item in error.errors())
            raise ParamsError(
                f"{what}.{name}: {value!r} is not a valid {_type_name(annotation)} "
                f"for {function_name} ({reason})"
            ) from None
    return validated


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def validate_params_model(
    model: type[BaseModel], params: Mapping[str, Any], what: str = "function.params",
    function_name: str = "the function",
) -> BaseModel:
    """Validate ``params`` with a pydantic ``model``, refusing names it has no field for.

    Unknown names are refused even when the model allows extra fields, with the nearest field
    name. Raises :class:`ParamsError` for an unknown name and :class:`pydantic.ValidationError`
    for missing or mistyped values.
    """
    accepted = [field.alias or name for name, field in model.model_fields.items()]
    accepted += [name for name in model.model_fields if name not in accepted]
    unknown = {k: v for k, v in params.items() if k not in accepted}
    if unknown:
        _unknown_and_missing(unknown, accepted, (), what, function_name)
    return model.model_validate(dict(params))


@dataclass(frozen=True)
class ColumnRule:
    """One required input column: its type class, nullability and value domain.

    ``dtype`` is a type class, not an exact type: ``numeric`` accepts any Spark numeric type,
    ``integer`` the integral ones, ``date`` a date or timestamp, ``string`` a string, ``any``
    everything. ``minimum``/``maximum`` bound the values (inclusive unless the ``*_exclusive``
    flag is set); NaN always breaks a numeric rule. Rows breaking a rule are quarantined with
    the reason code ``null_value`` or ``out_of_range`` and this column's name.
    """

    name: str
    dtype: RuleType = "any"
    nullable: bool = False
    minimum: float | None = None
    maximum: float | None = None
    minimum_exclusive: bool = False
    maximum_exclusive: bool = False

    def describe_domain(self) -> str:
        """Return the value domain as text, e.g. ``"> 0"`` or ``">= 0 and <= 23"``, for messages."""
        low = None if self.minimum is None else ("> " if self.minimum_exclusive else ">= ")
        high = None if self.maximum is None else ("< " if self.maximum_exclusive else "<= ")
        parts = []
        if low:
            parts.append(f"{low}{_exact(self.minimum)}")
        if high:
            parts.append(f"{high}{_exact(self.maximum)}")
        return " and ".join(parts) or "any value"


def _exact(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else repr(float(number))


@dataclass(frozen=True)
class SummaryStages:
    """A ``batch`` function with a driver-side context, split so the packed engine reads the
    rows once (built-in functions only).

    Without it, a function with ``prepare`` costs two passes over its input: ``prepare``'s
    (e.g. per-unit statistics aggregated by Spark for pooled priors), then the function's. With
    it, the function's pass computes one summary row per unit; the context comes from those
    summaries (one row per unit, held by Spark); the output is finished from them:

    * ``summarise(pdf, keys, params) -> DataFrame``: the keys and ``summary_columns`` of every
      unit in ``pdf`` (whole units, as the ``batch`` shape gets them), one row per unit;
    * ``context(summaries, keys, params) -> context``: run once on the driver over the Spark
      DataFrame of all summaries (the key columns and ``summary_columns``);
    * ``finish(summaries, keys, params, context) -> DataFrame``: a pandas chunk of summary
      rows to the function's output (the keys and ``output_columns``), the same rows ``fn``
      gives for those units with the same context.

    ``finish`` works on the summaries alone, so an exception there is not a failure of one
    unit: it fails the run (the failed-unit budget applies to ``summarise``).
    """

    summarise: Callable[..., Any]
    summary_columns: Mapping[str, str]
    context: Callable[..., Any]
    finish: Callable[..., Any]


@dataclass(frozen=True)
class UnitFunction:
    """A unit-of-work function and the contract the engine runs it under.

    Attributes:
        name: registry name or ``module:function`` path, used in messages.
        fn: the callable, in the signature of ``shape`` (see the module docstring).
        shape: ``"unit"`` or ``"batch"``.
        output_columns: the non-key output columns, name -> Spark DDL type (``"double"``,
            ``"bigint"``, ``"string"``, ``"date"``...), in output order. The engine puts the
            unit-of-work key columns first, with their source types.
        input_rules: ``params -> Sequence[ColumnRule]``; the required input columns.
        params_model: pydantic model validating ``function.params``; when set, ``fn`` receives
            the validated model as ``params=``, otherwise each parameter as a keyword.
        prepare: optional ``(spark_df, keys, params) -> context`` run once on the driver over
            the validated input; ``fn`` then receives ``context=`` (small, picklable).
        prepare_pandas: the same as ``prepare`` for a pandas DataFrame (no Spark).
        stages: the function split in :class:`SummaryStages`, which the packed engine runs
            instead of ``prepare`` + ``fn`` (one pass over the rows); None for one stage.
    """

    name: str
    fn: Callable[..., Any]
    shape: Shape
    output_columns: Mapping[str, str]
    input_rules: Callable[[Any], Sequence[ColumnRule]] = field(default=lambda params: ())
    params_model: type[BaseModel] | None = None
    prepare: Callable[..., Any] | None = None
    prepare_pandas: Callable[..., Any] | None = None
    stages: SummaryStages | None = None

    def validate_params(self, params: Mapping[str, Any]) -> Any:
        """Validate ``params`` before any data is read; return the model or a plain dict.

        With ``params_model``: the pydantic model (unknown names refused, with the nearest
        field). Without: ``params`` bound against ``fn``'s signature, the engine's two
        positional arguments and ``context`` (when there is a ``prepare`` step) left out, and
        each value validated by its annotation (:func:`bind_signature_params`).

        Raises:
            ParamsError: an unknown or missing parameter, or a value its annotation refuses.
            pydantic.ValidationError: a value ``params_model`` refuses.
        """
        if self.params_model is not None:
            return validate_params_model(self.params_model, params, function_name=self.name)
        takes_context = self.prepare is not None or self.prepare_pandas is not None
        return bind_signature_params(
            self.fn, params, engine_args=2,
            engine_keywords=("context",) if takes_context else (), function_name=self.name,
        )

    def bind(self, params: Any, context: Any = None) -> Callable[..., Any]:
        """Return ``fn`` with its parameters (and the ``prepare`` context) bound.

        ``params`` is what :meth:`validate_params` returned.
        """
        kwargs: dict[str, Any] = (
            {"params": params} if self.params_model is not None else dict(params)
        )
        if self.prepare is not None or self.prepare_pandas is not None:
            kwargs["context"] = context
        return functools.partial(self.fn, **kwargs)


def unit_of_work_function(
    *,
    output_schema: str | Mapping[str, str],
    shape: Shape = "unit",
    input_rules: Sequence[ColumnRule] = (),
    params_model: type[BaseModel] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a user's function with the contract the engine needs to run it.

    Example::

        @unit_of_work_function(output_schema="avg_price double, n bigint")
        def summarise(key, pdf):
            return pandas.DataFrame({"avg_price": [pdf.price.mean()], "n": [len(pdf)]})

    Args:
        output_schema: the non-key output columns as a DDL string (``"a double, b string"``) or
            a mapping name -> DDL type.
        shape: ``"unit"`` (called per unit) or ``"batch"`` (called with many whole units).
        input_rules: required input columns; rows breaking them are quarantined.
        params_model: a pydantic model of the parameters. ``function.params`` are validated
            by it before Spark starts and the function is called with ``params=<model>``
            (instead of one keyword per parameter). Without it, the parameters are checked
            against the function's own signature and annotations.

    Returns:
        The same function, with a ``__unit_function__`` attribute holding its contract.

    Raises:
        ValueError: when ``output_schema`` cannot be parsed or ``shape`` is unknown.
    """
    columns = parse_ddl_columns(output_schema) if isinstance(output_schema, str) else output_schema
    if shape not in ("unit", "batch"):
        raise ValueError(f"shape must be 'unit' or 'batch', got {shape!r}")

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        rules = tuple(input_rules)
        fn.__unit_function__ = UnitFunction(  # type: ignore[attr-defined]
            name=f"{fn.__module__}:{fn.__qualname__}",
            fn=fn,
            shape=shape,
            output_columns=dict(columns),
            input_rules=lambda params: rules,
            params_model=params_model,
        )
        return fn

    return decorate


def parse_ddl_columns(ddl: str) -> dict[str, str]:
    """Parse ``"name type, name type"`` into an ordered mapping name -> type.

    Types may contain commas inside angle brackets or parentheses (``decimal(10,2)``,
    ``array<string>``); those are kept whole.

    Raises:
        ValueError: when an entry is not ``name type`` or a name repeats.
    """
    columns: dict[str, str] = {}
    for entry in _split_top_level(ddl):
        name, dtype = _name_and_type(entry.strip())
        if not name or not dtype.strip():
            raise ValueError(f"output schema entry {entry.strip()!r} is not 'name type'")
        if name in columns:
            raise ValueError(f"output schema names column {name!r} twice")
        columns[name] = dtype.strip()
    if not columns:
        raise ValueError("output schema is empty: give at least one 'name type' column")
    return columns


def _name_and_type(entry: str) -> tuple[str, str]:
    if entry.startswith("`"):
        name, _, dtype = entry[1:].partition("`")
        return name, dtype
    name, _, dtype = entry.partition(" ")
    return name, dtype


def _split_top_level(ddl: str) -> list[str]:
    parts, depth, current = [], 0, []
    for char in ddl:
        if char in "<(":
            depth += 1
        elif char in ">)":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p for p in parts if p.strip()]
