"""After an EMR Serverless job run ended: what it cost, where its logs are, its Spark UI.

``batch-score submit`` gives the entry script the attempt's run id (``--run-id``), so it knows
where the driver writes the attempt's manifest and run report in S3
(:func:`~batch_scoring.jobs.manifest.manifest_path`, ``.json`` and ``.html``). Once the run
ended, succeeded or not, :func:`record_remote_run`

1. reads the run's billed resources and a Spark UI link
   (:func:`~batch_scoring.jobs.deploy.emr_serverless.job_run_facts`),
2. prices them at the profile's ``prices`` (:func:`~batch_scoring.jobs.cost.billed_cost`),
   per million of the manifest's ``rows.in``,
3. prints the Spark UI link and the cost,
4. rewrites the manifest with a ``remote`` field (:func:`remote_field`) and inserts a "Remote
   run" section into the report (:func:`~batch_scoring.jobs.report_html.insert_remote_section`).

The pre-signed Spark UI URL is printed, never stored: it expires after an hour and lets
whoever holds it open the UI. The manifest and the report keep the command that makes a new
one. Nothing here fails the command: the run has ended and its exit code is the run's; a fact
that cannot be read or recorded is a warning on stderr.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sys
from typing import Any, TextIO

from batch_scoring.jobs.config import PricesConfig
from batch_scoring.jobs.cost import RunCost, billed_cost
from batch_scoring.jobs.deploy import aws, emr_serverless
from batch_scoring.jobs.deploy.emr_serverless import JobRunFacts
from batch_scoring.jobs.deploy.polling import RunOutcome
from batch_scoring.jobs.errors import DeployError
from batch_scoring.jobs.locations import canonical
from batch_scoring.jobs.manifest import manifest_path
from batch_scoring.jobs.redaction import redact_text
from batch_scoring.jobs.run_report import report_path

SERVICE = "emr-serverless"


@dataclasses.dataclass(frozen=True)
class RemoteRun:
    """One EMR Serverless job run of one attempt of a job.

    Attributes:
        application_id, job_run_id: the job run, as EMR Serverless names it.
        region: the AWS region of the application and the buckets (the profile's ``aws.region``).
        run_id: the attempt's run id (the entry script's ``--run-id``).
        run_date: the run date.
        output_path: the job's ``output.path`` (``s3://``, ``s3a://`` or ``s3n://``).
    """

    application_id: str
    job_run_id: str
    region: str
    run_id: str
    run_date: dt.date
    output_path: str

    @property
    def manifest_uri(self) -> str:
        """The attempt's manifest as an ``s3://`` URI."""
        return manifest_path(canonical(self.output_path), self.run_date, self.run_id)

    @property
    def report_uri(self) -> str:
        """The attempt's run report (beside the manifest) as an ``s3://`` URI."""
        return report_path(self.manifest_uri)


def record_remote_run(client, s3, prices: PricesConfig, run: RemoteRun, outcome: RunOutcome,
                      out: TextIO | None = None) -> dict[str, Any]:
    """Show an ended run's Spark UI link and cost; record them in its manifest and report.

    Args:
        client: a boto3 ``emr-serverless`` client.
        s3: a boto3 ``s3`` client.
        prices: the profile's prices.
        run: the job run and where its manifest is.
        outcome: how the run ended (:func:`~batch_scoring.jobs.deploy.emr_serverless.wait_for_job_run`).
        out: where the lines go (default stdout); warnings go to stderr.

    Returns:
        The ``remote`` field, as recorded (or as it would have been, without a manifest).
    """
    out = out or sys.stdout
    facts = _facts(client, run)
    manifest = _manifest(s3, run, out)
    rows = ((manifest or {}).get("rows") or {}).get("in")
    cost = billed_cost(facts.billed, prices, rows) if facts else None
    for line in remote_lines(run, facts, cost):
        print(line, file=out)
    remote = remote_field(run, outcome, facts, cost)
    if manifest is not None:
        _record(s3, run, {**manifest, "remote": remote}, out)
    return remote


def remote_lines(run: RemoteRun, facts: JobRunFacts | None, cost: RunCost | None) -> list[str]:
    """The lines ``batch-score submit`` prints about an ended run: its Spark UI and its cost.

    ``Spark UI: <url> (valid for about an hour; again with: aws emr-serverless ...)`` and
    ``cost: <RunCost.describe()>``; when a fact could not be read, a line saying so.
    """
    command = emr_serverless.dashboard_command(run.application_id, run.job_run_id)
    if facts is not None and facts.spark_ui_url:
        spark_ui = f"Spark UI: {facts.spark_ui_url} (valid for about an hour; again with: {command})"
    else:
        spark_ui = f"Spark UI: no link now; make one with: {command}"
    billed = f"cost: {cost.describe()}" if cost else "cost: unknown (GetJobRun did not answer)"
    return [spark_ui, billed]


def remote_field(run: RemoteRun, outcome: RunOutcome, facts: JobRunFacts | None,
                 cost: RunCost | None) -> dict[str, Any]:
    """The manifest's ``remote`` field (JSON types only).

    ``service`` (``emr-serverless``), ``region``, ``application_id``, ``job_run_id``, ``state``
    (the final state), ``log_uri`` (the run's S3 log folder), ``spark_ui_command`` (the AWS CLI
    command that makes a Spark UI link), ``spark_ui_requested_at`` (when the submitter made
    one, UTC ISO 8601; null when it could not), ``execution_seconds``
    (``totalExecutionDurationSeconds``), ``billed`` (``billedResourceUtilization`` as AWS
    returned it: ``vCPUHour``, ``memoryGBHour``, ``storageGBHour``) and ``cost``
    (:meth:`~batch_scoring.jobs.cost.RunCost.as_dict`); the last three are null when
    ``GetJobRun`` did not answer. The pre-signed URL itself is never stored.
    """
    return {
        "service": SERVICE,
        "region": run.region,
        "application_id": run.application_id,
        "job_run_id": run.job_run_id,
        "state": outcome.state,
        "log_uri": outcome.log_uri,
        "spark_ui_command": emr_serverless.dashboard_command(run.application_id, run.job_run_id),
        "spark_ui_requested_at": facts.spark_ui_requested_at if facts else None,
        "execution_seconds": facts.execution_seconds if facts else None,
        "billed": facts.billed if facts else None,
        "cost": cost.as_dict() if cost else None,
    }


def _facts(client, run: RemoteRun) -> JobRunFacts | None:
    try:
        facts = emr_serverless.job_run_facts(client, run.application_id, run.job_run_id)
    except DeployError as error:
        _warn(f"no cost: {error}")
        return None
    if facts.spark_ui_error:
        _warn(f"no Spark UI link: {facts.spark_ui_error}")
    return facts


def _manifest(s3, run: RemoteRun, out: TextIO) -> dict[str, Any] | None:
    """The attempt's manifest, or None (one line says why) when it is missing or unreadable."""
    uri = run.manifest_uri
    if not uri.startswith("s3://"):
        print(f"manifest: {uri} is not in S3; the remote facts are not recorded with it", file=out)
        return None
    try:
        content = aws.read_object(s3, uri)
    except DeployError as error:
        _warn(f"the run's manifest could not be read: {error}")
        return None
    if content is None:
        print(f"manifest: none at {uri} (the driver wrote none: it never started, or refused the run "
              "before Spark started; see the logs)", file=out)
        return None
    try:
        return json.loads(content)
    except ValueError as error:
        _warn(f"the run's manifest {uri} is not JSON ({error}); it is left as it is")
        return None


def _record(s3, run: RemoteRun, manifest: dict[str, Any], out: TextIO) -> None:
    from batch_scoring.jobs.report_html import insert_remote_section  # matplotlib: only here

    try:
        aws.write_object(s3, run.manifest_uri, json.dumps(manifest, indent=2).encode(), "application/json")
        print(f"manifest: {run.manifest_uri} (with the remote facts)", file=out)
        html = aws.read_object(s3, run.report_uri)
        if html is not None:
            page = insert_remote_section(html.decode("utf-8"), manifest["remote"])
            aws.write_object(s3, run.report_uri, page.encode("utf-8"), "text/html; charset=utf-8")
            print(f"report: {run.report_uri} (with a Remote run section)", file=out)
    except DeployError as error:
        _warn(f"the remote facts could not be recorded with the run: {error}")


def _warn(message: str) -> None:
    print(f"warning: {redact_text(message)}", file=sys.stderr)
