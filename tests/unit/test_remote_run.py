"""The pure parts of recording an EMR Serverless run: the lines, the manifest's ``remote``
field, the report's "Remote run" section and ``batch-score report``'s text, from values made
by hand (no AWS, no Spark). The end to end path against moto:
tests/integration/test_deploy_emr_serverless.py."""

from __future__ import annotations

import datetime as dt

import pytest

from batch_scoring.jobs.config import PricesConfig
from batch_scoring.jobs.cost import billed_cost
from batch_scoring.jobs.deploy.emr_serverless import JobRunFacts
from batch_scoring.jobs.deploy.polling import RunOutcome
from batch_scoring.jobs.deploy.remote_run import RemoteRun, remote_field, remote_lines
from batch_scoring.jobs.report_cli import remote_lines as report_remote_lines
from batch_scoring.jobs.report_data import RunReport
from batch_scoring.jobs.report_html import REMOTE_MARKER, insert_remote_section, render_report

BILLED = {"vCPUHour": 2.5, "memoryGBHour": 10.0, "storageGBHour": 50.0}
# 2.5 * 0.052624 + 10 * 0.005786 + 50 * 0.000111, the default prices
AMOUNT = 0.13156 + 0.05786 + 0.00555
RUN = RemoteRun(application_id="00fapp", job_run_id="00frun", region="eu-west-1", run_id="20261122-020000-0a1b2c3d",
                run_date=dt.date(2026, 11, 22), output_path="s3a://data-bucket/prices/")
OUTCOME = RunOutcome(state="SUCCESS", succeeded=True, detail="",
                     log_uri="s3://logs-bucket/serverless/applications/00fapp/jobs/00frun/")
FACTS = JobRunFacts(billed=BILLED, execution_seconds=1_234, spark_ui_url="https://ui.example.invalid/?token=secret",
                    spark_ui_requested_at="2026-11-22T03:00:00+00:00")
COMMAND = "aws emr-serverless get-dashboard-for-job-run --application-id 00fapp --job-run-id 00frun"
MANIFEST = {
    "job": "pricing", "run_date": "2026-11-22", "run_id": RUN.run_id, "status": "succeeded", "seconds": 12.5,
    "started_at": "2026-11-22T02:00:00+00:00", "finished_at": "2026-11-22T02:00:12+00:00",
    "spark": {"version": "4.1.1", "master": "yarn", "application_id": "00frun"},
    "code": {"package_version": "0.1.0"}, "model": None,
    "rows": {"in": 250_000, "out": 250_000, "rejected": 0, "units": 90, "rejected_by_reason": {}},
    "phases": {"read": 1.0},
}


def remote(**changes):
    cost = billed_cost(BILLED, PricesConfig(), 250_000)
    return {**remote_field(RUN, OUTCOME, FACTS, cost), **changes}


def page() -> str:
    return render_report(RunReport(manifest=MANIFEST, previous=None, reject_examples={}, unit_sizes=None,
                                   numeric=[], text=[], spreads=[]))


def test_paths_are_s3_uris_beside_each_other_whatever_the_scheme_written():
    folder = "s3://data-bucket/prices/_manifests/run_date=2026-11-22"
    assert RUN.manifest_uri == f"{folder}/20261122-020000-0a1b2c3d.json"
    assert RUN.report_uri == f"{folder}/20261122-020000-0a1b2c3d.html"


def test_the_cost_line_prices_the_billed_resources_per_run_and_per_million_rows():
    cost = billed_cost(BILLED, PricesConfig(), 250_000)

    lines = remote_lines(RUN, FACTS, cost)

    assert cost.amount == pytest.approx(AMOUNT) and cost.per_million_rows == pytest.approx(AMOUNT * 4)
    assert lines == [
        f"Spark UI: https://ui.example.invalid/?token=secret (valid for about an hour; again with: {COMMAND})",
        "cost: USD 0.1950, USD 0.7799 per million rows; 2.5 vCPU-hours, 10 memory GB-hours, 50 storage GB-hours "
        "at prices of 2026-12",
    ]


def test_without_facts_the_lines_say_how_to_get_them():
    assert remote_lines(RUN, None, None) == [f"Spark UI: no link now; make one with: {COMMAND}",
                                             "cost: unknown (GetJobRun did not answer)"]


def test_the_remote_field_stores_how_to_open_the_spark_ui_never_the_link():
    field = remote()

    assert "secret" not in str(field)
    assert field == {
        "service": "emr-serverless", "region": "eu-west-1", "application_id": "00fapp", "job_run_id": "00frun",
        "state": "SUCCESS", "log_uri": OUTCOME.log_uri, "spark_ui_command": COMMAND,
        "spark_ui_requested_at": "2026-11-22T03:00:00+00:00", "execution_seconds": 1_234, "billed": BILLED,
        "cost": {"basis": "EMR Serverless billed resources",
                 "resources": {"vcpu_hours": 2.5, "memory_gb_hours": 10.0, "storage_gb_hours": 50.0},
                 "amount": pytest.approx(AMOUNT), "currency": "USD", "prices_as_of": "2026-12",
                 "per_million_rows": pytest.approx(AMOUNT * 4)},
    }


def test_the_section_goes_where_the_template_leaves_its_marker():
    before = page()
    assert before.count(REMOTE_MARKER) == 1

    after = insert_remote_section(before, remote())

    head, _, tail = after.partition(REMOTE_MARKER)
    assert head == before.partition(REMOTE_MARKER)[0]
    section = tail[:tail.index("</section>")]
    assert "<h2>Remote run</h2>" in section
    assert "job run <code>00frun</code>:\n<b>SUCCESS</b> · 1,234 s of execution" in section
    assert f"logs: <code>{OUTCOME.log_uri}</code>" in section
    console = ("https://s3.console.aws.amazon.com/s3/buckets/logs-bucket?region=eu-west-1&amp;"
               "prefix=serverless/applications/00fapp/jobs/00frun/")
    assert f'S3 console: <a href="{console}">{console}</a>' in section
    assert f"Spark UI: <code>{COMMAND}</code> prints a link to it" in section
    assert "cost: USD 0.1950, USD 0.7799 per million rows;" in section
    assert tail.index("<h2>Counts</h2>") > tail.index("</section>")


def test_inserting_again_replaces_the_section():
    once = insert_remote_section(page(), remote(state="RUNNING"))

    twice = insert_remote_section(once, remote())

    assert twice.count('<section id="batch-scoring-remote">') == 1
    assert insert_remote_section(twice, remote()) == twice
    assert "<b>SUCCESS</b>" in twice and "<b>RUNNING</b>" not in twice


def test_values_in_the_section_are_escaped():
    html = insert_remote_section(page(), remote(job_run_id="<script>x</script>", log_uri=None, cost=None))

    assert "<script>x</script>" not in html and "&lt;script&gt;x&lt;/script&gt;" in html
    assert "logs:" not in html and "cost: unknown (GetJobRun did not answer)" in html


def test_a_page_without_the_marker_gets_the_section_before_its_end():
    html = insert_remote_section("<html><body><h1>old report</h1></body></html>", remote())

    assert html.startswith("<html><body><h1>old report</h1>\n<section id=\"batch-scoring-remote\">")
    assert html.endswith("</section></body></html>")


def test_batch_score_report_prints_the_remote_facts():
    assert report_remote_lines(remote()) == [
        "remote: emr-serverless application 00fapp, job run 00frun: SUCCESS",
        f"logs: {OUTCOME.log_uri}",
        f"Spark UI: a link valid for about an hour from: {COMMAND}",
        "cost: USD 0.1950, USD 0.7799 per million rows; 2.5 vCPU-hours, 10 memory GB-hours, 50 storage GB-hours "
        "at prices of 2026-12",
    ]
    assert report_remote_lines(None) == []
