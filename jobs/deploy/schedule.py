"""Start a job on EMR Serverless on a schedule, with an EventBridge Scheduler schedule.

The schedule's target is Scheduler's universal target for EMR Serverless StartJobRun; its
input is the same request ``spark-submit.sh emr-serverless`` sends, with the run date left
as ``<aws.scheduler.scheduled-time>``. Scheduler replaces that with the invocation's time
(``2026-11-22T02:00:00Z``), which the entry script reduces to its date. Scheduler assumes
``emr_serverless.scheduler.role_arn`` to call StartJobRun, so that role needs
``emr-serverless:StartJobRun`` on the application and ``iam:PassRole`` on the job role.

The application's release is checked against the archive's Spark line when the schedule is
made (``spark-submit.sh schedule``, as for a single run); a schedule keeps pointing at that
archive, so after moving the application to a release of the other line (EMR 7 to EMR 8),
run ``schedule`` again with an archive of the new line.
"""

from __future__ import annotations

import hashlib
import json

from botocore.exceptions import ClientError

from batch_scoring.jobs.config import JobConfig, PlatformProfile, ScheduleConfig, SchedulerTargetConfig
from batch_scoring.jobs.deploy import aws
from batch_scoring.jobs.deploy.emr_serverless import job_run_request
from batch_scoring.jobs.deploy.staging import StagedRun
from batch_scoring.jobs.errors import ConfigError, DeployError

SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"
START_JOB_RUN_TARGET = "arn:aws:scheduler:::aws-sdk:emrserverless:startJobRun"
# Retries cover a failed StartJobRun call (throttling, a stopped service), not a failed run.
RETRY_POLICY = {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 3}
NAME_PREFIX = "batch-scoring-"
_NAME_MAX = 64


def schedule_name(job: JobConfig) -> str:
    """The schedule's name: ``batch-scoring-<job>``, shortened with a hash past 64 characters."""
    name = NAME_PREFIX + job.job
    if len(name) <= _NAME_MAX:
        return name
    digest = hashlib.sha256(job.job.encode()).hexdigest()[:12]
    return f"{name[:_NAME_MAX - len(digest) - 1]}-{digest}"


def schedule_request(profile: PlatformProfile, job: JobConfig, staged: StagedRun) -> dict:
    """The keyword arguments of ``create_schedule`` / ``update_schedule`` for ``job``.

    Args:
        profile: the EMR Serverless profile, with ``emr_serverless.scheduler.role_arn``.
        job: the job, with a ``schedule``.
        staged: the uploaded artifacts the scheduled runs use.

    Returns:
        Name, GroupName, ScheduleExpression(Timezone), State, FlexibleTimeWindow and Target
        (Arn, RoleArn, RetryPolicy and Input: the StartJobRun request as JSON).

    Raises:
        ConfigError: when the job has no ``schedule``, or the profile no
            ``emr_serverless.scheduler.role_arn``.
    """
    when = _schedule(job)
    target = _scheduler(profile)
    request = job_run_request(profile, job, staged, SCHEDULED_TIME)
    app_id = request["applicationId"]
    return {
        "Name": schedule_name(job),
        "GroupName": target.group_name,
        "Description": f"batch-scoring job {job.job} on EMR Serverless application {app_id}",
        "ScheduleExpression": when.expression,
        "ScheduleExpressionTimezone": when.timezone,
        "State": "ENABLED" if when.enabled else "DISABLED",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "Target": {
            "Arn": START_JOB_RUN_TARGET,
            "RoleArn": target.role_arn,
            "Input": json.dumps(request, sort_keys=True),
            "RetryPolicy": dict(RETRY_POLICY),
        },
    }


def put_schedule(scheduler, request: dict) -> str:
    """Create the schedule, or replace it when one of that name exists in its group.

    Args:
        scheduler: a boto3 ``scheduler`` client.
        request: a :func:`schedule_request`.

    Returns:
        The schedule's ARN.

    Raises:
        DeployError: when the schedule group does not exist, Scheduler refuses the schedule
            (a bad expression, time zone or role) or cannot be reached.
    """
    what = f"schedule {request['GroupName']}/{request['Name']}"
    _check_group(scheduler, request["GroupName"])
    if _get_schedule(scheduler, request["Name"], request["GroupName"]) is None:
        response = aws.call(lambda: scheduler.create_schedule(**request), f"creating {what}")
    else:
        response = aws.call(lambda: scheduler.update_schedule(**request), f"updating {what}")
    return response["ScheduleArn"]


def delete_schedule(scheduler, profile: PlatformProfile, job: JobConfig) -> bool:
    """Delete the job's schedule.

    Args:
        scheduler: a boto3 ``scheduler`` client.
        profile: the profile whose ``emr_serverless.scheduler.group_name`` holds the schedule
            (group ``default`` when the profile has no scheduler section).
        job: the job.

    Returns:
        True if a schedule was deleted, False if there was none.

    Raises:
        DeployError: when Scheduler refuses or cannot be reached.
    """
    name, group = schedule_name(job), _group_name(profile)

    def delete() -> bool:
        scheduler.delete_schedule(Name=name, GroupName=group)
        return True

    return aws.call(lambda: _unless_missing(delete, False), f"deleting schedule {group}/{name}")


def _check_group(scheduler, group: str) -> None:
    found = aws.call(
        lambda: _unless_missing(lambda: scheduler.get_schedule_group(Name=group), None),
        f"looking up schedule group {group!r} (emr_serverless.scheduler.group_name)",
    )
    if found is None:
        raise DeployError(
            f"schedule group {group!r} (emr_serverless.scheduler.group_name) does not exist; "
            f"create it with 'aws scheduler create-schedule-group --name {group}' or use 'default'"
        )


def _get_schedule(scheduler, name: str, group: str) -> dict | None:
    return aws.call(
        lambda: _unless_missing(lambda: scheduler.get_schedule(Name=name, GroupName=group), None),
        f"looking up schedule {group}/{name}",
    )


def _unless_missing(request, missing):
    try:
        return request()
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return missing
        raise


def _schedule(job: JobConfig) -> ScheduleConfig:
    if job.schedule is None:
        raise ConfigError(
            f"job {job.job!r} has no 'schedule'; add schedule.expression, e.g. "
            "--set 'schedule.expression=cron(0 2 * * ? *)'"
        )
    return job.schedule


def _scheduler(profile: PlatformProfile) -> SchedulerTargetConfig:
    config = profile.emr_serverless.scheduler if profile.emr_serverless else None
    if config is None or not config.role_arn:
        raise ConfigError(
            f"profile {profile.name!r} has no emr_serverless.scheduler.role_arn: the role "
            "EventBridge Scheduler assumes to start runs (set SCHEDULER_ROLE_ARN for "
            "conf/emr-serverless.yaml)"
        )
    return config


def _group_name(profile: PlatformProfile) -> str:
    config = profile.emr_serverless.scheduler if profile.emr_serverless else None
    return config.group_name if config else "default"
