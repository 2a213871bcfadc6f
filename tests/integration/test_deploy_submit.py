"""The deploy commands end to end against a moto server: checks, staging, submission, waiting.

``spark-submit.sh emr-serverless|schedule|unschedule`` run in their own process, as users
start them. EMR steps never finish on moto, so the EMR test calls the same command in this
process and finishes the step in moto's backend from a second thread.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from batch_scoring.jobs import cli, run_job
from batch_scoring.jobs.config import load_job
from env_archives import venv_archive

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "artifacts-bucket"
ROLE = "arn:aws:iam::123456789012:role/batch-scoring-job"
SCHEDULER_ROLE = "arn:aws:iam::123456789012:role/batch-scoring-scheduler"
JOB_SETTINGS = [
    "--set", "source.path=s3://data-bucket/bundle_sales",
    "--set", "output.path=s3://data-bucket/data_pricing",
]


def fast_profile(tmp_path: Path, name: str) -> Path:
    """A copy of conf/<name>.yaml that polls every 50 ms and gives up after 6 s."""
    data = yaml.safe_load((ROOT / "conf" / f"{name}.yaml").read_text())
    data["aws"]["poll"] = {"interval_seconds": 0.05, "max_interval_seconds": 0.2, "timeout_minutes": 0.1}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def artifact_keys(aws) -> list[str]:
    listing = aws.client("s3").list_objects_v2(Bucket=BUCKET)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def read_object(aws, uri: str) -> bytes:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()


def spark_submit(aws, env: dict, *args: str) -> subprocess.CompletedProcess:
    environment = {**aws.environment, "BATCH_SCORE_PYTHON": sys.executable, "PATH": "/usr/bin:/bin", **env}
    return subprocess.run([str(ROOT / "spark-submit.sh"), *args], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def serverless(aws, tmp_path):
    """An EMR Serverless Spark application on release emr-spark-8.0.0, and the profile's env."""
    from moto.backends import get_backend

    aws.client("s3").create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": aws.region})
    client = aws.client("emr-serverless")
    app_id = client.create_application(name="scoring", releaseLabel="emr-7.12.0", type="SPARK")["applicationId"]
    # moto accepts only emr-<n>.<n>.0 labels; the application gets EMR 8's label in its backend
    get_backend("emr-serverless")["123456789012"][aws.region].applications[app_id].release_label = "emr-spark-8.0.0"
    env = {"EMR_SERVERLESS_APP_ID": app_id, "EMR_SERVERLESS_ROLE_ARN": ROLE, "BATCH_SCORE_BUCKET": BUCKET,
           "SCHEDULER_ROLE_ARN": SCHEDULER_ROLE}
    return app_id, env, fast_profile(tmp_path, "emr-serverless")


def test_emr_serverless_run_is_staged_submitted_and_followed_to_success(aws, serverless, tmp_path):
    app_id, env, profile = serverless
    aws.client("s3").create_bucket(Bucket="data-bucket", CreateBucketConfiguration={"LocationConstraint": aws.region})
    archive = venv_archive(tmp_path / "env.tar.gz", "3.11")
    result = spark_submit(aws, env, "emr-serverless", "conf/jobs/data_pricing.yaml", "--profile", str(profile),
                          "--run-date", "2026-11-22", "--archive", str(archive), "--out", str(tmp_path / "dist"),
                          *JOB_SETTINGS)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ended SUCCESS" in result.stdout
    assert f"logs: s3://{BUCKET}/batch-scoring/logs/applications/{app_id}/jobs/" in result.stdout
    assert "outputs: s3://data-bucket/data_pricing (rejects: s3://data-bucket/data_pricing_rejects)" in result.stdout

    runs = aws.client("emr-serverless").list_job_runs(applicationId=app_id)["jobRuns"]
    assert len(runs) == 1
    run = aws.client("emr-serverless").get_job_run(applicationId=app_id, jobRunId=runs[0]["id"])["jobRun"]
    driver = run["jobDriver"]["sparkSubmit"]
    keys = artifact_keys(aws)
    assert [k.split("/")[2] for k in keys] == ["entry", "environments", "jobs", "profiles", "wheels"]
    assert driver["entryPoint"] == f"s3://{BUCKET}/{keys[0]}"
    assert read_object(aws, driver["entryPoint"]) == Path(run_job.__file__).read_bytes()
    assert f"spark.archives=s3://{BUCKET}/{keys[1]}#environment" in driver["sparkSubmitParameters"]
    job_uri, profile_uri = driver["entryPointArguments"][1], driver["entryPointArguments"][3]
    run_id = "data_pricing-2026-11-22-1"  # the client token: the same request when submitted again
    assert f"(data_pricing-2026-11-22, run id {run_id})" in result.stdout
    assert driver["entryPointArguments"] == ["--job", job_uri, "--profile", profile_uri, "--run-date", "2026-11-22",
                                             "--run-id", run_id]
    # moto runs no driver: no manifest to record the cost in, which is one line, not an error
    assert (f"manifest: none at s3://data-bucket/data_pricing/_manifests/run_date=2026-11-22/{run_id}.json"
            in result.stdout)
    assert "Spark UI: " in result.stdout and "cost: USD 0.0000; 0 vCPU-hours" in result.stdout
    staged_job = tmp_path / "staged.yaml"
    staged_job.write_bytes(read_object(aws, job_uri))
    assert load_job(staged_job) == load_job(ROOT / "conf/jobs/data_pricing.yaml", [s for s in JOB_SETTINGS if s != "--set"])
    assert yaml.safe_load(read_object(aws, profile_uri))["emr_serverless"]["application_id"] == app_id


def test_a_resubmission_uploads_nothing_new(aws, serverless, tmp_path):
    _, env, profile = serverless
    archive = venv_archive(tmp_path / "env.tar.gz", "3.11")
    args = ["emr-serverless", "conf/jobs/data_pricing.yaml", "--profile", str(profile), "--run-date", "2026-11-22",
            "--archive", str(archive), "--out", str(tmp_path / "dist"), "--no-wait", *JOB_SETTINGS]
    assert spark_submit(aws, env, *args).returncode == 0
    first = {o["Key"]: o["LastModified"] for o in aws.client("s3").list_objects_v2(Bucket=BUCKET)["Contents"]}
    second = spark_submit(aws, env, *args)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "not waiting (--no-wait)" in second.stdout
    again = {o["Key"]: o["LastModified"] for o in aws.client("s3").list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert again == first


def test_profile_without_application_id_fails_before_any_upload(aws, serverless, tmp_path):
    _, env, profile = serverless
    env = {k: v for k, v in env.items() if k != "EMR_SERVERLESS_APP_ID"}
    result = spark_submit(aws, env, "emr-serverless", "conf/jobs/data_pricing.yaml", "--profile", str(profile),
                          "--archive", str(venv_archive(tmp_path / "env.tar.gz", "3.11")), *JOB_SETTINGS)
    assert result.returncode == 2
    assert "emr_serverless.application_id refers to environment variable ${EMR_SERVERLESS_APP_ID}" in result.stderr
    assert artifact_keys(aws) == []


def test_archive_for_another_python_fails_before_any_upload(aws, serverless, tmp_path):
    _, env, profile = serverless
    result = spark_submit(aws, env, "emr-serverless", "conf/jobs/data_pricing.yaml", "--profile", str(profile),
                          "--archive", str(venv_archive(tmp_path / "env.tar.gz", "3.9")),
                          "--out", str(tmp_path / "dist"), *JOB_SETTINGS)
    assert result.returncode == 5
    assert "built with Python 3.9, but emr-spark-8.0.0 runs Python 3.11" in result.stderr
    assert artifact_keys(aws) == []
    assert "started job run" not in result.stdout


def test_local_paths_in_a_cluster_job_fail_before_any_upload(aws, serverless, tmp_path):
    _, env, profile = serverless
    result = spark_submit(aws, env, "emr-serverless", "conf/jobs/data_pricing.yaml", "--profile", str(profile),
                          "--archive", str(venv_archive(tmp_path / "env.tar.gz", "3.11")))
    assert result.returncode == 2
    assert "source.path = 'data/sample/bundle_sales'" in result.stderr
    assert "output.path = 'output/data_pricing'" in result.stderr
    assert artifact_keys(aws) == []


def test_unreachable_endpoint_is_named_and_nothing_is_submitted(aws, serverless, tmp_path):
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    _, env, profile = serverless
    started = time.monotonic()
    result = spark_submit(aws, {**env, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed}"}, "emr-serverless",
                          "conf/jobs/data_pricing.yaml", "--profile", str(profile),
                          "--archive", str(venv_archive(tmp_path / "env.tar.gz", "3.11")), *JOB_SETTINGS)
    assert result.returncode == 5
    assert "cannot reach the AWS endpoint" in result.stderr and f"127.0.0.1:{closed}" in result.stderr
    assert time.monotonic() - started < 120
    assert artifact_keys(aws) == []


def test_schedule_then_unschedule(aws, serverless, tmp_path):
    app_id, env, profile = serverless
    archive = str(venv_archive(tmp_path / "env.tar.gz", "3.11"))
    when = ["--set", "schedule.expression=cron(30 1 * * ? *)", "--set", "schedule.timezone=Europe/Paris"]
    made = spark_submit(aws, env, "schedule", "conf/jobs/data_pricing.yaml", "--profile", str(profile),
                        "--archive", archive, "--out", str(tmp_path / "dist"), *JOB_SETTINGS, *when)
    assert made.returncode == 0, made.stderr[-3000:]
    schedule = aws.client("scheduler").get_schedule(Name="batch-scoring-data_pricing", GroupName="default")
    assert (schedule["ScheduleExpression"], schedule["ScheduleExpressionTimezone"], schedule["State"]) == (
        "cron(30 1 * * ? *)", "Europe/Paris", "ENABLED")
    assert schedule["Target"]["RoleArn"] == SCHEDULER_ROLE
    assert '"--run-date", "<aws.scheduler.scheduled-time>"' in schedule["Target"]["Input"]
    assert f'"applicationId": "{app_id}"' in schedule["Target"]["Input"]

    removed = spark_submit(aws, env, "unschedule", "conf/jobs/data_pricing.yaml", "--profile", str(profile))
    assert removed.returncode == 0, removed.stderr[-2000:]
    assert "deleted schedule batch-scoring-data_pricing" in removed.stdout
    assert aws.client("scheduler").list_schedules()["Schedules"] == []


def test_schedule_without_an_expression_is_a_config_error(aws, serverless, tmp_path):
    _, env, profile = serverless
    result = spark_submit(aws, env, "schedule", "conf/jobs/data_pricing.yaml", "--profile", str(profile),
                          "--archive", str(venv_archive(tmp_path / "env.tar.gz", "3.11")), *JOB_SETTINGS)
    assert result.returncode == 2
    assert "schedule" in result.stderr and "expression" in result.stderr


def finish_step_when_added(aws, state: str, stop: threading.Event) -> None:
    from moto.backends import get_backend

    while not stop.is_set():
        for regions in get_backend("emr").values():
            for backend in regions.values():
                for cluster in backend.clusters.values():
                    for step in cluster.steps:
                        step.state = state
        time.sleep(0.05)


@pytest.mark.parametrize("state, code", [("COMPLETED", 0), ("FAILED", 5)])
def test_emr_step_exit_code_follows_the_step(aws, tmp_path, monkeypatch, capsys, state, code):
    aws.client("s3").create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": aws.region})
    cluster = aws.client("emr").run_job_flow(
        Name="scoring", ReleaseLabel="emr-spark-8.0.0", LogUri="s3://logs-bucket/emr/",
        Instances={"InstanceCount": 1, "KeepJobFlowAliveWhenNoSteps": True, "MasterInstanceType": "m5.xlarge"},
        JobFlowRole="EMR_EC2_DefaultRole", ServiceRole="EMR_DefaultRole",
    )["JobFlowId"]
    monkeypatch.setenv("EMR_CLUSTER_ID", cluster)
    monkeypatch.setenv("BATCH_SCORE_BUCKET", BUCKET)
    stop = threading.Event()
    finisher = threading.Thread(target=finish_step_when_added, args=(aws, state, stop), daemon=True)
    finisher.start()
    try:
        status = cli.main(["submit", "--job", "conf/jobs/data_pricing.yaml", "--profile", str(fast_profile(tmp_path, "emr")),
                           "--run-date", "2026-11-22", "--archive", str(venv_archive(tmp_path / "env.tar.gz", "3.11")),
                           "--out", str(tmp_path / "dist"), *JOB_SETTINGS])
    finally:
        stop.set()
        finisher.join()
    out, err = capsys.readouterr()
    assert status == code, err[-3000:]
    steps = aws.client("emr").list_steps(ClusterId=cluster)["Steps"]
    assert [s["Name"] for s in steps] == ["data_pricing 2026-11-22"]
    assert f"submitted step {steps[0]['Id']} to EMR cluster {cluster}" in out
    run_id = re.search(r"run id (20261122-\d{6}-[0-9a-f]{8})\)", out).group(1)
    step_args = aws.client("emr").describe_step(ClusterId=cluster, StepId=steps[0]["Id"])["Step"]["Config"]["Args"]
    assert step_args[-2:] == ["--run-id", run_id]
    if code:
        assert "the run ended FAILED" in err and f"s3://logs-bucket/emr/{cluster}/steps/{steps[0]['Id']}/" in err
    else:
        assert "the run ended COMPLETED" in out
