"""``output.mode: fail_if_run_exists`` with two runs of one date started together: exactly one
commits, the other exits 3 naming it, and the table holds the winner's rows only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from batch_scoring.jobs.sample_data import write_sample
from job_inputs import NO_REPORT

# Not in the EMR 7 pass: the claim is our own O_EXCL create (jobs/filesystem.create_exclusive,
# Python, no Spark), the same on both lines; the EMR 7 pass runs fail_if_run_exists in
# tests/spark/test_pipeline.py::test_fail_if_run_exists_refuses_to_replace_a_run, create_exclusive
# in tests/integration/test_exclusive_create.py and a Delta commit race in
# tests/spark/test_concurrent_commit.py.
pytestmark = pytest.mark.one_line

ROOT = Path(__file__).resolve().parents[2]
DAY = "2026-11-22"


def start(source: Path, output: Path, fmt: str, run_id: str) -> subprocess.Popen:
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    return subprocess.Popen(
        [sys.executable, "-m", "batch_scoring.jobs.run_job", "--job", "conf/jobs/data_pricing.yaml",
         "--profile", "conf/local.yaml", "--run-date", DAY, "--run-id", run_id,
         "--set", f"source.path={source}", "--set", "source.filter=null", *NO_REPORT,
         "--set", f"output.path={output}", "--set", f"output.format={fmt}",
         "--set", "output.mode=fail_if_run_exists", "--set", "unit_of_work.buckets=2"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


@pytest.mark.parametrize("fmt", ["delta", "parquet"])
def test_two_runs_of_one_date_started_together_commit_exactly_once(spark, tmp_path, fmt):
    source = tmp_path / "sales"
    write_sample("bundle_sales", source, rows=6_000, units=40, seed=5)
    output = tmp_path / "prices"
    first = start(source, output, fmt, "run-a")
    time.sleep(2)  # both pass the early check long before either commits (each runs ~30 s)
    second = start(source, output, fmt, "run-b")
    logs = {"run-a": first.communicate(timeout=600)[0], "run-b": second.communicate(timeout=600)[0]}
    codes = {"run-a": first.returncode, "run-b": second.returncode}

    assert sorted(codes.values()) == [0, 3], logs
    winner = next(r for r, c in codes.items() if c == 0)
    loser = next(r for r, c in codes.items() if c == 3)
    assert f"run_date {DAY} is held by run {winner}" in logs[loser] or \
        f"already holds run_date {DAY} (run {winner})" in logs[loser]
    table = spark.read.format(fmt).load(str(output))
    assert {r["run_id"] for r in table.select("run_id").distinct().collect()} == {winner}
    assert table.count() == 40
    manifests = output / "_manifests" / f"run_date={DAY}"
    loser_manifest = json.loads((manifests / f"{loser}.json").read_text())
    assert loser_manifest["status"] == "failed" and loser_manifest["error"]["exit_code"] == 3
    assert loser_manifest["commit"] is None or loser_manifest["commit"]["committed"] == []
