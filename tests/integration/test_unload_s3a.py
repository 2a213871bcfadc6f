"""The data-pricing job reading a Redshift source through UNLOAD to S3 (moto) and Parquet (s3a).

No Redshift exists here (and PostgreSQL has no UNLOAD), so one piece is a stand-in: the JDBC
connection that runs the UNLOAD statement (tests/unload_stand_in.py). It records the statement
the job generated and writes what a real ``UNLOAD ... FORMAT AS PARQUET MANIFEST`` leaves in the
run's S3 folder: Parquet part files and the manifest listing them. Everything else is real and
the job's own: the entry point (``python tests/unload_stand_in.py`` = ``run_job.main`` with the
stand-in installed) building its session from a profile with the s3a endpoint of a moto server
on 127.0.0.1, ``RunContext.open`` giving the source its run folder, Spark reading the listed
files through s3a, ``source.filter`` applied again, the Delta output, the run manifest, and the
files deleted from S3 after the run committed (``keep: false``) or kept (``keep: true``).
The prices must equal those of the same job reading the same rows from local Parquet.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from pyspark.testing import assertDataFrameEqual

from batch_scoring.jobs.config import load_job
from batch_scoring.jobs.pipeline import run
from batch_scoring.jobs.sample_data import write_sample
from moto_server import write_profile

pytestmark = [pytest.mark.spark, pytest.mark.one_line]  # UNLOAD's files read through s3a: s3a runs on both lines in tests/integration/test_s3a.py

ROOT = Path(__file__).resolve().parents[2]
RUN_DATE = "2026-11-22"
BUCKET = "scoring-unload"
ROLE = "arn:aws:iam::123456789012:role/redshift-unload"
UNITS = 30
FILTER = "sale_date >= DATE'2026-05-10' AND price > 0"
REDSHIFT = "jdbc:redshift://analytics.example.invalid:5439/sales"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, moto_server):
    """The "Redshift table" as one local Parquet file (``table/sales.parquet``) and the profile."""
    folder = tmp_path_factory.mktemp("unload")
    write_sample("bundle_sales", folder / "sample", rows=UNITS * 20, units=UNITS, seed=5)
    (folder / "table").mkdir()
    pq.write_table(ds.dataset(folder / "sample", partitioning="hive").to_table(),
                   folder / "table" / "sales.parquet")
    write_profile(folder, moto_server)
    return folder


@pytest.fixture
def bucket(moto_server):
    s3 = moto_server.client("s3")
    if BUCKET not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": moto_server.region})
    return s3


def unload_run(workdir: Path, endpoint, name: str, *extra: str) -> tuple[dict, list[str]]:
    """Run the data-pricing job from the Redshift source with UNLOAD (stand-in connection);
    return its summary and the statements the stand-in received."""
    log, summary = workdir / f"{name}.sql", workdir / f"{name}.json"
    env = {**os.environ, **endpoint.environment, "SALES_DB_PASSWORD": "not-used-by-the-stand-in",
           "UNLOAD_STAND_IN_TABLE": str(workdir / "table" / "sales.parquet"),
           "UNLOAD_STAND_IN_LOG": str(log), "PYSPARK_PYTHON": sys.executable}
    sets = [
        "source.path=null", "source.format=jdbc", f"source.filter={FILTER}",
        f"source.jdbc.url={REDSHIFT}", "source.jdbc.user=scorer",
        "source.jdbc.password_env=SALES_DB_PASSWORD", "source.jdbc.table=public.bundle_sales",
        f"source.jdbc.unload.s3_uri=s3://{BUCKET}/unload/", f"source.jdbc.unload.iam_role={ROLE}",
        "unit_of_work.buckets=3", f"output.path={workdir / name}", "report.enabled=false", *extra,
    ]
    result = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "unload_stand_in.py"), "--job",
         str(ROOT / "conf/jobs/data_pricing.yaml"), "--profile", str(workdir / "local-moto.yaml"),
         "--run-date", RUN_DATE, "--run-id", name, "--summary-json", str(summary), "--quiet",
         *(a for s in sets for a in ("--set", s))],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=1200,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"run {name} failed:\n{output[-4000:]}"
    return json.loads(summary.read_text()), log.read_text().splitlines()


def keys(s3, prefix: str) -> list[str]:
    found = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    return sorted(o["Key"] for o in found if not o["Key"].endswith("/"))


def test_pricing_through_unload_equals_pricing_from_parquet_and_the_files_go(
        spark, workdir, moto_server, bucket):
    expected_job = load_job(ROOT / "conf/jobs/data_pricing.yaml", [
        f"source.path={workdir / 'table'}", f"source.filter={FILTER}", "unit_of_work.buckets=3",
        f"output.path={workdir / 'expected'}", "report.enabled=false"])
    expected = run(spark, expected_job, dt.date.fromisoformat(RUN_DATE), "expected")

    summary, statements = unload_run(workdir, moto_server, "unloaded")

    folder = f"s3://{BUCKET}/unload/{RUN_DATE}/unloaded/"
    assert statements == [
        "UNLOAD ('SELECT \"segment\", \"location\", \"product\", \"sale_date\", \"price\", "
        "\"volume\", \"unit_cost\" FROM \"public\".\"bundle_sales\" WHERE \"sale_date\" >= "
        "DATE ''2026-05-10'' AND \"price\" > 0') "
        f"TO '{folder}' IAM_ROLE '{ROLE}' FORMAT AS PARQUET ALLOWOVERWRITE MANIFEST"
    ]
    counts = ("rows_in", "rows_rejected", "units", "rows_out")
    assert {k: summary[k] for k in counts} == {
        "rows_in": expected.rows_in, "rows_rejected": expected.rows_rejected,
        "units": expected.units, "rows_out": expected.rows_out}
    assert summary["units"] == UNITS
    prices = spark.read.format("delta").load(str(workdir / "unloaded")).drop("run_id")
    reference = spark.read.format("delta").load(str(workdir / "expected")).drop("run_id")
    assertDataFrameEqual(prices.select(*reference.columns), reference, rtol=1e-9)

    [manifest_file] = (workdir / "unloaded" / "_manifests").rglob("unloaded.json")
    manifest = json.loads(manifest_file.read_text())
    inputs = manifest["inputs"]
    assert (inputs["mode"], inputs["folder"], inputs["iam_role"]) == ("unload", folder, ROLE)
    assert inputs["file_count"] == 2 and inputs["keep"] is False and inputs["deleted"] is True
    assert [f["file"] for f in inputs["files"]] == [f"{folder}0000_part_00.parquet",
                                                    f"{folder}0001_part_00.parquet"]
    assert inputs["pushed_filter"] == "\"sale_date\" >= DATE '2026-05-10' AND \"price\" > 0"
    assert "not-used-by-the-stand-in" not in json.dumps(manifest)
    assert keys(bucket, "unload/") == []  # committed: the run's files and manifest are gone


def test_keep_leaves_the_unloaded_files_and_a_partly_pushed_filter_unloads_all_columns(
        workdir, moto_server, bucket):
    summary, statements = unload_run(
        workdir, moto_server, "kept", "source.jdbc.unload.keep=true",
        "source.jdbc.unload.max_file_size_mb=64",
        "source.filter=price > 0 AND lower(segment) != 'none'")

    folder = f"unload/{RUN_DATE}/kept/"
    assert statements == [
        "UNLOAD ('SELECT * FROM \"public\".\"bundle_sales\" WHERE \"price\" > 0') "
        f"TO 's3://{BUCKET}/{folder}' IAM_ROLE '{ROLE}' FORMAT AS PARQUET ALLOWOVERWRITE MANIFEST "
        "MAXFILESIZE 64 MB"
    ]
    assert summary["units"] == UNITS
    assert keys(bucket, folder) == [f"{folder}0000_part_00.parquet", f"{folder}0001_part_00.parquet",
                                    f"{folder}manifest"]
