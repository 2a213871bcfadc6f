"""SIGTERM and SIGINT sent to a running job's process group (its JVM included) are answered:
exit 143 / 130, a manifest with status failed, the signal and the phase (read from the job's
own phase lines, so the signal lands in the phase named), the previous run intact, a rerun
converging."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from batch_scoring.jobs.sample_data import write_sample
from job_inputs import NO_REPORT

ROOT = Path(__file__).resolve().parents[2]
DAY = "2026-11-22"


def start(source: Path, output: Path, run_id: str) -> subprocess.Popen:
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    return subprocess.Popen(
        [sys.executable, "-m", "batch_scoring.jobs.run_job", "--job", "conf/jobs/data_pricing.yaml",
         "--profile", "conf/local.yaml", "--run-date", DAY, "--run-id", run_id,
         "--set", f"source.path={source}", "--set", "source.filter=null", *NO_REPORT,
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


def phases_started(lines: str) -> list[str]:
    """The phases the job logged as started, in order."""
    return re.findall(r"phase (\w+): started", lines)


ONE_LINE = pytest.mark.one_line  # the signal handling is Python's; the write phase runs on both lines


@pytest.mark.parametrize("sent, code, phase", [
    pytest.param(signal.SIGINT, 130, "price", marks=ONE_LINE),  # the one pass: unit summaries, priors, prices
    pytest.param(signal.SIGTERM, 143, "price", marks=ONE_LINE),  # the function over every unit
    (signal.SIGTERM, 143, "write"),  # the output and the rejects committed in turn
])
def test_a_signal_to_the_process_group_is_answered_with_a_manifest_naming_the_phase(
    spark, priced, sent, code, phase,
):
    source, output = priced
    run_id = f"stopped-{sent.name}-{phase}"
    process = start(source, output, run_id)
    before = "".join(wait_for(process, f"phase {phase}: started"))
    started = time.monotonic()
    os.killpg(process.pid, sent)
    rest = process.communicate(timeout=120)[0]
    assert process.returncode == code, rest[-3000:]
    assert time.monotonic() - started < 30
    assert f"error: the run was stopped by {sent.name}" in rest
    assert phases_started(before + rest)[-1] == phase

    record = json.loads((output / "_manifests" / f"run_date={DAY}" / f"{run_id}.json").read_text())
    assert record["status"] == "failed"
    assert {k: record["error"][k] for k in ("type", "signal", "phase", "exit_code")} == \
        {"type": "RunStopped", "signal": sent.name, "phase": phase, "exit_code": code}
    committed = (record["commit"] or {}).get("committed", [])
    assert phase == "write" or record["commit"] is None
    table = spark.read.format("delta").load(str(output))
    holder = run_id if "output" in committed else "before"
    assert {r["run_id"] for r in table.select("run_id").distinct().collect()} == {holder}
    assert table.count() == 400


@pytest.mark.one_line  # a rerun's commit runs on both lines in test_fault_injection's killed-rerun tests
def test_a_rerun_after_a_stop_in_the_write_phase_converges(spark, priced):
    source, output = priced
    stopped = start(source, output, "stopped-in-write")
    wait_for(stopped, "phase write: started")
    os.killpg(stopped.pid, signal.SIGTERM)
    assert stopped.wait(120) == 143

    rerun = start(source, output, "after-the-stop")
    assert rerun.wait(600) == 0, rerun.stdout.read()[-3000:]
    table = spark.read.format("delta").load(str(output))
    assert {r["run_id"] for r in table.select("run_id").distinct().collect()} == {"after-the-stop"}
    assert table.count() == 400
    rejects = spark.read.format("delta").load(str(output) + "_rejects")
    assert set(r["run_id"] for r in rejects.select("run_id").distinct().collect()) <= {"after-the-stop"}
