"""``batch-score run --dry-run``: the plan printed, the source checked, nothing written."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from batch_scoring.jobs import run_job
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
