"""The run manifest, written by the entry point after a run commits or fails."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from batch_scoring.jobs import run_job
from batch_scoring.jobs.sample_data import write_sample

pytestmark = pytest.mark.one_line  # the manifest's fields: the same on both Spark lines (the EMR 7 pass writes manifests in test_stop_signals and test_fault_injection)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sales(tmp_path_factory):
    folder = tmp_path_factory.mktemp("manifest") / "sales"
    write_sample("bundle_sales", folder, rows=25 * 20, units=25, seed=5)
    return folder


def run(sales: Path, out: Path, run_id: str, *extra: str) -> int:
    return run_job.main([
        "--job", str(ROOT / "conf/jobs/data_pricing.yaml"), "--run-date", "2026-11-22", "--run-id", run_id,
        "--set", f"source.path={sales}", "--set", f"output.path={out}", "--set", "output.format=parquet",
        "--set", "source.filter=null", "--summary-json", str(out.parent / f"{run_id}.json"), *extra,
    ])


def manifest(out: Path, run_id: str) -> dict:
    return json.loads((out / "_manifests" / "run_date=2026-11-22" / f"{run_id}.json").read_text())


def test_a_committed_run_has_a_complete_manifest(spark, sales, tmp_path):
    out = tmp_path / "prices"
    assert run(sales, out, "run-ok", "--set", "spark_conf.spark.hadoop.fs.s3a.secret.key=abc123") == 0
    summary = json.loads((tmp_path / "run-ok.json").read_text())
    document = manifest(out, "run-ok")

    assert (document["status"], document["job"], document["run_date"], document["error"]) == (
        "succeeded", "data_pricing", "2026-11-22", None)
    assert document["rows"]["in"] == summary["rows_in"] == spark.read.parquet(str(sales)).count()
    assert document["rows"]["out"] == summary["rows_out"] == 25
    assert (document["rows"]["rejected"], document["rows"]["rejected_by_reason"]) == (0, {})
    source_files = [Path(d) / f for d, _, fs in os.walk(sales) for f in fs if f.endswith(".parquet")]
    assert document["inputs"]["file_count"] == len(source_files)
    assert document["inputs"]["total_bytes"] == sum(f.stat().st_size for f in source_files)
    assert document["spark"]["application_id"] == spark.sparkContext.applicationId
    assert document["code"]["package_version"] == "0.1.0" and len(document["code"]["source_sha256"]) == 64
    assert document["config"]["spark_conf"]["spark.hadoop.fs.s3a.secret.key"] == "***"
    assert "abc123" not in json.dumps(document)
    expected_hash = hashlib.sha256(json.dumps(document["config"], sort_keys=True).encode()).hexdigest()
    assert document["config_sha256"] == expected_hash
    assert document["started_at"] < document["finished_at"]
    assert list(document["phases"]) == ["checks", "read", "quarantine", "bucket", "price", "reconcile", "write",
                                        "report"]
    assert all(seconds >= 0 for seconds in document["phases"].values())
    assert sum(document["phases"].values()) <= document["seconds"]
    assert document["replaces"] is None  # the date held no rows
    # readers of the output never see the manifest as data
    assert spark.read.parquet(str(out)).count() == 25


def test_a_failed_run_writes_a_failed_manifest_with_its_error(spark, sales, tmp_path):
    out = tmp_path / "prices"
    status = run(sales, out, "run-bad", "--set", "unit_of_work.max_unit_rows=5")  # found in a task
    assert status == 3
    document = manifest(out, "run-bad")
    assert document["status"] == "failed" and document["rows"] is None
    assert document["error"]["type"] == "InputError" and document["error"]["exit_code"] == 3
    assert document["error"]["phase"] == "price"  # the unit too large is found by the function's task
    assert "unit_of_work.max_unit_rows = 5" in document["error"]["message"]
    assert not (out / "run_date=2026-11-22").exists()  # nothing but the manifest was written


def test_a_config_refused_before_spark_writes_no_manifest(sales, tmp_path):
    out = tmp_path / "prices"
    status = run(sales, out, "run-refused", "--set", f"source.path={tmp_path / 'no_such_source'}")
    assert status == 3
    assert not out.exists()  # refused by the pre-flight: no manifest, no folder


def test_each_attempt_keeps_its_own_manifest(spark, sales, tmp_path):
    out = tmp_path / "prices"
    assert run(sales, out, "attempt-1") == 0
    assert run(sales, out, "attempt-2") == 0
    folder = out / "_manifests" / "run_date=2026-11-22"
    names = sorted(p.name for p in folder.iterdir() if not p.name.endswith(".crc"))  # Hadoop's local checksums
    assert names == ["attempt-1.html", "attempt-1.json", "attempt-2.html", "attempt-2.json"]  # each its report
    assert spark.read.parquet(str(out)).count() == 25  # the rerun replaced the run, no duplicates
    first, second = manifest(out, "attempt-1"), manifest(out, "attempt-2")
    assert second["replaces"] == {"rows": 25, "runs": {"attempt-1": first["finished_at"]}}


def test_a_rerun_says_which_rows_it_replaces(spark, sales, tmp_path, caplog):
    out = tmp_path / "prices"
    assert run(sales, out, "first") == 0
    finished = manifest(out, "first")["finished_at"]
    caplog.clear()
    assert run(sales, out, "second") == 0
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("replacing")]
    assert said == [f"replacing 25 rows of run_date=2026-11-22 written by run first at {finished}"]

