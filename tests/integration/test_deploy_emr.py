"""A job as an EMR step, against a real moto server: the step EMR records, its end, its logs.

moto never moves a step past RUNNING, so the tests set the step's state in moto's backend
(the server runs in this process). moto's step status has no FailureDetails; where a test
needs them, it adds them to moto's serialised status.
"""

from __future__ import annotations

import io
import socket
import time
from pathlib import Path

import pytest

from batch_scoring.jobs.config import PollConfig, load_job, load_profile
from batch_scoring.jobs.deploy import emr_step
from batch_scoring.jobs.deploy.staging import StagedRun
from batch_scoring.jobs.errors import DeployError

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = "s3://artifacts-bucket/batch-scoring/artifacts"
STAGED = StagedRun(
    entry_point=f"{ARTIFACTS}/entry/run_job-0123456789ab.py",
    archive=f"{ARTIFACTS}/environments/batch-scoring-env-py3.11-abcdef012345.tar.gz",
    wheel=f"{ARTIFACTS}/wheels/batch_scoring-0.1.0-py3-none-any-fedcba987654.whl",
    job_config=f"{ARTIFACTS}/jobs/data_pricing/data_pricing-111111111111.yaml",
    profile=f"{ARTIFACTS}/profiles/emr-222222222222.yaml",
    python_version="3.11",
)
FAST = PollConfig(interval_seconds=0.05, max_interval_seconds=0.1, timeout_minutes=0.05)


def create_cluster(aws, log_uri: str | None = "s3n://logs-bucket/emr/") -> str:
    options = {"LogUri": log_uri} if log_uri else {}
    response = aws.client("emr").run_job_flow(
        Name="batch-scoring", ReleaseLabel="emr-7.12.0", JobFlowRole="EMR_EC2_DefaultRole",
        ServiceRole="EMR_DefaultRole",
        Instances={
            "MasterInstanceType": "m5.xlarge", "SlaveInstanceType": "m5.xlarge",
            "InstanceCount": 3, "KeepJobFlowAliveWhenNoSteps": True,
        },
        **options,
    )
    return response["JobFlowId"]


def emr_profile(monkeypatch, cluster_id: str):
    monkeypatch.setenv("EMR_CLUSTER_ID", cluster_id)
    monkeypatch.setenv("BATCH_SCORE_BUCKET", "artifacts-bucket")
    return load_profile(ROOT / "conf/emr.yaml")


def pricing_job():
    return load_job(ROOT / "conf/jobs/data_pricing.yaml", [
        "source.path=s3://data-bucket/bundle_sales", "output.path=s3://data-bucket/data_pricing",
    ])


def moto_step(cluster_id: str, step_id: str):
    """moto's step object. Its EMR server files clusters under us-east-1 whatever the client's region."""
    from moto.backends import get_backend

    for regions in get_backend("emr").values():
        for backend in regions.values():
            if cluster_id in backend.clusters:
                return backend.describe_step(cluster_id, step_id)
    raise AssertionError(f"moto holds no cluster {cluster_id}")


@pytest.fixture
def cluster(aws, monkeypatch):
    """A running cluster with a LogUri, the emr profile pointing at it, and its EMR client."""
    cluster_id = create_cluster(aws)
    return cluster_id, emr_profile(monkeypatch, cluster_id), aws.client("emr")


def submit(cluster, extra_args=()) -> str:
    cluster_id, profile, emr = cluster
    return emr_step.add_step(emr, profile, pricing_job(), STAGED, "2026-11-22", extra_args)


def test_step_runs_spark_submit_with_the_archive_python_and_every_setting(cluster):
    cluster_id, _, emr = cluster

    step_id = submit(cluster, ["--set", "unit_of_work.buckets=8"])

    step = emr.describe_step(ClusterId=cluster_id, StepId=step_id)["Step"]
    assert step["Name"] == "data_pricing 2026-11-22"
    assert step["ActionOnFailure"] == "CONTINUE"
    assert step["Config"]["Jar"] == "command-runner.jar"
    assert step["Config"]["Args"] == [
        "spark-submit", "--deploy-mode", "cluster", "--name", "data_pricing",
        "--jars", "/usr/share/aws/delta/lib/delta-spark.jar,/usr/share/aws/delta/lib/delta-storage.jar",
        "--conf", f"spark.archives={ARTIFACTS}/environments/batch-scoring-env-py3.11-abcdef012345.tar.gz#environment",
        "--conf", "spark.yarn.appMasterEnv.PYSPARK_PYTHON=./environment/bin/python",
        "--conf", "spark.executorEnv.PYSPARK_PYTHON=./environment/bin/python",
        "--conf", "spark.sql.ansi.enabled=true",
        "--conf", "spark.sql.legacy.timeParserPolicy=CORRECTED",
        "--conf", "spark.sql.session.timeZone=UTC",
        "--conf", "spark.sql.execution.arrow.pyspark.enabled=true",
        "--conf", "spark.sql.execution.arrow.maxRecordsPerBatch=10000",
        "--conf", "spark.sql.adaptive.enabled=true",
        "--conf", "spark.python.worker.reuse=true",
        "--conf", "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension",
        "--conf", "spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog",
        f"{ARTIFACTS}/entry/run_job-0123456789ab.py",
        "--job", f"{ARTIFACTS}/jobs/data_pricing/data_pricing-111111111111.yaml",
        "--profile", f"{ARTIFACTS}/profiles/emr-222222222222.yaml",
        "--run-date", "2026-11-22",
        "--set", "unit_of_work.buckets=8",
    ]


def test_profile_packages_and_action_on_failure_reach_the_step(aws, monkeypatch):
    cluster_id = create_cluster(aws)
    profile = emr_profile(monkeypatch, cluster_id)
    profile = profile.model_copy(update={
        "packages": ["org.example:extra_2.13:1.0"],
        "emr": profile.emr.model_copy(update={"action_on_failure": "CANCEL_AND_WAIT"}),
    })
    emr = aws.client("emr")

    step_id = emr_step.add_step(emr, profile, pricing_job(), STAGED, "2026-11-23")

    step = emr.describe_step(ClusterId=cluster_id, StepId=step_id)["Step"]
    assert step["ActionOnFailure"] == "CANCEL_AND_WAIT"
    assert step["Config"]["Args"][5:9] == [
        "--packages", "org.example:extra_2.13:1.0",
        "--jars", "/usr/share/aws/delta/lib/delta-spark.jar,/usr/share/aws/delta/lib/delta-storage.jar",
    ]
    assert step["Config"]["Args"][-2:] == ["--run-date", "2026-11-23"]


def test_check_cluster_returns_the_release_label(cluster):
    _, profile, emr = cluster
    assert emr_step.check_cluster(emr, profile) == "emr-7.12.0"


def test_missing_cluster_is_a_deploy_error_naming_it(aws, monkeypatch):
    profile = emr_profile(monkeypatch, "j-NOSUCHCLUSTER1")

    with pytest.raises(DeployError, match=r"EMR cluster j-NOSUCHCLUSTER1 \(emr.cluster_id\).*not valid"):
        emr_step.check_cluster(aws.client("emr"), profile)


def test_terminated_cluster_is_a_deploy_error(cluster):
    cluster_id, profile, emr = cluster
    emr.terminate_job_flows(JobFlowIds=[cluster_id])

    with pytest.raises(DeployError, match=rf"EMR cluster {cluster_id} .* is TERMINATED"):
        emr_step.check_cluster(emr, profile)


def test_completed_step_succeeds(cluster):
    cluster_id, _, emr = cluster
    step_id = submit(cluster)
    moto_step(cluster_id, step_id).state = "COMPLETED"
    out = io.StringIO()

    outcome = emr_step.wait_for_step(emr, cluster_id, step_id, FAST, out=out)

    assert outcome.state == "COMPLETED"
    assert outcome.succeeded is True
    assert outcome.log_uri == f"s3://logs-bucket/emr/{cluster_id}/steps/{step_id}/"
    assert out.getvalue().splitlines()[-1].endswith(f"EMR step {step_id} on cluster {cluster_id}: COMPLETED")


def test_step_that_finishes_while_polled_is_followed_to_its_end(cluster):
    cluster_id, _, emr = cluster
    step_id = submit(cluster)
    step = moto_step(cluster_id, step_id)
    polls = []

    def finish_on_third_poll(seconds):
        polls.append(seconds)
        if len(polls) == 2:
            step.state = "COMPLETED"
        time.sleep(seconds)

    outcome = emr_step.wait_for_step(
        emr, cluster_id, step_id, PollConfig(interval_seconds=0.02, max_interval_seconds=0.05, timeout_minutes=1),
        sleep=finish_on_third_poll, out=io.StringIO(),
    )

    assert outcome.succeeded and polls == [0.02, 0.04]


def test_failed_step_reports_emr_failure_details_and_log_file(cluster, monkeypatch):
    from moto.emr.models import Step

    cluster_id, _, emr = cluster
    step_id = submit(cluster)
    failure = {
        "Reason": "Unknown Error.",
        "Message": "Exception in thread main: pipeline raised InputError",
        "LogFile": f"s3n://logs-bucket/emr/{cluster_id}/steps/{step_id}/stderr.gz",
    }
    plain_status = Step.status.fget
    monkeypatch.setattr(Step, "status", property(lambda step: {**plain_status(step), "FailureDetails": failure}))
    moto_step(cluster_id, step_id).state = "FAILED"

    outcome = emr_step.wait_for_step(emr, cluster_id, step_id, FAST, out=io.StringIO())

    assert outcome.state == "FAILED"
    assert outcome.succeeded is False
    assert outcome.detail == (
        "Unknown Error.; Exception in thread main: pipeline raised InputError; "
        f"log file s3n://logs-bucket/emr/{cluster_id}/steps/{step_id}/stderr.gz"
    )
    assert outcome.log_uri == f"s3://logs-bucket/emr/{cluster_id}/steps/{step_id}/stderr.gz"


@pytest.mark.parametrize("state", ["CANCELLED", "INTERRUPTED"])
def test_cancelled_step_without_details_points_at_the_step_log_folder(cluster, state):
    cluster_id, _, emr = cluster
    step_id = submit(cluster)
    step = moto_step(cluster_id, step_id)
    step.state = state
    step.last_state_change_reason = "Cancelled by user"

    outcome = emr_step.wait_for_step(emr, cluster_id, step_id, FAST, out=io.StringIO())

    assert (outcome.state, outcome.succeeded, outcome.detail) == (state, False, "Cancelled by user")
    assert outcome.log_uri == f"s3://logs-bucket/emr/{cluster_id}/steps/{step_id}/"


def test_cluster_without_log_uri_has_no_log_location(aws, monkeypatch):
    cluster_id = create_cluster(aws, log_uri=None)
    profile = emr_profile(monkeypatch, cluster_id)
    emr = aws.client("emr")
    step_id = emr_step.add_step(emr, profile, pricing_job(), STAGED, "2026-11-22")
    moto_step(cluster_id, step_id).state = "FAILED"

    outcome = emr_step.wait_for_step(emr, cluster_id, step_id, FAST, out=io.StringIO())

    assert outcome.state == "FAILED" and outcome.log_uri is None


def test_step_still_running_at_the_timeout_is_a_deploy_error(cluster):
    cluster_id, _, emr = cluster
    step_id = submit(cluster)
    poll = PollConfig(interval_seconds=0.05, max_interval_seconds=0.1, timeout_minutes=0.01)
    started = time.monotonic()

    with pytest.raises(DeployError) as raised:
        emr_step.wait_for_step(emr, cluster_id, step_id, poll, out=io.StringIO())

    assert 0.6 <= time.monotonic() - started < 10
    message = str(raised.value)
    assert f"EMR step {step_id} on cluster {cluster_id}" in message
    assert "last state was RUNNING" in message
    assert "may still be going" in message
    assert f"aws emr describe-step --cluster-id {cluster_id} --step-id {step_id}" in message
    assert moto_step(cluster_id, step_id).state == "RUNNING"


def test_unknown_step_is_a_deploy_error(cluster):
    cluster_id, _, emr = cluster
    with pytest.raises(DeployError, match=f"EMR cluster {cluster_id} has no step s-NOSUCHSTEP"):
        emr_step.wait_for_step(emr, cluster_id, "s-NOSUCHSTEP", FAST, out=io.StringIO())


def test_unreachable_endpoint_fails_fast(monkeypatch):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    for key, value in {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed_port}", "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(key, value)
    profile = emr_profile(monkeypatch, "j-ANYCLUSTER")
    from batch_scoring.jobs.deploy import aws as deploy_aws

    emr = deploy_aws.client("emr", profile.aws)
    started = time.monotonic()
    with pytest.raises(DeployError, match="cannot reach the AWS endpoint for EMR cluster j-ANYCLUSTER"):
        emr_step.check_cluster(emr, profile)
    assert time.monotonic() - started < 20
