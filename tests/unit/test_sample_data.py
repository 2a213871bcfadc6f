"""Tests of the seeded telecom sample-data generator and its Parquet writer."""

from __future__ import annotations

import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from batch_scoring.jobs import sample_data as sd

BUNDLE_KEYS = ["segment", "location", "product"]


@pytest.fixture(scope="module")
def bundles() -> pd.DataFrame:
    return sd.make_bundle_sales(units=500, days=120, seed=7)


@pytest.fixture(scope="module")
def voice() -> pd.DataFrame:
    return sd.make_voice_traffic(cells=60, days=28, seed=11)


def test_bundle_sales_is_deterministic_for_a_seed():
    first = sd.make_bundle_sales(units=40, days=30, seed=3)
    pd.testing.assert_frame_equal(first, sd.make_bundle_sales(units=40, days=30, seed=3))
    other = sd.make_bundle_sales(units=40, days=30, seed=4)
    assert not first.equals(other)


@pytest.mark.parametrize("units", [1, 7, 26, 2000])
def test_bundle_sales_has_exactly_the_requested_units(units):
    frame = sd.make_bundle_sales(units=units, days=3, seed=1)
    assert frame.groupby(BUNDLE_KEYS).ngroups == units
    assert len(frame) <= units * 3


def test_bundle_sales_columns_and_dtypes(bundles):
    assert bundles.dtypes.astype(str).to_dict() == {
        "segment": "object",
        "location": "object",
        "product": "object",
        "sale_date": "datetime64[ns]",
        "price": "float64",
        "volume": "int64",
        "unit_cost": "float64",
        "sale_month": "object",
    }
    assert set(bundles["segment"]) == set(sd.SEGMENTS)
    assert set(bundles["product"]) == set(sd.PRODUCTS)
    assert (bundles["sale_date"] == bundles["sale_date"].dt.normalize()).all()
    assert (bundles["sale_month"] == bundles["sale_date"].dt.strftime("%Y-%m")).all()
    assert bundles["sale_date"].min() == pd.Timestamp("2026-05-01")
    assert bundles["sale_date"].max() == pd.Timestamp("2026-05-01") + pd.Timedelta(days=119)


def test_bundle_sales_values_are_plausible(bundles):
    assert (bundles["price"] > 0).all()
    assert (bundles["volume"] >= 0).all()
    assert (bundles["unit_cost"] < bundles["price"]).all()
    assert (bundles["volume"] == 0).any()
    median = bundles.groupby("product")["price"].median()
    for product, base in zip(sd.PRODUCTS, sd.PRODUCT_BASE_PRICE):
        assert 0.8 * base < median[product] < 1.25 * base
    cost_share = bundles["unit_cost"] / bundles.groupby(BUNDLE_KEYS)["price"].transform("median")
    assert cost_share.between(0.2, 0.65).all()
    assert cost_share.median() == pytest.approx(0.37, abs=0.05)
    assert (bundles.groupby(BUNDLE_KEYS)["unit_cost"].nunique() == 1).all()


def test_bundle_sales_is_sorted_and_row_count_matches(bundles):
    order = bundles.sort_values(BUNDLE_KEYS + ["sale_date"], ignore_index=True)
    pd.testing.assert_frame_equal(bundles, order)
    sizes = bundles.groupby(BUNDLE_KEYS).size()
    assert len(bundles) == sizes.sum() == 500 * 120 - (120 - sizes).sum()
    assert not bundles.duplicated(BUNDLE_KEYS + ["sale_date"]).any()


def test_bundle_sales_has_constant_price_and_short_history_units(bundles):
    per_unit = bundles.groupby(BUNDLE_KEYS).agg(
        prices=("price", "nunique"), days=("sale_date", "size"), last=("sale_date", "max")
    )
    constant = (per_unit["prices"] == 1).mean()
    short = per_unit["days"] <= 21
    assert 0.08 < constant < 0.22
    assert 0.05 < short.mean() < 0.16
    assert (per_unit.loc[short, "days"] >= 7).all()
    assert (per_unit["last"] == bundles["sale_date"].max()).all()
    assert (per_unit.loc[~short, "days"] == 120).all()


def test_bundle_sales_has_promotions_and_list_price_changes(bundles):
    unit = bundles.groupby(BUNDLE_KEYS)["price"]
    dip = 1 - bundles["price"] / unit.transform("median")
    assert ((dip > 0.09) & (dip < 0.45)).mean() > 0.05
    assert (unit.nunique() > 20).mean() > 0.5


@pytest.mark.parametrize("segment", ["consumer", "youth", "prepaid"])
def test_log_log_fit_recovers_segment_elasticity(bundles, segment):
    stats = bundles.groupby(BUNDLE_KEYS).agg(
        days=("volume", "size"), mean=("volume", "mean"), spread=("price", "std")
    )
    good = stats[(stats["days"] == 120) & (stats["mean"] >= 20) & (stats["spread"] > 0.01)]
    rows = bundles.set_index(BUNDLE_KEYS).loc[good.index].reset_index()
    rows = rows[(rows["segment"] == segment) & (rows["volume"] > 0)].copy()
    rows["lv"], rows["lp"] = np.log(rows["volume"]), np.log(rows["price"])
    demeaned = rows[["lv", "lp"]] - rows.groupby(BUNDLE_KEYS)[["lv", "lp"]].transform("mean")
    slope = (demeaned["lv"] * demeaned["lp"]).sum() / (demeaned["lp"] ** 2).sum()
    truth = dict(zip(sd.SEGMENTS, sd.SEGMENT_ELASTICITY))[segment]
    assert rows[BUNDLE_KEYS].drop_duplicates().shape[0] >= 5
    assert slope == pytest.approx(truth, abs=0.3)


def test_bundle_sales_weekend_effect_by_segment(bundles):
    weekend = bundles["sale_date"].dt.dayofweek >= 5
    share = bundles.assign(weekend=weekend).groupby(["segment", "weekend"])["volume"].mean()
    assert share["enterprise", True] < 0.5 * share["enterprise", False]
    assert share["youth", True] > share["youth", False]


def test_bundle_sales_rejects_bad_arguments():
    with pytest.raises(ValueError, match="units"):
        sd.make_bundle_sales(units=0)
    with pytest.raises(ValueError, match="days"):
        sd.make_bundle_sales(days=0)
    with pytest.raises(TypeError, match="units"):
        sd.make_bundle_sales(units=2.5)
    with pytest.raises(ValueError, match="seed"):
        sd.make_bundle_sales(units=3, days=3, seed=-1)


def test_bundle_sales_honours_start_date():
    frame = sd.make_bundle_sales(units=3, days=40, seed=2, start=datetime.date(2025, 12, 20))
    assert frame["sale_date"].min() == pd.Timestamp("2025-12-20")
    assert set(frame["sale_month"]) >= {"2025-12", "2026-01"}


def test_voice_traffic_is_deterministic_for_a_seed():
    first = sd.make_voice_traffic(cells=5, days=7, seed=1)
    pd.testing.assert_frame_equal(first, sd.make_voice_traffic(cells=5, days=7, seed=1))
    assert not first.equals(sd.make_voice_traffic(cells=5, days=7, seed=2))


def test_voice_traffic_columns_and_dtypes(voice):
    assert voice.dtypes.astype(str).to_dict() == {
        "cell_id": "object",
        "cell_type": "object",
        "hour": "int32",
        "traffic_date": "datetime64[ns]",
        "load_erlangs": "float64",
        "capacity_erlangs": "float64",
        "base_price_per_min": "float64",
        "traffic_month": "object",
    }
    assert len(voice) == 60 * 24 * 28
    assert voice["cell_id"].iloc[0] == "CELL-00001"
    assert voice["cell_id"].nunique() == 60
    assert voice.groupby(["cell_id", "hour"]).ngroups == 60 * 24
    assert sorted(voice["hour"].unique()) == list(range(24))
    assert set(voice["cell_type"]) <= set(sd.CELL_TYPES)
    assert (voice["traffic_month"] == voice["traffic_date"].dt.strftime("%Y-%m")).all()


def test_voice_traffic_is_sorted(voice):
    keys = ["cell_id", "hour", "traffic_date"]
    pd.testing.assert_frame_equal(voice, voice.sort_values(keys, ignore_index=True))


def test_voice_traffic_values_are_plausible(voice):
    assert (voice["load_erlangs"] >= 0).all()
    assert (voice["capacity_erlangs"] > 0).all()
    assert voice["capacity_erlangs"].between(20, 125).all()
    assert (voice.groupby("cell_id")["capacity_erlangs"].nunique() == 1).all()
    assert (voice.groupby("cell_type")["base_price_per_min"].nunique() == 1).all()
    assert voice["base_price_per_min"].between(0.05, 0.12).all()
    utilisation = voice["load_erlangs"] / voice["capacity_erlangs"]
    assert utilisation.between(0.005, 1.1).mean() > 0.99
    assert utilisation.quantile(0.99) < 1.05


def test_voice_traffic_diurnal_and_weekly_profile():
    frame = sd.make_voice_traffic(cells=200, days=14, seed=5)
    frame["util"] = frame["load_erlangs"] / frame["capacity_erlangs"]
    urban = frame[frame["cell_type"] == "urban"].groupby("hour")["util"].mean()
    assert urban[3] < 0.25 * urban[11]
    assert urban[3] < urban[19]
    office = frame[frame["cell_type"] == "business_district"]
    weekend = office["traffic_date"].dt.dayofweek >= 5
    assert office.loc[weekend, "util"].mean() < 0.5 * office.loc[~weekend, "util"].mean()
    hub = frame[frame["cell_type"] == "transport_hub"]
    hub = hub[hub["traffic_date"].dt.dayofweek < 5].groupby("hour")["util"].mean()
    assert hub[8] > hub[12] and hub[18] > hub[12]


def test_write_sample_bundle_sales_round_trip(tmp_path):
    target = tmp_path / "out" / "bundle_sales"
    summary = sd.write_sample("bundle_sales", target, rows=800, units=20, seed=3)
    expected = sd.make_bundle_sales(units=20, days=40, seed=3)
    assert summary == sd.SampleSummary(
        "bundle_sales", str(target), len(expected), 20, summary.seconds
    )
    assert summary.seconds > 0
    dataset = ds.dataset(target, format="parquet", partitioning="hive")
    assert dataset.schema.field("sale_date").type == pa.date32()
    assert dataset.count_rows() == len(expected)
    months = sorted(p.name for p in target.iterdir())
    assert months == ["sale_month=2026-05", "sale_month=2026-06"]
    back = pd.read_parquet(target)
    back["sale_date"] = pd.to_datetime(back["sale_date"])
    back["sale_month"] = back["sale_month"].astype(str)
    back = back[expected.columns].sort_values(BUNDLE_KEYS + ["sale_date"], ignore_index=True)
    pd.testing.assert_frame_equal(back, expected)
    assert not any(p.name.startswith(".") for p in target.parent.iterdir())


def test_write_sample_voice_traffic_sizes(tmp_path):
    summary = sd.write_sample("voice_traffic", tmp_path / "vt", rows=2000, units=50, seed=1)
    assert (summary.units, summary.rows) == (48, 2 * 24 * 42)
    dataset = ds.dataset(tmp_path / "vt", format="parquet", partitioning="hive")
    assert dataset.schema.field("traffic_date").type == pa.date32()
    assert dataset.schema.field("hour").type == pa.int32()
    assert dataset.count_rows() == summary.rows
    assert {p.name for p in (tmp_path / "vt").iterdir()} == {
        "traffic_month=2026-09",
        "traffic_month=2026-10",
    }


def test_write_sample_refuses_then_overwrites(tmp_path):
    target = tmp_path / "bs"
    sd.write_sample("bundle_sales", target, rows=20, units=10)
    with pytest.raises(FileExistsError, match="overwrite=True") as info:
        sd.write_sample("bundle_sales", target, rows=40, units=10)
    assert str(target) in str(info.value)
    assert ds.dataset(target, partitioning="hive").count_rows() == 20
    summary = sd.write_sample("bundle_sales", target, rows=40, units=10, overwrite=True)
    assert summary.rows == ds.dataset(target, partitioning="hive").count_rows() == 40
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bs"]


def test_write_sample_uses_an_existing_empty_directory(tmp_path):
    (tmp_path / "empty").mkdir()
    summary = sd.write_sample("bundle_sales", tmp_path / "empty", rows=5, units=5)
    assert summary.rows == 5


def test_write_sample_refuses_a_file(tmp_path):
    path = tmp_path / "file"
    path.write_text("keep me")
    with pytest.raises(NotADirectoryError):
        sd.write_sample("bundle_sales", path, rows=5, units=5, overwrite=True)
    assert path.read_text() == "keep me"


def test_write_sample_rejects_unknown_kind(tmp_path):
    with pytest.raises(ValueError, match="bundle_sales, voice_traffic"):
        sd.write_sample("sms_traffic", tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_main_writes_and_keeps_existing(tmp_path, capsys):
    out = tmp_path / "bs"
    args = ["--kind", "bundle_sales", "--out", str(out), "--rows", "30", "--units", "10"]
    assert sd.main(args + ["--seed", "5"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("bundle_sales: 30 rows, 10 units -> ") and str(out) in line
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.parquet")}
    assert sd.main(args + ["--rows", "90", "--if-missing"]) == 0
    assert "kept" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.parquet")} == before
    assert sd.main(args) == 1
    assert "overwrite" in capsys.readouterr().err
    assert sd.main(args + ["--rows", "90", "--overwrite"]) == 0
    assert ds.dataset(out, partitioning="hive").count_rows() == 90


def test_main_rejects_bad_kind(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        sd.main(["--kind", "sms", "--out", str(tmp_path / "x")])
    assert info.value.code == 2
    assert "bundle_sales" in capsys.readouterr().err
