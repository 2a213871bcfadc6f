"""Discount pricing of voice minutes per unit of work (cell, hour).

A *unit of work* is one combination of the key columns (default ``cell_id`` and ``hour``):
the daily history of one hour-of-day slot of one radio cell. The Spark engine repartitions
the traffic so that every unit arrives whole and exactly once in one pandas batch, and calls
:func:`price_voice_units` on batches that hold many whole units. The function is pure and
vectorised across units (groupby codes + numpy ``bincount``); there is no Python loop per unit.

Method, per unit (formulas and sources are repeated on the functions that implement them):

1. Utilisation per row: ``u_t = load_t / capacity_t`` (Erlangs / Erlangs = fraction).
2. Next-day utilisation forecast ``f`` by simple exponential smoothing (SES) with smoothing
   factor ``alpha`` and the level initialised at the first observation, over the last
   ``history_days`` observations (rows) of the unit. Hyndman, R.J. & Athanasopoulos, G.,
   *Forecasting: Principles and Practice*, 3rd ed., OTexts 2021, section 8.1
   "Simple exponential smoothing" (weighted-average form). With ``l_1 = y_1`` the recursion
   ``l_t = a*y_t + (1-a)*l_{t-1}`` has the closed form::

       f = l_n = (1-a)^(n-1) * y_1 + sum_{i=2..n} a * (1-a)^(n-i) * y_i

   which is computed as per-row weights (from a reverse cumcount within the unit) followed by
   a grouped sum.
3. Discount that fills idle capacity. Under constant-elasticity demand ``q ∝ p^e`` (``e < 0``;
   the constant-elasticity price-response function, e.g. Phillips, R.L., *Pricing and Revenue
   Optimization*, Stanford University Press) expected utilisation scales as
   ``u(p') = f * (p'/p)^e``. Setting ``u(p') = u*`` (the target utilisation) gives the price
   ratio ``p'/p = (u*/f)^(1/e)``, hence::

       d_raw = 1 - (u*/f)^(1/e)   if f < threshold   (d_raw = max_discount if f == 0)
       d_raw = 0                  otherwise
       d     = ladder_floor(clip(d_raw, 0, max_discount))

   where ``ladder_floor`` is the largest step of the discount ladder that is ``<=`` its
   argument (0 if none), so the offer never overshoots the fill target. The lower the
   forecast utilisation, the deeper the discount; none at or above the threshold.
4. ``tier`` = ``"none"`` if ``d == 0`` else ``"discount_<integer percent>"``.
5. ``price_per_min = base_price_per_min(latest row of the unit) * (1 - d)`` in EUR/min.

Public API: :class:`VoicePricingParams`, :data:`VOICE_PRICING_OUTPUT_COLUMNS`,
:func:`price_voice_units`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["VOICE_PRICING_OUTPUT_COLUMNS", "VoicePricingParams", "price_voice_units"]

VOICE_PRICING_OUTPUT_COLUMNS: dict[str, str] = {
    "n_obs": "bigint",
    "last_date": "date",
    "current_utilisation": "double",
    "forecast_utilisation": "double",
    "discount": "double",
    "tier": "string",
    "base_price_per_min": "double",
    "price_per_min": "double",
}
"""Output columns of :func:`price_voice_units` after the key columns, in order, mapped to their
Spark DDL types. The key columns (``VoicePricingParams.keys``, same types as in the input) come
first in the output and are not listed here.

- ``n_obs`` (bigint): number of observations (rows) used by the forecast,
  ``min(rows of the unit, history_days)``.
- ``last_date`` (date): calendar day of the unit's most recent observation.
- ``current_utilisation`` (double, fraction): ``load / capacity`` of the most recent row.
- ``forecast_utilisation`` (double, fraction): SES forecast of next-day utilisation.
- ``discount`` (double, fraction in ``[0, max_discount]``): a ladder step or 0.
- ``tier`` (string): ``"none"`` or ``"discount_<pct>"``, e.g. ``"discount_15"``.
- ``base_price_per_min`` (double, EUR/min): base price of the most recent row.
- ``price_per_min`` (double, EUR/min): ``base_price_per_min * (1 - discount)``.
"""

_OUTPUT_PANDAS_DTYPES: dict[str, str] = {
    "n_obs": "int64",
    "last_date": "datetime64[ns]",
    "current_utilisation": "float64",
    "forecast_utilisation": "float64",
    "discount": "float64",
    "tier": "object",
    "base_price_per_min": "float64",
    "price_per_min": "float64",
}

# A discount that equals a ladder step up to float rounding noise still earns that step.
_LADDER_TOLERANCE = 1e-9


class VoicePricingParams(BaseModel):
    """Parameters of :func:`price_voice_units` (immutable; unknown fields are rejected).

    Column names (inputs):
        keys: key columns identifying a unit of work (any dtypes), default
            ``["cell_id", "hour"]``. Non-empty, unique, distinct from the other input columns
            and from the output column names.
        date_col: observation date (datetime64 or ``datetime.date``), default ``traffic_date``.
        load_col: carried load in Erlangs (float64 >= 0), default ``load_erlangs``.
        capacity_col: capacity in Erlangs (float64 > 0), default ``capacity_erlangs``.
        base_price_col: base price in EUR/min (float64 > 0), default ``base_price_per_min``.
        hour_col: the key column holding the hour of day, validated to lie in 0..23 before
            pricing (rows outside are quarantined); ``None`` when no key is an hour.

    Forecast (Hyndman & Athanasopoulos, FPP 3rd ed., section 8.1):
        alpha: SES smoothing factor, ``0 < alpha <= 1``, default 0.3.
        history_days: number of most recent observations (rows) per unit the forecast uses,
            ``>= 1``, default 28; ``None`` uses all of them.

    Discount (constant-elasticity demand ``q ∝ p^e``):
        elasticity: price elasticity ``e < 0``, default -1.8.
        target_utilisation: utilisation ``u*`` the discount aims to reach,
            ``0 < u* <= 1``, default 0.7.
        threshold: a unit is discounted only if its forecast is ``< threshold``,
            ``0 < threshold <= 1``, default 0.7. (If ``threshold > target_utilisation``,
            forecasts between the two get no discount, because the raw discount is negative
            and is clipped at 0.)
        max_discount: cap on the discount, ``0 <= max_discount < 1``, default 0.4.
        ladder: allowed discount steps (fractions), each in ``(0, 1)`` and a whole percentage
            (so that ``tier`` labels are exact); stored sorted ascending without duplicates.
            Default ``[0.05, 0.10, 0.15, 0.20, 0.30, 0.40]``. An empty ladder disables discounts.

    Raises:
        pydantic.ValidationError: on an unknown field, a value outside its range, a NaN or
            infinite float, or clashing column names.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    keys: list[str] = Field(default_factory=lambda: ["cell_id", "hour"], min_length=1)
    date_col: str = "traffic_date"
    load_col: str = "load_erlangs"
    capacity_col: str = "capacity_erlangs"
    base_price_col: str = "base_price_per_min"
    hour_col: str | None = "hour"
    alpha: float = Field(0.3, gt=0.0, le=1.0)
    history_days: int | None = Field(28, ge=1)
    elasticity: float = Field(-1.8, lt=0.0)
    target_utilisation: float = Field(0.7, gt=0.0, le=1.0)
    threshold: float = Field(0.7, gt=0.0, le=1.0)
    max_discount: float = Field(0.4, ge=0.0, lt=1.0)
    ladder: list[float] = Field(default_factory=lambda: [0.05, 0.10, 0.15, 0.20, 0.30, 0.40])

    @field_validator("ladder")
    @classmethod
    def _check_ladder(cls, ladder: list[float]) -> list[float]:
        """Require each step in (0, 1) and a whole percentage; sort and de-duplicate."""
        for step in ladder:
            if not 0.0 < step < 1.0:
                raise ValueError(f"ladder step {step!r} is not in (0, 1)")
            if abs(step * 100.0 - round(step * 100.0)) > 1e-6:
                raise ValueError(f"ladder step {step!r} is not a whole percentage")
        return sorted({round(step * 100.0) / 100.0 for step in ladder})

    @model_validator(mode="after")
    def _check_column_names(self) -> VoicePricingParams:
        """Reject duplicated input column names and keys that clash with output columns."""
        inputs = [*self.keys, self.date_col, self.load_col, self.capacity_col, self.base_price_col]
        duplicated = sorted({name for name in inputs if inputs.count(name) > 1})
        if duplicated:
            raise ValueError(f"input column names must be distinct, repeated: {duplicated}")
        clashing = sorted(set(self.keys) & set(VOICE_PRICING_OUTPUT_COLUMNS))
        if clashing:
            raise ValueError(f"keys {clashing} clash with output column names")
        return self


def price_voice_units(pdf: pd.DataFrame, params: VoicePricingParams) -> pd.DataFrame:
    """Price voice minutes for every unit of work in a batch, vectorised across units.

    Input ``pdf`` (column names from ``params``; other columns are ignored; row order is
    irrelevant because rows are stably sorted by date within each unit here; values are
    assumed valid, i.e. checked upstream):

    - ``params.keys``: key columns of the unit, any dtypes.
    - ``params.date_col``: datetime64 (any unit, tz-aware accepted) or ``datetime.date``.
    - ``params.load_col``: float64 >= 0, carried load in Erlangs.
    - ``params.capacity_col``: float64 > 0, capacity in Erlangs.
    - ``params.base_price_col``: float64 > 0, base price in EUR/min.

    Output: one row per unit, sorted by the keys, index ``0..n_units-1``; the key columns
    (same dtypes as the input) followed by :data:`VOICE_PRICING_OUTPUT_COLUMNS`, with pandas
    dtypes ``n_obs`` int64, ``last_date`` datetime64[ns] (midnight of the last observation's
    day), ``current_utilisation`` / ``forecast_utilisation`` / ``discount`` float64
    (fractions), ``tier`` object (str), ``base_price_per_min`` / ``price_per_min`` float64
    (EUR/min). An empty input yields an empty frame with these columns and dtypes.

    Method (details in the module docstring): ``u = load / capacity``; ``f`` = simple
    exponential smoothing level over the last ``history_days`` rows, level initialised at the
    first of them (Hyndman & Athanasopoulos, FPP 3rd ed., section 8.1); discount
    ``1 - (u*/f)^(1/e)`` below the threshold under constant-elasticity demand ``q ∝ p^e``,
    capped at ``max_discount`` and rounded down to the ladder; price = latest base price
    ``* (1 - discount)``.

    Raises:
        ValueError: if ``pdf`` lacks a required column; the message names the missing
            column(s) and the ``VoicePricingParams`` field that sets each name.
    """
    _check_columns(pdf, params)
    if pdf.empty:
        return _empty_output(pdf, params.keys)
    work = _prepare(pdf, params)
    gid, rev, n_units = _unit_codes(work, params.keys)
    util = work[params.load_col].to_numpy(np.float64) / work[params.capacity_col].to_numpy(
        np.float64
    )
    forecast, n_obs = _ses_forecast(util, gid, rev, n_units, params.alpha, params.history_days)
    discount, tier = _discount_and_tier(forecast, params)
    last = _last_positions(gid, rev, n_units)
    base_price = work[params.base_price_col].to_numpy(np.float64)[last]
    values = pd.DataFrame(
        {
            "n_obs": n_obs.astype(np.int64),
            "last_date": _day_start(work[params.date_col].to_numpy()[last]),
            "current_utilisation": util[last],
            "forecast_utilisation": forecast,
            "discount": discount,
            "tier": tier,
            "base_price_per_min": base_price,
            "price_per_min": base_price * (1.0 - discount),
        }
    )
    keys = work[params.keys].iloc[last].reset_index(drop=True)
    return pd.concat([keys, values], axis=1).astype(_OUTPUT_PANDAS_DTYPES)


def _check_columns(pdf: pd.DataFrame, params: VoicePricingParams) -> None:
    """Raise ValueError naming each missing input column and the params field that names it."""
    wanted = [(key, "keys") for key in params.keys] + [
        (params.date_col, "date_col"),
        (params.load_col, "load_col"),
        (params.capacity_col, "capacity_col"),
        (params.base_price_col, "base_price_col"),
    ]
    missing = [(name, field) for name, field in wanted if name not in pdf.columns]
    if missing:
        detail = ", ".join(f"{name!r} (VoicePricingParams.{field})" for name, field in missing)
        raise ValueError(
            f"price_voice_units: input lacks required column(s) {detail}; rename the input "
            f"column(s) or set the named VoicePricingParams field(s). "
            f"Available columns: {list(pdf.columns)}"
        )


def _empty_output(pdf: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Empty result: the input's key columns (dtypes kept) and the typed output columns."""
    key_frame = pdf[keys].iloc[:0].reset_index(drop=True)
    values = pd.DataFrame(
        {name: pd.Series([], dtype=dtype) for name, dtype in _OUTPUT_PANDAS_DTYPES.items()}
    )
    return pd.concat([key_frame, values], axis=1)


def _prepare(pdf: pd.DataFrame, params: VoicePricingParams) -> pd.DataFrame:
    """Select the needed columns, make the date naive datetime64[ns], and sort.

    The sort is stable, by the keys then the date, so rows with equal dates keep their input
    order; the index is reset to positions.
    """
    values = [params.date_col, params.load_col, params.capacity_col, params.base_price_col]
    work = pdf[[*params.keys, *values]].copy()
    work[params.date_col] = _as_naive_datetime(work[params.date_col])
    work = work.sort_values([*params.keys, params.date_col], kind="stable", na_position="last")
    return work.reset_index(drop=True)


def _as_naive_datetime(dates: pd.Series) -> pd.Series:
    """Convert dates (datetime64 of any unit / tz, or datetime.date) to naive datetime64[ns].

    Times of day are kept for ordering; tz-aware values keep their local wall-clock time.
    """
    converted = pd.to_datetime(dates)
    if isinstance(converted.dtype, pd.DatetimeTZDtype):
        converted = converted.dt.tz_localize(None)
    return converted.astype("datetime64[ns]")


def _day_start(dates: np.ndarray) -> np.ndarray:
    """Truncate naive datetime64 values to midnight of their day, as datetime64[ns]."""
    return dates.astype("datetime64[D]").astype("datetime64[ns]")


def _unit_codes(work: pd.DataFrame, keys: list[str]) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-row unit code (0..n_units-1 in sorted key order) and reverse position in the unit.

    ``rev`` is 0 for the unit's most recent row, 1 for the one before, and so on.
    """
    grouped = work.groupby(keys, sort=True, dropna=False, observed=True)
    gid = grouped.ngroup().to_numpy(np.int64)
    rev = grouped.cumcount(ascending=False).to_numpy(np.int64)
    return gid, rev, int(grouped.ngroups)


def _ses_forecast(
    values: np.ndarray,
    gid: np.ndarray,
    rev: np.ndarray,
    n_units: int,
    alpha: float,
    history_days: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    """SES level after the last observation of every unit, and the number of rows used.

    Hyndman & Athanasopoulos, FPP 3rd ed., section 8.1, weighted-average form with the level
    initialised at the first used observation (``l_1 = y_1``)::

        l_n = (1-a)^(n-1) * y_1 + sum_{i=2..n} a * (1-a)^(n-i) * y_i

    Only rows with ``rev < history_days`` are used. With ``r = n - i`` (the reverse position),
    the row weight is ``a * (1-a)^r`` except for the first used row (``r = n - 1``), whose
    weight is ``(1-a)^(n-1)``; the weights sum to 1 and the level is the grouped weighted sum.
    """
    used = np.ones(rev.shape, dtype=bool) if history_days is None else rev < history_days
    n_used = np.bincount(gid[used], minlength=n_units)
    r = rev[used]
    decay = 1.0 - alpha
    weights = np.where(r == n_used[gid[used]] - 1, decay**r, alpha * decay**r)
    level = np.bincount(gid[used], weights=weights * values[used], minlength=n_units)
    return level, n_used


def _discount_and_tier(
    forecast: np.ndarray, params: VoicePricingParams
) -> tuple[np.ndarray, np.ndarray]:
    """Ladder discount (fraction) and tier label per unit from the utilisation forecast.

    Constant-elasticity demand ``q ∝ p^e``: the price ratio that moves expected utilisation
    from ``f`` to ``u*`` is ``(u*/f)^(1/e)``, so ``d_raw = 1 - (u*/f)^(1/e)`` for
    ``0 < f < threshold``, ``max_discount`` for ``f == 0`` and 0 for ``f >= threshold``;
    ``d_raw`` is clipped to ``[0, max_discount]`` and rounded down to the ladder.
    """
    with np.errstate(divide="ignore"):
        ratio = np.where(forecast > 0.0, params.target_utilisation / forecast, np.inf)
    raw = np.where(forecast > 0.0, 1.0 - ratio ** (1.0 / params.elasticity), params.max_discount)
    raw = np.where(forecast < params.threshold, raw, 0.0)
    capped = np.clip(raw, 0.0, params.max_discount)
    steps = np.concatenate([[0.0], np.asarray(params.ladder, dtype=np.float64)])
    labels = np.array(["none"] + [f"discount_{round(s * 100)}" for s in params.ladder], object)
    step_index = np.searchsorted(steps, capped + _LADDER_TOLERANCE, side="right") - 1
    return steps[step_index], labels[step_index]


def _last_positions(gid: np.ndarray, rev: np.ndarray, n_units: int) -> np.ndarray:
    """Row position of each unit's most recent row, indexed by unit code."""
    is_last = rev == 0
    last = np.empty(n_units, dtype=np.int64)
    last[gid[is_last]] = np.flatnonzero(is_last)
    return last
