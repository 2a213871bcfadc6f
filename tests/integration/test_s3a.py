"""The data-pricing job reads from and writes to S3 through Hadoop's s3a connector (moto).

``./spark-submit.sh local`` runs with ``s3://`` source and output paths against a moto server
on 127.0.0.1. The job rewrites ``s3://`` to ``s3a://`` (profile ``s3_scheme: s3a``) and adds
the hadoop-aws package matching pyspark's Hadoop; the test profile only adds the endpoint
settings. Credentials come from the environment: Hadoop 3.4's default s3a provider chain
(``fs.s3a.aws.credentials.provider`` in core-default.xml) is TemporaryAWSCredentialsProvider,
SimpleAWSCredentialsProvider, the AWS SDK's EnvironmentVariableCredentialsProvider
(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) and IAMInstanceCredentialsProvider,
so no key is written into the profile. The Delta and Parquet outputs are downloaded with boto3
and must equal, row for row, the output of the same job on local paths.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.testing import assertDataFrameEqual

from batch_scoring.jobs.sample_data import write_sample
from job_inputs import NO_REPORT
from moto_server import write_profile

ROOT = Path(__file__).resolve().parents[2]
RUN_DATE = "2026-11-22"
BUCKET = "batch-scoring-s3a"
UNITS = 30
VOLATILE = ("run_id",)  # differs between any two runs by design


def add_bad_rows(sales: Path) -> None:
    """Add a file with a null-segment row and a negative-price row (both rejected)."""
    partition = sorted(sales.glob("sale_month=*"))[0]
    sample = pq.ParquetFile(next(partition.glob("*.parquet"))).read()  # the file's own schema
    rows = sample.slice(0, 2).to_pandas()
    rows.loc[0, "segment"] = None
    rows.loc[1, "price"] = -1.0
    pq.write_table(pa.Table.from_pandas(rows, schema=sample.schema, preserve_index=False),
                   partition / "bad-rows.parquet")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, moto_server):
    """Sample bundle sales on disk, the moto profile, and the same files in s3://BUCKET/sales/."""
    folder = tmp_path_factory.mktemp("s3a")
    write_sample("bundle_sales", folder / "sales", rows=UNITS * 20, units=UNITS, seed=3)
    add_bad_rows(folder / "sales")
    write_profile(folder, moto_server)
    return folder


@pytest.fixture
def bucket(workdir, moto_server):
    """``s3://BUCKET`` holding the sample source under ``sales/`` (created for each test)."""
    s3 = moto_server.client("s3")
    if BUCKET not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket=BUCKET,
                         CreateBucketConfiguration={"LocationConstraint": moto_server.region})
    for file in sorted((workdir / "sales").rglob("*.parquet")):
        s3.upload_file(str(file), BUCKET, file.relative_to(workdir).as_posix())
    return s3


def submit(workdir: Path, environment: dict[str, str], name: str, *extra: str) -> dict:
    """Run the data-pricing job with ``./spark-submit.sh local`` on the moto profile.

    Returns the run summary; fails the test with the output's tail if the run fails.
    """
    summary = workdir / f"{name}.json"
    env = {**os.environ, **environment, "BATCH_SCORE_PYTHON": sys.executable}
    result = subprocess.run(
        [str(ROOT / "spark-submit.sh"), "local", str(ROOT / "conf/jobs/data_pricing.yaml"),
         "--profile", str(workdir / "local-moto.yaml"), "--run-date", RUN_DATE,
         "--summary-json", str(summary), "--set", "source.filter=null", *extra],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=1200,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"run {name} failed:\n{output[-4000:]}"
    return json.loads(summary.read_text())


@pytest.fixture(scope="module")
def local_run(workdir, moto_server):
    """The run summary of the same job on local paths (Delta, ``workdir/local_out``); the
    reference rows only, so without the run report (the S3 runs keep theirs)."""
    return submit(workdir, moto_server.environment, "local",
                  "--set", f"source.path={workdir / 'sales'}", *NO_REPORT,
                  "--set", f"output.path={workdir / 'local_out'}")


def download(s3, prefix: str, target: Path) -> list[str]:
    """Download every object under ``prefix`` of BUCKET into ``target``; return the keys.

    Keys ending in ``/`` are s3a's directory markers, not files, and are skipped.
    """
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        for item in page.get("Contents", []):
            key = item["Key"]
            if key.endswith("/"):
                continue
            destination = target / key
            destination.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(BUCKET, key, str(destination))
            keys.append(key)
    return keys


def read(spark, path: Path, fmt: str):
    """The table at ``path`` without the columns that differ between runs."""
    return spark.read.format(fmt).load(str(path)).drop(*VOLATILE)


@pytest.mark.parametrize("fmt", ["delta", "parquet"])
def test_s3_source_and_output_equal_the_local_run(spark, workdir, moto_server, bucket, local_run, fmt):
    out = f"out_{fmt}"
    summary = submit(workdir, moto_server.environment, f"s3_{fmt}",
                     "--set", f"source.path=s3://{BUCKET}/sales",
                     "--set", f"output.path=s3://{BUCKET}/{out}", "--set", f"output.format={fmt}")

    assert summary["output_path"] == f"s3a://{BUCKET}/{out}"
    assert summary["rejects_path"] == f"s3a://{BUCKET}/{out}_rejects"
    counts = ("rows_in", "rows_rejected", "units", "rows_out")
    assert {k: summary[k] for k in counts} == {k: local_run[k] for k in counts}
    assert (summary["rows_rejected"], summary["units"], summary["rows_out"]) == (2, UNITS, UNITS)

    downloaded = workdir / f"download_{fmt}"
    keys = download(bucket, f"{out}", downloaded)
    data_files = [k for k in keys if k.startswith(f"{out}/run_date={RUN_DATE}/") and k.endswith(".parquet")]
    assert data_files, f"no data files of run_date={RUN_DATE} in s3://{BUCKET}/{out}: {keys}"
    if fmt == "delta":
        assert f"{out}/_delta_log/00000000000000000000.json" in keys
    else:
        assert not [k for k in keys if "/_delta_log/" in k or "/.spark-staging" in k]

    expected = read(spark, workdir / "local_out", "delta")
    priced = read(spark, downloaded / out, fmt)
    assert priced.count() == UNITS
    # Parquet lists partition columns (run_date, segment) last, Delta where they were written;
    # the columns are put in one order by hand (ignoreColumnOrder is Spark 4's only).
    assertDataFrameEqual(priced.select(*expected.columns), expected)
    expected_rejects = read(spark, workdir / "local_out_rejects", "delta")
    rejects = read(spark, downloaded / f"{out}_rejects", fmt)
    assertDataFrameEqual(rejects.select(*expected_rejects.columns), expected_rejects)
