"""The run report (issue 12): written beside the manifest after the commit, with counts, example
rejects, unit sizes, distributions, and drift against the previous run date."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from batch_scoring.jobs import report_cli
from batch_scoring.jobs.config import load_job
from batch_scoring.jobs.manifest import ManifestRecorder
from batch_scoring.jobs.pipeline import run
from batch_scoring.jobs.report_data import collect_report
from batch_scoring.jobs.run_report import write_run_report
from batch_scoring.jobs.sample_data import write_sample
from batch_scoring.jobs.sinks import open_targets

ROOT = Path(__file__).resolve().parents[2]
UNITS = 40
DAY1, DAY2, DAY3 = dt.date(2026, 11, 1), dt.date(2026, 11, 2), dt.date(2026, 11, 3)


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """The same sales twice, each with one row of a negative unit cost (a reject): as
    generated, and with every price and unit cost doubled."""
    root = tmp_path_factory.mktemp("report_sources")
    write_sample("bundle_sales", root / "sales", rows=UNITS * 30, units=UNITS, seed=5)
    sales = pd.read_parquet(root / "sales")
    sales.loc[sales.index[0], "unit_cost"] = -1.0
    sales["sale_month"] = sales["sale_month"].astype(str)
    sales.to_parquet(root / "sales_bad", partition_cols=["sale_month"], index=False)
    doubled = sales.assign(price=sales["price"] * 2, unit_cost=sales["unit_cost"] * 2)
    doubled.to_parquet(root / "doubled", partition_cols=["sale_month"], index=False)
    return root / "sales_bad", root / "doubled", len(sales)


def pricing_job(out: Path, source: Path, *overrides: str):
    return load_job(ROOT / "conf/jobs/data_pricing.yaml",
                    [f"source.path={source}", f"output.path={out}", "unit_of_work.buckets=3",
                     "source.filter=null", *overrides])


def run_with_report(spark, job, day: dt.date, run_id: str):
    recorder = ManifestRecorder(spark, job, day, run_id)
    summary = run(spark, job, day, run_id, journal=recorder)
    recorder.succeeded(summary)
    return write_run_report(spark, job, summary, recorder), recorder


def manifest_of(recorder) -> dict:
    return json.loads(Path(recorder.path).read_text())


@pytest.fixture(scope="module")
def history(spark, tmp_path_factory, sources):
    """One output, three run dates: DAY1 ``first``, then DAY3 ``doubled`` (prices doubled),
    then DAY2 ``same`` (a backfill on DAY1's data): their report paths and manifests."""
    bad, doubled, _ = sources
    out = tmp_path_factory.mktemp("report_history") / "out"
    runs = {}
    for day, run_id, source in ((DAY1, "first", bad), (DAY3, "doubled", doubled), (DAY2, "same", bad)):
        job = pricing_job(out, source)
        path, recorder = run_with_report(spark, job, day, run_id)
        runs[run_id] = (path, manifest_of(recorder), job)
    return out, runs


def test_the_first_run_writes_a_report_beside_its_manifest(history, sources):
    _, _, rows = sources
    out, runs = history
    path, manifest, _ = runs["first"]

    assert path == str(out / "_manifests/run_date=2026-11-01/first.html") and Path(path).is_file()
    assert manifest["status"] == "succeeded"
    assert manifest["report"] == {"path": path, "previous_run": None, "drift": {}, "notes": []}
    assert "report" in manifest["phases"] and manifest["rows"]["buckets"] == 3
    page = Path(path).read_text()
    assert "<h1>data_pricing: run 2026-11-01</h1>" in page
    assert re.search(r"out_of_range: 1 rows</h3>\s*<table><tr><th>", page)
    assert "<td class=\"text\">-1.0</td>" in page  # the rejected row's unit cost, as an example
    assert "No earlier run date of this job" in page
    charts = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,', page)
    assert charts[:3] == ["seconds per phase", "units per size", "rows per bucket"]
    assert {"price distribution", "price_change distribution", "elasticity distribution",
            "rule values", "price per group"} <= set(charts)
    assert rows > UNITS  # more rows than units: the unit sizes are rows per unit


def test_unit_sizes_count_every_unit_and_every_row_read(spark, history, sources):
    _, _, rows = sources
    out, runs = history
    _, manifest, job = runs["first"]

    report = collect_report(spark, job, manifest, open_targets(spark, job.output))
    sizes = report.unit_sizes
    assert sizes.units == UNITS == sum(sizes.size_counts.values())
    assert sum(sizes.bucket_rows.values()) == rows and set(sizes.bucket_rows) <= {0, 1, 2}
    largest_rows = [r for _, r in sizes.largest]
    assert largest_rows == sorted(largest_rows, reverse=True) and set(sizes.largest[0][0]) == {
        "segment", "location", "product"}
    price = next(c for c in report.numeric if c.name == "price")
    assert (price.rows, price.nulls, sum(price.counts)) == (UNITS, 0, UNITS)


def test_doubled_prices_show_major_drift_and_the_same_data_none(history):
    _, runs = history
    moved = runs["doubled"][1]["report"]
    assert moved["previous_run"] == {"run_date": "2026-11-01", "run_id": "first"}
    assert moved["drift"]["current_price"]["band"] == "major"
    assert moved["drift"]["elasticity"]["band"] == "stable"  # doubling every price keeps elasticities
    page = Path(moved["path"]).read_text()
    assert "Drift against run 2026-11-01 (first)" in page and '<img alt="drift per column"' in page

    same = runs["same"][1]["report"]
    assert same["drift"]["price"] == {"psi": 0.0, "band": "stable"} and same["drift"]["rule"]["band"] == "stable"


def test_a_backfill_is_compared_with_the_run_date_before_it(history):
    _, runs = history
    assert runs["same"][1]["report"]["previous_run"] == {"run_date": "2026-11-01", "run_id": "first"}


def test_report_settings_switch_it_off_and_name_a_missing_column(spark, tmp_path, sources):
    bad, _, _ = sources
    path, recorder = run_with_report(spark, pricing_job(tmp_path / "a", bad, "report.enabled=false"), DAY1, "r")
    assert path is None and "report" not in manifest_of(recorder)
    assert not list((tmp_path / "a").rglob("*.html"))

    job = pricing_job(tmp_path / "b", bad, "report.columns=[price, prise]", "report.unit_sizes=false")
    path, recorder = run_with_report(spark, job, DAY1, "r")
    notes = manifest_of(recorder)["report"]["notes"]
    assert notes == ["report.columns names 'prise', which the output lacks (did you mean 'price'?)",
                     "unit sizes are off (report.unit_sizes: false)"]
    assert re.findall(r'<img alt="([^"]+) distribution"', Path(path).read_text()) == ["price"]


def test_batch_score_report_prints_the_run_and_its_drift(history, sources, tmp_path, capsys):
    _, _, rows = sources
    out, runs = history

    assert report_cli.main([str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"data_pricing run_date=2026-11-03 run_id=doubled: succeeded in [\d.,]+ s", lines[0])
    assert lines[1] == f"rows: {rows:,} in, {UNITS} out, 1 rejected, {UNITS} units"
    assert lines[2] == "  rejected out_of_range: 1"
    assert "drift against run_date=2026-11-01 (PSI; 0.1 moderate, 0.25 major):" in lines
    assert any(re.fullmatch(r"  current_price: \d+\.\d{3} major", line) for line in lines)
    assert lines[-1] == f"report: {runs['doubled'][0]}"

    assert report_cli.main([str(out), "--run-date", "2026-11-01", "--run-id", "first"]) == 0
    assert "drift: no earlier run date to compare with" in capsys.readouterr().out
    assert report_cli.main([str(out), "--run-date", "2026-10-01"]) == 3
    assert "has no run of run_date 2026-10-01; it has 2026-11-03, 2026-11-02, 2026-11-01" in capsys.readouterr().err
    assert report_cli.main([str(out), "--run-id", "first"]) == 2
    assert "--run-id needs --run-date" in capsys.readouterr().err
    assert report_cli.main([str(tmp_path / "nowhere")]) == 3
    assert "holds no run manifests" in capsys.readouterr().err


CHROMIUM = shutil.which("chromium")
CHART_BLUE = (31, 119, 180)  # report_charts.CURRENT, the bars of this run


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium); .ci/run installs it")
def test_the_report_renders_its_charts_in_headless_chromium(history, tmp_path):
    _, runs = history
    page, screenshot = Path(runs["doubled"][0]), tmp_path / "report.png"
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars", "--window-size=1000,2400",
         f"--screenshot={screenshot}", page.as_uri()],
        check=True, capture_output=True, timeout=120,
    )
    image = Image.open(screenshot).convert("RGB")
    assert image.size == (1000, 2400)
    colours = dict((colour, count) for count, colour in image.getcolors(maxcolors=1 << 24))
    assert colours.get(CHART_BLUE, 0) > 20_000  # the phase, unit-size and bucket bars, drawn
    assert len(colours) > 200  # text, axes and bars: not a blank or broken-image page
