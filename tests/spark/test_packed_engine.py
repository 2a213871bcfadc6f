"""The packed unit-of-work engine against the applyInPandas reference, on local Spark."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from batch_scoring.jobs.sample_data import make_bundle_sales, make_voice_traffic
from batch_scoring.udfs.contract import UnitFunction
from batch_scoring.udfs.engine.spark_execution import (
    apply_packed,
    apply_reference,
    apply_summarised,
    bucket_of,
    split_status,
)
from batch_scoring.udfs.pricing.data_pricing import DataPricingParams, prepare_spark, price_data
from batch_scoring.udfs.registry import BUILTINS

KEYS = ["segment", "location", "product"]


def unit_profile(key, pdf):
    """A per-unit function that reveals whether the unit arrived whole and in order."""
    dates = pd.to_datetime(pdf["sale_date"])
    return pd.DataFrame({
        "rows": [len(pdf)],
        "first_day": [dates.iloc[0].date()],
        "last_day": [dates.iloc[-1].date()],
        "ordered": [bool(dates.is_monotonic_increasing)],
        "volume": [int(pdf["volume"].sum())],
    })


PROFILE = UnitFunction(
    name="unit_profile",
    fn=unit_profile,
    shape="unit",
    output_columns={"rows": "bigint", "first_day": "date", "last_day": "date",
                    "ordered": "boolean", "volume": "bigint"},
)


def expected_profile(pdf: pd.DataFrame) -> pd.DataFrame:
    grouped = pdf.groupby(KEYS)
    return grouped.agg(
        rows=("volume", "size"),
        first_day=("sale_date", "min"),
        last_day=("sale_date", "max"),
        volume=("volume", "sum"),
    ).reset_index().assign(ordered=True)


@pytest.fixture(scope="module")
def bundle_pdf():
    return make_bundle_sales(units=120, days=45, seed=21)


@pytest.fixture(scope="module")
def bundle_df(spark, bundle_pdf):
    shuffled = bundle_pdf.sample(frac=1.0, random_state=4)  # the engine must sort, not the input
    return spark.createDataFrame(shuffled).withColumn("sale_date", F.to_date("sale_date"))


def packed(df, function, params=None, buckets=3, context=None, rows_per_call=1):
    params = function.validate_params(params or {})
    bound = function.bind(params, context)
    return apply_packed(df, function, bound, KEYS, ["sale_date"], buckets, rows_per_call=rows_per_call)


def reference(df, function, params=None, context=None):
    params = function.validate_params(params or {})
    return apply_reference(df, function, function.bind(params, context), KEYS, ["sale_date"])


def test_units_straddling_arrow_batches_arrive_whole_and_ordered(spark, bundle_df, bundle_pdf, arrow_batch_rows):
    arrow_batch_rows(7)  # every unit (up to 45 rows) spans several Arrow batches
    result = packed(bundle_df, PROFILE).toPandas()
    expected = expected_profile(bundle_pdf)
    assert len(result) == 120
    merged = expected.merge(result, on=KEYS, suffixes=("_expected", ""))
    assert (merged["rows"] == merged["rows_expected"]).all()
    assert (merged["volume"] == merged["volume_expected"]).all()
    assert (pd.to_datetime(merged["first_day"]) == merged["first_day_expected"]).all()
    assert merged["ordered"].all()


def test_packed_equals_reference_for_a_per_unit_function(spark, bundle_df, arrow_batch_rows):
    arrow_batch_rows(50)
    assertDataFrameEqual(packed(bundle_df, PROFILE), reference(bundle_df, PROFILE))


@pytest.mark.parametrize("rows_per_call", [1, 500])
def test_packed_data_pricing_equals_reference_and_pandas(
    spark, bundle_df, bundle_pdf, arrow_batch_rows, rows_per_call
):
    arrow_batch_rows(64)  # with rows_per_call 500, about 8 Arrow batches are joined per call
    function = BUILTINS["data_pricing"]
    params = DataPricingParams(history_days=30)
    priors = prepare_spark(bundle_df, KEYS, params)
    fast = packed(bundle_df, function, params.model_dump(), context=priors, rows_per_call=rows_per_call)
    slow = reference(bundle_df, function, params.model_dump(), context=priors)
    assertDataFrameEqual(fast, slow)
    local = price_data(bundle_pdf, KEYS, params)
    assertDataFrameEqual(fast, spark.createDataFrame(local, schema=fast.schema), rtol=1e-9)


def test_data_pricing_in_one_pass_equals_priors_then_prices_and_pandas(
    spark, bundle_df, bundle_pdf, arrow_batch_rows
):
    arrow_batch_rows(64)
    function, params = BUILTINS["data_pricing"], DataPricingParams(history_days=30)
    held = []
    raw = apply_summarised(bundle_df, function, params, KEYS, ["sale_date"], 3,
                           lambda df: held.append(df.persist()) or held[-1])
    status = split_status(raw, KEYS)
    by_bucket = {r["b"]: r["count"] for r in
                 bundle_df.groupBy(bucket_of(KEYS, 3).alias("b")).count().collect()}
    assert (status.rows_priced, status.units_failed) == (len(bundle_pdf), 0)
    assert status.rows_priced_by_bucket == by_bucket
    assert status.priced.columns == [*KEYS, *function.output_columns]
    priors = prepare_spark(bundle_df, KEYS, params)
    two_passes = packed(bundle_df, function, params.model_dump(), context=priors)
    assertDataFrameEqual(status.priced, two_passes, rtol=1e-9)
    local = price_data(bundle_pdf, KEYS, params)
    assertDataFrameEqual(status.priced, spark.createDataFrame(local, schema=two_passes.schema), rtol=1e-9)
    for df in held:
        df.unpersist()


def test_packed_voice_pricing_equals_reference(spark, arrow_batch_rows):
    arrow_batch_rows(100)
    pdf = make_voice_traffic(cells=4, days=20, seed=2)
    df = spark.createDataFrame(pdf).withColumn("traffic_date", F.to_date("traffic_date"))
    function = BUILTINS["voice_pricing"]
    params = function.validate_params({})
    keys, order = ["cell_id", "hour"], ["traffic_date"]
    fast = apply_packed(df, function, function.bind(params), keys, order, 5)
    slow = apply_reference(df, function, function.bind(params), keys, order)
    assert fast.count() == 4 * 24
    assertDataFrameEqual(fast, slow)


def test_empty_partitions_and_more_buckets_than_units(spark, bundle_pdf):
    few = bundle_pdf[bundle_pdf["location"].isin(bundle_pdf["location"].unique()[:1])]
    df = spark.createDataFrame(few).withColumn("sale_date", F.to_date("sale_date"))
    n_units = few.groupby(KEYS).ngroups
    result = packed(df, PROFILE, buckets=64)
    assert result.rdd.getNumPartitions() == 64
    assert result.count() == n_units
    assertDataFrameEqual(result, reference(df, PROFILE))


def test_an_empty_input_gives_an_empty_output(spark, bundle_df):
    empty = bundle_df.where(F.lit(False))
    assert packed(empty, PROFILE).count() == 0
    assert packed(empty, BUILTINS["data_pricing"], context=None).count() == 0


def test_a_single_huge_unit_spans_many_batches_and_arrives_once(spark, arrow_batch_rows):
    arrow_batch_rows(100)
    days = pd.date_range("2020-01-01", periods=6000, freq="D")
    pdf = pd.DataFrame({"segment": "s", "location": "l", "product": "p",
                        "sale_date": days.date, "volume": 1})
    df = spark.createDataFrame(pdf.sample(frac=1.0, random_state=0))
    result = packed(df, PROFILE, buckets=2).collect()
    assert len(result) == 1
    row = result[0]
    assert (row["rows"], row["volume"], row["ordered"]) == (6000, 6000, True)
    assert (row["first_day"], row["last_day"]) == (dt.date(2020, 1, 1), days[-1].date())


def test_a_function_returning_undeclared_columns_fails_with_its_name(spark, bundle_df):
    def sloppy(key, pdf):
        return pd.DataFrame({"rows": [len(pdf)], "surprise": [1]})

    function = UnitFunction(name="my_pkg:sloppy", fn=sloppy, shape="unit",
                            output_columns={"rows": "bigint"})
    with pytest.raises(Exception, match=r"my_pkg:sloppy.*undeclared \['surprise'\]"):
        packed(bundle_df, function).collect()
