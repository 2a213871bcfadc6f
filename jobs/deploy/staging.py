"""Upload what a cluster run needs to the profile's ``aws.artifacts_uri``, named by content.

Layout under the artifacts prefix (every name carries a hash of its content, so an upload
never overwrites what an earlier run or schedule still points at, and an unchanged file is
not uploaded twice)::

    environments/batch-scoring-env-py3.11-<sha12>.tar.gz   venv-pack archive (see packaging)
    wheels/batch_scoring-0.1.0-py3-none-any-<sha12>.whl     the project wheel (hash of its files)
    entry/run_job-<sha12>.py                                 the spark-submit entry script
    jobs/<job>/<job>-<sha12>.yaml                            the job config, env and --set applied
    profiles/<name>-<sha12>.yaml                             the profile, env applied

The job and profile are uploaded *rendered*: ``${ENV}`` references and ``--set`` overrides
are resolved here, on the submitting machine, because the cluster has none of its variables.

No credential is ever staged or sent: neither the EMR step API (``AddJobFlowSteps``, whose
arguments ``DescribeStep`` shows to anyone allowed to describe the cluster) nor the EMR
Serverless API (``StartJobRun``, whose ``sparkSubmitParameters`` and configuration
``GetJobRun`` returns) has a field that hides a value, and spark-submit on EMR reads a
properties file only from the primary node's disk. So :func:`check_no_credentials` refuses a
job or profile holding one (exit 2) before anything is built or uploaded, and what is uploaded
goes through :func:`~batch_scoring.jobs.redaction.redact` as well. Credentials belong to the
cluster's EC2 instance profile (EMR on EC2), the job run's execution role (EMR Serverless), or
AWS Secrets Manager, read at run time by the code that needs them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import zipfile
from pathlib import Path

import yaml
from botocore.exceptions import ClientError

from batch_scoring.jobs import run_job
from batch_scoring.jobs.config import JobConfig, PlatformProfile
from batch_scoring.jobs.deploy import aws
from batch_scoring.jobs.deploy.packaging import BuiltPackage
from batch_scoring.jobs.errors import ConfigError
from batch_scoring.jobs.redaction import redact, secret_paths

ARCHIVE_ALIAS = "environment"
PYTHON_IN_ARCHIVE = f"./{ARCHIVE_ALIAS}/bin/python"


@dataclasses.dataclass(frozen=True)
class StagedRun:
    """The s3:// URIs of one run's uploaded artifacts, and the archive's Python (``"3.11"``)."""

    entry_point: str
    archive: str
    wheel: str
    job_config: str
    profile: str
    python_version: str

    def entry_point_arguments(self, run_date: str, extra: list[str] | tuple[str, ...] = ()) -> list[str]:
        """Arguments of the entry script: ``--job``, ``--profile``, ``--run-date`` and ``extra``.

        ``run_date`` is ``YYYY-MM-DD``, or a timestamp placeholder such as
        ``<aws.scheduler.scheduled-time>`` that the entry script reduces to its date.
        """
        return ["--job", self.job_config, "--profile", self.profile, "--run-date", run_date, *extra]


def stage(s3, profile: PlatformProfile, job: JobConfig, package: BuiltPackage) -> StagedRun:
    """Upload the package, entry script, job and profile; return their URIs.

    Args:
        s3: a boto3 S3 client.
        profile: a profile with ``aws`` set (target ``emr`` or ``emr-serverless``).
        job: the loaded job, overrides applied.
        package: the built wheel and environment archive.

    Raises:
        DeployError: when an upload fails (check the bucket first with ``aws.check_bucket``).
        ConfigError: when the job or profile holds a credential (:func:`check_no_credentials`).
    """
    check_no_credentials(profile, job)
    root = profile.aws.artifacts_uri
    entry = Path(run_job.__file__).read_bytes()
    job_yaml, profile_yaml = render_yaml(job), render_yaml(profile)
    archive_name = f"batch-scoring-env-py{package.python_version}-{_file_digest(package.archive)}.tar.gz"
    return StagedRun(
        archive=_upload_file(s3, package.archive, f"{root}/environments/{archive_name}"),
        wheel=_upload_file(s3, package.wheel, f"{root}/wheels/{_hashed(package.wheel.name, _wheel_digest(package.wheel))}"),
        entry_point=_upload_bytes(s3, entry, f"{root}/entry/{_hashed('run_job.py', _digest(entry))}"),
        job_config=_upload_bytes(s3, job_yaml, f"{root}/jobs/{job.job}/{_hashed(job.job + '.yaml', _digest(job_yaml))}"),
        profile=_upload_bytes(s3, profile_yaml, f"{root}/profiles/{_hashed(profile.name + '.yaml', _digest(profile_yaml))}"),
        python_version=package.python_version,
    )


def check_no_credentials(profile: PlatformProfile, job: JobConfig) -> None:
    """Refuse a job or profile that would send a credential to EMR or stage it in S3.

    A credential is what :mod:`~batch_scoring.jobs.redaction` masks: a setting under a
    credential key (``spark.hadoop.fs.s3a.secret.key``, ``spark.executorEnv.AWS_ACCESS_KEY_ID``,
    ...), a URI with a user name or password (``model.tracking_uri: https://u:p@host``), or a
    value that looks like an AWS key, a JWT or a PEM block.

    Raises:
        ConfigError: naming every offending field and where such a secret belongs instead.
    """
    found = [f"job field {path}" for path in secret_paths(_dump(job))]
    found += [f"profile field {path}" for path in secret_paths(_dump(profile))]
    if found:
        raise ConfigError(
            f"{'; '.join(found)}: holds a credential, which would be visible in the EMR request "
            "(DescribeStep / GetJobRun) and in the job file staged to S3. Remove it: give the "
            "access to the cluster's EC2 instance profile (EMR on EC2) or to the job run's "
            "execution role (EMR Serverless), or keep the secret in AWS Secrets Manager and "
            "read it at run time (see README, Security)"
        )


def render_yaml(config: JobConfig | PlatformProfile) -> bytes:
    """The config as YAML with every value resolved, passed through the redactor.

    For a config that :func:`check_no_credentials` accepts, redaction changes nothing and
    loading the YAML gives an equal config; a credential never reaches the upload.
    """
    return yaml.safe_dump(redact(_dump(config)), sort_keys=False).encode()


def _dump(config: JobConfig | PlatformProfile) -> dict:
    return config.model_dump(mode="json", by_alias=True, exclude_none=True)


def _hashed(name: str, digest: str) -> str:
    """``name`` with ``-<digest>`` before its extension: ``run_job.py`` -> ``run_job-<digest>.py``."""
    path = Path(name)
    return f"{path.stem}-{digest}{path.suffix}"


def _digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()[:12]


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]


def _wheel_digest(wheel: Path) -> str:
    """Hash of the wheel's files and their contents, not of the zip (which stamps build times)."""
    digest = hashlib.sha256()
    with zipfile.ZipFile(wheel) as archive:
        for name in sorted(archive.namelist()):
            digest.update(name.encode())
            digest.update(archive.read(name))
    return digest.hexdigest()[:12]


def _exists(s3, uri: str) -> bool:
    """True when exactly this key exists (a prefix listing would also match longer keys)."""
    bucket, key = aws.split_s3_uri(uri)
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


def _upload_file(s3, path: Path, uri: str) -> str:
    bucket, key = aws.split_s3_uri(uri)
    if not aws.call(lambda: _exists(s3, uri), f"listing {uri}"):
        aws.call(lambda: s3.upload_file(str(path), bucket, key), f"upload of {path} to {uri}")
    return uri


def _upload_bytes(s3, content: bytes, uri: str) -> str:
    bucket, key = aws.split_s3_uri(uri)
    if not aws.call(lambda: _exists(s3, uri), f"listing {uri}"):
        aws.call(lambda: s3.put_object(Bucket=bucket, Key=key, Body=content), f"upload to {uri}")
    return uri
