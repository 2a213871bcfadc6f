"""A model and a unit-of-work function chained in one job: score demand, then price per unit."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import mlflow.pyfunc
import pandas as pd
import pytest
from pyspark.testing import assertDataFrameEqual

from batch_scoring.jobs.config import load_job
from batch_scoring.jobs.errors import InputError
from batch_scoring.jobs.pipeline import run
from batch_scoring.jobs.sample_data import write_sample
from batch_scoring.jobs.sample_model import FEATURES, save_sample_model
from batch_scoring.udfs.pricing.data_pricing import DataPricingParams, price_data

ROOT = Path(__file__).resolve().parents[2]
KEYS = ["segment", "location", "product"]


@pytest.fixture(scope="module")
def demand(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demand")
    write_sample("bundle_sales", folder / "sales", rows=40 * 60, units=40, seed=31)
    model_dir = save_sample_model(folder / "sales", folder / "model")
    return folder / "sales", model_dir


def chained_job(tmp_path, sales, model_dir, *overrides):
    return load_job(ROOT / "conf/jobs/demand_pricing.yaml", [
        f"source.path={sales}", f"model.uri={model_dir}", f"model.allowed_uris=[{model_dir}]",
        f"output.path={tmp_path / 'prices'}", "unit_of_work.buckets=3", *overrides,
    ])


def test_prices_come_from_the_models_demand_per_unit(spark, tmp_path, demand):
    sales, model_dir = demand
    job = chained_job(tmp_path, sales, model_dir)
    summary = run(spark, job, dt.date(2026, 11, 22), "chained")
    rows = pd.read_parquet(sales)
    scored = rows.assign(expected_volume=mlflow.pyfunc.load_model(str(model_dir)).predict(rows[FEATURES]))
    expected = price_data(scored, KEYS, DataPricingParams(**job.function.params))
    got = spark.read.format("delta").load(job.output.path).drop("run_date", "run_id")
    assertDataFrameEqual(got, spark.createDataFrame(expected, schema=got.schema), rtol=1e-9)
    assert (summary.units, summary.rows_rejected, summary.rows_in) == (40, 0, len(rows))
    assert summary.model_sha256 and summary.model_uri == str(model_dir)


def test_a_function_input_the_model_does_not_pass_through_is_named(spark, tmp_path, demand):
    sales, model_dir = demand
    job = chained_job(tmp_path, sales, model_dir, "model.passthrough=[segment, location, product, sale_date, price]")
    with pytest.raises(InputError, match="'unit_cost' is missing"):
        run(spark, job, dt.date(2026, 11, 22), "no-cost")
