"""Which output columns the run report charts (jobs/report_data.chart_columns), without Spark."""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import types as T

from batch_scoring.jobs.config import load_job
from batch_scoring.jobs.report_data import MAX_COLUMNS, chart_columns

ROOT = Path(__file__).resolve().parents[2]


def schema(**columns: T.DataType) -> T.StructType:
    return T.StructType([T.StructField(name, dtype) for name, dtype in columns.items()])


def test_a_model_job_charts_its_predictions_not_passthrough_stamps_or_run_columns():
    job = load_job(ROOT / "conf/jobs/model_scoring.yaml")
    output = schema(segment=T.StringType(), sale_date=T.DateType(), expected_volume=T.DoubleType(),
                    model_uri=T.StringType(), model_version=T.StringType(), scored_at=T.TimestampType(),
                    run_date=T.DateType(), run_id=T.StringType())
    notes: list[str] = []
    assert chart_columns(job, output, notes) == (["expected_volume"], [])
    assert notes == []


def test_a_function_job_charts_numbers_and_text_but_not_keys_or_dates():
    job = load_job(ROOT / "conf/jobs/data_pricing.yaml")
    output = schema(segment=T.StringType(), location=T.StringType(), product=T.StringType(),
                    last_date=T.DateType(), price=T.DoubleType(), n_obs=T.LongType(), rule=T.StringType(),
                    capped=T.BooleanType(), run_id=T.StringType())
    assert chart_columns(job, output, []) == (["price", "n_obs"], ["rule", "capped"])


def test_report_columns_choose_and_a_missing_one_is_noted_with_the_nearest_name():
    job = load_job(ROOT / "conf/jobs/data_pricing.yaml", ["report.columns=[rule, prise, price]"])
    notes: list[str] = []
    assert chart_columns(job, schema(price=T.DoubleType(), rule=T.StringType()), notes) == (["price"], ["rule"])
    assert notes == ["report.columns names 'prise', which the output lacks (did you mean 'price'?)"]


def test_at_most_twelve_columns_are_charted_and_the_rest_noted():
    job = load_job(ROOT / "conf/jobs/data_pricing.yaml")
    output = schema(**{f"c{i:02d}": T.DoubleType() for i in range(15)})
    notes: list[str] = []
    numeric, text = chart_columns(job, output, notes)
    assert numeric == [f"c{i:02d}" for i in range(MAX_COLUMNS)] and text == []
    assert notes == ["15 columns could be charted; the first 12 are (choose with report.columns)"]
