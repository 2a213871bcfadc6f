"""A job as an EMR Serverless job run, against a real moto server.

moto's runs are SUCCESS as soon as they start, so failure and timeout tests set the run's
state in moto's backend (the server runs in this process). moto refuses the release label
``emr-spark-8.0.0`` (its check wants ``emr-<digit>.<n>.0``), so applications are created as
emr-7.12.0 and relabelled in the backend where the label matters.

What a run cost and its Spark UI (the last tests): moto 5.2.5's job runs do carry
``billedResourceUtilization`` and ``totalExecutionDurationSeconds`` in ``GetJobRun``, but never
anything but zeros, and moto does not implement ``GetDashboardForJobRun`` at all (no route: HTTP
404). So these tests start a moto server of their own on 127.0.0.1 (a free port) whose EMR
Serverless also routes ``GET /applications/{id}/jobruns/{id}/dashboard`` to a handler the test
adds to moto's ``EMRServerlessResponse`` (answering ``{"url": ...}``), and the test itself sets,
on moto's ``JobRun`` object, ``billed_resource_utilization`` (vCPU, memory and storage hours)
and ``total_execution_duration_seconds``. No driver runs on moto either: a thread of the test
plays the driver, reading the ``--run-id`` the submitter passed from the job run's arguments,
writing a real manifest and a real rendered report to the attempt's S3 keys, then ending the
run (job runs start RUNNING here: moto's ``JOB_STATUS`` is patched for these tests).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import shlex
import threading
import time
from pathlib import Path

import botocore.session
import pytest
import yaml

from batch_scoring.jobs.config import PollConfig, load_job, load_profile
from batch_scoring.jobs.deploy import emr_serverless
from batch_scoring.jobs.deploy.submit import submit_main
from batch_scoring.jobs.manifest import manifest_path
from batch_scoring.jobs.report_data import RunReport
from batch_scoring.jobs.report_html import render_report
from batch_scoring.jobs.run_report import report_path
from batch_scoring.jobs.deploy.staging import StagedRun
from batch_scoring.jobs.errors import DeployError
from env_archives import venv_archive

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = "s3://artifacts-bucket/batch-scoring/artifacts"
ROLE = "arn:aws:iam::123456789012:role/batch-scoring-job"
STAGED = StagedRun(
    entry_point=f"{ARTIFACTS}/entry/run_job-0123456789ab.py",
    archive=f"{ARTIFACTS}/environments/batch-scoring-env-py3.11-abcdef012345.tar.gz",
    wheel=f"{ARTIFACTS}/wheels/batch_scoring-0.1.0-py3-none-any-fedcba987654.whl",
    job_config=f"{ARTIFACTS}/jobs/data_pricing/data_pricing-111111111111.yaml",
    profile=f"{ARTIFACTS}/profiles/emr-serverless-222222222222.yaml",
    python_version="3.11",
)
FAST = PollConfig(interval_seconds=0.05, max_interval_seconds=0.1, timeout_minutes=0.05)
SUBMIT_PARAMETERS = (
    f"--conf spark.archives={ARTIFACTS}/environments/batch-scoring-env-py3.11-abcdef012345.tar.gz#environment"
    " --conf spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON=./environment/bin/python"
    " --conf spark.emr-serverless.driverEnv.PYSPARK_PYTHON=./environment/bin/python"
    " --conf spark.executorEnv.PYSPARK_PYTHON=./environment/bin/python"
    " --conf spark.jars=/usr/share/aws/delta/lib/delta-spark.jar,/usr/share/aws/delta/lib/delta-storage.jar"
    " --conf spark.sql.ansi.enabled=true"
    " --conf spark.sql.legacy.timeParserPolicy=CORRECTED"
    " --conf spark.sql.session.timeZone=UTC"
    " --conf spark.sql.execution.arrow.pyspark.enabled=true"
    " --conf spark.sql.execution.arrow.maxRecordsPerBatch=10000"
    " --conf spark.sql.adaptive.enabled=true"
    " --conf spark.python.worker.reuse=true"
    " --conf spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension"
    " --conf spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog"
)
START_JOB_RUN = botocore.session.get_session().get_service_model("emr-serverless").operation_model("StartJobRun")


def serverless_profile(monkeypatch, application_id: str):
    monkeypatch.setenv("EMR_SERVERLESS_APP_ID", application_id)
    monkeypatch.setenv("EMR_SERVERLESS_ROLE_ARN", ROLE)
    monkeypatch.setenv("BATCH_SCORE_BUCKET", "artifacts-bucket")
    return load_profile(ROOT / "conf/emr-serverless.yaml")


def pricing_job(*overrides: str):
    return load_job(ROOT / "conf/jobs/data_pricing.yaml", [
        "source.path=s3://data-bucket/bundle_sales", "output.path=s3://data-bucket/data_pricing",
        *overrides,
    ])


def moto_application(application_id: str):
    from moto.backends import get_backend

    return get_backend("emr-serverless")["123456789012"]["eu-west-1"].applications[application_id]


def moto_job_run(application_id: str, job_run_id: str):
    from moto.backends import get_backend

    backend = get_backend("emr-serverless")["123456789012"]["eu-west-1"]
    return backend.get_job_run(application_id, job_run_id)


@pytest.fixture
def application(aws, monkeypatch):
    """A started Spark application, the emr-serverless profile pointing at it, and a client."""
    client = aws.client("emr-serverless")
    app_id = client.create_application(name="batch-scoring", releaseLabel="emr-7.12.0", type="SPARK")["applicationId"]
    return app_id, serverless_profile(monkeypatch, app_id), client


def start(application, run_date="2026-11-22", **options) -> str:
    _, profile, client = application
    request = emr_serverless.job_run_request(profile, pricing_job(), STAGED, run_date, **options)
    return emr_serverless.start_job_run(client, request)


def test_job_run_as_the_server_recorded_it(application):
    app_id, _, client = application

    run_id = start(application, extra_args=["--set", "unit_of_work.buckets=8"])

    run = client.get_job_run(applicationId=app_id, jobRunId=run_id)["jobRun"]
    assert run["name"] == "data_pricing-2026-11-22"
    assert run["executionRole"] == ROLE
    assert run["jobDriver"] == {"sparkSubmit": {
        "entryPoint": f"{ARTIFACTS}/entry/run_job-0123456789ab.py",
        "entryPointArguments": [
            "--job", f"{ARTIFACTS}/jobs/data_pricing/data_pricing-111111111111.yaml",
            "--profile", f"{ARTIFACTS}/profiles/emr-serverless-222222222222.yaml",
            "--run-date", "2026-11-22", "--set", "unit_of_work.buckets=8",
        ],
        "sparkSubmitParameters": SUBMIT_PARAMETERS,
    }}
    assert run["configurationOverrides"] == {
        "monitoringConfiguration": {
            "s3MonitoringConfiguration": {"logUri": "s3://artifacts-bucket/batch-scoring/logs"}
        }
    }
    assert run["executionTimeoutMinutes"] == 240
    assert run["tags"] == {"job": "data_pricing", "run_date": "2026-11-22"}
    assert moto_job_run(app_id, run_id).client_token == "data_pricing-2026-11-22-1"


def test_values_with_spaces_are_quoted_and_split_back_whole(application):
    _, profile, _ = application
    job = pricing_job("spark_conf.spark.driver.extraJavaOptions=-Dlog4j.level=WARN -Duser.timezone=UTC")

    parameters = emr_serverless.spark_submit_parameters(profile, job, STAGED)

    assert " --conf 'spark.driver.extraJavaOptions=-Dlog4j.level=WARN -Duser.timezone=UTC' " in parameters
    words = shlex.split(parameters)
    assert words[::2] == ["--conf"] * 15
    assert words[1::2][12] == "spark.driver.extraJavaOptions=-Dlog4j.level=WARN -Duser.timezone=UTC"
    assert words[1].endswith(".tar.gz#environment")


def test_client_token_is_deterministic_per_job_date_and_attempt():
    assert emr_serverless.client_token("data_pricing", "2026-11-22") == "data_pricing-2026-11-22-1"
    assert emr_serverless.client_token("data_pricing", "2026-11-22", attempt=2) == "data_pricing-2026-11-22-2"
    assert emr_serverless.client_token("voice_pricing", "2026-11-22") == "voice_pricing-2026-11-22-1"


def test_long_job_names_give_valid_distinct_tokens():
    pattern = START_JOB_RUN.input_shape.members["clientToken"].metadata["pattern"]
    one = emr_serverless.client_token("a" * 70 + "_one", "2026-11-22")
    two = emr_serverless.client_token("a" * 70 + "_two", "2026-11-22")

    assert one != two
    assert one == emr_serverless.client_token("a" * 70 + "_one", "2026-11-22")
    for token in (one, two):
        assert len(token) == 64 and re.fullmatch(pattern, token)


def test_scheduled_token_is_valid_once_scheduler_fills_it_in():
    pattern = START_JOB_RUN.input_shape.members["clientToken"].metadata["pattern"]

    token = emr_serverless.client_token("data_pricing", "<aws.scheduler.scheduled-time>")

    assert token == "data_pricing-<aws.scheduler.execution-id>"
    filled = token.replace("<aws.scheduler.execution-id>", "d32c5kddcf5bb8c3")
    assert re.fullmatch(pattern, filled) and len(filled) <= 64
    # A token that held the scheduled time could never be valid: its value has ':' in it.
    assert not re.fullmatch(pattern, "data_pricing-2026-11-22T02:00:00Z")


def test_successful_run(application):
    app_id, profile, client = application
    run_id = start(application)
    out = io.StringIO()

    outcome = emr_serverless.wait_for_job_run(client, app_id, run_id, FAST, profile.emr_serverless.log_uri, out=out)

    assert (outcome.state, outcome.succeeded) == ("SUCCESS", True)
    assert outcome.log_uri == f"s3://artifacts-bucket/batch-scoring/logs/applications/{app_id}/jobs/{run_id}/"
    assert f"EMR Serverless job run {run_id} on application {app_id}: SUCCESS" in out.getvalue()


@pytest.mark.parametrize("state", ["FAILED", "CANCELLED"])
def test_failed_run_reports_state_details_and_log_folder(application, state):
    app_id, profile, client = application
    run_id = start(application)
    run = moto_job_run(app_id, run_id)
    run.state = state
    run.state_details = "Job failed, please check complete logs in configured logging destination."

    outcome = emr_serverless.wait_for_job_run(
        client, app_id, run_id, FAST, "s3://logs-bucket/serverless/", out=io.StringIO()
    )

    assert (outcome.state, outcome.succeeded) == (state, False)
    assert outcome.detail == "Job failed, please check complete logs in configured logging destination."
    assert outcome.log_uri == f"s3://logs-bucket/serverless/applications/{app_id}/jobs/{run_id}/"


def test_run_still_going_at_the_timeout_is_a_deploy_error(application):
    app_id, profile, client = application
    run_id = start(application)
    moto_job_run(app_id, run_id).state = "RUNNING"
    poll = PollConfig(interval_seconds=0.05, max_interval_seconds=0.1, timeout_minutes=0.01)
    started = time.monotonic()

    with pytest.raises(DeployError) as raised:
        emr_serverless.wait_for_job_run(client, app_id, run_id, poll, profile.emr_serverless.log_uri, out=io.StringIO())

    assert 0.6 <= time.monotonic() - started < 10
    message = str(raised.value)
    assert f"EMR Serverless job run {run_id} on application {app_id}" in message
    assert "last state was RUNNING" in message and "may still be going" in message
    assert f"aws emr-serverless get-job-run --application-id {app_id} --job-run-id {run_id}" in message


def test_check_application_returns_the_release_label(application):
    app_id, profile, client = application
    moto_application(app_id).release_label = "emr-spark-8.0.0"

    assert emr_serverless.check_application(client, profile) == "emr-spark-8.0.0"


def test_stopped_application_with_auto_start_is_accepted(application):
    app_id, profile, client = application
    client.stop_application(applicationId=app_id)

    assert emr_serverless.check_application(client, profile) == "emr-7.12.0"


def test_stopped_application_without_auto_start_is_refused(application):
    app_id, profile, client = application
    client.stop_application(applicationId=app_id)
    client.update_application(applicationId=app_id, autoStartConfiguration={"enabled": False})

    with pytest.raises(DeployError, match=f"STOPPED and auto-start is off.*start-application --application-id {app_id}"):
        emr_serverless.check_application(client, profile)


def test_terminated_application_is_refused(application):
    app_id, profile, client = application
    client.stop_application(applicationId=app_id)
    client.delete_application(applicationId=app_id)

    with pytest.raises(DeployError, match=rf"application {app_id} \(emr_serverless.application_id\) is TERMINATED"):
        emr_serverless.check_application(client, profile)


def test_hive_application_is_refused(aws, monkeypatch):
    client = aws.client("emr-serverless")
    app_id = client.create_application(name="hive", releaseLabel="emr-7.12.0", type="HIVE")["applicationId"]
    profile = serverless_profile(monkeypatch, app_id)

    with pytest.raises(DeployError, match="is a Hive application; the job needs a Spark one"):
        emr_serverless.check_application(client, profile)


def test_missing_application_is_a_deploy_error_naming_it(aws, monkeypatch):
    profile = serverless_profile(monkeypatch, "00fnosuchapp0000")

    with pytest.raises(DeployError, match=r"application 00fnosuchapp0000 \(emr_serverless.application_id\).*ResourceNotFound"):
        emr_serverless.check_application(aws.client("emr-serverless"), profile)


def test_unreachable_endpoint_fails_fast(aws, monkeypatch):
    import socket

    from batch_scoring.jobs.deploy import aws as deploy_aws

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed_port}")
    profile = serverless_profile(monkeypatch, "00fanyapp0000000")
    client = deploy_aws.client("emr-serverless", profile.aws)
    started = time.monotonic()

    with pytest.raises(DeployError, match="cannot reach the AWS endpoint for EMR Serverless application 00fanyapp0000000"):
        emr_serverless.check_application(client, profile)
    assert time.monotonic() - started < 20


def test_submitted_run_id_is_read_back_from_the_job_run(application):
    app_id, _, client = application

    run_id = start(application, extra_args=["--run-id", "scheduled__2026-11-22T02:00:00+00:00"])

    assert emr_serverless.submitted_run_id(client, app_id, run_id) == "scheduled__2026-11-22T02:00:00+00:00"
    assert emr_serverless.submitted_run_id(client, app_id, start(application)) is None


def test_moto_bills_nothing_and_has_no_dashboard_which_is_a_warning_not_an_error(application):
    """What moto 5.2.5 leaves out (the tests below fill it in): if this fails, moto caught up."""
    app_id, _, client = application
    run_id = start(application)

    facts = emr_serverless.job_run_facts(client, app_id, run_id)

    assert facts.billed == {"vCPUHour": 0.0, "memoryGBHour": 0.0, "storageGBHour": 0.0}
    assert facts.execution_seconds == 0
    assert (facts.spark_ui_url, facts.spark_ui_requested_at) == (None, None)
    assert f"the Spark UI of job run {run_id} (GetDashboardForJobRun): AWS answered 404" in facts.spark_ui_error


# --- what a run cost, its logs and its Spark UI: moto fills in neither (see the module docstring)
BILLED = {"vCPUHour": 3.25, "memoryGBHour": 14.5, "storageGBHour": 72.0}
EXECUTION_SECONDS = 2_745
ROWS_IN = 1_250_000
DASHBOARD = "https://{app}.dashboard.emr-serverless.eu-west-1.amazonaws.com/?authToken=FAKE-TOKEN-{run}"
DATA = "s3://data-bucket/data_pricing"


def moto_dashboard(self):
    """``GetDashboardForJobRun`` for moto's EMR Serverless (moto has none): a URL naming the run."""
    from moto.core.responses import ActionResult

    application_id, job_run_id = self._get_param("applicationId"), self._get_param("jobRunId")
    self.emrserverless_backend.get_job_run(application_id, job_run_id)  # ResourceNotFound as AWS
    return ActionResult({"url": DASHBOARD.format(app=application_id, run=job_run_id)})


@pytest.fixture
def billing_aws(monkeypatch):
    """A moto server of its own on 127.0.0.1 that also answers ``GetDashboardForJobRun``, with
    job runs that start RUNNING; this process's boto3 pointed at it."""
    import moto_server as moto
    from moto.emrserverless import models, responses, urls

    dashboard = "{0}/applications/(?P<applicationId>[^/]+)/jobruns/(?P<jobRunId>[^/]+)/dashboard$"
    monkeypatch.setitem(urls.url_paths, dashboard, responses.EMRServerlessResponse.dispatch)
    monkeypatch.setattr(responses.EMRServerlessResponse, "get_dashboard_for_job_run", moto_dashboard, raising=False)
    monkeypatch.setattr(models, "JOB_STATUS", "RUNNING")
    server, endpoint = moto.start()  # after the patches: its routes are read when first used
    try:
        moto.reset(endpoint)
        for key, value in endpoint.environment.items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        yield endpoint
    finally:
        server.stop()


@pytest.fixture
def billed_submission(billing_aws, monkeypatch, tmp_path):
    """Buckets, an application on EMR 8's label, a fast profile, and the submit arguments."""
    s3 = billing_aws.client("s3")
    for bucket in ("artifacts-bucket", "data-bucket"):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": billing_aws.region})
    client = billing_aws.client("emr-serverless")
    app_id = client.create_application(name="scoring", releaseLabel="emr-7.12.0", type="SPARK")["applicationId"]
    moto_application(app_id).release_label = "emr-spark-8.0.0"
    serverless_profile(monkeypatch, app_id)
    data = yaml.safe_load((ROOT / "conf/emr-serverless.yaml").read_text())
    data["aws"]["poll"] = {"interval_seconds": 0.05, "max_interval_seconds": 0.2, "timeout_minutes": 0.5}
    profile = tmp_path / "emr-serverless.yaml"
    profile.write_text(yaml.safe_dump(data))
    argv = ["--job", str(ROOT / "conf/jobs/data_pricing.yaml"), "--profile", str(profile), "--run-date", "2026-11-22",
            "--archive", str(venv_archive(tmp_path / "env.tar.gz", "3.11")), "--out", str(tmp_path / "dist"),
            "--set", "source.path=s3://data-bucket/bundle_sales", "--set", f"output.path={DATA}"]
    return app_id, argv, s3


def driver_manifest(run_id: str) -> dict:
    """A succeeded manifest, shaped as the driver writes it."""
    return {
        "job": "data_pricing", "run_date": "2026-11-22", "run_id": run_id, "status": "succeeded", "seconds": 2_702.4,
        "started_at": "2026-11-22T02:00:31+00:00", "finished_at": "2026-11-22T02:45:33+00:00",
        "spark": {"version": "4.0.2", "master": "yarn", "application_id": "spark-application-1"},
        "code": {"package_version": "0.1.0"}, "model": None,
        "rows": {"in": ROWS_IN, "out": 1_249_000, "rejected": 1_000, "units": 5_000, "buckets": 16,
                 "rejected_by_reason": {"null_key": 1_000}},
        "phases": {"read": 40.2, "price": 2_100.0, "write": 500.1},
    }


def play_driver(s3, stop: threading.Event, *, write: bool, state: str) -> None:
    """What the driver and EMR Serverless would do: write the attempt's manifest and report
    (when ``write``) under the run id the submitter passed, bill the run, end it in ``state``."""
    from moto.backends import get_backend

    backend = get_backend("emr-serverless")["123456789012"]["eu-west-1"]
    while not stop.is_set():
        runs = [run for runs in backend.job_runs.values() for run in runs]
        if runs:
            break
        time.sleep(0.02)
    else:
        return
    run = runs[0]
    arguments = run.job_driver["sparkSubmit"]["entryPointArguments"]
    run_id = arguments[arguments.index("--run-id") + 1]
    if write:
        manifest = driver_manifest(run_id)
        key = manifest_path(DATA, dt.date(2026, 11, 22), run_id).removeprefix("s3://data-bucket/")
        s3.put_object(Bucket="data-bucket", Key=key, Body=json.dumps(manifest, indent=2).encode())
        page = render_report(RunReport(manifest=manifest, previous=None, reject_examples={}, unit_sizes=None,
                                       numeric=[], text=[], spreads=[]))
        s3.put_object(Bucket="data-bucket", Key=report_path(key), Body=page.encode())
    run.billed_resource_utilization = dict(BILLED)
    run.total_execution_duration_seconds = EXECUTION_SECONDS
    run.state = state


def submit_with_driver(billed_submission, capsys, *, write: bool, state: str):
    app_id, argv, s3 = billed_submission
    stop = threading.Event()
    driver = threading.Thread(target=play_driver, args=(s3, stop), kwargs={"write": write, "state": state},
                              daemon=True)
    driver.start()
    try:
        status = submit_main(argv)
    finally:
        stop.set()
        driver.join()
    out, err = capsys.readouterr()
    return status, out, err


def read_json(s3, uri: str) -> dict:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def test_an_ended_run_shows_and_records_its_cost_logs_and_spark_ui(billed_submission, capsys):
    app_id, _, s3 = billed_submission

    status, out, err = submit_with_driver(billed_submission, capsys, write=True, state="SUCCESS")

    assert status == 0, err[-3000:]
    started = re.search(r"started job run (\w+) on EMR Serverless application \w+ "
                        r"\(data_pricing-2026-11-22, run id data_pricing-2026-11-22-1\)", out)
    assert started, out
    job_run_id, run_id = started.group(1), "data_pricing-2026-11-22-1"  # the client token
    command = f"aws emr-serverless get-dashboard-for-job-run --application-id {app_id} --job-run-id {job_run_id}"
    url = DASHBOARD.format(app=app_id, run=job_run_id)
    assert f"Spark UI: {url} (valid for about an hour; again with: {command})" in out
    amount = 3.25 * 0.052624 + 14.5 * 0.005786 + 72.0 * 0.000111
    per_million = amount / ROWS_IN * 1_000_000
    assert f"cost: USD {amount:,.4f}, USD {per_million:,.4f} per million rows; 3.25 vCPU-hours" in out
    log_uri = f"s3://artifacts-bucket/batch-scoring/logs/applications/{app_id}/jobs/{job_run_id}/"
    assert f"the run ended SUCCESS; logs: {log_uri}" in out

    manifest_uri = manifest_path(DATA, dt.date(2026, 11, 22), run_id)
    manifest = read_json(s3, manifest_uri)
    assert f"manifest: {manifest_uri} (with the remote facts)" in out
    assert {k: v for k, v in manifest.items() if k != "remote"} == driver_manifest(run_id)
    remote = manifest["remote"]
    requested = dt.datetime.fromisoformat(remote.pop("spark_ui_requested_at"))
    assert abs(dt.datetime.now(dt.timezone.utc) - requested) < dt.timedelta(minutes=5)
    cost = remote.pop("cost")
    assert remote == {
        "service": "emr-serverless", "region": "eu-west-1", "application_id": app_id, "job_run_id": job_run_id,
        "state": "SUCCESS", "log_uri": log_uri, "spark_ui_command": command,
        "execution_seconds": EXECUTION_SECONDS, "billed": BILLED,
    }
    assert cost["amount"] == pytest.approx(amount, abs=1e-6)
    assert cost["per_million_rows"] == pytest.approx(per_million, abs=1e-6)
    assert cost["resources"] == {"vcpu_hours": 3.25, "memory_gb_hours": 14.5, "storage_gb_hours": 72.0}
    assert (cost["currency"], cost["prices_as_of"]) == ("USD", "2026-12")

    page = s3.get_object(Bucket="data-bucket", Key=report_path(manifest_uri).removeprefix("s3://data-bucket/"))
    html = page["Body"].read().decode()
    assert f"report: {report_path(manifest_uri)} (with a Remote run section)" in out
    assert html.count('<section id="batch-scoring-remote">') == 1
    assert f"job run <code>{job_run_id}</code>:\n<b>SUCCESS</b> · 2,745 s of execution" in html
    assert f"logs: <code>{log_uri}</code>" in html and f"<code>{command}</code>" in html
    assert f"cost: USD {amount:,.4f}, USD {per_million:,.4f} per million rows" in html
    assert "FAKE-TOKEN" not in html and "FAKE-TOKEN" not in json.dumps(manifest)


def test_a_run_whose_driver_never_started_says_so_and_still_reports_its_cost(billed_submission, capsys):
    app_id, _, s3 = billed_submission

    status, out, err = submit_with_driver(billed_submission, capsys, write=False, state="FAILED")

    assert status == 5
    manifest_uri = manifest_path(DATA, dt.date(2026, 11, 22), "data_pricing-2026-11-22-1")
    assert (f"manifest: none at {manifest_uri} (the driver wrote none: it never started, or refused the run "
            "before Spark started; see the logs)") in out
    amount = 3.25 * 0.052624 + 14.5 * 0.005786 + 72.0 * 0.000111
    assert f"cost: USD {amount:,.4f}; 3.25 vCPU-hours" in out  # no rows: no cost per million rows
    assert "error: the run ended FAILED" in err
    assert s3.list_objects_v2(Bucket="data-bucket").get("KeyCount") == 0  # nothing made up


def test_a_given_run_id_is_passed_as_it_is(billed_submission, capsys):
    app_id, argv, s3 = billed_submission
    argv += ["--run-id", "manual__2026-11-22T02:00:00+00:00"]

    status, out, err = submit_with_driver(billed_submission, capsys, write=True, state="SUCCESS")

    assert status == 0, err[-3000:]
    assert "run id manual__2026-11-22T02:00:00+00:00)" in out
    manifest = read_json(s3, manifest_path(DATA, dt.date(2026, 11, 22), "manual__2026-11-22T02:00:00+00:00"))
    assert manifest["run_id"] == "manual__2026-11-22T02:00:00+00:00" and manifest["remote"]["state"] == "SUCCESS"
