"""The reject budget and reconciliation as users meet them: exit code 4, nothing committed."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from batch_scoring.jobs import pipeline
from batch_scoring.jobs.config import load_job
from batch_scoring.jobs.errors import ReconciliationError
from batch_scoring.jobs.sample_data import make_bundle_sales
from job_inputs import NO_REPORT, run_spark_submit

pytestmark = pytest.mark.one_line  # exit 4 and nothing committed: the same on both Spark lines (the budget itself runs there in tests/spark/test_pipeline.py)

ROOT = Path(__file__).resolve().parents[2]
RUN_DATE = "2026-11-22"


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """``clean.parquet`` (600 rows of sales) and ``bad.parquet``: the same rows, every 5th
    with price -1 (out_of_range: 120 of 600 rows)."""
    folder = tmp_path_factory.mktemp("budget")
    sales = make_bundle_sales(units=25, days=30, seed=9).head(600)
    sales = sales.assign(sale_date=sales["sale_date"].dt.date)
    sales.to_parquet(folder / "clean.parquet")
    bad = sales.copy()
    bad.loc[bad.index % 5 == 0, "price"] = -1.0
    bad.to_parquet(folder / "bad.parquet")
    return folder


def job_args(folder: Path, source: str, *extra: str) -> list[str]:
    return [
        "local", str(ROOT / "conf/jobs/data_pricing.yaml"), "--run-date", RUN_DATE,
        "--set", f"source.path={folder / source}", "--set", f"output.path={folder / 'out'}",
        "--set", "output.format=parquet", "--set", "source.filter=null", *NO_REPORT,
        "--set", "output.max_reject_fraction=0.1", *extra,
    ]


def files_with_hashes(folder: Path) -> dict[str, str]:
    """Every data file below ``folder`` with its SHA-256 (run manifests, which record failed
    runs too and which readers skip, left out)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.relative_to(folder).parts[0] != "_manifests"
    }


def test_a_run_over_its_reject_budget_exits_4_and_leaves_the_previous_run_as_it_was(sources):
    kept = run_spark_submit(*job_args(sources, "clean.parquet", "--run-id", "kept"), cwd=sources)
    assert kept.returncode == 0, kept.stdout[-3000:] + kept.stderr[-3000:]
    (sources / "out_rejects").mkdir(exist_ok=True)  # the clean run had no rejects folder to keep
    before = {name: files_with_hashes(sources / name) for name in ("out", "out_rejects")}
    assert any(name.endswith(".parquet") for name in before["out"])

    result = run_spark_submit(*job_args(sources, "bad.parquet", "--run-id", "over"), cwd=sources)

    assert result.returncode == 4, result.stdout[-3000:] + result.stderr[-3000:]
    assert ("error: 120 of 600 rows read were rejected (20.00%), more than "
            "output.max_reject_fraction 0.1 allows (out_of_range 120); nothing was committed"
            in result.stdout + result.stderr)
    after = {name: files_with_hashes(sources / name) for name in ("out", "out_rejects")}
    assert after == before
    record = json.loads((sources / "out" / "_manifests" / f"run_date={RUN_DATE}" / "over.json").read_text())
    assert (record["status"], record["error"]["exit_code"], record["error"]["phase"]) == ("failed", 4, "reconcile")
    assert record["rows"] == {"in": 600, "priced_or_scored": 480, "rejected": 120,
                              "rejected_by_reason": {"out_of_range": 120}}
    out = pd.read_parquet(sources / "out")
    units = pd.read_parquet(sources / "clean.parquet").groupby(["segment", "location", "product"]).ngroups
    assert set(out["run_id"]) == {"kept"} and len(out) == units


PER_BUCKET = (
    "2 of 2 buckets do not reconcile (bucket 0: read 369 != priced 295 + rejected 0; "
    "bucket 1: read 231 != priced 185 + rejected 0): rows were lost or duplicated; "
    "nothing was committed"
)
PER_RUN = (
    "rows read 600 != rows priced or scored 480 + rows rejected 0 (difference +120): rows "
    "were lost or duplicated; nothing was committed"
)


@pytest.mark.parametrize("engine, message", [("packed", PER_BUCKET), ("reference", PER_RUN)])
def test_counts_that_do_not_add_up_fail_the_run_before_anything_is_written(
    spark, sources, tmp_path, monkeypatch, engine, message
):
    job = load_job(ROOT / "conf/jobs/data_pricing.yaml", [
        f"source.path={sources / 'bad.parquet'}", "source.filter=null", "unit_of_work.buckets=2",
        f"output.path={tmp_path / 'out'}", f"unit_of_work.engine={engine}",
    ])
    real_split = pipeline.split_rejects

    def losing_split(*args):  # a bug that loses the rejected rows
        valid, rejects = real_split(*args)
        return valid, rejects.where("price > 0")

    monkeypatch.setattr(pipeline, "split_rejects", losing_split)
    with pytest.raises(ReconciliationError) as error:
        pipeline.run(spark, job, dt.date(2026, 11, 22), "lossy")
    # packed: the per-bucket check names each bucket that lost its rejected rows
    assert str(error.value) == message
    assert not (tmp_path / "out").exists() and not (tmp_path / "out_rejects").exists()
