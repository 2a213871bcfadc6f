"""Scheduler run ids end to end: stored verbatim, the manifest stays in ``_manifests/``, and a
manifest that could not be written stops the run before it commits (issue 15, 4 and 5)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from batch_scoring.jobs import run_job
from batch_scoring.jobs.run_ids import manifest_file_name
from batch_scoring.jobs.sample_data import write_sample
from job_inputs import NO_REPORT

pytestmark = pytest.mark.one_line  # run ids and manifest names: same on both Spark lines

ROOT = Path(__file__).resolve().parents[2]
DAY = "2026-11-22"


@pytest.fixture(scope="module")
def sales(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run_ids") / "sales"
    write_sample("bundle_sales", folder, rows=10 * 20, units=10, seed=7)
    return folder


def run(sales: Path, out: Path, run_id: str) -> int:
    return run_job.main([
        "--job", str(ROOT / "conf/jobs/data_pricing.yaml"), "--run-date", DAY, "--run-id", run_id,
        "--set", f"source.path={sales}", "--set", f"output.path={out}", "--set", "output.format=parquet",
        "--set", "source.filter=null", *NO_REPORT,
    ])


def manifests(out: Path) -> list[Path]:
    return sorted(p for p in (out / "_manifests").rglob("*.json"))


@pytest.mark.parametrize("run_id", [
    "scheduled__2026-11-22T02:00:00+00:00",
    "arn:aws:states:eu-west-1:123456789012:execution:pricing:0f3c2b1a-7e6d-4c5b-9a8f-1e2d3c4b5a69",
    "Nachtlauf Zürich / 22.11. " + "ü" * 274,  # 300 characters, unicode, spaces, a slash
], ids=["airflow", "step-functions", "300-characters"])
def test_a_scheduler_id_is_stored_verbatim_and_the_run_exits_0(spark, sales, tmp_path, run_id):
    out = tmp_path / "prices"
    assert run(sales, out, run_id) == 0
    [path] = manifests(out)
    assert path == out / "_manifests" / f"run_date={DAY}" / manifest_file_name(run_id)
    document = json.loads(path.read_text())
    assert (document["run_id"], document["status"]) == (run_id, "succeeded")
    rows = spark.read.parquet(str(out)).select("run_id").distinct().collect()
    assert [r["run_id"] for r in rows] == [run_id]


def test_a_dot_dot_id_cannot_write_outside_the_manifest_folder(spark, sales, tmp_path):
    out = tmp_path / "a" / "b" / "prices"
    victim = out.parent / "victim.json"  # where _manifests/run_date=.../../../../victim.json led
    victim.parent.mkdir(parents=True)
    victim.write_text("precious")
    assert run(sales, out, "../../../victim") == 0
    assert victim.read_text() == "precious"
    [path] = manifests(out)
    assert path.parent == out / "_manifests" / f"run_date={DAY}"
    assert json.loads(path.read_text())["run_id"] == "../../../victim"
    assert sorted(p.name for p in out.parent.iterdir()) == ["prices", "prices_rejects", "victim.json"]


def test_an_unwritable_manifest_folder_stops_the_run_before_it_commits(spark, sales, tmp_path, capsys):
    out = tmp_path / "prices"
    assert run(sales, out, "first") == 0
    shutil.rmtree(out / "_manifests")
    (out / "_manifests").write_text("a file where the manifest folder should be")
    before = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    assert run(sales, out, "blocked") == 2
    assert "the run manifest cannot be written" in capsys.readouterr().err
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == before, "nothing committed"
    rows = spark.read.parquet(str(out)).select("run_id").distinct().collect()
    assert [r["run_id"] for r in rows] == ["first"]
