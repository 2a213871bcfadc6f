"""The same job YAML on a real Spark standalone cluster gives exactly the local-mode result.

Each job runs twice through ``spark-submit.sh`` as a user starts it: ``cluster --master
spark://127.0.0.1:P`` against the ``spark_cluster`` fixture (a master and two workers) and
``local``, on the same source and run date; the outputs and rejects must be equal row for row
(``run_id`` and ``scored_at`` aside), and the master must list the run as its own application.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from pyspark.testing import assertDataFrameEqual

from batch_scoring.jobs.sample_data import write_sample
from batch_scoring.jobs.sample_model import save_sample_model
from job_inputs import BAD_ROWS, NO_REPORT, add_bad_rows

# Not in the EMR 7 pass: the standalone cluster on Spark 3.5 is covered there by
# test_fault_injection.py's cluster test (the same job on a cluster, output equal to local).
pytestmark = pytest.mark.one_line

ROOT = Path(__file__).resolve().parents[2]
RUN_DATE = "2026-11-22"
UNITS, DAYS = 30, 20  # about 600 rows: units launched late have fewer days
VOLATILE = ("run_id", "scored_at")  # differ between any two runs by design


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """Bundle sales (30 units x 20 days, plus 3 bad rows) and the sample demand model."""
    folder = tmp_path_factory.mktemp("cluster_target")
    write_sample("bundle_sales", folder / "sales", rows=UNITS * DAYS, units=UNITS, seed=5)
    save_sample_model(folder / "sales", folder / "model")  # trained before the bad rows exist
    add_bad_rows(folder / "sales")
    return folder


def source_rows(workdir: Path) -> int:
    """Rows in the source, bad rows included, counted with pandas."""
    return len(pd.read_parquet(workdir / "sales"))


def spark_submit(workdir: Path, target: str, job: str, name: str, *extra: str) -> subprocess.CompletedProcess:
    """Run ``./spark-submit.sh <target> conf/jobs/<job>.yaml`` writing to ``workdir/name``.

    The run summary goes to ``workdir/name.json``; the process's stdout and stderr (under
    spark-submit the driver's stderr is merged into stdout) are returned.
    """
    env = {**os.environ, "BATCH_SCORE_PYTHON": sys.executable}
    return subprocess.run(
        [str(ROOT / "spark-submit.sh"), target, str(ROOT / f"conf/jobs/{job}.yaml"),
         "--run-date", RUN_DATE, "--summary-json", str(workdir / f"{name}.json"),
         "--set", f"source.path={workdir / 'sales'}", "--set", "source.filter=null", *NO_REPORT,
         "--set", f"output.path={workdir / name}", *extra],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=600,
    )


def succeeded(workdir: Path, name: str, result: subprocess.CompletedProcess) -> dict:
    """The summary of a run that must have exited 0, with its output as ``_output``."""
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"run {name} failed:\n{output[-4000:]}"
    return {**json.loads((workdir / f"{name}.json").read_text()), "_output": output}


def submit(workdir: Path, target: str, job: str, name: str, *extra: str) -> dict:
    """:func:`spark_submit` that must succeed; returns the run summary (see :func:`succeeded`)."""
    return succeeded(workdir, name, spark_submit(workdir, target, job, name, *extra))


def read(spark, path: Path):
    """The Delta table at ``path`` without the columns that differ between runs."""
    return spark.read.format("delta").load(str(path)).drop(*VOLATILE)


def wait_for_new_app(cluster, known: set[str], timeout_s: float = 60.0) -> dict:
    """The one application the master lists as completed that is not in ``known``.

    The driver unregisters when it stops, just before its process ends; the master records
    it a moment later, so this waits (up to ``timeout_s``) for it to show.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        new = [app for app in cluster.completed_apps() if app["id"] not in known]
        if new or time.monotonic() > deadline:
            assert len(new) == 1, f"expected one new completed application, got {new}"
            return new[0]
        time.sleep(0.5)


def assert_ran_on_cluster(cluster, known_apps: set[str], job: str) -> None:
    """The master lists ``job`` as a finished application whose executors ran on the workers."""
    app = wait_for_new_app(cluster, known_apps)
    assert (app["name"], app["state"]) == (job, "FINISHED")
    # Each worker launched its executor for this app in SPARK_WORKER_DIR/<app-id>/<executor-id>.
    executors = sorted((cluster.worker_dir / app["id"]).glob("*/stderr"))
    assert len(executors) == 2, f"executor logs of {app['id']}: {executors}"


def assert_same_counts(cluster_run: dict, local_run: dict, expected: dict) -> None:
    """Both summaries hold the ``expected`` counts (rows_in, rows_rejected, units, rows_out)."""
    for run in (cluster_run, local_run):
        assert {key: run[key] for key in expected} == expected


def test_data_pricing_on_the_cluster_equals_local(spark, spark_cluster, workdir):
    known = {app["id"] for app in spark_cluster.completed_apps()}
    on_cluster = submit(workdir, "cluster", "data_pricing", "pricing_cluster",
                        "--master", spark_cluster.master_url)
    assert_ran_on_cluster(spark_cluster, known, "data_pricing")
    local = submit(workdir, "local", "data_pricing", "pricing_local")

    assert f"cluster run of {ROOT / 'conf/jobs/data_pricing.yaml'}" in on_cluster["_output"]
    assert_same_counts(on_cluster, local, {
        "rows_in": source_rows(workdir), "rows_rejected": BAD_ROWS, "units": UNITS, "rows_out": UNITS,
    })
    priced = read(spark, workdir / "pricing_cluster")
    assert priced.where("price > 0 and rule is not null").count() == UNITS
    assertDataFrameEqual(priced, read(spark, workdir / "pricing_local"))
    rejects = read(spark, workdir / "pricing_cluster_rejects")
    assert sorted(r.reject_column for r in rejects.select("reject_column").collect()) == [
        "price", "segment", "unit_cost",
    ]
    assertDataFrameEqual(rejects, read(spark, workdir / "pricing_local_rejects"))


def test_model_scoring_on_the_cluster_equals_local(spark, spark_cluster, workdir):
    model = ["--set", f"model.uri={workdir / 'model'}", "--set", f"model.allowed_uris=[{workdir}/]"]
    known = {app["id"] for app in spark_cluster.completed_apps()}
    result = spark_submit(workdir, "cluster", "model_scoring", "scoring_cluster", *model,
                          "--master", spark_cluster.master_url)
    on_cluster = succeeded(workdir, "scoring_cluster", result)
    assert_ran_on_cluster(spark_cluster, known, "model_scoring")
    local = submit(workdir, "local", "model_scoring", "scoring_local", *model)

    rows_in = source_rows(workdir)
    assert_same_counts(on_cluster, local, {
        "rows_in": rows_in, "rows_rejected": 2, "rows_out": rows_in - 2,
    })
    scored = read(spark, workdir / "scoring_cluster")
    assert scored.where("expected_volume > 0").count() == rows_in - 2
    assert {r.model_uri for r in scored.select("model_uri").distinct().collect()} == {str(workdir / "model")}
    assertDataFrameEqual(scored, read(spark, workdir / "scoring_local"))
    assertDataFrameEqual(read(spark, workdir / "scoring_cluster_rejects"),
                         read(spark, workdir / "scoring_local_rejects"))
