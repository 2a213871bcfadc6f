"""A run killed (SIGKILL of its process group) between its output and its rejects commit
leaves a manifest that says the output committed and the rejects did not; a rerun converges."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import pyarrow as pa
import pyarrow.parquet as pq
import datetime as dt

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = '''
import datetime as dt, os, signal, sys
from delta import configure_spark_with_delta_pip
from pyspark.sql import SparkSession
from batch_scoring.jobs.config import load_job
from batch_scoring.jobs.manifest import ManifestRecorder
from batch_scoring.jobs.pipeline import run

source, output, run_id, kill = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "kill"
builder = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
           .config("spark.sql.shuffle.partitions", "2").config("spark.log.level", "ERROR")
           .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
           .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog"))
spark = configure_spark_with_delta_pip(builder).getOrCreate()
job = load_job("conf/jobs/data_pricing.yaml", [
    f"source.path={source}", "source.filter=null", f"output.path={output}",
    "unit_of_work.buckets=2", "function.params.pool_by=[]"])
day = dt.date(2026, 11, 22)


class KilledAfterOutput(ManifestRecorder):
    def committed(self, table):
        super().committed(table)
        if kill and table == "output":
            os.killpg(os.getpgrp(), signal.SIGKILL)


recorder = KilledAfterOutput(spark, job, day, run_id)
summary = run(spark, job, day, run_id, journal=recorder)
recorder.succeeded(summary)
'''


def sales(folder: Path) -> Path:
    rows = []
    for unit in range(3):
        for day in range(20):
            price = 10.0 + unit + (0.5 if day % 2 else 0.0)
            rows.append({"segment": "s", "location": f"l{unit}", "product": "p",
                         "sale_date": dt.date(2026, 10, 1) + dt.timedelta(days=day),
                         "price": price, "volume": int(30_000 * price ** -1.6 * (1 + 0.03 * (day % 4))),
                         "unit_cost": 4.0 if day else -1.0})  # one negative cost per unit: rejected
    folder.mkdir()
    pq.write_table(pa.Table.from_pylist(rows), folder / "part.parquet")
    return folder


def job_process(source: Path, output: Path, run_id: str, kill: bool) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SCRIPT), str(source), str(output), run_id,
         "kill" if kill else "finish"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, start_new_session=True,
    )


def manifest(output: Path, run_id: str) -> dict:
    return json.loads((output / "_manifests" / "run_date=2026-11-22" / f"{run_id}.json").read_text())


@pytest.mark.one_line  # the manifest's commit record is ours; both lines' commits: test_fault_injection
def test_a_run_killed_between_its_two_commits_leaves_a_manifest_saying_what_committed(spark, tmp_path):
    source, output = sales(tmp_path / "sales"), tmp_path / "prices"
    rejects = tmp_path / "prices_rejects"

    killed = job_process(source, output, "killed", kill=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    record = manifest(output, "killed")
    assert record["status"] == "committing"
    assert record["commit"] == {"tables": {"output": str(output), "rejects": str(rejects)},
                                "committed": ["output"]}
    run_ids = lambda path: {r["run_id"] for r in spark.read.format("delta").load(str(path)).collect()}
    assert run_ids(output) == {"killed"} and not (rejects / "_delta_log").exists()

    finished = job_process(source, output, "rerun", kill=False)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert manifest(output, "rerun")["status"] == "succeeded"
    assert manifest(output, "rerun")["commit"]["committed"] == ["output", "rejects"]
    assert run_ids(output) == {"rerun"} and run_ids(rejects) == {"rerun"}
    assert spark.read.format("delta").load(str(rejects)).count() == 3
