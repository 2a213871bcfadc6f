"""The deploy commands: submit to EMR / EMR Serverless, schedule and unschedule.

    batch-score submit --job J.yaml --profile conf/emr.yaml [--run-date D] [--set f=v ...]
                       [--run-id R] [--attempt N] [--no-wait] [--archive A.tar.gz]
    batch-score schedule --job J.yaml --profile conf/emr-serverless.yaml [--archive A.tar.gz]
    batch-score unschedule --job J.yaml --profile conf/emr-serverless.yaml

``spark-submit.sh emr|emr-serverless|schedule|unschedule`` call these (``package`` is
:mod:`batch_scoring.jobs.deploy.packaging`). Every check that
can fail (config, the job's function and model allow-list, the endpoint, the bucket, the
cluster or application and its release, the archive's Spark line and Python) runs before
anything is uploaded or submitted. A release must run the Spark line of the archive shipped
(:func:`~batch_scoring.jobs.deploy.packaging.check_release`): EMR 8 (``emr-spark-8.x``) the
Spark 4 line, EMR 7 (``emr-7.x``) the Spark 3.5 line. A prebuilt ``--archive`` is checked by
the line it records; an archive built by the command by the line of the pyspark installed
where it runs. Exit codes: see :mod:`batch_scoring.jobs.errors`.

The submitter names the attempt (:func:`default_run_id`, or ``--run-id``), passes the name to
the entry script and prints it, so it knows where the attempt's manifest and report are. After an EMR Serverless run ended it prints
the run's Spark UI link and cost and records them with the run
(:mod:`~batch_scoring.jobs.deploy.remote_run`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence
from pathlib import Path

from batch_scoring.jobs.commit import new_run_id
from batch_scoring.jobs.config import JobConfig, PlatformProfile, load_job, load_profile, parse_run_date
from batch_scoring.jobs.deploy import archive_record, aws, emr_serverless, emr_step, packaging, remote_run, schedule
from batch_scoring.jobs.deploy.polling import RunOutcome
from batch_scoring.jobs.deploy.remote_run import RemoteRun
from batch_scoring.jobs.redaction import redact_text
from batch_scoring.jobs.deploy.staging import StagedRun, check_no_credentials, stage
from batch_scoring.jobs.errors import ConfigError, DeployError, JobError
from batch_scoring.jobs.pipeline import preflight_job
from batch_scoring.jobs.run_ids import check_run_id

AWS_TARGETS = ("emr", "emr-serverless")


def submit_main(argv: Sequence[str]) -> int:
    """``batch-score submit``: stage the run, submit it, wait for it; return the exit code."""
    return _guarded(_submit, _parser("submit", with_run=True).parse_args(argv))


def schedule_main(argv: Sequence[str]) -> int:
    """``batch-score schedule``: stage the job and create or update its schedule."""
    return _guarded(_schedule, _parser("schedule", with_run=False).parse_args(argv))


def unschedule_main(argv: Sequence[str]) -> int:
    """``batch-score unschedule``: delete the job's schedule (nothing else is removed)."""
    return _guarded(_unschedule, _parser("unschedule", with_run=False).parse_args(argv))


def _submit(args: argparse.Namespace) -> int:
    run_id = check_run_id(args.run_id) if args.run_id is not None else None
    job, profile = _load(args, AWS_TARGETS)
    run_date = parse_run_date(args.run_date)
    run_id = run_id or default_run_id(profile, job, run_date, args.attempt)
    s3 = aws.client("s3", profile.aws)
    remote = aws.client(profile.target, profile.aws)
    release = _check_target(remote, profile)
    staged = _stage(args, s3, profile, job, release)
    if profile.target == "emr":
        outcome = _run_emr_step(remote, profile, job, staged, run_date.isoformat(), run_id, args.no_wait)
    else:
        outcome = _run_emr_serverless(remote, s3, profile, job, staged, run_date, run_id, args)
    return _report(outcome, job)


def default_run_id(profile: PlatformProfile, job: JobConfig, run_date: dt.date, attempt: int) -> str:
    """The run id of a submission without ``--run-id``.

    EMR Serverless: the run's client token, ``<job>-<run date>-<attempt>``
    (:func:`~batch_scoring.jobs.deploy.emr_serverless.client_token`). The id is part of the
    request, and a request repeated with the same token must be the same request to be
    answered with the run it started (AWS's idempotent APIs refuse a token reused with other
    parameters), so submitting the same attempt again gives the same id. EMR steps have no
    token: a fresh id (:func:`~batch_scoring.jobs.commit.new_run_id`, ``20261122-020031-9f1c2ab0``).
    """
    if profile.target == "emr-serverless":
        return emr_serverless.client_token(job.job, run_date.isoformat(), attempt)
    return new_run_id(run_date)


def _schedule(args: argparse.Namespace) -> int:
    job, profile = _load(args, ("emr-serverless",))
    release = _check_target(aws.client("emr-serverless", profile.aws), profile)
    staged = _stage(args, aws.client("s3", profile.aws), profile, job, release)
    request = schedule.schedule_request(profile, job, staged)
    arn = schedule.put_schedule(aws.client("scheduler", profile.aws), request)
    print(f"schedule {arn}: {request['ScheduleExpression']} ({request['ScheduleExpressionTimezone']}), "
          f"state {request['State']}; runs log to {profile.emr_serverless.log_uri}")
    return 0


def _unschedule(args: argparse.Namespace) -> int:
    job, profile = _load(args, ("emr-serverless",), check_job=False)
    name = schedule.schedule_name(job)
    if schedule.delete_schedule(aws.client("scheduler", profile.aws), profile, job):
        print(f"deleted schedule {name}")
    else:
        print(f"there was no schedule {name}; nothing to delete")
    return 0


def _load(args: argparse.Namespace, targets: Sequence[str], check_job: bool = True
          ) -> tuple[JobConfig, PlatformProfile]:
    job = load_job(args.job, getattr(args, "set", ()))
    profile = load_profile(args.profile)
    if profile.target not in targets:
        raise ConfigError(
            f"profile {args.profile} has target {profile.target!r}; this command needs one of "
            f"{', '.join(targets)} (e.g. conf/{targets[0]}.yaml)"
        )
    if check_job:
        check_no_credentials(profile, job)  # before anything is built, uploaded or sent
        preflight_job(job)
        check_cluster_paths(job)
    return job, profile


def check_cluster_paths(job: JobConfig) -> None:
    """Fail unless every path the job reads or writes can be reached from a cluster.

    Raises:
        ConfigError: naming each field that holds a local path (source.path, output.path,
            output.rejects_path, model.uri, model.route.fallback_uri).
    """
    model, route = job.model, job.model and job.model.route
    fields = {
        "source.path": job.source.path,
        "output.path": job.output.path,
        "output.rejects_path": job.output.rejects_path,
        "model.uri": model and model.uri,
        "model.route.uri_template": route and route.uri_template,
        "model.route.fallback_uri": route and route.fallback_uri,
    }
    local = [f"{name} = {value!r}" for name, value in fields.items() if value and _is_local(value)]
    if local:
        raise ConfigError(
            "a cluster cannot read this machine's files; use s3:// paths (and runs:/, models:/ or "
            "s3:// model URIs) for: " + "; ".join(local)
        )


def _is_local(path: str) -> bool:
    scheme = path.split(":", 1)[0] if ":" in path else ""
    return scheme in ("", "file")


def _check_target(remote, profile: PlatformProfile) -> str:
    """Reach the cluster or application; return its release label."""
    if profile.target == "emr":
        return emr_step.check_cluster(remote, profile)
    return emr_serverless.check_application(remote, profile)


def _stage(args: argparse.Namespace, s3, profile: PlatformProfile, job: JobConfig, release: str) -> StagedRun:
    aws.check_bucket(s3, profile.aws.artifacts_uri, "aws.artifacts_uri")
    built = _prebuilt(args, release) if args.archive else _build(args, job, release)
    staged = stage(s3, profile, job, built)
    print(f"staged: environment {staged.archive}\n        entry point {staged.entry_point}\n"
          f"        job config {staged.job_config}")
    return staged


def _prebuilt(args: argparse.Namespace, release: str) -> packaging.BuiltPackage:
    """The ``--archive`` given, once the release fits the line and Python it records."""
    archive = Path(args.archive)
    runtime = packaging.inspect_archive(archive)
    packaging.check_release(release, runtime, prebuilt=archive)
    return packaging.BuiltPackage(wheel=packaging.build_wheel(Path(args.out)), archive=archive,
                                  python_version=runtime.python, runtime=runtime)


def _build(args: argparse.Namespace, job: JobConfig, release: str) -> packaging.BuiltPackage:
    """Build the archive here, once the release fits this environment's line and ``--python``."""
    runtime = archive_record.building_record(packaging.python_version_of(args.python))
    packaging.check_release(release, runtime)
    return packaging.build(Path(args.out), args.python, job.requirements, args.python_prefix)


def _run_emr_step(emr, profile, job, staged, run_date: str, run_id: str, no_wait: bool) -> RunOutcome | None:
    cluster = profile.emr.cluster_id
    step_id = emr_step.add_step(emr, profile, job, staged, run_date, ["--run-id", run_id])
    print(f"submitted step {step_id} to EMR cluster {cluster} ({job.job}, run date {run_date}, run id {run_id})")
    if no_wait:
        return None
    return emr_step.wait_for_step(emr, cluster, step_id, profile.aws.poll)


def _run_emr_serverless(client, s3, profile, job, staged, run_date: dt.date, run_id: str, args
                        ) -> RunOutcome | None:
    request = emr_serverless.job_run_request(profile, job, staged, run_date.isoformat(), args.attempt,
                                             ["--run-id", run_id])
    job_run_id = emr_serverless.start_job_run(client, request)
    app = profile.emr_serverless.application_id
    run_id = _started_run_id(client, app, job_run_id, run_id, args.attempt)
    print(f"started job run {job_run_id} on EMR Serverless application {app} ({request['name']}, "
          f"run id {run_id})")
    if args.no_wait:
        return None
    outcome = emr_serverless.wait_for_job_run(client, app, job_run_id, profile.aws.poll,
                                              profile.emr_serverless.log_uri)
    run = RemoteRun(application_id=app, job_run_id=job_run_id, region=profile.aws.region, run_id=run_id,
                    run_date=run_date, output_path=job.output.path)
    remote_run.record_remote_run(client, s3, profile.prices, run, outcome)
    return outcome


def _started_run_id(client, app: str, job_run_id: str, run_id: str, attempt: int) -> str:
    """The run id the job run really got: an earlier request with the same client token (the
    same job, run date and ``--attempt``) answers with its own run, started with its own id."""
    try:
        started = emr_serverless.submitted_run_id(client, app, job_run_id)
    except DeployError as error:
        print(f"warning: the job run's run id could not be read back: {redact_text(str(error))}", file=sys.stderr)
        return run_id
    if started and started != run_id:
        print(f"job run {job_run_id} was started before with the same client token (attempt {attempt}); "
              f"its run id is {started} (give --attempt {attempt + 1} to run the date again)")
        return started
    return run_id


def _report(outcome: RunOutcome | None, job: JobConfig) -> int:
    print(f"outputs: {job.output.path} (rejects: {job.output.rejects})")
    if outcome is None:
        print("not waiting (--no-wait); follow the run in the EMR console or with the AWS CLI")
        return 0
    logs = f"; logs: {outcome.log_uri}" if outcome.log_uri else ""
    if not outcome.succeeded:
        raise DeployError(f"the run ended {outcome.state}: {outcome.detail}{logs}")
    print(f"the run ended {outcome.state}{logs}")
    return 0


def _guarded(command, args: argparse.Namespace) -> int:
    try:
        return command(args)
    except JobError as error:
        print(f"error: {redact_text(str(error))}", file=sys.stderr)
        return error.exit_code


def _parser(command: str, *, with_run: bool) -> argparse.ArgumentParser:
    profile = "conf/emr.yaml" if command == "submit" else "conf/emr-serverless.yaml"
    run_date = " --run-date 2026-11-22" if command == "submit" else ""
    parser = argparse.ArgumentParser(
        prog=f"batch-score {command}",
        epilog=f"example: batch-score {command} --job conf/jobs/data_pricing.yaml --profile {profile}{run_date}")
    parser.add_argument("--job", required=True, help="job YAML file")
    parser.add_argument("--profile", required=True, help="platform profile YAML (target emr or emr-serverless)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a job field (repeatable)")
    if command == "unschedule":
        return parser
    _add_build_arguments(parser)
    parser.add_argument("--archive", help="a prebuilt environment archive instead of building one")
    if with_run:
        parser.add_argument("--run-date", help="the run's date, YYYY-MM-DD (default: today, UTC)")
        parser.add_argument("--run-id", help="the attempt's id, passed to the job and printed (any "
                            "printable text up to 512 characters; default: EMR Serverless "
                            "<job>-<run date>-<attempt>, EMR a generated id)")
        parser.add_argument("--attempt", type=int, default=1,
                            help="EMR Serverless: a new attempt for a run date already submitted")
        parser.add_argument("--no-wait", action="store_true", help="return once the run is submitted")
    return parser


def _add_build_arguments(parser: argparse.ArgumentParser) -> None:
    packaging.add_build_arguments(parser)
