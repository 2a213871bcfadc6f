"""No credential goes to EMR or into the staged job file (issue 15, reproduction 3 for EMR).

Neither an EMR step's arguments nor an EMR Serverless job run's ``sparkSubmitParameters`` can
hide a value (``DescribeStep`` / ``GetJobRun`` return them), so a job or profile holding a
credential is refused before anything is built or uploaded. The secrets are FAKE.
"""

from __future__ import annotations

import random
import string
from pathlib import Path

import pytest
import yaml

from batch_scoring.jobs.config import load_job, load_profile
from batch_scoring.jobs.deploy import emr_serverless, emr_step
from batch_scoring.jobs.deploy.staging import StagedRun, check_no_credentials, render_yaml
from batch_scoring.jobs.errors import ConfigError
from test_deploy_submit import BUCKET, JOB_SETTINGS, artifact_keys, serverless, spark_submit, venv_archive  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
RNG = random.Random(2015)
FAKE_SECRET = "".join(RNG.choice(string.ascii_letters) for _ in range(20)) + "".join(
    RNG.choice(string.digits) for _ in range(20))
FAKE_KEY_ID = "AKIA" + "".join(RNG.choice(string.ascii_uppercase + "234567") for _ in range(16))
ARTIFACTS = "s3://artifacts-bucket/batch-scoring"
STAGED = StagedRun(
    entry_point=f"{ARTIFACTS}/entry/run_job-0123456789ab.py",
    archive=f"{ARTIFACTS}/environments/batch-scoring-env-py3.11-abcdef012345.tar.gz",
    wheel=f"{ARTIFACTS}/wheels/batch_scoring-0.1.0-py3-none-any-fedcba987654.whl",
    job_config=f"{ARTIFACTS}/jobs/data_pricing/data_pricing-111111111111.yaml",
    profile=f"{ARTIFACTS}/profiles/emr-serverless-222222222222.yaml",
    python_version="3.11",
)


@pytest.fixture
def profiles(monkeypatch):
    for name, value in {"EMR_CLUSTER_ID": "j-ABCDEFGHIJKL", "EMR_SERVERLESS_APP_ID": "00abcdefghijklmn",
                        "EMR_SERVERLESS_ROLE_ARN": "arn:aws:iam::123456789012:role/job",
                        "BATCH_SCORE_BUCKET": "artifacts-bucket",
                        "SCHEDULER_ROLE_ARN": "arn:aws:iam::123456789012:role/scheduler"}.items():
        monkeypatch.setenv(name, value)
    return {name: load_profile(ROOT / "conf" / f"{name}.yaml") for name in ("emr", "emr-serverless")}


def job(*settings: str):
    return load_job(ROOT / "conf/jobs/data_pricing.yaml", [s for s in JOB_SETTINGS if s != "--set"] + list(settings))


@pytest.mark.parametrize("setting, field", [
    (f"spark_conf.spark.hadoop.fs.s3a.secret.key={FAKE_SECRET}", "spark_conf.spark.hadoop.fs.s3a.secret.key"),
    (f"spark_conf.spark.executorEnv.AWS_ACCESS_KEY_ID={FAKE_KEY_ID}", "spark_conf.spark.executorEnv.AWS_ACCESS_KEY_ID"),
    (f"spark_conf.spark.driver.extraJavaOptions=-Dkey.id={FAKE_KEY_ID}", "spark_conf.spark.driver.extraJavaOptions"),
    ("source.path=s3a://user:pw@data-bucket/bundle_sales", "source.path"),
])
def test_a_credential_is_refused_for_every_emr_request(profiles, setting, field):
    bad = job(setting)
    for profile in profiles.values():
        with pytest.raises(ConfigError) as error:
            check_no_credentials(profile, bad)
        message = str(error.value)
        assert f"job field {field}" in message
        assert "instance profile" in message and "execution role" in message and "Secrets Manager" in message
        assert FAKE_SECRET not in message and FAKE_KEY_ID not in message
    with pytest.raises(ConfigError):
        emr_step.step_arguments(profiles["emr"], bad, STAGED, "2026-11-22")
    with pytest.raises(ConfigError):
        emr_serverless.spark_submit_parameters(profiles["emr-serverless"], bad, STAGED)


def test_the_shipped_jobs_and_profiles_hold_no_credential(profiles):
    for path in sorted((ROOT / "conf/jobs").glob("*.yaml")):
        for profile in profiles.values():
            check_no_credentials(profile, load_job(path))


def test_the_rendered_upload_goes_through_the_redactor(profiles):
    bad = job(f"spark_conf.spark.hadoop.fs.s3a.secret.key={FAKE_SECRET}")
    rendered = render_yaml(bad).decode()
    assert FAKE_SECRET not in rendered
    assert yaml.safe_load(rendered)["spark_conf"]["spark.hadoop.fs.s3a.secret.key"] == "***"
    good = job()
    assert yaml.safe_load(render_yaml(good)) == good.model_dump(mode="json", by_alias=True, exclude_none=True)


def test_spark_submit_sh_refuses_before_any_upload(aws, serverless, tmp_path):
    app_id, env, profile = serverless
    result = spark_submit(aws, env, "emr-serverless", "conf/jobs/data_pricing.yaml", "--profile", str(profile),
                          "--run-date", "2026-11-22", "--archive", str(venv_archive(tmp_path / "env.tar.gz", "3.11")),
                          "--out", str(tmp_path / "dist"), *JOB_SETTINGS,
                          "--set", f"spark_conf.spark.hadoop.fs.s3a.secret.key={FAKE_SECRET}")
    assert result.returncode == 2, result.stderr[-2000:]
    assert "job field spark_conf.spark.hadoop.fs.s3a.secret.key: holds a credential" in result.stderr
    assert FAKE_SECRET not in result.stderr + result.stdout
    assert artifact_keys(aws) == []  # refused before the package was built or anything uploaded
