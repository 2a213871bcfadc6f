"""The job pipeline end to end on local Spark: real Delta and Parquet outputs, reruns, rejects."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from batch_scoring.jobs.config import load_job
from batch_scoring.jobs.errors import ConfigError, InputError
from batch_scoring.jobs.pipeline import run
from batch_scoring.jobs.run_date_claim import RunDateTaken
from batch_scoring.jobs.sample_data import make_bundle_sales, write_sample
from batch_scoring.udfs.pricing.data_pricing import DataPricingParams, price_data

ROOT = Path(__file__).resolve().parents[2]
KEYS = ["segment", "location", "product"]
DAY1, DAY2 = dt.date(2026, 11, 1), dt.date(2026, 11, 2)


@pytest.fixture(scope="module")
def bundle_source(tmp_path_factory):
    path = tmp_path_factory.mktemp("source") / "bundle_sales"
    write_sample("bundle_sales", path, rows=60 * 40, units=60, seed=13)
    return path


def pricing_job(tmp_path, source, *overrides):
    return load_job(
        ROOT / "conf/jobs/data_pricing.yaml",
        [f"source.path={source}", f"output.path={tmp_path / 'out'}", "unit_of_work.buckets=3",
         "source.filter=null", *overrides],
    )


@pytest.fixture(scope="module")
def day1_run(spark, tmp_path_factory, bundle_source):
    """The data-pricing job run once on ``bundle_source`` for DAY1 (run id ``run-1``, Delta):
    ``(job, summary)``. Tests only read it; a test that writes more runs works on a copy
    (:func:`copy_of_day1`), so the same first run is not made again for each test."""
    job = pricing_job(tmp_path_factory.mktemp("day1"), bundle_source)
    return job, run(spark, job, DAY1, "run-1")


def copy_of_day1(day1_run, tmp_path, source):
    """The job of ``day1_run`` writing to ``tmp_path``, where its output and rejects are copied."""
    job, _ = day1_run
    copy = pricing_job(tmp_path, source)
    for table, target in ((job.output.path, copy.output.path), (job.output.rejects, copy.output.rejects)):
        if os.path.exists(table):
            shutil.copytree(table, target)
    return copy


def read_output(spark, job, run_date=None):
    df = spark.read.format(job.output.format).load(job.output.path)
    return df if run_date is None else df.where(F.col("run_date") == F.lit(run_date))


def test_delta_run_writes_one_row_per_unit_partitioned_by_run_date_and_segment(spark, bundle_source, day1_run):
    job, summary = day1_run
    out = read_output(spark, job)
    assert (summary.rows_out, summary.units, summary.rows_rejected) == (60, 60, 0)
    assert summary.rows_in == pd.read_parquet(bundle_source).shape[0]
    detail = spark.sql(f"DESCRIBE DETAIL delta.`{job.output.path}`").first()
    assert detail["partitionColumns"] == ["run_date", "segment"]
    assert out.select("run_id").distinct().first()[0] == "run-1"
    assert out.groupBy(*KEYS).count().where("count > 1").count() == 0
    prices = out.toPandas()
    assert (prices["price"] > 0).all() and prices["rule"].notna().all()


def test_spark_job_prices_equal_pandas_on_the_same_rows(spark, bundle_source, day1_run):
    job, _ = day1_run
    params = DataPricingParams(**job.function.params)
    expected = price_data(pd.read_parquet(bundle_source), KEYS, params)
    got = read_output(spark, job).drop("run_date", "run_id")
    assertDataFrameEqual(got, spark.createDataFrame(expected, schema=got.schema), rtol=1e-9)


def test_rerun_of_a_run_date_replaces_its_rows_without_duplicates(spark, tmp_path, bundle_source, day1_run):
    job = copy_of_day1(day1_run, tmp_path, bundle_source)  # the first run, run-1
    first = read_output(spark, job).drop("run_id")
    run(spark, job, DAY1, "second")
    again = read_output(spark, job)
    assert again.count() == 60
    assert [r[0] for r in again.select("run_id").distinct().collect()] == ["second"]
    assertDataFrameEqual(again.drop("run_id"), first)


def test_second_run_date_adds_partitions_and_leaves_the_first_untouched(spark, tmp_path, bundle_source, day1_run):
    job = copy_of_day1(day1_run, tmp_path, bundle_source)  # DAY1's run, run-1
    before = read_output(spark, job, DAY1).toPandas()
    run(spark, job, DAY2, "day-2")
    assert read_output(spark, job).count() == 120
    after = read_output(spark, job, DAY1)
    assertDataFrameEqual(after, spark.createDataFrame(before, schema=after.schema))
    assert read_output(spark, job, DAY2).select("run_id").distinct().first()[0] == "day-2"


def test_parquet_output_is_hive_partitioned_and_rerun_is_idempotent(spark, tmp_path, bundle_source):
    job = pricing_job(tmp_path, bundle_source, "output.format=parquet")
    run(spark, job, DAY1, "a")
    run(spark, job, DAY1, "b")
    run(spark, job, DAY2, "c")
    root = Path(job.output.path)
    assert sorted(p.name for p in root.glob("run_date=*")) == ["run_date=2026-11-01", "run_date=2026-11-02"]
    segments = {p.name for p in (root / "run_date=2026-11-01").glob("segment=*")}
    assert segments == {f"segment={s}" for s in pd.read_parquet(job.source.path)["segment"].unique()}
    out = read_output(spark, job)
    assert out.count() == 120
    by_run = {r["run_date"]: r["run_id"] for r in out.select("run_date", "run_id").distinct().collect()}
    assert by_run == {DAY1: "b", DAY2: "c"}


def test_parquet_rerun_drops_partitions_the_new_attempt_no_longer_has(spark, tmp_path, bundle_source):
    job = pricing_job(tmp_path, bundle_source, "output.format=parquet")
    run(spark, job, DAY1, "all-segments")
    run(spark, job, DAY2, "other-day")
    narrowed = pricing_job(tmp_path, bundle_source, "output.format=parquet",
                           "source.filter=segment = 'youth'")
    run(spark, narrowed, DAY1, "youth-only")
    day1 = read_output(spark, job, DAY1)
    assert {r[0] for r in day1.select("segment").distinct().collect()} == {"youth"}
    assert {r[0] for r in day1.select("run_id").distinct().collect()} == {"youth-only"}
    assert read_output(spark, job, DAY2).count() == 60


def test_bad_rows_are_quarantined_with_a_reason_and_never_dropped(spark, tmp_path):
    pdf = make_bundle_sales(units=20, days=15, seed=3)
    pdf.loc[0, "price"] = -4.0
    pdf.loc[1, "segment"] = None
    pdf.loc[3, "unit_cost"] = None
    volume = pdf["volume"].to_numpy(dtype=float)
    volume[2] = float("nan")  # a real NaN, not a null: pyarrow keeps NaN from numpy arrays
    table = pa.Table.from_pandas(pdf.drop(columns="volume"), preserve_index=False)
    source = tmp_path / "src.parquet"
    pq.write_table(table.append_column("volume", pa.array(volume)), source, coerce_timestamps="us")
    job = pricing_job(tmp_path, source)
    summary = run(spark, job, DAY1, "r")
    rejects = read_output(spark, load_job(ROOT / "conf/jobs/data_pricing.yaml",
                                          [f"output.path={job.output.rejects}", "output.format=delta"]))
    reasons = {(r["reject_reason"], r["reject_column"]) for r in rejects.collect()}
    assert reasons == {("out_of_range", "price"), ("null_key", "segment"),
                       ("not_a_number", "volume"), ("null_value", "unit_cost")}
    assert summary.rows_rejected == 4 and summary.rows_in == len(pdf)
    assert rejects.where("reject_column = 'price'").first()["price"] == -4.0
    assert summary.units == 20


def test_nanosecond_parquet_timestamps_get_an_error_that_says_what_to_do(spark, tmp_path):
    source = tmp_path / "nanos.parquet"
    make_bundle_sales(units=2, days=5, seed=1).to_parquet(source)
    with pytest.raises(InputError, match=r"nanos.parquet cannot be read as parquet.*coerce_timestamps='us'"):
        run(spark, pricing_job(tmp_path, source), DAY1)


def test_csv_source_with_a_declared_schema(spark, tmp_path):
    pdf = make_bundle_sales(units=6, days=10, seed=8)
    csv = tmp_path / "sales.csv"
    pdf.assign(sale_date=pdf["sale_date"].dt.date).to_csv(csv, index=False)
    schema = ("segment string, location string, product string, sale_date date, price double, "
              "volume bigint, unit_cost double, sale_month string")
    job = pricing_job(tmp_path, csv, "source.format=csv", f"source.schema={schema}")
    assert run(spark, job, DAY1, "csv").units == 6


def test_a_delta_source_is_read_like_a_table(spark, tmp_path, bundle_source):
    delta_source = str(tmp_path / "delta_source")
    spark.read.parquet(str(bundle_source)).write.format("delta").save(delta_source)
    job = pricing_job(tmp_path, delta_source, "source.format=delta",
                      "source.filter=sale_month >= '2026-06'")
    summary = run(spark, job, DAY1, "d")
    expected = spark.read.parquet(str(bundle_source)).where("sale_month >= '2026-06'").count()
    assert summary.rows_in == expected


def test_missing_source_path_stops_before_writing_and_keeps_old_output(spark, tmp_path, bundle_source, day1_run):
    job = copy_of_day1(day1_run, tmp_path, bundle_source)  # the run to keep, run-1
    broken = pricing_job(tmp_path, tmp_path / "nowhere")
    with pytest.raises(InputError, match="nowhere does not exist"):
        run(spark, broken, DAY1, "never")
    assert read_output(spark, job).select("run_id").distinct().first()[0] == "run-1"


def test_missing_key_column_is_named_with_the_nearest_source_column(spark, tmp_path, bundle_source):
    job = pricing_job(tmp_path, bundle_source, "unit_of_work.keys=[segment, locaton, product]")
    with pytest.raises(InputError, match=r"lacks column\(s\) 'locaton' \(did you mean 'location'\?\) needed"):
        run(spark, job, DAY1)
    assert not os.path.exists(job.output.path)


def test_config_errors_name_the_field(spark, tmp_path, bundle_source):
    cases = {
        "function.name=nowhere.module:price": "'nowhere.module', which is not in function.allowed_modules",
        "function.params.max_stepp=0.2": "max_stepp",
        "output.partition_by=[region]": "output.partition_by",
        "source.filter=sale_month >>> 3": "source.filter",
        f"output.path={bundle_source}/inside": "output.path",
    }
    for override, message in cases.items():
        with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
            run(spark, pricing_job(tmp_path, bundle_source, override), DAY1)
    allowed_but_missing = pricing_job(tmp_path, bundle_source, "function.name=nowhere.module:price",
                                      "function.allowed_modules=[nowhere]")
    with pytest.raises(ConfigError, match="module 'nowhere.module' does not import"):
        run(spark, allowed_but_missing, DAY1)
    assert not os.path.exists(tmp_path / "out")


def test_fail_if_run_exists_refuses_to_replace_a_run(spark, tmp_path, bundle_source):
    job = pricing_job(tmp_path, bundle_source, "output.mode=fail_if_run_exists")
    run(spark, job, DAY1, "one")
    with pytest.raises(RunDateTaken, match=r"already holds run_date 2026-11-01 \(run one\)"):
        run(spark, job, DAY1, "two")
    assert run(spark, job, DAY2, "three").rows_out == 60


def test_voice_pricing_job_on_parquet(spark, tmp_path):
    source = tmp_path / "voice"
    write_sample("voice_traffic", source, rows=3 * 24 * 30, units=3 * 24, seed=4)
    job = load_job(ROOT / "conf/jobs/voice_pricing.yaml", [
        f"source.path={source}", f"output.path={tmp_path / 'voice_out'}", "output.format=parquet",
        "output.partition_by=[tier]",
    ])
    summary = run(spark, job, DAY1, "v")
    out = read_output(spark, job).toPandas()
    assert summary.units == 72 and len(out) == 72
    assert out["discount"].between(0, 0.4).all()
    assert ((out["discount"] == 0) == (out["tier"] == "none")).all()
    night = out[out["hour"] == 3]["discount"].mean()
    noon = out[out["hour"] == 11]["discount"].mean()
    assert night > noon
