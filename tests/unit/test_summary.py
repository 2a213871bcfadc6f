"""The printed summary says what happened (issue 18, finding 6): units priced and failed,
rejects per reason, rows per second; model jobs show rows scored, not units or buckets."""

from __future__ import annotations

from pathlib import Path

from batch_scoring.jobs.commit import RunSummary
from batch_scoring.jobs.config import load_job
from batch_scoring.jobs.run_job import print_summary, summary_rows

ROOT = Path(__file__).resolve().parents[2]


def summary(**model) -> RunSummary:
    return RunSummary(job="j", run_date="2026-11-22", run_id="r", rows_in=13_168, rows_rejected=2_031,
                      units=460, rows_out=460, buckets=8, output_path="out", rejects_path="out_rejects",
                      seconds=20.0, **model)


def test_a_partial_function_run_shows_failed_units_and_rejects_per_reason(capsys):
    job = load_job(ROOT / "conf/jobs/data_pricing.yaml")
    details = {"rejected_by_reason": {"function_raised": 2_028, "out_of_range": 3}, "units_failed": 84}

    rows = summary_rows(summary(), job, details)

    assert [(name, value) for name, value, _ in rows][:9] == [
        ("rows in", "13,168"), ("rows out", "460"), ("rows rejected", "2,031"),
        ("  rejected function_raised", "2,028"), ("  rejected out_of_range", "3"),
        ("units priced", "460"), ("units failed", "84"), ("buckets", "8"), ("seconds", "20.0"),
    ]
    assert ("rows per second", "658", False) in rows
    assert {name for name, _, failure in rows if failure} == {
        "rows rejected", "  rejected function_raised", "  rejected out_of_range", "units failed"}
    print_summary(summary(), job, details)
    assert "units failed" in capsys.readouterr().out


def test_a_model_job_shows_rows_scored_and_no_units_or_buckets():
    job = load_job(ROOT / "conf/jobs/model_scoring.yaml")

    rows = summary_rows(summary(model_uri="models:/m/1", model_version="1", arrow_batches=12), job,
                        {"rejected_by_reason": {}})

    names = [name for name, _, _ in rows]
    assert "rows scored" in names and "model uri" in names
    assert ("Arrow batches", "12", False) in rows
    assert not {"units priced", "units failed", "buckets", "rows out"} & set(names)
