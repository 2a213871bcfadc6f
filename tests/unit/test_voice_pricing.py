"""Unit tests for batch_scoring.udfs.pricing.voice_pricing (pandas only, hand-computed oracles)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pydantic
import pytest

from batch_scoring.udfs.pricing.voice_pricing import (
    VOICE_PRICING_OUTPUT_COLUMNS,
    VoicePricingParams,
    price_voice_units,
)

OUTPUT_DTYPES = {
    "n_obs": "int64",
    "last_date": "datetime64[ns]",
    "current_utilisation": "float64",
    "forecast_utilisation": "float64",
    "discount": "float64",
    "tier": "object",
    "base_price_per_min": "float64",
    "price_per_min": "float64",
}


def unit_frame(
    utilisations: list[float],
    cell_id: int = 1,
    hour: int = 9,
    base_price: float | list[float] = 0.10,
    capacity: float = 20.0,
    start: str = "2024-03-01",
) -> pd.DataFrame:
    """One unit with the given daily utilisations (load = u * capacity), dates ascending."""
    n = len(utilisations)
    return pd.DataFrame(
        {
            "cell_id": np.full(n, cell_id, dtype=np.int64),
            "hour": np.full(n, hour, dtype=np.int64),
            "traffic_date": pd.date_range(start, periods=n, freq="D"),
            "load_erlangs": np.asarray(utilisations, dtype=np.float64) * capacity,
            "capacity_erlangs": np.full(n, capacity),
            "base_price_per_min": np.broadcast_to(np.asarray(base_price, np.float64), n).copy(),
        }
    )


def ses_loop(values: list[float], alpha: float) -> float:
    """Textbook SES recursion l_1 = y_1, l_t = a*y_t + (1-a)*l_{t-1}; returns l_n."""
    level = values[0]
    for y in values[1:]:
        level = alpha * y + (1.0 - alpha) * level
    return level


# --- output contract -------------------------------------------------------------------------


def test_output_columns_constant_order_and_types():
    assert list(VOICE_PRICING_OUTPUT_COLUMNS) == list(OUTPUT_DTYPES)
    assert VOICE_PRICING_OUTPUT_COLUMNS["n_obs"] == "bigint"
    assert VOICE_PRICING_OUTPUT_COLUMNS["last_date"] == "date"
    assert VOICE_PRICING_OUTPUT_COLUMNS["tier"] == "string"
    assert {
        VOICE_PRICING_OUTPUT_COLUMNS[c]
        for c in OUTPUT_DTYPES
        if c not in ("n_obs", "last_date", "tier")
    } == {"double"}


def test_output_schema_on_normal_input():
    out = price_voice_units(unit_frame([0.2, 0.4, 0.3]), VoicePricingParams())
    assert list(out.columns) == ["cell_id", "hour", *VOICE_PRICING_OUTPUT_COLUMNS]
    assert out.dtypes.astype(str).to_dict() == {
        "cell_id": "int64",
        "hour": "int64",
        **OUTPUT_DTYPES,
    }
    assert out.index.tolist() == [0]


def test_empty_input_gives_empty_typed_output():
    empty = unit_frame([0.5]).iloc[:0]
    empty = empty.assign(hour=empty["hour"].astype(str))
    out = price_voice_units(empty, VoicePricingParams())
    assert len(out) == 0
    assert list(out.columns) == ["cell_id", "hour", *VOICE_PRICING_OUTPUT_COLUMNS]
    assert out.dtypes.astype(str).to_dict() == {
        "cell_id": "int64",
        "hour": "object",
        **OUTPUT_DTYPES,
    }


# --- forecast --------------------------------------------------------------------------------


def test_ses_hand_computed_example():
    # l1 = 0.2; l2 = 0.5*0.4 + 0.5*0.2 = 0.3; l3 = 0.5*0.3 + 0.5*0.3 = 0.3
    out = price_voice_units(unit_frame([0.2, 0.4, 0.3]), VoicePricingParams(alpha=0.5))
    row = out.iloc[0]
    assert row["forecast_utilisation"] == pytest.approx(0.3, abs=1e-12)
    assert row["current_utilisation"] == pytest.approx(0.3, abs=1e-12)
    assert row["n_obs"] == 3
    assert row["last_date"] == pd.Timestamp("2024-03-03")


def test_ses_closed_form_matches_recursive_loop_over_units_of_different_lengths():
    rng = np.random.default_rng(20240301)
    lengths = [1, 2, 3, 5, 8, 13, 40]
    series = {cell: rng.uniform(0.0, 1.0, n).tolist() for cell, n in enumerate(lengths)}
    frames = [unit_frame(u, cell_id=cell) for cell, u in series.items()]
    pdf = pd.concat(frames, ignore_index=True).sample(frac=1.0, random_state=7)  # shuffled
    for alpha in (0.05, 0.3, 0.77, 1.0):
        params = VoicePricingParams(alpha=alpha, history_days=None)
        out = price_voice_units(pdf, params).set_index("cell_id")
        for cell, u in series.items():
            assert out.loc[cell, "forecast_utilisation"] == pytest.approx(
                ses_loop(u, alpha), rel=1e-12, abs=1e-14
            )
            assert out.loc[cell, "n_obs"] == len(u)
            assert out.loc[cell, "current_utilisation"] == pytest.approx(u[-1], rel=1e-12)


def test_ses_closed_form_matches_loop_on_truncated_history():
    rng = np.random.default_rng(3)
    u = rng.uniform(0.0, 1.0, 50).tolist()
    out = price_voice_units(unit_frame(u), VoicePricingParams(alpha=0.3, history_days=28))
    assert out.loc[0, "n_obs"] == 28
    assert out.loc[0, "forecast_utilisation"] == pytest.approx(ses_loop(u[-28:], 0.3), rel=1e-12)


def test_history_days_truncation_changes_forecast_by_hand():
    u = [0.9, 0.2, 0.4, 0.3]
    # all rows, alpha 0.5: l = 0.9, 0.55, 0.475, 0.3875
    full = price_voice_units(unit_frame(u), VoicePricingParams(alpha=0.5, history_days=None))
    assert full.loc[0, "forecast_utilisation"] == pytest.approx(0.3875, abs=1e-12)
    assert full.loc[0, "n_obs"] == 4
    # last 3 rows only: level restarts at 0.2 -> 0.3 -> 0.3
    last3 = price_voice_units(unit_frame(u), VoicePricingParams(alpha=0.5, history_days=3))
    assert last3.loc[0, "forecast_utilisation"] == pytest.approx(0.3, abs=1e-12)
    assert last3.loc[0, "n_obs"] == 3
    # a window longer than the history uses everything
    long = price_voice_units(unit_frame(u), VoicePricingParams(alpha=0.5, history_days=100))
    assert long.loc[0, "forecast_utilisation"] == pytest.approx(0.3875, abs=1e-12)


def test_rows_are_sorted_by_date_within_unit_and_stable_for_ties():
    pdf = unit_frame([0.1, 0.5, 0.6], base_price=[0.10, 0.20, 0.30])
    shuffled = pdf.iloc[[2, 0, 1]]
    out = price_voice_units(shuffled, VoicePricingParams(alpha=0.5))
    # l = 0.1, 0.3, 0.45 in date order regardless of row order
    assert out.loc[0, "forecast_utilisation"] == pytest.approx(0.45, abs=1e-12)
    assert out.loc[0, "base_price_per_min"] == pytest.approx(0.30)
    assert out.loc[0, "last_date"] == pd.Timestamp("2024-03-03")
    # equal dates keep input order: the later input row is the "most recent"
    tied = pdf.assign(traffic_date=pd.Timestamp("2024-03-01"))
    out_tied = price_voice_units(tied, VoicePricingParams(alpha=0.5))
    assert out_tied.loc[0, "current_utilisation"] == pytest.approx(0.6)
    assert out_tied.loc[0, "base_price_per_min"] == pytest.approx(0.30)


def test_python_date_objects_are_accepted():
    pdf = unit_frame([0.2, 0.4, 0.3])
    pdf["traffic_date"] = [dt.date(2024, 3, 1), dt.date(2024, 3, 2), dt.date(2024, 3, 3)]
    out = price_voice_units(pdf, VoicePricingParams(alpha=0.5))
    assert out.loc[0, "last_date"] == pd.Timestamp("2024-03-03")
    assert str(out["last_date"].dtype) == "datetime64[ns]"
    assert out.loc[0, "forecast_utilisation"] == pytest.approx(0.3, abs=1e-12)


# --- discount, tier, price -------------------------------------------------------------------


def test_discount_hand_computed_rounds_down_to_ladder():
    # f = 0.35 (single row), u* = 0.7, e = -2: d_raw = 1 - 2**-0.5 = 0.29289 -> ladder 0.20
    params = VoicePricingParams(elasticity=-2.0, target_utilisation=0.7, threshold=0.7)
    out = price_voice_units(unit_frame([0.35], base_price=0.05), params)
    row = out.iloc[0]
    assert row["forecast_utilisation"] == pytest.approx(0.35)
    assert 1.0 - 2.0**-0.5 == pytest.approx(0.29289, abs=1e-5)
    assert row["discount"] == pytest.approx(0.20)
    assert row["tier"] == "discount_20"
    assert row["base_price_per_min"] == pytest.approx(0.05)
    assert row["price_per_min"] == pytest.approx(0.05 * 0.8)


def test_discount_exactly_on_a_ladder_step_gets_that_step():
    # f = u* * (1 - d)**(-e) = 0.7 * 0.9**2 = 0.567 gives d_raw = 0.10 exactly in real
    # arithmetic; in floats it comes out as 0.09999999999999998, which must still earn 0.10
    assert 1.0 - (0.7 / 0.567) ** (1.0 / -2.0) < 0.10
    out = price_voice_units(unit_frame([0.567], capacity=1.0), VoicePricingParams(elasticity=-2.0))
    assert out.loc[0, "discount"] == pytest.approx(0.10)
    assert out.loc[0, "tier"] == "discount_10"


def test_no_discount_at_or_above_threshold():
    pdf = pd.concat(
        [unit_frame([0.7], cell_id=1), unit_frame([0.95], cell_id=2)], ignore_index=True
    )
    out = price_voice_units(pdf, VoicePricingParams(threshold=0.7))
    assert out["discount"].tolist() == [0.0, 0.0]
    assert out["tier"].tolist() == ["none", "none"]
    assert np.allclose(out["price_per_min"], out["base_price_per_min"])


def test_zero_forecast_gets_the_cap():
    out = price_voice_units(unit_frame([0.0, 0.0]), VoicePricingParams(max_discount=0.4))
    assert out.loc[0, "discount"] == pytest.approx(0.40)
    assert out.loc[0, "tier"] == "discount_40"
    assert out.loc[0, "price_per_min"] == pytest.approx(0.10 * 0.6)


def test_cap_below_a_ladder_step_rounds_down():
    out = price_voice_units(unit_frame([0.0]), VoicePricingParams(max_discount=0.35))
    assert out.loc[0, "discount"] == pytest.approx(0.30)
    assert out.loc[0, "tier"] == "discount_30"


def test_small_raw_discount_below_first_step_is_none():
    # e = -1.8, f = 0.68: d_raw = 1 - (0.7/0.68)**(-1/1.8) = 0.0160 < 0.05
    out = price_voice_units(unit_frame([0.68]), VoicePricingParams())
    assert out.loc[0, "discount"] == 0.0
    assert out.loc[0, "tier"] == "none"


def test_threshold_above_target_gives_no_negative_discount():
    # f = 0.75 < threshold 0.8 but above target 0.7: d_raw < 0 -> clipped to 0
    params = VoicePricingParams(threshold=0.8, target_utilisation=0.7)
    out = price_voice_units(unit_frame([0.75]), params)
    assert out.loc[0, "discount"] == 0.0
    assert out.loc[0, "tier"] == "none"


def test_discount_deepens_as_forecast_falls():
    utils = [0.69, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0]
    pdf = pd.concat([unit_frame([u], cell_id=i) for i, u in enumerate(utils)], ignore_index=True)
    out = price_voice_units(pdf, VoicePricingParams())
    assert out["discount"].is_monotonic_increasing
    assert out["discount"].max() <= 0.4
    assert set(out["discount"]) <= {0.0, 0.05, 0.10, 0.15, 0.20, 0.30, 0.40}


def test_price_uses_latest_base_price():
    pdf = unit_frame([0.0, 0.0, 0.0], base_price=[0.30, 0.20, 0.10])
    out = price_voice_units(pdf.iloc[::-1], VoicePricingParams())
    assert out.loc[0, "base_price_per_min"] == pytest.approx(0.10)
    assert out.loc[0, "price_per_min"] == pytest.approx(0.10 * 0.6)


def test_single_row_unit():
    out = price_voice_units(unit_frame([0.5], base_price=0.04), VoicePricingParams())
    row = out.iloc[0]
    assert row["n_obs"] == 1
    assert row["forecast_utilisation"] == pytest.approx(0.5)
    assert row["current_utilisation"] == pytest.approx(0.5)
    d_raw = 1.0 - (0.7 / 0.5) ** (1.0 / -1.8)  # 0.1704
    assert 0.15 <= d_raw < 0.20
    assert row["discount"] == pytest.approx(0.15)
    assert row["tier"] == "discount_15"
    assert row["price_per_min"] == pytest.approx(0.04 * 0.85)


# --- batches and keys ------------------------------------------------------------------------


def test_batch_equals_concatenation_of_per_unit_calls():
    rng = np.random.default_rng(11)
    frames = []
    for cell in range(6):
        for hour in range(4):
            n = int(rng.integers(1, 40))
            frames.append(
                unit_frame(
                    rng.uniform(0.0, 1.0, n).tolist(),
                    cell_id=cell,
                    hour=hour,
                    base_price=rng.uniform(0.01, 0.2, n).tolist(),
                    capacity=float(rng.uniform(5, 50)),
                )
            )
    params = VoicePricingParams(history_days=10)
    batch = price_voice_units(pd.concat(frames, ignore_index=True).iloc[::-1], params)
    per_unit = pd.concat([price_voice_units(f, params) for f in frames], ignore_index=True)
    pd.testing.assert_frame_equal(batch, per_unit, check_exact=False, rtol=1e-12)
    assert len(batch) == 24


def test_output_sorted_by_keys_and_key_dtypes_preserved():
    frames = [
        unit_frame([0.1, 0.2], cell_id=cell, hour=hour)
        for cell, hour in [(30, 2), (4, 7), (30, 1), (4, 0)]
    ]
    pdf = pd.concat(frames, ignore_index=True)
    pdf["cell_id"] = pdf["cell_id"].map({30: "cell-B", 4: "cell-A"}).astype(object)
    pdf["hour"] = pdf["hour"].astype(np.int32)
    out = price_voice_units(pdf, VoicePricingParams())
    assert out["cell_id"].dtype == object
    assert out["hour"].dtype == np.int32
    assert list(zip(out["cell_id"], out["hour"])) == [
        ("cell-A", 0),
        ("cell-A", 7),
        ("cell-B", 1),
        ("cell-B", 2),
    ]
    assert out.index.tolist() == [0, 1, 2, 3]


def test_custom_column_names_and_single_key():
    pdf = unit_frame([0.2, 0.4, 0.3]).rename(
        columns={
            "cell_id": "site",
            "traffic_date": "day",
            "load_erlangs": "load",
            "capacity_erlangs": "cap",
            "base_price_per_min": "eur_per_min",
        }
    )
    params = VoicePricingParams(
        keys=["site"],
        date_col="day",
        load_col="load",
        capacity_col="cap",
        base_price_col="eur_per_min",
        alpha=0.5,
    )
    out = price_voice_units(pdf, params)
    assert list(out.columns) == ["site", *VOICE_PRICING_OUTPUT_COLUMNS]
    assert out.loc[0, "forecast_utilisation"] == pytest.approx(0.3, abs=1e-12)
    assert out.loc[0, "base_price_per_min"] == pytest.approx(0.10)


# --- errors and params -----------------------------------------------------------------------


def test_missing_column_error_names_column_and_params_field():
    pdf = unit_frame([0.5]).drop(columns=["capacity_erlangs"])
    with pytest.raises(ValueError, match="capacity_erlangs") as excinfo:
        price_voice_units(pdf, VoicePricingParams())
    assert "capacity_col" in str(excinfo.value)


def test_missing_key_column_error_names_keys_field():
    pdf = unit_frame([0.5]).drop(columns=["hour"])
    with pytest.raises(ValueError, match="'hour'") as excinfo:
        price_voice_units(pdf, VoicePricingParams())
    assert "VoicePricingParams.keys" in str(excinfo.value)


def test_params_defaults():
    params = VoicePricingParams()
    assert params.keys == ["cell_id", "hour"]
    assert params.alpha == 0.3
    assert params.history_days == 28
    assert params.elasticity == -1.8
    assert params.target_utilisation == 0.7
    assert params.threshold == 0.7
    assert params.max_discount == 0.4
    assert params.ladder == [0.05, 0.10, 0.15, 0.20, 0.30, 0.40]


@pytest.mark.parametrize(
    "bad",
    [
        {"elasticity": 0.0},
        {"elasticity": 1.2},
        {"elasticity": float("-inf")},
        {"alpha": 0.0},
        {"alpha": 1.5},
        {"history_days": 0},
        {"target_utilisation": 0.0},
        {"threshold": 1.1},
        {"max_discount": 1.0},
        {"ladder": [0.1, 1.0]},
        {"ladder": [0.125]},
        {"keys": []},
        {"keys": ["cell_id", "cell_id"]},
        {"keys": ["tier"]},
        {"load_col": "capacity_erlangs"},
        {"unknown_field": 1},
    ],
)
def test_params_validation_rejects(bad):
    with pytest.raises(pydantic.ValidationError):
        VoicePricingParams(**bad)


def test_params_ladder_sorted_and_frozen():
    params = VoicePricingParams(ladder=[0.3, 0.1, 0.2, 0.1])
    assert params.ladder == [0.1, 0.2, 0.3]
    with pytest.raises(pydantic.ValidationError):
        params.alpha = 0.5
