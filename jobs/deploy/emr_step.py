"""Run a job as a step on a running EMR on EC2 cluster, and wait for the step to end.

The step runs ``spark-submit`` through ``command-runner.jar`` in cluster deploy mode: YARN
unpacks the project's environment archive next to the driver and every executor, and both
use its Python, on EMR 7 as on EMR 8 (a 3.11 archive runs 3.11 on EMR 7, not the release's
default 3.9). Delta comes from the cluster's own jars (the profile's ``jars``), which EMR 7
and EMR 8 keep at the same paths, so the step is the same on both lines; which release may
take which archive is :func:`~batch_scoring.jobs.deploy.packaging.check_release`'s to decide,
before the upload. The same submission from a shell on the primary node would be::

    spark-submit --deploy-mode cluster --name data_pricing \\
      --jars /usr/share/aws/delta/lib/delta-spark.jar,/usr/share/aws/delta/lib/delta-storage.jar \\
      --conf spark.archives=s3://bucket/.../batch-scoring-env-py3.11-<sha>.tar.gz#environment \\
      --conf spark.yarn.appMasterEnv.PYSPARK_PYTHON=./environment/bin/python \\
      --conf spark.executorEnv.PYSPARK_PYTHON=./environment/bin/python \\
      --conf spark.sql.session.timeZone=UTC ... \\
      s3://bucket/.../entry/run_job-<sha>.py --job s3://... --profile s3://... --run-date 2026-11-22 \\
      --run-id 20261122-020031-9f1c2ab0
"""

from __future__ import annotations

from collections.abc import Sequence

from batch_scoring.jobs.config import EmrConfig, JobConfig, PlatformProfile, PollConfig
from batch_scoring.jobs.deploy import aws, polling
from batch_scoring.jobs.deploy.polling import RunOutcome
from batch_scoring.jobs.deploy.staging import ARCHIVE_ALIAS, PYTHON_IN_ARCHIVE, StagedRun, check_no_credentials
from batch_scoring.jobs.errors import ConfigError, DeployError
from batch_scoring.jobs.session import spark_packages, spark_settings

USABLE_CLUSTER_STATES = ("STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING")
SUCCESS_STATES = ("COMPLETED",)
FAILURE_STATES = ("FAILED", "CANCELLED", "INTERRUPTED")


def check_cluster(emr, profile: PlatformProfile) -> str:
    """Check that the profile's cluster exists and can take a step; return its release label.

    Args:
        emr: a boto3 EMR client.
        profile: a profile with an ``emr`` section.

    Returns:
        The cluster's ``ReleaseLabel`` (``emr-spark-8.1.0``, ``emr-7.14.0``), or ``""`` when
        it reports none; :func:`~batch_scoring.jobs.deploy.packaging.check_release` checks it
        against the archive.

    Raises:
        ConfigError: when the profile has no ``emr`` section.
        DeployError: when the endpoint cannot be reached, the cluster does not exist, or it is
            terminating or terminated.
    """
    cluster_id = _emr(profile).cluster_id
    cluster = aws.call(
        lambda: emr.describe_cluster(ClusterId=cluster_id)["Cluster"],
        f"EMR cluster {cluster_id} (emr.cluster_id)",
    )
    state = cluster["Status"]["State"]
    if state not in USABLE_CLUSTER_STATES:
        reason = cluster["Status"].get("StateChangeReason", {}).get("Message") or "no reason given"
        raise DeployError(
            f"EMR cluster {cluster_id} (emr.cluster_id) is {state} ({reason}); a step needs a "
            f"cluster in {', '.join(USABLE_CLUSTER_STATES)}. Start a cluster and set EMR_CLUSTER_ID."
        )
    return cluster.get("ReleaseLabel", "")


def step_arguments(
    profile: PlatformProfile,
    job: JobConfig,
    staged: StagedRun,
    run_date: str,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """The ``command-runner.jar`` arguments: a complete ``spark-submit`` command line.

    Always cluster deploy mode: the archive's Python (``./environment/bin/python``) exists
    only inside YARN containers, not on the primary node. ``PYSPARK_PYTHON`` of the
    application master (the driver) and of the executors point at it on every release line,
    so an EMR 7 cluster runs the archive's Python (3.11) rather than its default 3.9.

    Args:
        profile: the EMR profile (its jars, packages and Spark settings are used).
        job: the job (its name and Spark settings).
        staged: the uploaded artifacts.
        run_date: ``YYYY-MM-DD``.
        extra_args: further arguments for the entry script.

    Returns:
        The argument list, ``spark-submit`` first.

    Raises:
        ConfigError: when a setting holds a credential: step arguments are shown to anyone
            who may describe the cluster (:func:`~batch_scoring.jobs.deploy.staging.check_no_credentials`).
    """
    check_no_credentials(profile, job)
    args = ["spark-submit", "--deploy-mode", "cluster", "--name", job.job]
    packages = spark_packages(profile, job)
    if packages:
        args += ["--packages", ",".join(packages)]
    if profile.jars:
        args += ["--jars", ",".join(profile.jars)]
    confs = {
        "spark.archives": f"{staged.archive}#{ARCHIVE_ALIAS}",
        "spark.yarn.appMasterEnv.PYSPARK_PYTHON": PYTHON_IN_ARCHIVE,
        "spark.executorEnv.PYSPARK_PYTHON": PYTHON_IN_ARCHIVE,
    }
    for key, value in [*confs.items(), *spark_settings(profile, job).items()]:
        args += ["--conf", f"{key}={value}"]
    return [*args, staged.entry_point, *staged.entry_point_arguments(run_date, tuple(extra_args))]


def add_step(
    emr,
    profile: PlatformProfile,
    job: JobConfig,
    staged: StagedRun,
    run_date: str,
    extra_args: Sequence[str] = (),
) -> str:
    """Add the job as a step to the profile's cluster.

    Args:
        emr: a boto3 EMR client.
        profile, job, staged, run_date, extra_args: as :func:`step_arguments`.

    Returns:
        The new step's id (``s-XXXXXXXXXXXXX``).

    Raises:
        ConfigError: when the profile has no ``emr`` section.
        DeployError: when EMR refuses the step or cannot be reached.
    """
    emr_config = _emr(profile)
    step = {
        "Name": f"{job.job} {run_date}",
        "ActionOnFailure": emr_config.action_on_failure,
        "HadoopJarStep": {
            "Jar": "command-runner.jar",
            "Args": step_arguments(profile, job, staged, run_date, extra_args),
        },
    }
    response = aws.call(
        lambda: emr.add_job_flow_steps(JobFlowId=emr_config.cluster_id, Steps=[step]),
        f"adding step {step['Name']!r} to EMR cluster {emr_config.cluster_id}",
    )
    return response["StepIds"][0]


def wait_for_step(emr, cluster_id: str, step_id: str, poll: PollConfig, **wait_options) -> RunOutcome:
    """Poll a step until it ends; return how it ended and where its logs are.

    Args:
        emr: a boto3 EMR client.
        cluster_id: the cluster's id.
        step_id: the step's id.
        poll: backoff and timeout (the profile's ``aws.poll``).
        wait_options: passed to :func:`polling.wait` (``sleep``, ``clock``, ``out``).

    Returns:
        The outcome: ``COMPLETED`` succeeded; ``FAILED``, ``CANCELLED`` or ``INTERRUPTED``
        did not, with EMR's failure reason, message and log file in ``detail``. ``log_uri``
        is EMR's log file for the failure if it names one, else the step's folder under the
        cluster's ``LogUri`` (None when the cluster keeps no logs).

    Raises:
        DeployError: when the step does not exist, EMR cannot be reached, or the step has not
            ended after ``poll.timeout_minutes`` (the step keeps running).
    """
    last: dict = {}

    def describe() -> tuple[str, str]:
        last.update(_describe_step(emr, cluster_id, step_id))
        return last["Status"]["State"], _step_detail(last["Status"])

    state, detail = polling.wait(
        describe,
        success_states=SUCCESS_STATES,
        failure_states=FAILURE_STATES,
        poll=poll,
        what=f"EMR step {step_id} on cluster {cluster_id}",
        look=f"aws emr describe-step --cluster-id {cluster_id} --step-id {step_id}",
        **wait_options,
    )
    log_file = last["Status"].get("FailureDetails", {}).get("LogFile")
    return RunOutcome(
        state=state,
        succeeded=state in SUCCESS_STATES,
        detail=detail,
        log_uri=_s3(log_file) if log_file else step_log_uri(emr, cluster_id, step_id),
    )


def step_log_uri(emr, cluster_id: str, step_id: str) -> str | None:
    """The step's log folder, ``<cluster LogUri>/<cluster_id>/steps/<step_id>/``.

    Args:
        emr: a boto3 EMR client.
        cluster_id: the cluster's id.
        step_id: the step's id.

    Returns:
        The folder as an s3:// URI, or None when the cluster has no ``LogUri``.

    Raises:
        DeployError: when the cluster cannot be described.
    """
    cluster = aws.call(
        lambda: emr.describe_cluster(ClusterId=cluster_id)["Cluster"], f"EMR cluster {cluster_id}"
    )
    root = cluster.get("LogUri")
    if not root:
        return None
    return f"{_s3(root).rstrip('/')}/{cluster_id}/steps/{step_id}/"


def _describe_step(emr, cluster_id: str, step_id: str) -> dict:
    step = aws.call(
        lambda: emr.describe_step(ClusterId=cluster_id, StepId=step_id).get("Step"),
        f"EMR step {step_id} on cluster {cluster_id}",
    )
    if not step:
        raise DeployError(f"EMR cluster {cluster_id} has no step {step_id}")
    return step


def _step_detail(status: dict) -> str:
    failure = status.get("FailureDetails") or {}
    parts = [failure.get("Reason"), failure.get("Message")]
    if failure.get("LogFile"):
        parts.append(f"log file {failure['LogFile']}")
    parts = [part for part in parts if part] or [status.get("StateChangeReason", {}).get("Message")]
    return "; ".join(part for part in parts if part)


def _s3(uri: str) -> str:
    """EMR reports log locations as s3n://; the AWS CLI and consoles read s3://."""
    return "s3://" + uri.removeprefix("s3n://") if uri.startswith("s3n://") else uri


def _emr(profile: PlatformProfile) -> EmrConfig:
    if profile.emr is None:
        raise ConfigError(f"profile {profile.name!r} has no 'emr' section; see conf/emr.yaml")
    return profile.emr
