"""Which EMR release takes which environment archive, end to end against a moto server.

An EMR 7 cluster or application (emr-7.14.0, Spark 3.5) takes an archive recorded as built on
the Spark 3.5 line and refuses a Spark 4 one; EMR 8 (emr-spark-8.1.0, Spark 4) the reverse. A
refusal is exit 5 before anything is built or uploaded, and nothing reaches EMR. The commands
run in this process (``cli.main``), as ``spark-submit.sh emr|emr-serverless|schedule`` run them;
the archives are small tarballs holding what a prebuilt ``--archive`` is read for
(tests/env_archives.py). moto accepts EMR Serverless labels ``emr-<n>.<n>.0`` only, so an EMR 8
application is relabelled in moto's backend.
"""

from __future__ import annotations

import shlex

import pytest

from batch_scoring.jobs import cli
from batch_scoring.jobs.runtime_lines import SPARK4, SPARK35, installed_line
from env_archives import env_archive, pyvenv_cfg, venv_archive
from test_deploy_submit import BUCKET, JOB_SETTINGS, ROLE, SCHEDULER_ROLE, artifact_keys, fast_profile

EMR7, EMR8 = "emr-7.14.0", "emr-spark-8.1.0"
TARGETS = ("emr", "emr-serverless", "schedule")
PROFILES = {"emr": "emr", "emr-serverless": "emr-serverless", "schedule": "emr-serverless"}
EARLIER_UPLOAD = "batch-scoring/artifacts/environments/batch-scoring-env-py3.11-000000000000.tar.gz"
ARCHIVE_PYTHON = "./environment/bin/python"
EMR_DELTA_JARS = "/usr/share/aws/delta/lib/delta-spark.jar,/usr/share/aws/delta/lib/delta-storage.jar"


@pytest.fixture
def bucket(aws):
    """The artifacts bucket, holding one object an earlier run staged."""
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": aws.region})
    s3.put_object(Bucket=BUCKET, Key=EARLIER_UPLOAD, Body=b"an earlier archive")
    return BUCKET


def make_target(aws, monkeypatch, target: str, release: str) -> str:
    """A cluster (``emr``) or Spark application on ``release``; the profile's variables point at it."""
    monkeypatch.setenv("BATCH_SCORE_BUCKET", BUCKET)
    if target == "emr":
        cluster = aws.client("emr").run_job_flow(
            Name="scoring", ReleaseLabel=release, JobFlowRole="EMR_EC2_DefaultRole", ServiceRole="EMR_DefaultRole",
            Instances={"InstanceCount": 1, "KeepJobFlowAliveWhenNoSteps": True, "MasterInstanceType": "m5.xlarge"},
        )["JobFlowId"]
        monkeypatch.setenv("EMR_CLUSTER_ID", cluster)
        return cluster
    app_id = aws.client("emr-serverless").create_application(
        name="scoring", releaseLabel=EMR7, type="SPARK")["applicationId"]
    if release != EMR7:
        from moto.backends import get_backend

        get_backend("emr-serverless")["123456789012"][aws.region].applications[app_id].release_label = release
    monkeypatch.setenv("EMR_SERVERLESS_APP_ID", app_id)
    monkeypatch.setenv("EMR_SERVERLESS_ROLE_ARN", ROLE)
    monkeypatch.setenv("SCHEDULER_ROLE_ARN", SCHEDULER_ROLE)
    return app_id


def deploy(tmp_path, capsys, target: str, *options: str) -> tuple[int, str, str]:
    """Run the target's command on the data_pricing job; return (exit code, stdout, stderr)."""
    command = "schedule" if target == "schedule" else "submit"
    argv = [command, "--job", "conf/jobs/data_pricing.yaml",
            "--profile", str(fast_profile(tmp_path, PROFILES[target])), "--out", str(tmp_path / "dist"),
            *options, *JOB_SETTINGS]
    if target == "schedule":
        argv += ["--set", "schedule.expression=cron(0 2 * * ? *)"]
    else:
        argv += ["--run-date", "2026-11-22", "--no-wait"]
    status = cli.main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def sent_confs(aws, target: str, remote_id: str) -> list[dict[str, str]]:
    """The Spark settings of every request EMR, EMR Serverless or Scheduler received, as dicts."""
    import json

    if target == "emr":
        steps = aws.client("emr").list_steps(ClusterId=remote_id)["Steps"]
        return [_emr_step_confs(step["Config"]["Args"]) for step in steps]
    if target == "emr-serverless":
        client = aws.client("emr-serverless")
        runs = _job_runs(client, remote_id)
        drivers = [client.get_job_run(applicationId=remote_id, jobRunId=r["id"])["jobRun"]["jobDriver"] for r in runs]
    else:
        scheduler = aws.client("scheduler")
        names = [s["Name"] for s in scheduler.list_schedules()["Schedules"]]
        drivers = [json.loads(scheduler.get_schedule(Name=n)["Target"]["Input"])["jobDriver"] for n in names]
    return [_serverless_confs(d["sparkSubmit"]["sparkSubmitParameters"]) for d in drivers]


def _job_runs(client, app_id: str) -> list[dict]:
    """The application's job runs. moto answers ListJobRuns of an application that has none
    with ResourceNotFoundException, so the application's existence is checked on its own."""
    from botocore.exceptions import ClientError

    client.get_application(applicationId=app_id)
    try:
        return client.list_job_runs(applicationId=app_id)["jobRuns"]
    except ClientError as error:
        if error.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        return []


def _emr_step_confs(args: list[str]) -> dict[str, str]:
    confs = dict(args[i + 1].split("=", 1) for i, word in enumerate(args) if word == "--conf")
    confs["--jars"] = args[args.index("--jars") + 1]
    return confs


def _serverless_confs(parameters: str) -> dict[str, str]:
    words = shlex.split(parameters)
    return dict(words[i + 1].split("=", 1) for i, word in enumerate(words) if word == "--conf")


def archive_key(confs: dict[str, str]) -> str:
    uri = confs["spark.archives"]
    assert uri.startswith(f"s3://{BUCKET}/") and uri.endswith("#environment"), uri
    return uri.removeprefix(f"s3://{BUCKET}/").removesuffix("#environment")


def python_and_delta(target: str, confs: dict[str, str]) -> dict[str, str]:
    """The settings that choose the driver's and executors' Python and Delta's jars."""
    if target == "emr":
        keys = ("spark.yarn.appMasterEnv.PYSPARK_PYTHON", "spark.executorEnv.PYSPARK_PYTHON", "--jars")
    else:
        keys = ("spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON", "spark.emr-serverless.driverEnv.PYSPARK_PYTHON",
                "spark.executorEnv.PYSPARK_PYTHON", "spark.jars")
    return {key: confs.get(key) for key in keys}


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("release, line", [(EMR7, "spark35"), (EMR8, "spark4")])
def test_a_release_takes_an_archive_of_its_line(aws, bucket, monkeypatch, tmp_path, capsys, target, release, line):
    remote = make_target(aws, monkeypatch, target, release)
    archive = venv_archive(tmp_path / f"env-{line}.tar.gz", "3.11", line)
    before = artifact_keys(aws)

    status, out, err = deploy(tmp_path, capsys, target, "--archive", str(archive))

    assert status == 0, err[-3000:]
    [confs] = sent_confs(aws, target, remote)
    key = archive_key(confs)
    assert key.startswith("batch-scoring/artifacts/environments/batch-scoring-env-py3.11-")
    assert aws.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read() == archive.read_bytes()
    assert key in artifact_keys(aws) and key not in before
    expected = {name: ARCHIVE_PYTHON for name in python_and_delta(target, confs) if "PYTHON" in name}
    expected["--jars" if target == "emr" else "spark.jars"] = EMR_DELTA_JARS
    assert python_and_delta(target, confs) == expected
    assert f"staged: environment s3://{BUCKET}/{key}" in out


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("release, line, release_line, archive_line", [
    (EMR7, "spark4", SPARK35, SPARK4), (EMR8, "spark35", SPARK4, SPARK35),
])
def test_a_release_refuses_an_archive_of_the_other_line_before_any_upload(
        aws, bucket, monkeypatch, tmp_path, capsys, target, release, line, release_line, archive_line):
    remote = make_target(aws, monkeypatch, target, release)
    archive = venv_archive(tmp_path / f"env-{line}.tar.gz", "3.11", line)
    before = artifact_keys(aws)
    assert before == [EARLIER_UPLOAD]

    status, out, err = deploy(tmp_path, capsys, target, "--archive", str(archive))

    assert status == 5
    spark = "4.1.1" if line == "spark4" else "3.5.8"
    assert (f"error: EMR release {release} runs Spark {release_line.spark_series} ({release_line.emr}), "
            f"but the environment archive {archive} was built for Spark {archive_line.spark_series} "
            f"(line {line}: pyspark {spark}") in err
    assert (f"build the archive in an {release_line.emr} environment (`{release_line.install}`, then "
            "`./spark-submit.sh package`) and pass the new one with --archive") in err
    assert f"or use an {archive_line.release_names} release" in err
    assert artifact_keys(aws) == before
    assert sent_confs(aws, target, remote) == []
    assert not (tmp_path / "dist").exists()  # refused before the wheel was built
    assert "staged:" not in out


def test_the_request_is_the_same_on_both_lines_but_for_the_archive(aws, bucket, monkeypatch, tmp_path, capsys):
    sent = {}
    for release, line in ((EMR7, "spark35"), (EMR8, "spark4")):
        remote = make_target(aws, monkeypatch, "emr-serverless", release)
        archive = venv_archive(tmp_path / f"env-{line}.tar.gz", "3.11", line)
        status, _, err = deploy(tmp_path, capsys, "emr-serverless", "--archive", str(archive))
        assert status == 0, err[-3000:]
        [sent[line]] = sent_confs(aws, "emr-serverless", remote)
    assert sent["spark35"]["spark.archives"] != sent["spark4"]["spark.archives"]
    assert ({k: v for k, v in sent["spark35"].items() if k != "spark.archives"}
            == {k: v for k, v in sent["spark4"].items() if k != "spark.archives"})


def test_an_archive_without_its_record_is_refused_with_the_rebuild_command(aws, bucket, monkeypatch, tmp_path, capsys):
    remote = make_target(aws, monkeypatch, "emr-serverless", EMR8)
    old = env_archive(tmp_path / "old-env.tar.gz", {"pyvenv.cfg": pyvenv_cfg("3.11")})

    status, _, err = deploy(tmp_path, capsys, "emr-serverless", "--archive", str(old))

    assert status == 5
    assert (f"error: {old} holds no batch_scoring_runtime.json, so its Spark line is unknown (it was "
            "built by an older version of this package): rebuild it with `./spark-submit.sh package`") in err
    assert artifact_keys(aws) == [EARLIER_UPLOAD]
    assert sent_confs(aws, "emr-serverless", remote) == []


@pytest.mark.parametrize("line", ["spark4", "spark35"])
def test_an_emr_6_cluster_is_refused_whatever_the_archive(aws, bucket, monkeypatch, tmp_path, capsys, line):
    remote = make_target(aws, monkeypatch, "emr", "emr-6.15.0")

    status, _, err = deploy(tmp_path, capsys, "emr", "--archive", str(venv_archive(tmp_path / "env.tar.gz", "3.11", line)))

    assert status == 5
    assert ("error: EMR release emr-6.15.0 runs Spark 3.4 or older, which this package does not support; this "
            "package runs on emr-spark-8.x (EMR 8, default emr-spark-8.1.0 LTS) or emr-7.x (EMR 7)") in err
    assert artifact_keys(aws) == [EARLIER_UPLOAD]
    assert sent_confs(aws, "emr", remote) == []


def test_building_here_for_a_release_of_the_other_line_is_refused_before_the_build(
        aws, bucket, monkeypatch, tmp_path, capsys):
    here = installed_line()
    other = SPARK35 if here is SPARK4 else SPARK4
    release = EMR7 if other is SPARK35 else EMR8
    remote = make_target(aws, monkeypatch, "emr-serverless", release)

    status, _, err = deploy(tmp_path, capsys, "emr-serverless")  # no --archive: built from this environment

    assert status == 5
    assert (f"error: EMR release {release} runs Spark {other.spark_series} ({other.emr}), but the environment "
            f"archive would be built from this environment for Spark {here.spark_series} (line {here.name}: ") in err
    assert f"run this command from an {other.emr} environment (`{other.install}`)" in err
    assert not (tmp_path / "dist").exists()
    assert artifact_keys(aws) == [EARLIER_UPLOAD]
    assert sent_confs(aws, "emr-serverless", remote) == []
