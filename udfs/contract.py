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

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

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
    """

    name: str
    fn: Callable[..., Any]
    shape: Shape
    output_columns: Mapping[str, str]
    input_rules: Callable[[Any], Sequence[ColumnRule]] = field(default=lambda params: ())
    params_model: type[BaseModel] | None = None
    prepare: Callable[..., Any] | None = None
    prepare_pandas: Callable[..., Any] | None = None

    def validate_params(self, params: Mapping[str, Any]) -> Any:
        """Validate ``params`` with ``params_model``; return the model or a plain dict.

        Raises:
            pydantic.ValidationError: when a parameter is unknown, missing or of a wrong type.
        """
        if self.params_model is None:
            return dict(params)
        return self.params_model.model_validate(dict(params))

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
