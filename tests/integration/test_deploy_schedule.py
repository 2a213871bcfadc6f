"""An EventBridge Scheduler schedule that starts the job on EMR Serverless, against moto.

moto stores schedules but never fires them; the test that follows a schedule to a job run
does what Scheduler does: fill in the context attributes of the target's Input and send it
to StartJobRun.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import botocore.session
import pytest

from batch_scoring.jobs.config import load_job, load_profile
from batch_scoring.jobs.deploy import schedule
from batch_scoring.jobs.deploy.staging import StagedRun
from batch_scoring.jobs.errors import ConfigError, DeployError

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = "s3://artifacts-bucket/batch-scoring/artifacts"
JOB_ROLE = "arn:aws:iam::123456789012:role/batch-scoring-job"
SCHEDULER_ROLE = "arn:aws:iam::123456789012:role/batch-scoring-scheduler"
APP_ID = "00fscheduledapp0"
STAGED = StagedRun(
    entry_point=f"{ARTIFACTS}/entry/run_job-0123456789ab.py",
    archive=f"{ARTIFACTS}/environments/batch-scoring-env-py3.11-abcdef012345.tar.gz",
    wheel=f"{ARTIFACTS}/wheels/batch_scoring-0.1.0-py3-none-any-fedcba987654.whl",
    job_config=f"{ARTIFACTS}/jobs/data_pricing/data_pricing-111111111111.yaml",
    profile=f"{ARTIFACTS}/profiles/emr-serverless-222222222222.yaml",
    python_version="3.11",
)
EMR_SERVERLESS = botocore.session.get_session().get_service_model("emr-serverless")


@pytest.fixture
def profile(aws, monkeypatch):
    """The emr-serverless profile with a scheduler role, on application ``APP_ID``."""
    monkeypatch.setenv("EMR_SERVERLESS_APP_ID", APP_ID)
    monkeypatch.setenv("EMR_SERVERLESS_ROLE_ARN", JOB_ROLE)
    monkeypatch.setenv("BATCH_SCORE_BUCKET", "artifacts-bucket")
    monkeypatch.setenv("SCHEDULER_ROLE_ARN", SCHEDULER_ROLE)
    return load_profile(ROOT / "conf/emr-serverless.yaml")


def scheduled_job(*overrides: str):
    return load_job(ROOT / "conf/jobs/data_pricing.yaml", [
        "source.path=s3://data-bucket/bundle_sales", "output.path=s3://data-bucket/data_pricing",
        "schedule.expression=cron(30 2 * * ? *)", "schedule.timezone=Europe/Paris", *overrides,
    ])


def test_schedule_as_the_server_recorded_it(aws, profile):
    scheduler = aws.client("scheduler")

    arn = schedule.put_schedule(scheduler, schedule.schedule_request(profile, scheduled_job(), STAGED))

    assert arn == "arn:aws:scheduler:eu-west-1:123456789012:schedule/default/batch-scoring-data_pricing"
    stored = scheduler.get_schedule(Name="batch-scoring-data_pricing", GroupName="default")
    assert stored["ScheduleExpression"] == "cron(30 2 * * ? *)"
    assert stored["ScheduleExpressionTimezone"] == "Europe/Paris"
    assert stored["State"] == "ENABLED"
    assert stored["FlexibleTimeWindow"] == {"Mode": "OFF"}
    target = stored["Target"]
    assert target["Arn"] == "arn:aws:scheduler:::aws-sdk:emrserverless:startJobRun"
    assert target["RoleArn"] == SCHEDULER_ROLE
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 3}
    assert json.loads(target["Input"]) == {
        "applicationId": APP_ID,
        "executionRoleArn": JOB_ROLE,
        "name": "data_pricing-<aws.scheduler.scheduled-time>",
        "clientToken": "data_pricing-<aws.scheduler.execution-id>",
        "jobDriver": {"sparkSubmit": {
            "entryPoint": f"{ARTIFACTS}/entry/run_job-0123456789ab.py",
            "entryPointArguments": [
                "--job", f"{ARTIFACTS}/jobs/data_pricing/data_pricing-111111111111.yaml",
                "--profile", f"{ARTIFACTS}/profiles/emr-serverless-222222222222.yaml",
                "--run-date", "<aws.scheduler.scheduled-time>",
            ],
            "sparkSubmitParameters": (
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
            ),
        }},
        "configurationOverrides": {
            "monitoringConfiguration": {
                "s3MonitoringConfiguration": {"logUri": "s3://artifacts-bucket/batch-scoring/logs"}
            }
        },
        "executionTimeoutMinutes": 240,
        "tags": {"job": "data_pricing", "run_date": "<aws.scheduler.scheduled-time>"},
    }


def test_input_filled_in_by_scheduler_is_a_valid_start_job_run(aws, profile, monkeypatch):
    client = aws.client("emr-serverless")
    app_id = client.create_application(name="scheduled", releaseLabel="emr-7.12.0", type="SPARK")["applicationId"]
    monkeypatch.setenv("EMR_SERVERLESS_APP_ID", app_id)
    profile = load_profile(ROOT / "conf/emr-serverless.yaml")
    scheduler = aws.client("scheduler")
    schedule.put_schedule(scheduler, schedule.schedule_request(profile, scheduled_job(), STAGED))
    stored = scheduler.get_schedule(Name="batch-scoring-data_pricing")["Target"]["Input"]

    filled = stored.replace("<aws.scheduler.scheduled-time>", "2026-11-22T01:30:00Z").replace(
        "<aws.scheduler.execution-id>", "d32c5kddcf5bb8c3"
    )
    request = json.loads(filled)
    run_id = client.start_job_run(**request)["jobRunId"]

    run = client.get_job_run(applicationId=app_id, jobRunId=run_id)["jobRun"]
    assert run["name"] == "data_pricing-2026-11-22T01:30:00Z"
    assert run["jobDriver"]["sparkSubmit"]["entryPointArguments"][-2:] == ["--run-date", "2026-11-22T01:30:00Z"]
    assert run["tags"] == {"job": "data_pricing", "run_date": "2026-11-22T01:30:00Z"}
    # moto checks neither pattern; AWS does.
    shapes = EMR_SERVERLESS.operation_model("StartJobRun").input_shape.members
    assert re.fullmatch(shapes["clientToken"].metadata["pattern"], request["clientToken"])
    tag_value = shapes["tags"].value.metadata["pattern"]
    assert all(re.fullmatch(tag_value, value) for value in request["tags"].values())


def test_put_again_updates_the_schedule_in_place(aws, profile):
    scheduler = aws.client("scheduler")
    first = schedule.put_schedule(scheduler, schedule.schedule_request(profile, scheduled_job(), STAGED))

    second = schedule.put_schedule(scheduler, schedule.schedule_request(
        profile, scheduled_job("schedule.expression=rate(1 day)", "schedule.enabled=false"), STAGED
    ))

    assert second == first
    listed = scheduler.list_schedules()["Schedules"]
    assert [s["Name"] for s in listed] == ["batch-scoring-data_pricing"]
    stored = scheduler.get_schedule(Name="batch-scoring-data_pricing")
    assert (stored["ScheduleExpression"], stored["State"]) == ("rate(1 day)", "DISABLED")


def test_schedule_in_its_own_group(aws, profile):
    scheduler = aws.client("scheduler")
    scheduler.create_schedule_group(Name="batch-scoring")
    grouped = profile.model_copy(update={"emr_serverless": profile.emr_serverless.model_copy(update={
        "scheduler": profile.emr_serverless.scheduler.model_copy(update={"group_name": "batch-scoring"}),
    })})

    arn = schedule.put_schedule(scheduler, schedule.schedule_request(grouped, scheduled_job(), STAGED))

    assert arn.endswith(":schedule/batch-scoring/batch-scoring-data_pricing")
    assert schedule.delete_schedule(scheduler, profile, scheduled_job()) is False
    assert schedule.delete_schedule(scheduler, grouped, scheduled_job()) is True


def test_missing_group_is_a_deploy_error(aws, profile):
    grouped = profile.model_copy(update={"emr_serverless": profile.emr_serverless.model_copy(update={
        "scheduler": profile.emr_serverless.scheduler.model_copy(update={"group_name": "no-such-group"}),
    })})
    request = schedule.schedule_request(grouped, scheduled_job(), STAGED)

    with pytest.raises(DeployError, match="schedule group 'no-such-group' .* does not exist; create it with"):
        schedule.put_schedule(aws.client("scheduler"), request)
    assert aws.client("scheduler").list_schedules()["Schedules"] == []


def test_delete_reports_whether_there_was_a_schedule(aws, profile):
    scheduler = aws.client("scheduler")
    schedule.put_schedule(scheduler, schedule.schedule_request(profile, scheduled_job(), STAGED))

    assert schedule.delete_schedule(scheduler, profile, scheduled_job()) is True
    assert scheduler.list_schedules()["Schedules"] == []
    assert schedule.delete_schedule(scheduler, profile, scheduled_job()) is False


def test_job_without_schedule_is_a_config_error(profile):
    job = load_job(ROOT / "conf/jobs/data_pricing.yaml")
    with pytest.raises(ConfigError, match="job 'data_pricing' has no 'schedule'"):
        schedule.schedule_request(profile, job, STAGED)


def test_profile_without_scheduler_role_is_a_config_error(aws, monkeypatch, profile):
    monkeypatch.delenv("SCHEDULER_ROLE_ARN")
    without_role = load_profile(ROOT / "conf/emr-serverless.yaml")

    with pytest.raises(ConfigError, match=r"emr_serverless.scheduler.role_arn"):
        schedule.schedule_request(without_role, scheduled_job(), STAGED)


def test_long_job_names_give_valid_distinct_schedule_names():
    pattern = botocore.session.get_session().get_service_model("scheduler").operation_model(
        "CreateSchedule"
    ).input_shape.members["Name"].metadata["pattern"]
    long_one = scheduled_job("job=" + "x" * 60 + "_one")
    long_two = scheduled_job("job=" + "x" * 60 + "_two")

    names = {schedule.schedule_name(long_one), schedule.schedule_name(long_two)}

    assert len(names) == 2
    assert all(len(name) == 64 and re.fullmatch(pattern, name) for name in names)
    assert schedule.schedule_name(scheduled_job()) == "batch-scoring-data_pricing"


def test_unreachable_endpoint_fails_fast(aws, monkeypatch, profile):
    import socket
    import time

    from batch_scoring.jobs.deploy import aws as deploy_aws

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed_port}")
    scheduler = deploy_aws.client("scheduler", profile.aws)
    started = time.monotonic()

    with pytest.raises(DeployError, match="cannot reach the AWS endpoint for looking up schedule group 'default'"):
        schedule.put_schedule(scheduler, schedule.schedule_request(profile, scheduled_job(), STAGED))
    assert time.monotonic() - started < 20
