"""Key values in partition paths: escaped values round-trip, empty strings and values too long
for a folder name are handled before the work; backfills leave other run dates untouched."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from batch_scoring.jobs.config import load_job
from batch_scoring.jobs.errors import InputError
from batch_scoring.jobs.partition_values import escape_path_name, segment_limit
from batch_scoring.jobs.pipeline import run
from user_modules import importable_module

ROOT = Path(__file__).resolve().parents[2]
DAY = dt.date(2026, 11, 22)
SALES = pa.schema([("segment", pa.string()), ("location", pa.string()), ("product", pa.string()),
                   ("sale_date", pa.date32()), ("price", pa.float64()), ("volume", pa.int64())])
ROUND_TRIP = ["a/b", "k=v", "50% off", "it's \"quoted\"", "tab\there", "..", "Zürich ✓ 東京"]
LONG = "é" * 150  # 300 bytes in UTF-8

MODULE = '''
import pandas as pd
from batch_scoring.udfs.contract import unit_of_work_function


@unit_of_work_function(output_schema="last_price double, days bigint")
def last_price(key, pdf):
    return pd.DataFrame({"last_price": [pdf["price"].iloc[-1]], "days": [len(pdf)]})
'''


@pytest.fixture(scope="module")
def module(tmp_path_factory):
    with importable_module(tmp_path_factory.mktemp("pv"), "partition_functions", MODULE) as name:
        yield name


def source_of(tmp_path: Path, segments: list[str], name: str = "sales") -> Path:
    rows = [{"segment": segment, "location": f"l{i}", "product": "p",
             "sale_date": dt.date(2026, 11, 1 + d), "price": 10.0 + i + d, "volume": 5}
            for i, segment in enumerate(segments) for d in range(2)]
    folder = tmp_path / name
    folder.mkdir()
    pq.write_table(pa.Table.from_pylist(rows, schema=SALES), folder / "part.parquet")
    return folder


def job(source, output, module, fmt, *overrides):
    return load_job(ROOT / "conf/jobs/data_pricing.yaml", [
        f"source.path={source}", "source.filter=null", f"function.name={module}:last_price",
        f"function.allowed_modules=[{module}]", "function.params={}", "unit_of_work.buckets=2",
        f"output.path={output}", f"output.format={fmt}", "output.partition_by=[segment]", *overrides,
    ])


def read(spark, path, fmt):
    return spark.read.format(fmt).load(str(path))


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
def test_escaped_values_round_trip_and_an_empty_one_is_rejected(spark, tmp_path, module, fmt):
    source = source_of(tmp_path, [*ROUND_TRIP, ""])
    output = tmp_path / "prices"
    summary = run(spark, job(source, output, module, fmt), DAY, "r")

    assert sorted(r["segment"] for r in read(spark, output, fmt).collect()) == sorted(ROUND_TRIP)
    if fmt == "parquet":
        dataset = ds.dataset(str(output), format="parquet", partitioning="hive")
        assert sorted(dataset.to_table()["segment"].to_pylist()) == sorted(ROUND_TRIP)
    rejects = read(spark, tmp_path / "prices_rejects", fmt).collect()
    assert {(r["segment"], r["reject_reason"], r["reject_column"]) for r in rejects} == \
        {("", "empty_partition_value", "segment")}
    assert (summary.rows_in, summary.rows_rejected, summary.rows_out) == (16, 2, 7)


def test_an_empty_value_is_written_as_the_chosen_token(spark, tmp_path, module):
    source = source_of(tmp_path, ["a", ""])
    output = tmp_path / "prices"
    run(spark, job(source, output, module, "delta", "output.empty_partition_value=(none)"), DAY, "t")
    assert sorted(r["segment"] for r in read(spark, output, "delta").collect()) == ["(none)", "a"]


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
def test_a_value_too_long_for_a_folder_name_stops_the_run_before_pricing(spark, tmp_path, module, fmt):
    source = source_of(tmp_path, ["short", LONG])
    output = tmp_path / "prices"
    with pytest.raises(InputError) as caught:
        run(spark, job(source, output, module, fmt), DAY)
    message = str(caught.value)
    assert f"column 'segment' (in output.partition_by) holds a value whose folder name would be " \
           f"308 bytes, over the 255-byte limit" in message
    assert f"{LONG[:40]!r}... (300 bytes escaped)" in message
    assert not output.exists() and not (tmp_path / "prices_rejects").exists()


def test_a_value_too_long_is_quarantined_when_chosen(spark, tmp_path, module):
    source = source_of(tmp_path, ["short", LONG])
    output = tmp_path / "prices"
    summary = run(spark, job(source, output, module, "parquet", "output.long_partition_value=reject"), DAY)
    assert [r["segment"] for r in read(spark, output, "parquet").collect()] == ["short"]
    rejects = read(spark, tmp_path / "prices_rejects", "parquet").collect()
    assert {(r["segment"], r["reject_reason"]) for r in rejects} == {(LONG, "partition_value_too_long")}
    assert summary.rows_rejected == 2


def test_the_escaping_matches_sparks_own(spark):
    utils = spark._jvm.org.apache.spark.sql.catalyst.catalog.ExternalCatalogUtils
    for value in [*ROUND_TRIP, LONG, "".join(chr(c) for c in range(1, 128))]:
        assert escape_path_name(value) == utils.escapePathName(value)
    assert segment_limit("segment") == 247


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
def test_a_backfill_leaves_later_and_surrounding_run_dates_untouched(spark, tmp_path, module, fmt):
    d1, d2, d3 = dt.date(2026, 11, 1), dt.date(2026, 11, 2), dt.date(2026, 11, 3)
    output = tmp_path / "prices"
    prices = job(source_of(tmp_path, ["a", "b"]), output, module, fmt)

    def by_date():
        rows = read(spark, output, fmt).collect()
        return {(str(r["run_date"]), r["run_id"], r["segment"], r["last_price"]) for r in rows}

    run(spark, prices, d3, "third")
    run(spark, prices, d1, "first")  # a backfill, after a later date
    assert {(d, i) for d, i, _, _ in by_date()} == {(str(d3), "third"), (str(d1), "first")}
    before = by_date()
    run(spark, prices, d2, "second")  # between two others
    after = by_date()
    assert after - before == {(str(d2), "second", "a", 11.0), (str(d2), "second", "b", 12.0)}
    assert before <= after
