"""Data-bundle pricing per unit of work: elasticity, shrinkage, Lerner price, bounds.

For each unit of work (by default ``(segment, location, product)``) the history of daily
prices ``p`` and volumes ``q`` gives the own-price elasticity of demand ``e``, and the price that
maximises profit under constant elasticity follows from the Lerner rule.

1. **Elasticity, per unit.** Least squares on logs, ``ln q = a + e ln p`` (the constant-
   elasticity demand model; Wooldridge, *Introductory Econometrics*, 7th ed., sec. 2.4 and 6.2).
   With ``x = ln p``, ``y = ln q`` over the unit's usable days (``p > 0`` and ``q > 0``; days with
   zero volume carry no information about the slope of ``ln q``):
   ``Sxx = sum (x - mean x)^2``, ``Sxy = sum (x - mean x)(y - mean y)``, ``e_unit = Sxy / Sxx``.
2. **Shrinkage toward the pool.** Units with few days or little price variation give noisy
   slopes. Following the normal-normal hierarchical model (Gelman et al., *Bayesian Data
   Analysis*, 3rd ed., sec. 5.4-5.5) each unit's estimate is pulled toward its pool's (by default
   the segment's) pooled elasticity with weight ``w = tau^2 / (tau^2 + sigma^2 / Sxx)``:
   ``e = w * e_unit + (1 - w) * e_pool``. ``sigma^2`` is the pool's residual variance
   (``sum SSR / sum (n - 2)``, ``SSR = Syy - Sxy^2 / Sxx``); ``tau^2`` is the between-unit
   variance of the true elasticities estimated by the DerSimonian-Laird method of moments
   (DerSimonian & Laird, *Controlled Clinical Trials* 7, 1986), floored at
   ``min_between_unit_variance``; ``e_pool`` is the random-effects mean
   ``sum e_unit / (v + tau^2) / sum 1 / (v + tau^2)`` with ``v = sigma^2 / Sxx``. Few days or
   flat prices make ``Sxx`` small, hence ``w`` small: exactly the units that need shrinking.
3. **Price.** Under ``q = A p^e`` with marginal cost ``c`` the profit ``(p - c) q`` is maximal at
   the Lerner rule ``p* = c e / (1 + e)`` for ``e < -1`` (Tirole, *The Theory of Industrial
   Organization*, 1988, sec. 1.1). ``p*`` is then bounded: at most ``max_step`` (a fraction) away
   from the current price, at least the floor ``max(price_floor, c (1 + min_margin))``, at most
   ``price_ceiling``, in that order.
4. **Rule.** ``fallback`` when no elasticity below -1 is available (inelastic demand or no
   usable history): the current price is kept, within floor and ceiling. Otherwise ``bounded``
   when a bound moved ``p*``, else ``estimated`` when ``w >= min_own_weight`` and ``shrunk``
   below it.

The maths is vectorised across units (``numpy.bincount`` over unit codes), so one call prices a
whole Arrow batch of units. :func:`price_data` runs everything on one pandas DataFrame without
Spark; the Spark job runs :func:`unit_statistics_spark` over the whole input on the driver side to
get the pool priors, then :func:`price_data_units` per batch of whole units.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, model_validator

from batch_scoring.udfs.contract import ColumnRule

if TYPE_CHECKING:
    from pyspark.sql import DataFrame as SparkDataFrame

SXX_EPSILON = 1e-10
STAT_COLUMNS = ["n_obs", "sxx", "sxy", "syy"]
PRIOR_COLUMNS = ["elasticity_prior", "between_unit_variance", "residual_variance", "pool_units"]

DATA_PRICING_OUTPUT_COLUMNS: dict[str, str] = {
    "n_rows": "bigint",
    "n_obs": "bigint",
    "last_date": "date",
    "current_price": "double",
    "unit_cost": "double",
    "elasticity_unit": "double",
    "elasticity_prior": "double",
    "shrink_weight": "double",
    "elasticity": "double",
    "optimal_price": "double",
    "price": "double",
    "price_change": "double",
    "rule": "string",
}


SUMMARY_COLUMNS: dict[str, str] = {
    "n_rows": "bigint",
    "n_obs": "bigint",
    "sxx": "double",
    "sxy": "double",
    "syy": "double",
    "last_date": "date",
    "current_price": "double",
    "unit_cost": "double",
}


class DataPricingParams(BaseModel):
    """Parameters of the data-pricing function (``function.params`` in the job YAML).

    Column names point at the user's own data; money is in the currency of ``price_col``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    date_col: str = Field("sale_date", description="date of each observation (date/timestamp)")
    price_col: str = Field("price", description="price paid per bundle, currency units, > 0")
    volume_col: str = Field("volume", description="bundles sold on that date, >= 0")
    cost_col: str = Field("unit_cost", description="marginal cost per bundle, currency, >= 0")
    pool_by: list[str] = Field(
        ["segment"], description="key columns whose units share a prior (shrinkage pool)"
    )
    history_days: PositiveInt | None = Field(
        None, description="use only the last N days of each unit's history; None = all"
    )
    max_step: PositiveFloat = Field(
        0.15, description="largest move from the current price, as a fraction (0.15 = 15 %)"
    )
    min_margin: float = Field(0.0, ge=0, description="floor at unit_cost * (1 + min_margin)")
    price_floor: PositiveFloat | None = Field(None, description="absolute floor, currency")
    price_ceiling: PositiveFloat | None = Field(None, description="absolute ceiling, currency")
    min_own_weight: float = Field(
        0.8, ge=0, le=1, description="shrink weight at or above which the rule is 'estimated'"
    )
    min_between_unit_variance: PositiveFloat = Field(
        0.01, description="floor of tau^2, the between-unit variance of elasticities"
    )

    @model_validator(mode="after")
    def _floor_below_ceiling(self) -> DataPricingParams:
        if self.price_floor and self.price_ceiling and self.price_floor > self.price_ceiling:
            raise ValueError(
                f"price_floor {self.price_floor} is above price_ceiling {self.price_ceiling}"
            )
        return self


@dataclass(frozen=True)
class PoolPriors:
    """Pooled elasticity priors: one row per pool plus the all-units fallback.

    ``by_pool`` columns: the ``pool_by`` key columns, ``elasticity_prior`` (float64),
    ``between_unit_variance`` (tau^2, float64), ``residual_variance`` (sigma^2, float64, NaN when
    no unit has 3 or more usable days), ``pool_units`` (int64, units with a usable slope).
    ``overall`` holds the same four values computed over all units; pools without a usable unit
    use it.
    """

    pool_by: tuple[str, ...]
    by_pool: pd.DataFrame
    overall: dict[str, float]


def data_pricing_input_rules(params: DataPricingParams) -> list[ColumnRule]:
    """Return the input contract: date not null, price > 0, volume >= 0, cost >= 0."""
    return [
        ColumnRule(params.date_col, "date"),
        ColumnRule(params.price_col, "numeric", minimum=0, minimum_exclusive=True),
        ColumnRule(params.volume_col, "numeric", minimum=0),
        ColumnRule(params.cost_col, "numeric", minimum=0),
    ]


def unit_statistics(
    pdf: pd.DataFrame, keys: Sequence[str], params: DataPricingParams
) -> pd.DataFrame:
    """Reduce each unit's history to the sufficient statistics of its log-log regression.

    Args:
        pdf: rows of one or more whole units: the key columns, ``date_col`` (date/datetime),
            ``price_col``, ``volume_col``, ``cost_col`` (numeric, valid per the input rules).
        keys: the unit-of-work key columns.
        params: column names and ``history_days``.

    Returns:
        One row per unit, in order of first appearance: the key columns, ``n_rows`` (int64,
        days in the window), ``n_obs`` (int64, usable days), ``sxx``, ``sxy``, ``syy``
        (float64, centred sums of squares/products of ln price and ln volume), ``last_date``
        (datetime64[ns]), ``current_price`` and ``unit_cost`` (float64, on the last date).
    """
    codes, units = _unit_codes(pdf, keys)
    dates = pd.to_datetime(pdf[params.date_col]).dt.normalize().to_numpy()
    order = np.lexsort((dates, codes))
    codes, dates = codes[order], dates[order]
    price = pdf[params.price_col].to_numpy(dtype=float)[order]
    volume = pdf[params.volume_col].to_numpy(dtype=float)[order]
    cost = pdf[params.cost_col].to_numpy(dtype=float)[order]
    is_last = np.r_[codes[1:] != codes[:-1], True]
    last_date = dates[is_last]
    in_window = _in_history_window(dates, last_date[codes], params.history_days)
    usable = in_window & (price > 0) & (volume > 0)
    stats = _centred_sums(codes, len(units), usable, price, volume)
    return units.assign(
        n_rows=np.bincount(codes, weights=in_window, minlength=len(units)).astype("int64"),
        **stats,
        last_date=last_date,
        current_price=price[is_last],
        unit_cost=cost[is_last],
    )


def _unit_codes(pdf: pd.DataFrame, keys: Sequence[str]) -> tuple[np.ndarray, pd.DataFrame]:
    grouped = pdf.groupby(list(keys), sort=False, dropna=False)
    codes = grouped.ngroup().to_numpy()
    _, first = np.unique(codes, return_index=True)
    units = pdf.iloc[first][list(keys)].reset_index(drop=True)
    return codes, units


def _in_history_window(dates: np.ndarray, last: np.ndarray, days: int | None) -> np.ndarray:
    if days is None:
        return np.ones(len(dates), dtype=bool)
    return (last - dates) < np.timedelta64(days, "D")


def _centred_sums(
    codes: np.ndarray, n_units: int, usable: np.ndarray, price: np.ndarray, volume: np.ndarray
) -> dict[str, np.ndarray]:
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.where(usable, np.log(np.where(usable, price, 1.0)), 0.0)
        y = np.where(usable, np.log(np.where(usable, volume, 1.0)), 0.0)
        n = np.bincount(codes, weights=usable, minlength=n_units)
        mean_x = np.bincount(codes, weights=x, minlength=n_units) / np.maximum(n, 1)
        mean_y = np.bincount(codes, weights=y, minlength=n_units) / np.maximum(n, 1)
    dx = np.where(usable, x - mean_x[codes], 0.0)
    dy = np.where(usable, y - mean_y[codes], 0.0)
    return {
        "n_obs": n.astype("int64"),
        "sxx": np.bincount(codes, weights=dx * dx, minlength=n_units),
        "sxy": np.bincount(codes, weights=dx * dy, minlength=n_units),
        "syy": np.bincount(codes, weights=dy * dy, minlength=n_units),
    }


def pool_priors(unit_stats: pd.DataFrame, params: DataPricingParams) -> PoolPriors:
    """Estimate each pool's prior elasticity and variances from per-unit statistics.

    Args:
        unit_stats: one row per unit with the ``pool_by`` columns and ``n_obs`` (int),
            ``sxx``, ``sxy``, ``syy`` (float) as made by :func:`unit_statistics` or
            :func:`unit_statistics_spark`.
        params: ``pool_by`` and ``min_between_unit_variance``.

    Returns:
        :class:`PoolPriors` (formulas in the module docstring).

    Raises:
        ValueError: when a ``pool_by`` column is missing from ``unit_stats``.
    """
    pool_by = list(params.pool_by)
    missing = [c for c in pool_by if c not in unit_stats.columns]
    if missing:
        raise ValueError(
            f"function.params.pool_by names {missing}, which are not unit-of-work keys"
        )
    overall = _prior_of(unit_stats, params.min_between_unit_variance, fallback=None)
    if not pool_by:
        return PoolPriors((), pd.DataFrame(columns=PRIOR_COLUMNS), overall)
    rows = [
        {**dict(zip(pool_by, key if isinstance(key, tuple) else (key,))),
         **_prior_of(group, params.min_between_unit_variance, fallback=overall)}
        for key, group in unit_stats.groupby(pool_by, sort=True, dropna=False)
    ]
    by_pool = pd.DataFrame(rows, columns=[*pool_by, *PRIOR_COLUMNS])
    return PoolPriors(tuple(pool_by), by_pool.astype({"pool_units": "int64"}), overall)


def _prior_of(
    units: pd.DataFrame, tau2_floor: float, fallback: dict[str, float] | None
) -> dict[str, float]:
    sxx, sxy, syy = (units[c].to_numpy(dtype=float) for c in ("sxx", "sxy", "syy"))
    n = units["n_obs"].to_numpy(dtype=float)
    slope_ok = (n >= 2) & (sxx > SXX_EPSILON)
    if not slope_ok.any():
        return dict(fallback) if fallback else _empty_prior(tau2_floor)
    e_unit = sxy[slope_ok] / sxx[slope_ok]
    sigma2 = _residual_variance(sxx, sxy, syy, n, slope_ok)
    if np.isnan(sigma2) and fallback is not None:
        sigma2 = fallback["residual_variance"]
    v = (sigma2 if np.isfinite(sigma2) else 1.0) / sxx[slope_ok]
    tau2 = _dersimonian_laird_tau2(e_unit, v, tau2_floor)
    if len(e_unit) < 2 and fallback is not None:
        tau2 = fallback["between_unit_variance"]
    weights = 1.0 / (v + tau2)
    return {
        "elasticity_prior": float(np.sum(weights * e_unit) / np.sum(weights)),
        "between_unit_variance": float(tau2),
        "residual_variance": float(sigma2),
        "pool_units": int(slope_ok.sum()),
    }


def _empty_prior(tau2_floor: float) -> dict[str, float]:
    return {
        "elasticity_prior": float("nan"),
        "between_unit_variance": tau2_floor,
        "residual_variance": float("nan"),
        "pool_units": 0,
    }


def _residual_variance(sxx, sxy, syy, n, slope_ok) -> float:
    dof = np.where(slope_ok, n - 2, 0)
    has_dof = dof > 0
    if not has_dof.any():
        return float("nan")
    ssr = np.clip(syy[has_dof] - sxy[has_dof] ** 2 / sxx[has_dof], 0.0, None)
    return float(ssr.sum() / dof[has_dof].sum())


def _dersimonian_laird_tau2(estimates: np.ndarray, variances: np.ndarray, floor: float) -> float:
    if len(estimates) < 2:
        return floor
    w = 1.0 / variances
    fixed_mean = np.sum(w * estimates) / np.sum(w)
    q = np.sum(w * (estimates - fixed_mean) ** 2)
    c = np.sum(w) - np.sum(w**2) / np.sum(w)
    tau2 = (q - (len(estimates) - 1)) / c if c > 0 else 0.0
    return float(max(tau2, floor))


def price_from_statistics(
    stats: pd.DataFrame, priors: PoolPriors, params: DataPricingParams
) -> pd.DataFrame:
    """Turn per-unit statistics and pool priors into prices.

    Args:
        stats: output of :func:`unit_statistics`.
        priors: output of :func:`pool_priors` over the whole input.
        params: bounds and rule thresholds.

    Returns:
        ``stats``' key columns followed by :data:`DATA_PRICING_OUTPUT_COLUMNS` (prices in the
        currency of ``price_col``; ``price_change`` is a fraction; ``last_date`` as
        ``datetime.date``).
    """
    prior = _attach_priors(stats, priors)
    n = stats["n_obs"].to_numpy(dtype=float)
    sxx, sxy = stats["sxx"].to_numpy(dtype=float), stats["sxy"].to_numpy(dtype=float)
    slope_ok = (n >= 2) & (sxx > SXX_EPSILON)
    with np.errstate(divide="ignore", invalid="ignore"):
        e_unit = np.where(slope_ok, sxy / sxx, np.nan)
        weight = _shrink_weight(slope_ok, sxx, prior)
    e_prior = prior["elasticity_prior"].to_numpy(dtype=float)
    elasticity = np.where(
        slope_ok & np.isnan(e_prior), e_unit, weight * np.nan_to_num(e_unit) + (1 - weight) * e_prior
    )
    weight = np.where(slope_ok & np.isnan(e_prior), 1.0, weight)
    current = stats["current_price"].to_numpy(dtype=float)
    cost = stats["unit_cost"].to_numpy(dtype=float)
    optimal, price, rule = _bounded_price(elasticity, weight, current, cost, params)
    keys = [c for c in stats.columns if c not in _STAT_OUTPUTS]
    return stats[keys].assign(
        n_rows=stats["n_rows"].astype("int64"),
        n_obs=stats["n_obs"].astype("int64"),
        last_date=pd.to_datetime(stats["last_date"]).dt.date,
        current_price=current,
        unit_cost=cost,
        elasticity_unit=e_unit,
        elasticity_prior=e_prior,
        shrink_weight=weight,
        elasticity=elasticity,
        optimal_price=optimal,
        price=price,
        price_change=price / current - 1.0,
        rule=rule,
    )


_STAT_OUTPUTS = {
    "n_rows", "n_obs", "sxx", "sxy", "syy", "last_date", "current_price", "unit_cost",
}


def _attach_priors(stats: pd.DataFrame, priors: PoolPriors) -> pd.DataFrame:
    pool_by = list(priors.pool_by)
    if pool_by:
        joined = stats[pool_by].merge(priors.by_pool, on=pool_by, how="left")
    else:
        joined = pd.DataFrame(index=range(len(stats)), columns=PRIOR_COLUMNS, dtype=float)
    for column in PRIOR_COLUMNS:
        joined[column] = joined[column].astype(float).fillna(priors.overall[column])
    return joined.reset_index(drop=True)


def _shrink_weight(slope_ok: np.ndarray, sxx: np.ndarray, prior: pd.DataFrame) -> np.ndarray:
    tau2 = prior["between_unit_variance"].to_numpy(dtype=float)
    sigma2 = prior["residual_variance"].to_numpy(dtype=float)
    weight = tau2 / (tau2 + sigma2 / sxx)
    weight = np.where(np.isnan(sigma2), 1.0, weight)
    return np.where(slope_ok, weight, 0.0)


def _bounded_price(
    elasticity: np.ndarray,
    weight: np.ndarray,
    current: np.ndarray,
    cost: np.ndarray,
    params: DataPricingParams,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    elastic = np.isfinite(elasticity) & (elasticity < -1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        optimal = np.where(elastic, cost * elasticity / (1.0 + elasticity), np.nan)
    stepped = np.clip(optimal, current * (1 - params.max_step), current * (1 + params.max_step))
    price = np.where(elastic, stepped, current)
    price = np.maximum(price, np.maximum(params.price_floor or 0.0, cost * (1 + params.min_margin)))
    if params.price_ceiling is not None:
        price = np.minimum(price, params.price_ceiling)
    moved = ~np.isclose(price, optimal, rtol=1e-12, atol=0.0)
    own = np.where(weight >= params.min_own_weight, "estimated", "shrunk")
    rule = np.where(~elastic, "fallback", np.where(moved, "bounded", own))
    return optimal, price, rule.astype(object)


def price_data_units(
    pdf: pd.DataFrame,
    keys: Sequence[str],
    params: DataPricingParams,
    context: PoolPriors | None = None,
) -> pd.DataFrame:
    """Price a batch of whole units of work (the ``batch``-shaped unit-of-work function).

    Args:
        pdf: rows of one or more whole units (columns as in :func:`unit_statistics`).
        keys: the unit-of-work key columns.
        params: the validated :class:`DataPricingParams`.
        context: pool priors computed over the whole input; when None they are computed from
            ``pdf`` itself, which is right only when ``pdf`` is the whole input.

    Returns:
        One row per unit: the key columns then :data:`DATA_PRICING_OUTPUT_COLUMNS`.
    """
    if pdf.empty:
        return _empty_output(pdf, keys)
    stats = unit_statistics(pdf, keys, params)
    priors = context if context is not None else pool_priors(stats, params)
    return price_from_statistics(stats, priors, params)


def summarise_units(pdf: pd.DataFrame, keys: Sequence[str], params: DataPricingParams) -> pd.DataFrame:
    """Stage 1 of the packed Spark job: :func:`unit_statistics` of a batch of whole units.

    Returns:
        One row per unit: the key columns, then :data:`SUMMARY_COLUMNS` (``last_date`` as
        ``datetime.date``, so Spark receives a date).
    """
    if pdf.empty:
        return pd.DataFrame({**{k: pdf[k] for k in keys},
                             **{c: pd.Series(dtype=object) for c in SUMMARY_COLUMNS}})
    stats = unit_statistics(pdf, keys, params)
    return stats.assign(last_date=pd.to_datetime(stats["last_date"]).dt.date)


def priors_from_summaries(
    summaries: SparkDataFrame, keys: Sequence[str], params: DataPricingParams
) -> PoolPriors:
    """Stage 2 of the packed Spark job, on the driver: the pool priors from every unit's
    summary (:func:`summarise_units` rows).

    Collects the ``pool_by`` columns and ``n_obs``, ``sxx``, ``sxy``, ``syy`` of every unit
    (about 50 bytes per unit), sorted by the keys so the priors' sums add in the same order on
    every run (a rerun gives the same prices to the last bit).
    """
    columns = list(dict.fromkeys([*keys, *params.pool_by]))
    stats = summaries.select(*columns, *STAT_COLUMNS).toPandas()
    stats = stats.sort_values(list(keys), kind="stable", ignore_index=True)
    return pool_priors(stats, params)


def finish_units(
    summaries: pd.DataFrame, keys: Sequence[str], params: DataPricingParams, context: PoolPriors
) -> pd.DataFrame:
    """Stage 3 of the packed Spark job: prices from unit summaries and the pool priors.

    Args:
        summaries: :func:`summarise_units` rows of some units (``last_date`` as dates).

    Returns:
        The same rows :func:`price_data_units` gives for those units with ``context``.
    """
    stats = summaries[[*keys, *SUMMARY_COLUMNS]]
    return price_from_statistics(stats, context, params)


def price_data(pdf: pd.DataFrame, keys: Sequence[str], params: DataPricingParams) -> pd.DataFrame:
    """Price every unit of an in-memory dataset with pandas alone (no Spark).

    Same output as the Spark job on the same rows (see :func:`price_data_units`).
    """
    return price_data_units(pdf, keys, params, context=None)


def prepare_pandas(pdf: pd.DataFrame, keys: Sequence[str], params: DataPricingParams) -> PoolPriors:
    """Compute the pool priors of a whole pandas dataset (the pandas ``prepare`` step)."""
    return pool_priors(unit_statistics(pdf, keys, params), params)


def _empty_output(pdf: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    columns = {k: pdf[k] for k in keys}
    for name, dtype in DATA_PRICING_OUTPUT_COLUMNS.items():
        columns[name] = pd.Series(dtype={"bigint": "int64", "double": "float64"}.get(dtype, object))
    return pd.DataFrame(columns)


def unit_statistics_spark(
    df: SparkDataFrame, keys: Sequence[str], params: DataPricingParams
) -> pd.DataFrame:
    """Compute :func:`unit_statistics`' regression sums with Spark and collect them.

    Spark's ``var_pop``/``covar_pop`` are numerically stable central-moment aggregates, so
    ``n * var_pop(x)`` equals the centred ``Sxx`` of :func:`unit_statistics` (to rounding).

    Args:
        df: the validated input (columns as in :func:`unit_statistics`).

    Returns:
        pandas DataFrame, one row per unit (about 60 bytes per unit on the driver): the
        ``pool_by`` columns, ``n_obs`` (int64), ``sxx``, ``sxy``, ``syy`` (float64).
    """
    from pyspark.sql import functions as F

    usable = (F.col(params.price_col) > 0) & (F.col(params.volume_col) > 0)
    x = F.when(usable, F.log(F.col(params.price_col).cast("double")))
    y = F.when(usable, F.log(F.col(params.volume_col).cast("double")))
    windowed = _spark_history_window(df, keys, params)
    n = F.count(x)
    stats = (
        windowed.withColumn("_x", x)
        .withColumn("_y", y)
        .groupBy(*keys)
        .agg(
            n.alias("n_obs"),
            F.coalesce(F.var_pop("_x") * n, F.lit(0.0)).alias("sxx"),
            F.coalesce(F.covar_pop("_x", "_y") * n, F.lit(0.0)).alias("sxy"),
            F.coalesce(F.var_pop("_y") * n, F.lit(0.0)).alias("syy"),
        )
        .select(*params.pool_by, *STAT_COLUMNS)
    )
    return stats.toPandas()


def _spark_history_window(
    df: SparkDataFrame, keys: Sequence[str], params: DataPricingParams
) -> SparkDataFrame:
    if params.history_days is None:
        return df
    from pyspark.sql import functions as F

    day = F.to_date(F.col(params.date_col))
    last = df.groupBy(*keys).agg(F.max(day).alias("_last_day"))
    return (
        df.join(last, on=list(keys))
        .where(F.datediff("_last_day", day) < params.history_days)
        .drop("_last_day")
    )


def prepare_spark(df: SparkDataFrame, keys: Sequence[str], params: DataPricingParams) -> PoolPriors:
    """Compute the pool priors over the whole Spark input (the driver-side ``prepare`` step)."""
    return pool_priors(unit_statistics_spark(df, keys, params), params)
