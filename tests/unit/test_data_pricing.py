"""Data pricing maths against values computed by hand (see the module docstring's formulas)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from batch_scoring.jobs.sample_data import make_bundle_sales
from batch_scoring.udfs.pricing.data_pricing import (
    DATA_PRICING_OUTPUT_COLUMNS,
    DataPricingParams,
    pool_priors,
    price_data,
    price_data_units,
    unit_statistics,
)

KEYS = ["segment", "location", "product"]


def unit_rows(location: str, log_prices, log_volumes, cost: float, segment: str = "consumer"):
    """Rows of one unit with prices exp(x) and volumes exp(y) on consecutive days."""
    days = pd.date_range("2026-01-01", periods=len(log_prices), freq="D")
    return pd.DataFrame({
        "segment": segment,
        "location": location,
        "product": "data_5gb",
        "sale_date": days,
        "price": np.exp(log_prices),
        "volume": np.exp(log_volumes),
        "unit_cost": cost,
    })


def by_location(out: pd.DataFrame) -> pd.DataFrame:
    return out.set_index("location")


def test_exact_constant_elasticity_demand_gives_the_lerner_price():
    # ln q = 5 - 3 ln p exactly: e = -3, Lerner p* = c e / (1 + e) = 6 * 3 / 2 = 9.
    x = np.log([8.0, 9.0, 10.0, 11.0])
    pdf = unit_rows("A", x, 5 - 3 * x, cost=6.0)
    out = price_data(pdf, KEYS, DataPricingParams(max_step=0.5))
    row = out.iloc[0]
    assert row["elasticity_unit"] == pytest.approx(-3.0, abs=1e-12)
    assert row["elasticity"] == pytest.approx(-3.0, abs=1e-12)
    assert row["optimal_price"] == pytest.approx(9.0, abs=1e-9)
    assert row["price"] == pytest.approx(9.0, abs=1e-9)
    assert row["current_price"] == pytest.approx(11.0)
    assert row["price_change"] == pytest.approx(9.0 / 11.0 - 1)
    assert row["rule"] == "estimated"
    assert (row["n_rows"], row["n_obs"]) == (4, 4)


def hand_pool() -> pd.DataFrame:
    """Two units with 3 days each and a unit with a constant price, in one segment.

    A: x = 0,1,2; y = 0,-2.1,-3.9 -> Sxx 2, Sxy -3.9, e -1.95, SSR 0.015
    B: x = 0,1,2; y = 0,-3.1,-5.9 -> Sxx 2, Sxy -5.9, e -2.95, SSR 0.015
    sigma^2 = 0.03 / 2 = 0.015; v = 0.0075; w = 133.33 each; fixed mean -2.45
    Q = 133.33 * 0.5 = 66.667; C = 266.67 - 133.33 = 133.33; tau^2 = 65.667 / 133.33 = 0.4925
    prior = -2.45 (equal weights); shrink weight = 0.4925 / 0.5 = 0.985
    """
    x = np.array([0.0, 1.0, 2.0])
    return pd.concat([
        unit_rows("A", x, np.array([0.0, -2.1, -3.9]), cost=2.0),
        unit_rows("B", x, np.array([0.0, -3.1, -5.9]), cost=2.0),
        unit_rows("C", np.log([5.0, 5.0, 5.0, 5.0]), np.log([10, 12, 9, 11]), cost=2.0),
    ], ignore_index=True)


def test_pool_prior_and_variances_match_the_hand_computation():
    params = DataPricingParams()
    priors = pool_priors(unit_statistics(hand_pool(), KEYS, params), params)
    row = priors.by_pool.set_index("segment").loc["consumer"]
    assert row["residual_variance"] == pytest.approx(0.015, rel=1e-9)
    assert row["between_unit_variance"] == pytest.approx(65.666666 / 133.333333, rel=1e-6)
    assert row["elasticity_prior"] == pytest.approx(-2.45, rel=1e-9)
    assert row["pool_units"] == 2


def test_shrinkage_pulls_each_unit_toward_the_pool_by_its_precision():
    out = by_location(price_data(hand_pool(), KEYS, DataPricingParams(max_step=5.0)))
    tau2 = 65.666666666 / 133.333333333
    weight = tau2 / (tau2 + 0.0075)
    assert out.loc["A", "shrink_weight"] == pytest.approx(weight, rel=1e-9)
    assert out.loc["A", "elasticity"] == pytest.approx(weight * -1.95 + (1 - weight) * -2.45)
    assert out.loc["B", "elasticity"] == pytest.approx(weight * -2.95 + (1 - weight) * -2.45)
    assert out.loc["A", "rule"] == "estimated"


def test_a_unit_without_price_variation_takes_the_pool_prior():
    out = by_location(price_data(hand_pool(), KEYS, DataPricingParams(max_step=5.0)))
    c = out.loc["C"]
    assert math.isnan(c["elasticity_unit"])
    assert c["shrink_weight"] == 0.0
    assert c["elasticity"] == pytest.approx(-2.45)
    assert c["optimal_price"] == pytest.approx(2.0 * -2.45 / -1.45)
    assert c["rule"] == "shrunk"


def test_step_floor_and_ceiling_bound_the_price_in_that_order():
    x = np.log([8.0, 9.0, 10.0, 11.0])
    pdf = unit_rows("A", x, 5 - 3 * x, cost=6.0)  # p* = 9, current 11
    stepped = price_data(pdf, KEYS, DataPricingParams(max_step=0.1)).iloc[0]
    assert stepped["price"] == pytest.approx(11.0 * 0.9)
    assert stepped["rule"] == "bounded"
    floored = price_data(pdf, KEYS, DataPricingParams(max_step=0.5, min_margin=0.75)).iloc[0]
    assert floored["price"] == pytest.approx(6.0 * 1.75)
    assert floored["rule"] == "bounded"
    capped = price_data(pdf, KEYS, DataPricingParams(max_step=0.5, price_ceiling=8.5)).iloc[0]
    assert capped["price"] == pytest.approx(8.5)


def test_inelastic_demand_falls_back_to_the_current_price():
    x = np.log([8.0, 9.0, 10.0, 11.0])
    pdf = unit_rows("A", x, 5 - 0.5 * x, cost=6.0)
    row = price_data(pdf, KEYS, DataPricingParams()).iloc[0]
    assert row["elasticity"] == pytest.approx(-0.5)
    assert math.isnan(row["optimal_price"])
    assert row["price"] == pytest.approx(11.0)
    assert row["rule"] == "fallback"


def test_zero_volume_days_count_as_rows_but_not_as_observations():
    x = np.log([8.0, 9.0, 10.0, 11.0, 12.0])
    pdf = unit_rows("A", x, 5 - 3 * x, cost=6.0)
    pdf.loc[4, "volume"] = 0
    row = price_data(pdf, KEYS, DataPricingParams(max_step=1.0)).iloc[0]
    assert (row["n_rows"], row["n_obs"]) == (5, 4)
    assert row["elasticity_unit"] == pytest.approx(-3.0)
    assert row["current_price"] == pytest.approx(12.0)


def test_history_days_keeps_only_the_last_days_of_each_unit():
    x = np.log([20.0, 8.0, 9.0, 10.0, 11.0])
    y = 5 - 3 * x
    y[0] = 0.0  # an old outlier day that the window must drop
    pdf = unit_rows("A", x, y, cost=6.0)
    full = price_data(pdf, KEYS, DataPricingParams()).iloc[0]
    recent = price_data(pdf, KEYS, DataPricingParams(history_days=4)).iloc[0]
    assert full["n_rows"] == 5 and recent["n_rows"] == 4
    assert recent["elasticity_unit"] == pytest.approx(-3.0)
    assert full["elasticity_unit"] != pytest.approx(-3.0)


def test_row_order_inside_a_batch_does_not_change_the_result():
    pdf = make_bundle_sales(units=40, days=30, seed=3)
    params = DataPricingParams()
    ordered = price_data(pdf, KEYS, params)
    shuffled = price_data(pdf.sample(frac=1.0, random_state=1), KEYS, params)
    pd.testing.assert_frame_equal(
        ordered.sort_values(KEYS).reset_index(drop=True),
        shuffled.sort_values(KEYS).reset_index(drop=True),
    )


def test_pricing_per_batch_with_whole_data_priors_equals_pricing_all_at_once():
    pdf = make_bundle_sales(units=60, days=40, seed=5)
    params = DataPricingParams()
    priors = pool_priors(unit_statistics(pdf, KEYS, params), params)
    units = pdf.groupby(KEYS, sort=True).ngroup()
    parts = [price_data_units(pdf[units % 3 == i], KEYS, params, priors) for i in range(3)]
    batched = pd.concat(parts).sort_values(KEYS).reset_index(drop=True)
    whole = price_data(pdf, KEYS, params).sort_values(KEYS).reset_index(drop=True)
    pd.testing.assert_frame_equal(batched, whole)


def test_output_has_keys_then_the_declared_columns_and_empty_input_is_empty():
    pdf = make_bundle_sales(units=5, days=10, seed=1)
    out = price_data(pdf, KEYS, DataPricingParams())
    assert list(out.columns) == KEYS + list(DATA_PRICING_OUTPUT_COLUMNS)
    assert len(out) == 5
    empty = price_data_units(pdf.iloc[0:0], KEYS, DataPricingParams())
    assert list(empty.columns) == KEYS + list(DATA_PRICING_OUTPUT_COLUMNS)
    assert empty.empty


def test_prices_on_sample_data_respect_every_bound():
    pdf = make_bundle_sales(units=200, days=90, seed=9)
    params = DataPricingParams(max_step=0.15, min_margin=0.1)
    out = price_data(pdf, KEYS, params)
    assert (out["price"] >= out["unit_cost"] * 1.1 - 1e-9).all()
    moved = out["rule"] != "fallback"
    assert (out.loc[moved, "price_change"].abs() <= 0.15 + 1e-9).all()
    assert set(out["rule"]) <= {"estimated", "shrunk", "bounded", "fallback"}
    assert out["shrink_weight"].between(0, 1).all()


def test_params_reject_unknown_fields_and_a_floor_above_the_ceiling():
    with pytest.raises(ValidationError, match="max_stepp"):
        DataPricingParams(max_stepp=0.1)
    with pytest.raises(ValidationError, match="price_floor"):
        DataPricingParams(price_floor=10, price_ceiling=5)
