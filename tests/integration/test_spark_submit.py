"""The job as users start it: ./spark-submit.sh local, in its own process, with exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from batch_scoring.jobs.sample_data import write_sample
from job_inputs import run_spark_submit

pytestmark = pytest.mark.spark  # jobs in child processes

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("submit")
    write_sample("bundle_sales", folder / "sales", rows=30 * 20, units=30, seed=2)
    return folder


def job_args(workdir: Path, *extra: str) -> list[str]:
    return [
        "local", str(ROOT / "conf/jobs/data_pricing.yaml"), "--run-date", "2026-11-22",
        "--set", f"source.path={workdir / 'sales'}", "--set", f"output.path={workdir / 'out'}",
        "--set", "output.format=parquet", "--set", "source.filter=null", *extra,
    ]


@pytest.fixture(scope="module")
def priced(workdir):
    """The job run once through spark-submit (run id ``kept``, summary ``workdir/summary.json``,
    output ``workdir/out``): the subject of the first test, the earlier output of the next."""
    return run_spark_submit(
        *job_args(workdir, "--run-id", "kept", "--summary-json", str(workdir / "summary.json")), cwd=workdir
    )


def test_local_submit_prices_every_unit_and_writes_a_summary(workdir, priced):
    result = priced
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((workdir / "summary.json").read_text())
    assert (summary["units"], summary["rows_out"], summary["rows_rejected"]) == (30, 30, 0)
    assert "rows in" in result.stdout and "units" in result.stdout
    out = pd.read_parquet(workdir / "out" / "run_date=2026-11-22")
    assert len(out) == 30 and out["price"].gt(0).all()
    # the driver's executor core-seconds, from its own Spark UI's REST API
    manifest = workdir / "out" / "_manifests" / "run_date=2026-11-22" / f"{summary['run_id']}.json"
    cost = json.loads(manifest.read_text())["cost"]
    allocated, busy = cost["resources"]["allocated_core_seconds"], cost["resources"]["busy_core_seconds"]
    assert 0 < busy <= allocated and cost["basis"] == "executor core-seconds"
    assert cost["amount"] is None  # conf/local.yaml sets no prices.core_hour
    assert f"cost: {allocated:,.4g} executor core-seconds allocated, {busy:,.4g} busy" in result.stdout


def test_unknown_config_field_exits_2_before_spark_starts(workdir):
    result = run_spark_submit(*job_args(workdir, "--set", "output.formatt=delta"), cwd=workdir)
    assert result.returncode == 2
    assert ("output.formatt (from --set output.formatt=delta): unknown field (did you mean "
            "'format'?)") in result.stderr
    assert "SparkContext" not in result.stderr


def test_missing_source_exits_3_and_leaves_earlier_output_alone(workdir, priced):
    before = priced
    assert before.returncode == 0, before.stderr[-3000:]
    files = sorted(p.name for p in (workdir / "out").rglob("*.parquet"))
    result = run_spark_submit(*job_args(workdir, "--set", f"source.path={workdir / 'missing'}"), cwd=workdir)
    assert result.returncode == 3
    # spark-submit merges the Python driver's stderr into its stdout
    assert f"source.path {workdir / 'missing'} does not exist" in result.stdout + result.stderr
    assert sorted(p.name for p in (workdir / "out").rglob("*.parquet")) == files


def test_a_user_function_from_the_working_folder_runs_on_executors(workdir):
    (workdir / "my_pricing.py").write_text(
        "import pandas as pd\n\n"
        "def markup(key, pdf, factor=1.0):\n"
        "    return pd.DataFrame({'price': [round(pdf['price'].iloc[-1] * factor, 4)],\n"
        "                         'days': [len(pdf)]})\n"
    )
    result = run_spark_submit(
        *job_args(workdir, "--set", "function.name=my_pricing:markup",
                  "--set", "function.allowed_modules=[my_pricing]", "--set", "function.params={factor: 2.0}",
                  "--set", "function.shape=unit", "--set", "function.output_schema=price double, days bigint",
                  "--set", f"output.path={workdir / 'custom'}", "--set", "output.partition_by=[]"),
        cwd=workdir,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = pd.read_parquet(workdir / "custom").sort_values(["segment", "location", "product"])
    source = pd.read_parquet(workdir / "sales").sort_values("sale_date")
    last = source.groupby(["segment", "location", "product"])["price"].last().reset_index()
    merged = out.merge(last, on=["segment", "location", "product"], suffixes=("", "_last"))
    assert len(merged) == 30
    assert (merged["price"] - 2 * merged["price_last"]).abs().max() < 1e-3


@pytest.mark.skipif(shutil.which("java") is None, reason="needs java to test its absence")
def test_missing_java_is_reported_clearly(workdir, tmp_path):
    env = {**os.environ, "PATH": "/usr/bin/nonexistent", "BATCH_SCORE_PYTHON": sys.executable}
    result = subprocess.run(["/bin/bash", str(ROOT / "spark-submit.sh"), *job_args(workdir)],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "Java 17 is required" in result.stderr
