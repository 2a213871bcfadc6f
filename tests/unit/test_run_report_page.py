"""The report page and the ``batch-score report`` text, from numbers made by hand (no Spark)."""

from __future__ import annotations

import base64
import io
import re

from PIL import Image

from batch_scoring.jobs.report_cli import describe
from batch_scoring.jobs.report_data import NumericColumn, RunReport, TextColumn, UnitSizes
from batch_scoring.jobs.report_html import render_report

MANIFEST = {
    "job": "pricing", "run_date": "2026-11-22", "run_id": "r2", "status": "succeeded", "seconds": 12.5,
    "started_at": "2026-11-22T02:00:00+00:00", "finished_at": "2026-11-22T02:00:12+00:00",
    "spark": {"version": "4.1.1", "master": "local[2]", "application_id": "local-1"},
    "code": {"package_version": "0.1.0"}, "model": None,
    "rows": {"in": 1_000, "out": 90, "rejected": 10, "units": 90, "rejected_by_reason": {"null_key": 10}},
    "phases": {"read": 1.0, "price": 4.0, "write": 2.0},
}
PREVIOUS = {**MANIFEST, "run_date": "2026-11-21", "run_id": "r1",
            "rows": {"in": 800, "out": 80, "rejected": 0, "units": 80}}


def report(**changes) -> RunReport:
    price = NumericColumn(name="price", rows=90, nulls=0, mean=5.0, minimum=1.0, maximum=9.0,
                          quantiles={0.01: 1.0, 0.5: 5.0, 0.99: 9.0}, edges=[0.0, 5.0, 10.0],
                          counts=[30, 60], previous_counts=[60, 30], previous_mean=4.0, psi=0.462)
    tier = TextColumn(name="tier", rows=90, nulls=0, top=[("gold", 60), ("(other values)", 30)],
                      previous_top=[("gold", 50), ("(other values)", 30)], psi=0.01)
    values = dict(manifest=MANIFEST, previous=PREVIOUS,
                  reject_examples={"null_key": [{"segment": "<script>alert(1)</script>", "reject_reason": "null_key"}]},
                  unit_sizes=UnitSizes(units=90, size_counts={8: 50, 16: 40}, largest=[({"segment": "a"}, 31)],
                                       bucket_rows={0: 500, 1: 490}),
                  numeric=[price], text=[tier], spreads=[])
    return RunReport(**{**values, **changes})


def images(page: str) -> dict[str, Image.Image]:
    found = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([^"]+)">', page)
    return {alt: Image.open(io.BytesIO(base64.b64decode(data))) for alt, data in found}


def test_values_from_the_data_are_escaped_never_markup():
    page = render_report(report())
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_the_page_compares_counts_and_draws_each_chart_800_px_wide():
    page = render_report(report(), links={"Spark UI": "https://example.invalid/ui"})
    assert re.search(r"<td>read</td><td>1,000</td>\s*<td>800</td>\s*<td>\+200 \(\+25\.0%\)</td>", page)
    assert '<tr class="major"><td>price</td>' in page
    assert 'Spark UI: <a href="https://example.invalid/ui">' in page
    charts = images(page)
    assert list(charts) == ["seconds per phase", "units per size", "rows per bucket", "price distribution",
                            "tier values", "drift per column"]
    assert {image.size[0] for image in charts.values()} == {800}
    assert all(len(image.convert("RGB").getcolors(maxcolors=1 << 20)) > 10 for image in charts.values())  # drawn, not blank


def test_without_a_previous_run_there_is_no_drift_section():
    first = report(previous=None)
    first.numeric[0].psi = first.numeric[0].previous_counts = first.text[0].psi = first.text[0].previous_top = None
    page = render_report(first)
    assert "No earlier run date of this job has a succeeded manifest" in page
    assert "Drift against" not in page and "drift per column" not in page and "<th>PSI</th>" not in page
    assert list(images(page))[-2:] == ["price distribution", "tier values"]


def test_batch_score_report_text_lists_rejects_phases_and_drift():
    manifest = {**MANIFEST, "report": {"path": "x.html", "previous_run": {"run_date": "2026-11-21", "run_id": "r1"},
                                       "drift": {"price": {"psi": 0.462, "band": "major"}}, "notes": ["n1"]}}
    assert describe(manifest, "out/_manifests/run_date=2026-11-22/r2.html").splitlines() == [
        "pricing run_date=2026-11-22 run_id=r2: succeeded in 12.5 s",
        "rows: 1,000 in, 90 out, 10 rejected, 90 units",
        "  rejected null_key: 10",
        "phases: read 1.0 s, price 4.0 s, write 2.0 s",
        "drift against run_date=2026-11-21 (PSI; 0.1 moderate, 0.25 major):",
        "  price: 0.462 major",
        "note: n1",
        "report: out/_manifests/run_date=2026-11-22/r2.html",
    ]


def test_a_failed_run_shows_its_error_and_no_report():
    manifest = {**MANIFEST, "status": "failed", "rows": None, "phases": {"read": 1.0},
                "error": {"exit_code": 3, "phase": "read", "message": "source x does not exist"}}
    assert describe(manifest, None).splitlines() == [
        "pricing run_date=2026-11-22 run_id=r2: failed in 12.5 s",
        "error (exit 3, phase read): source x does not exist",
        "phases: read 1.0 s",
        "report: none (the run failed, or report.enabled is false)",
    ]


def test_the_run_cost_is_shown_beside_the_phases_and_by_batch_score_report():
    cost = {"basis": "executor core-seconds", "resources": {"allocated_core_seconds": 7200.0, "busy_core_seconds": 3600.0},
            "amount": 0.5, "currency": "USD", "prices_as_of": "2026-12", "per_million_rows": 500.0}
    page = render_report(report(manifest={**MANIFEST, "cost": cost}))
    assert ("cost (the run up to its commit): USD 0.5000, USD 500.0000 per million rows; 7,200 executor "
            "core-seconds allocated, 3,600 busy at prices of 2026-12") in page
    assert "cost (the run" not in render_report(report())
    assert "cost: USD 0.5000, USD 500.0000 per million rows;" in describe({**MANIFEST, "cost": cost}, None)
