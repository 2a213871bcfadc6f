"""``batch-score run --dry-run``: the plan printed, the source checked, nothing written."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from batch_scoring.jobs import run_job
from batch_scoring.jobs.config import PricesConfig
from batch_scoring.jobs.cost import core_seconds_cost
from batch_scoring.jobs.filesystem import write_text
from batch_scoring.jobs.sample_data import write_sample

ROOT = Path(__file__).resolve().parents[2]


def dry_run(source: Path, out: Path, *extra: str) -> list[str]:
    return ["--job", str(ROOT / "conf/jobs/data_pricing.yaml"), "--run-date", "2026-11-22", "--dry-run",
            "--set", f"source.path={source}", "--set", f"output.path={out}", *extra]


def every_file(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.rglob("*"))


def test_the_plan_lists_the_pruned_files_and_estimates_units_writing_nothing(spark, tmp_path, capsys):
    source, out = tmp_path / "sales", tmp_path / "prices"
    write_sample("bundle_sales", source, rows=40 * 200, units=40, seed=3)
    kept = sorted(p for p in source.rglob("*.parquet") if p.parent.name.split("=")[1] >= "2026-09")
    assert 0 < len(kept) < len(list(source.rglob("*.parquet")))  # the job's filter prunes months
    before = every_file(tmp_path)

    assert run_job.main(dry_run(source, out, "--set", "source.filter=sale_month >= '2026-09'")) == 0

    printed = capsys.readouterr().out
    assert every_file(tmp_path) == before  # no output, rejects, manifest or claim
    assert f"input    {len(kept)} file(s), {sum(p.stat().st_size for p in kept):,} bytes after pruning" in printed
    listed = re.findall(r"^\s+file:(\S+) \(([\d,]+) bytes\)$", printed, re.M)
    assert sorted(Path(path) for path, _ in listed) == kept
    rows = pd.read_parquet(source)
    units = rows[rows["sale_month"].astype(str) >= "2026-09"][["segment", "location", "product"]]
    estimate = int(re.search(r"units    about ([\d,]+)", printed).group(1).replace(",", ""))
    assert abs(estimate - len(units.drop_duplicates())) <= 0.05 * len(units.drop_duplicates())
    assert re.search(r"buckets  \d+", printed)


def test_a_source_breaking_the_contract_is_refused_as_a_run_would_be(spark, tmp_path, capsys):
    source, out = tmp_path / "sales", tmp_path / "prices"
    write_sample("bundle_sales", source, rows=400, units=10, seed=3)
    rows = pd.read_parquet(source)
    rows.astype({"price": str}).to_parquet(tmp_path / "strings.parquet")
    status = run_job.main(dry_run(tmp_path / "strings.parquet", out, "--set", "source.filter=null"))
    assert status == 3
    assert "breaks the function's input contract: column 'price' is string, expected numeric" in \
        capsys.readouterr().err
    assert not out.exists()


def priced_run(spark, source: Path, out: Path, core_seconds: float, core_hour: float) -> dict:
    """A committed run of ``source`` into ``out`` whose manifest holds a priced ``cost``.

    The test session runs without the Spark UI, so the run records no core-seconds itself
    (tests/integration/test_spark_submit.py checks the measured ones); its ``cost`` is set here
    as the driver writes it, for ``core_seconds`` at ``core_hour`` USD.
    """
    assert run_job.main(["--job", str(ROOT / "conf/jobs/data_pricing.yaml"), "--run-date", "2026-11-21",
                         "--run-id", "priced", "--set", f"source.path={source}", "--set", f"output.path={out}",
                         "--set", "source.filter=null", "--set", "report.enabled=false"]) == 0
    path = out / "_manifests" / "run_date=2026-11-21" / "priced.json"
    manifest = json.loads(path.read_text())
    manifest["cost"] = core_seconds_cost(core_seconds, core_seconds, PricesConfig(core_hour=core_hour),
                                         manifest["rows"]["in"]).as_dict()
    write_text(spark, str(path), json.dumps(manifest))  # through Hadoop: its checksum file follows
    return manifest


def test_the_plan_estimates_the_cost_from_the_last_priced_run_and_max_cost_refuses_above_it(
        spark, tmp_path, capsys):
    source, out = tmp_path / "sales", tmp_path / "prices"
    write_sample("bundle_sales", source, rows=20 * 50, units=20, seed=4)
    earlier = priced_run(spark, source, out, core_seconds=7200.0, core_hour=0.5)  # USD 1.00
    rows_in = earlier["rows"]["in"]
    months = pd.read_parquet(source)["sale_month"].astype(str)
    cut = sorted(months.unique())[months.nunique() // 2]
    planned = int((months >= cut).sum())
    assert 0 < planned < rows_in
    expected = planned / rows_in  # USD 1.00 for rows_in rows
    capsys.readouterr()
    recent = ("--set", f"source.filter=sale_month >= '{cut}'")

    assert run_job.main(dry_run(source, out, *recent)) == 0
    printed = capsys.readouterr().out
    assert f"rows     {planned:,} read" in printed
    assert f"cost     about USD {expected:,.4f} ({planned:,} rows at USD {1e6 / rows_in:,.4f} per million " \
           f"rows, the executor core-seconds of run priced of 2026-11-21)" in printed

    below = dry_run(source, out, *recent, "--set", f"output.max_cost={expected / 2}")
    assert run_job.main(below) == 4
    assert f"above output.max_cost USD {expected / 2:,.4f}" in capsys.readouterr().err
    above = dry_run(source, out, *recent, "--set", f"output.max_cost={expected * 2}")
    assert run_job.main(above) == 0


def test_without_a_priced_run_there_is_no_estimate_and_max_cost_refuses_nothing(spark, tmp_path, capsys):
    source, out = tmp_path / "sales", tmp_path / "prices"
    write_sample("bundle_sales", source, rows=200, units=5, seed=4)
    assert run_job.main(dry_run(source, out, "--set", "source.filter=null", "--set", "output.max_cost=0.01")) == 0
    assert "cost     no estimate: no earlier run of this output recorded a cost" in capsys.readouterr().out
