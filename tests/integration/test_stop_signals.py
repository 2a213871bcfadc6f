"""SIGTERM and SIGINT sent to a running job's process group (its JVM included) are answered:
exit 143 / 130, a manifest with status failed, the signal and the phase, the previous run intact."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from batch_scoring.jobs.sample_data import write_sample

ROOT = Path(__file__).resolve().parents[2]
DAY = "2026-11-22"


def start(source: Path, output: Path, run_id: str) -> subprocess.Popen:
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    return subprocess.Popen(
        [sys.executable, "-m", "batch_scoring.jobs.run_job", "--job", "conf/jobs/data_pricing.yaml",
         "--profile", "conf/local.yaml", "--run-date", DAY, "--run-id", run_id,
         "--set", f"source.path={source}", "--set", "source.filter=null",
         "--set", f"output.path={output}", "--set", "unit_of_work.buckets=4"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )


def wait_for(process: subprocess.Popen, words: str) -> list[str]:
    """Lines the process printed up to the first one holding ``words``."""
    lines = []
    for line in process.stdout:
        lines.append(line)
        if words in line:
            return lines
    raise AssertionError(f"the job ended before printing {words!r}:\n{''.join(lines)[-3000:]}")


@pytest.fixture(scope="module")
def priced(tmp_path_factory):
    """A source and an output that already holds a finished run ``before`` of the date."""
    folder = tmp_path_factory.mktemp("signals")
    source, output = folder / "sales", folder / "prices"
    write_sample("bundle_sales", source, rows=200_000, units=400, seed=9)
    first = start(source, output, "before")
    assert first.wait(600) == 0, first.stdout.read()[-3000:]
    return source, output


@pytest.mark.parametrize("sent, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_to_the_process_group_is_answered_with_a_manifest(spark, priced, sent, code):
    source, output = priced
    run_id = f"stopped-{sent.name}"
    process = start(source, output, run_id)
    wait_for(process, "Spark settings")
    time.sleep(3)  # reading and pricing: the run has not reached its commit
    started = time.monotonic()
    os.killpg(process.pid, sent)
    rest = process.communicate(timeout=120)[0]
    assert process.returncode == code, rest[-3000:]
    assert time.monotonic() - started < 30
    assert f"error: the run was stopped by {sent.name}" in rest

    record = json.loads((output / "_manifests" / f"run_date={DAY}" / f"{run_id}.json").read_text())
    assert record["status"] == "failed" and record["commit"] is None
    assert {k: record["error"][k] for k in ("type", "signal", "phase", "exit_code")} == \
        {"type": "RunStopped", "signal": sent.name, "phase": "run", "exit_code": code}
    table = spark.read.format("delta").load(str(output))
    assert {r["run_id"] for r in table.select("run_id").distinct().collect()} == {"before"}
    assert table.count() == 400
