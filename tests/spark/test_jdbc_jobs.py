"""The pricing job and the model job reading rows from a real PostgreSQL server in parallel and
writing their results back to it (tests/postgres_server.py): the same prices as the same job
over Parquet into Delta, the JDBC partitions the read used (in the run manifest), bad rows in
the rejects table, and a rerun of the run date leaving one copy of its rows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from batch_scoring.jobs.config import load_job
from batch_scoring.jobs.manifest import ManifestRecorder, read_manifest
from batch_scoring.jobs.pipeline import run
from batch_scoring.jobs.sample_data import write_sample

ROOT = Path(__file__).resolve().parents[2]
DAY = dt.date(2026, 11, 22)
PARTITIONS = 3
UNITS = 30


@pytest.fixture(scope="module")
def sales(spark, postgres, tmp_path_factory):
    """The bundle sales as Parquet and as ``public.bundle_sales``, plus one row with a null price
    (rejected by both jobs: ``null_value``)."""
    folder = tmp_path_factory.mktemp("jdbc_sales") / "bundle_sales"
    write_sample("bundle_sales", folder, rows=UNITS * 30, units=UNITS, seed=23)
    rows = spark.read.parquet(str(folder))
    bad = rows.limit(1).withColumn("price", F.lit(None).cast("double"))
    (rows.unionByName(bad).write.mode("overwrite")
     .jdbc(postgres.url, "public.bundle_sales", properties=_properties(postgres)))
    bad.drop("sale_month").write.mode("append").parquet(str(folder / "sale_month=__bad"))
    return folder


def _properties(postgres) -> dict[str, str]:
    return {"user": postgres.user, "password": postgres.password, "driver": "org.postgresql.Driver"}


def jdbc_overrides(postgres, tmp_path: Path, output_table: str) -> list[str]:
    """``--set`` lines reading ``public.bundle_sales`` over ``PARTITIONS`` JDBC partitions of
    ``sale_date`` and writing ``output_table`` (manifests under ``tmp_path/state``)."""
    connection = [f"url={postgres.url}", f"user={postgres.user}", "password_env=PG_TEST_PASSWORD"]
    return [
        "source.path=null", "source.format=jdbc", "source.filter=null",
        *(f"source.jdbc.{c}" for c in connection), "source.jdbc.table=public.bundle_sales",
        "source.jdbc.partition_column=sale_date", f"source.jdbc.num_partitions={PARTITIONS}",
        "output.format=jdbc", f"output.path={tmp_path / 'state'}",
        *(f"output.jdbc.{c}" for c in connection), f"output.jdbc.table={output_table}",
        "report.enabled=false",
    ]


def read_table(spark, postgres, table: str):
    return spark.read.jdbc(postgres.url, table, properties=_properties(postgres))


def recorded_run(spark, job, run_id: str):
    """Run ``job`` for DAY with a manifest recorder; return the summary and the manifest."""
    recorder = ManifestRecorder(spark, job, DAY, run_id)
    summary = run(spark, job, DAY, run_id, journal=recorder)
    return summary, read_manifest(spark, recorder.succeeded(summary))


@pytest.fixture
def password(monkeypatch, postgres):
    monkeypatch.setenv("PG_TEST_PASSWORD", postgres.password)


def test_pricing_from_postgres_equals_pricing_from_parquet(spark, postgres, sales, tmp_path, password):
    base = [f"source.path={sales}", "source.filter=null", "unit_of_work.buckets=3"]
    files = load_job(ROOT / "conf/jobs/data_pricing.yaml", [*base, f"output.path={tmp_path / 'delta'}"])
    database = load_job(ROOT / "conf/jobs/data_pricing.yaml",
                        [*base, *jdbc_overrides(postgres, tmp_path, "public.prices")])

    expected = run(spark, files, DAY, "r1")
    summary, manifest = recorded_run(spark, database, "r1")

    assert (summary.rows_in, summary.rows_rejected, summary.units) == (
        expected.rows_in, expected.rows_rejected, expected.units)
    assert summary.rows_rejected == 1 and summary.units == UNITS
    written = read_table(spark, postgres, "public.prices")
    delta = spark.read.format("delta").load(str(tmp_path / "delta"))
    assertDataFrameEqual(written.select(*delta.columns), delta, rtol=1e-9)
    assert manifest["inputs"]["partitions"] == PARTITIONS
    assert manifest["inputs"]["table"] == "public.bundle_sales"
    assert "password" not in str(manifest["inputs"]).lower()
    rejects = read_table(spark, postgres, "public.prices_rejects").collect()
    assert [(r["reject_reason"], r["reject_column"]) for r in rejects] == [("null_value", "price")]


def test_a_rerun_replaces_the_run_dates_rows_in_the_database(spark, postgres, sales, tmp_path, password):
    job = load_job(ROOT / "conf/jobs/data_pricing.yaml",
                   ["unit_of_work.buckets=2", *jdbc_overrides(postgres, tmp_path, "public.rerun_prices")])
    run(spark, job, DAY, "first")
    run(spark, job, DAY, "second")

    table = read_table(spark, postgres, "public.rerun_prices")
    assert table.count() == UNITS
    assert [r["run_id"] for r in table.select("run_id").distinct().collect()] == ["second"]
    assert table.groupBy("segment", "location", "product").count().where("count > 1").count() == 0


def test_the_model_job_scores_rows_from_postgres_into_postgres(spark, postgres, sales, tmp_path, password):
    from batch_scoring.jobs.sample_model import save_sample_model

    write_sample("bundle_sales", tmp_path / "train", rows=UNITS * 30, units=UNITS, seed=29)
    model = save_sample_model(tmp_path / "train", tmp_path / "model")
    job = load_job(ROOT / "conf/jobs/model_scoring.yaml", [
        f"model.uri={model}", f"model.allowed_uris=[{tmp_path}/]", "model.tracking_uri=null",
        *jdbc_overrides(postgres, tmp_path, "public.expected_volume")])

    summary, manifest = recorded_run(spark, job, "scored")

    rows = read_table(spark, postgres, "public.bundle_sales").count()
    scored = read_table(spark, postgres, "public.expected_volume")
    assert (summary.rows_in, summary.rows_out, summary.rows_rejected) == (rows, rows - 1, 1)
    assert scored.count() == rows - 1
    assert scored.where(F.col("expected_volume").isNull() | (F.col("expected_volume") < 0)).count() == 0
    assert manifest["inputs"]["partitions"] == PARTITIONS
