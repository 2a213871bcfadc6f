"""Run a job as an EMR Serverless job run, and wait for it to end.

The run's driver and executors unpack the project's environment archive and use its Python,
on EMR 7 as on EMR 8 (a 3.11 archive runs 3.11 on EMR 7, not the release's default 3.9);
Delta comes from the release's own jars (the profile's ``jars``, at the same paths on EMR 7
and EMR 8), so the request is the same on both lines. Which release may take which archive is
:func:`~batch_scoring.jobs.deploy.packaging.check_release`'s to decide, before the upload. Logs go to
``<emr_serverless.log_uri>/applications/<application>/jobs/<run>/`` (``SPARK_DRIVER/stderr.gz``
and ``stdout.gz``, one folder per executor). The same run from the AWS CLI::

    aws emr-serverless start-job-run --application-id 00f... --execution-role-arn arn:... \\
      --name data_pricing-2026-11-22 --client-token data_pricing-2026-11-22-1 \\
      --job-driver '{"sparkSubmit": {"entryPoint": "s3://.../run_job-<sha>.py",
        "entryPointArguments": ["--job", "s3://...", "--profile", "s3://...", "--run-date", "2026-11-22",
                                "--run-id", "20261122-020031-9f1c2ab0"],
        "sparkSubmitParameters": "--conf spark.archives=s3://...#environment --conf ..."}}'

Once a run ended, :func:`job_run_facts` reads what it was billed (``GetJobRun``'s
``billedResourceUtilization``) and a link to its Spark UI (``GetDashboardForJobRun``); the
same link again, for an hour each time, with :func:`dashboard_command`'s command.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
import shlex
from collections.abc import Sequence

from batch_scoring.jobs.config import EmrServerlessConfig, JobConfig, PlatformProfile, PollConfig
from batch_scoring.jobs.deploy import aws, polling
from batch_scoring.jobs.deploy.polling import RunOutcome
from batch_scoring.jobs.deploy.staging import ARCHIVE_ALIAS, PYTHON_IN_ARCHIVE, StagedRun, check_no_credentials
from batch_scoring.jobs.errors import ConfigError, DeployError
from batch_scoring.jobs.session import spark_packages, spark_settings

SCHEDULER_EXECUTION_ID = "<aws.scheduler.execution-id>"
# CREATED and STOPPED applications start by themselves when a run arrives (auto-start).
ACCEPTING_STATES = ("CREATED", "STARTING", "STARTED", "STOPPED")
SUCCESS_STATES = ("SUCCESS",)
FAILURE_STATES = ("FAILED", "CANCELLED")
_TOKEN = re.compile(r"[A-Za-z0-9._-]{1,64}")
_TOKEN_MAX = 64


def check_application(client, profile: PlatformProfile) -> str:
    """Check that the profile's application exists, runs Spark and can take a run.

    Args:
        client: a boto3 ``emr-serverless`` client.
        profile: a profile with an ``emr_serverless`` section.

    Returns:
        The application's release label (``emr-spark-8.1.0``, ``emr-7.14.0``);
        :func:`~batch_scoring.jobs.deploy.packaging.check_release` checks it against the archive.

    Raises:
        ConfigError: when the profile has no ``emr_serverless`` section.
        DeployError: when the endpoint cannot be reached, the application does not exist, is
            not a Spark application, or is in a state that takes no runs (CREATING, STOPPING,
            TERMINATED; or stopped with auto-start turned off).
    """
    app_id = _serverless(profile).application_id
    where = f"EMR Serverless application {app_id} (emr_serverless.application_id)"
    app = aws.call(lambda: client.get_application(applicationId=app_id)["application"], where)
    if app.get("type", "").upper() != "SPARK":
        raise DeployError(f"{where} is a {app.get('type')} application; the job needs a Spark one")
    state = app["state"]
    if state not in ACCEPTING_STATES:
        accepted = ", ".join(ACCEPTING_STATES)
        raise DeployError(f"{where} is {state}{_details(app)}; it takes runs when {accepted}")
    if state in ("CREATED", "STOPPED") and not app.get("autoStartConfiguration", {}).get("enabled", True):
        raise DeployError(
            f"{where} is {state} and auto-start is off; start it with "
            f"'aws emr-serverless start-application --application-id {app_id}'"
        )
    return app["releaseLabel"]


def client_token(job_name: str, run_date: str, attempt: int = 1) -> str:
    """The idempotency token of one run: the same job, date and attempt give the same token.

    EMR Serverless accepts 1 to 64 of ``A-Z a-z 0-9 . _ -``. A token that would break that
    becomes the job name's start plus a hash of the whole. For scheduled runs (``run_date``
    is ``<aws.scheduler.scheduled-time>``) the token cannot hold the time, whose substituted
    value has ``:`` in it, and must not be a constant (EMR Serverless would answer every later
    invocation with the first run); it holds ``<aws.scheduler.execution-id>`` instead, which
    Scheduler replaces with an id of letters and digits, unique per invocation.

    Args:
        job_name: the job's name.
        run_date: ``YYYY-MM-DD``, or the Scheduler placeholder.
        attempt: 1 for the first submission of this run; raise it to run the date again.

    Returns:
        The token (for a scheduled run, valid once Scheduler has substituted it).
    """
    name = re.sub(r"[^A-Za-z0-9._-]", "_", job_name)
    if "<aws.scheduler." in run_date:
        return f"{name[:24]}-{SCHEDULER_EXECUTION_ID}"
    token = f"{job_name}-{run_date}-{attempt}"
    if _TOKEN.fullmatch(token):
        return token
    digest = hashlib.sha256(token.encode()).hexdigest()[:24]
    return f"{name[:_TOKEN_MAX - len(digest) - 1]}-{digest}"


def spark_submit_parameters(profile: PlatformProfile, job: JobConfig, staged: StagedRun) -> str:
    """The ``sparkSubmitParameters`` string: one ``--conf key=value`` per setting.

    The archive and its Python for driver and executors (``PYSPARK_DRIVER_PYTHON`` and
    ``PYSPARK_PYTHON`` of the driver, ``PYSPARK_PYTHON`` of the executors, on every release
    line), the profile's jars and packages, then every :func:`spark_settings` item. A
    ``key=value`` with spaces or quotes in it is shell-quoted; others are left bare
    (``#environment`` stays as AWS's examples write it).

    Args:
        profile: the EMR Serverless profile.
        job: the job.
        staged: the uploaded artifacts (the archive is used).

    Returns:
        The parameters as one string.

    Raises:
        ConfigError: when a setting holds a credential: ``GetJobRun`` returns these parameters
            (:func:`~batch_scoring.jobs.deploy.staging.check_no_credentials`).
    """
    check_no_credentials(profile, job)
    confs = {
        "spark.archives": f"{staged.archive}#{ARCHIVE_ALIAS}",
        "spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON": PYTHON_IN_ARCHIVE,
        "spark.emr-serverless.driverEnv.PYSPARK_PYTHON": PYTHON_IN_ARCHIVE,
        "spark.executorEnv.PYSPARK_PYTHON": PYTHON_IN_ARCHIVE,
    }
    if profile.jars:
        confs["spark.jars"] = ",".join(profile.jars)
    packages = spark_packages(profile, job)
    if packages:
        confs["spark.jars.packages"] = ",".join(packages)
    confs.update(spark_settings(profile, job))
    return " ".join(f"--conf {_shell_word(f'{key}={value}')}" for key, value in confs.items())


def job_run_request(
    profile: PlatformProfile,
    job: JobConfig,
    staged: StagedRun,
    run_date: str,
    attempt: int = 1,
    extra_args: Sequence[str] = (),
) -> dict:
    """The keyword arguments of ``start_job_run`` for one run of ``job``.

    Also the body EventBridge Scheduler sends to StartJobRun (the API's own field names).

    Args:
        profile: the EMR Serverless profile.
        job: the job.
        staged: the uploaded artifacts.
        run_date: ``YYYY-MM-DD``, or ``<aws.scheduler.scheduled-time>`` for a schedule.
        attempt: see :func:`client_token`.
        extra_args: further arguments for the entry script.

    Raises:
        ConfigError: when the profile has no ``emr_serverless`` section.
    """
    config = _serverless(profile)
    return {
        "applicationId": config.application_id,
        "executionRoleArn": config.execution_role_arn,
        "name": f"{job.job}-{run_date}",
        "clientToken": client_token(job.job, run_date, attempt),
        "jobDriver": {
            "sparkSubmit": {
                "entryPoint": staged.entry_point,
                "entryPointArguments": staged.entry_point_arguments(run_date, tuple(extra_args)),
                "sparkSubmitParameters": spark_submit_parameters(profile, job, staged),
            }
        },
        "configurationOverrides": {
            "monitoringConfiguration": {"s3MonitoringConfiguration": {"logUri": config.log_uri}}
        },
        "executionTimeoutMinutes": config.execution_timeout_minutes,
        "tags": {"job": job.job, "run_date": run_date},
    }


def start_job_run(client, request: dict) -> str:
    """Start a job run from a :func:`job_run_request`.

    Returns:
        The run's ``jobRunId``.

    Raises:
        DeployError: when EMR Serverless refuses the run or cannot be reached.
    """
    response = aws.call(
        lambda: client.start_job_run(**request),
        f"starting job run {request['name']!r} on EMR Serverless application {request['applicationId']}",
    )
    return response["jobRunId"]


def wait_for_job_run(
    client, application_id: str, job_run_id: str, poll: PollConfig, log_uri_prefix: str, **wait_options
) -> RunOutcome:
    """Poll a job run until it ends; return how it ended and where its logs are.

    Args:
        client: a boto3 ``emr-serverless`` client.
        application_id: the application's id.
        job_run_id: the run's id.
        poll: backoff and timeout (the profile's ``aws.poll``).
        log_uri_prefix: the run's S3 log prefix (``emr_serverless.log_uri``).
        wait_options: passed to :func:`polling.wait` (``sleep``, ``clock``, ``out``).

    Returns:
        The outcome: ``SUCCESS`` succeeded; ``FAILED`` or ``CANCELLED`` did not, with the
        run's ``stateDetails`` in ``detail``; ``log_uri`` is the run's log folder.

    Raises:
        DeployError: when the run does not exist, EMR Serverless cannot be reached, or the run
            has not ended after ``poll.timeout_minutes`` (the run keeps going).
    """
    def describe() -> tuple[str, str]:
        run = aws.call(
            lambda: client.get_job_run(applicationId=application_id, jobRunId=job_run_id)["jobRun"],
            f"job run {job_run_id} on EMR Serverless application {application_id}",
        )
        return run["state"], run.get("stateDetails") or ""

    state, detail = polling.wait(
        describe,
        success_states=SUCCESS_STATES,
        failure_states=FAILURE_STATES,
        poll=poll,
        what=f"EMR Serverless job run {job_run_id} on application {application_id}",
        look=f"aws emr-serverless get-job-run --application-id {application_id} --job-run-id {job_run_id}",
        **wait_options,
    )
    return RunOutcome(
        state=state,
        succeeded=state in SUCCESS_STATES,
        detail=detail,
        log_uri=job_run_log_uri(log_uri_prefix, application_id, job_run_id),
    )


@dataclasses.dataclass(frozen=True)
class JobRunFacts:
    """What EMR Serverless tells about a job run once it ended.

    Attributes:
        billed: ``billedResourceUtilization`` as AWS returns it: ``vCPUHour``, ``memoryGBHour``,
            ``storageGBHour`` (floats, hours; EMR Serverless rounds up to its billing minimums);
            empty when the response has none.
        execution_seconds: ``totalExecutionDurationSeconds`` (int), or None when absent.
        spark_ui_url: ``GetDashboardForJobRun``'s pre-signed URL of the Spark UI (the history
            server for an ended run), valid for about an hour; None when that call failed.
        spark_ui_requested_at: when the URL was asked for (UTC, ISO 8601); None with no URL.
        spark_ui_error: why there is no URL (the :class:`DeployError`'s text), else None.
    """

    billed: dict[str, float]
    execution_seconds: int | None
    spark_ui_url: str | None
    spark_ui_requested_at: str | None
    spark_ui_error: str | None = None


def job_run_facts(client, application_id: str, job_run_id: str) -> JobRunFacts:
    """Read an ended job run's billed resources and a link to its Spark UI.

    One ``GetJobRun`` and one ``GetDashboardForJobRun``. A dashboard call that fails is not
    raised: the facts then hold no URL and ``spark_ui_error`` says why.

    Args:
        client: a boto3 ``emr-serverless`` client.
        application_id: the application's id.
        job_run_id: the run's id.

    Raises:
        DeployError: when ``GetJobRun`` fails (the run does not exist, the endpoint cannot be
            reached, access is denied).
    """
    run = aws.call(
        lambda: client.get_job_run(applicationId=application_id, jobRunId=job_run_id)["jobRun"],
        f"job run {job_run_id} on EMR Serverless application {application_id}",
    )
    requested_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    try:
        url = aws.call(
            lambda: client.get_dashboard_for_job_run(applicationId=application_id, jobRunId=job_run_id)["url"],
            f"the Spark UI of job run {job_run_id} (GetDashboardForJobRun)",
        )
        error = None
    except DeployError as failure:
        url, requested_at, error = None, None, str(failure)
    return JobRunFacts(
        billed=dict(run.get("billedResourceUtilization") or {}),
        execution_seconds=run.get("totalExecutionDurationSeconds"),
        spark_ui_url=url, spark_ui_requested_at=requested_at, spark_ui_error=error,
    )


def dashboard_command(application_id: str, job_run_id: str) -> str:
    """The AWS CLI command that prints a fresh Spark UI link of a job run (valid for an hour)."""
    return (f"aws emr-serverless get-dashboard-for-job-run --application-id {application_id} "
            f"--job-run-id {job_run_id}")


def submitted_run_id(client, application_id: str, job_run_id: str) -> str | None:
    """The ``--run-id`` a job run's entry script was started with, or None when it has none.

    A ``StartJobRun`` whose client token an earlier request already used answers with that
    earlier run, whose arguments hold the run id it was given then; this reads it back.

    Raises:
        DeployError: when ``GetJobRun`` fails.
    """
    run = aws.call(
        lambda: client.get_job_run(applicationId=application_id, jobRunId=job_run_id)["jobRun"],
        f"job run {job_run_id} on EMR Serverless application {application_id}",
    )
    arguments = run.get("jobDriver", {}).get("sparkSubmit", {}).get("entryPointArguments") or []
    return next((value for flag, value in zip(arguments, arguments[1:]) if flag == "--run-id"), None)


def job_run_log_uri(log_uri_prefix: str, application_id: str, job_run_id: str) -> str:
    """Where EMR Serverless writes a run's logs under its S3 ``logUri``.

    Args:
        log_uri_prefix: the run's ``s3MonitoringConfiguration.logUri``.
        application_id: the application's id.
        job_run_id: the run's id.

    Returns:
        ``<prefix>/applications/<application_id>/jobs/<job_run_id>/``.
    """
    return f"{log_uri_prefix.rstrip('/')}/applications/{application_id}/jobs/{job_run_id}/"


def _shell_word(text: str) -> str:
    return text if re.fullmatch(r"[^\s'\"\\]+", text) else shlex.quote(text)


def _details(app: dict) -> str:
    return f" ({app['stateDetails']})" if app.get("stateDetails") else ""


def _serverless(profile: PlatformProfile) -> EmrServerlessConfig:
    if profile.emr_serverless is None:
        raise ConfigError(
            f"profile {profile.name!r} has no 'emr_serverless' section; see conf/emr-serverless.yaml"
        )
    return profile.emr_serverless
