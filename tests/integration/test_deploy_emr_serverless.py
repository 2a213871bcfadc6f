"""A job as an EMR Serverless job run, against a real moto server.

moto's runs are SUCCESS as soon as they start, so failure and timeout tests set the run's
state in moto's backend (the server runs in this process). moto refuses the release label
``emr-spark-8.0.0`` (its check wants ``emr-<digit>.<n>.0``), so applications are created as
emr-7.12.0 and relabelled in the backend where the label matters.
"""

from __future__ import annotations

import io
import re
import shlex
import time
from pathlib import Path

import botocore.session
import pytest

from batch_scoring.jobs.config import PollConfig, load_job, load_profile
from batch_scoring.jobs.deploy import emr_serverless
from batch_scoring.jobs.deploy.staging import StagedRun
from batch_scoring.jobs.errors import DeployError

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
