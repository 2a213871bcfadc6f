"""``output.mode: fail_if_run_exists`` enforced by the storage, not by a read before the write.

Two runs of one job and run date can both find the date empty and both commit; with a plain
check one of them reports success for rows that no reader will see. So a run in this mode
claims its date before its first write by creating ::

    <output.path>/_manifests/run_date=<D>/_run_date_claim    {"run_id": ..., "claimed_at": ...}

with a create-if-absent the storage makes atomic (see
:func:`~batch_scoring.jobs.filesystem.create_exclusive`: ``O_EXCL`` locally, S3's conditional
``PutObject``). Exactly one run creates it; the other stops (exit 3) naming the run that holds
the date, before it wrote anything. A run that fails before any table committed releases its
claim; one killed then leaves it, and the message says which file to delete.
``replace_run`` takes no claim: the last writer wins.
"""

from __future__ import annotations

import datetime as dt
import json

from pyspark.sql import SparkSession

from batch_scoring.jobs.errors import InputError
from batch_scoring.jobs.filesystem import create_exclusive, delete, path_exists, read_text
from batch_scoring.jobs.ownership import MANIFEST_FOLDER

CLAIM_FILE = "_run_date_claim"


class RunDateTaken(InputError):
    """``fail_if_run_exists`` and another run holds the run date (exit 3); nothing written."""


def claim_path(output_root: str, run_date: dt.date) -> str:
    """Where the claim of ``run_date`` of the output at ``output_root`` lives."""
    return f"{output_root.rstrip('/')}/{MANIFEST_FOLDER}/run_date={run_date.isoformat()}/{CLAIM_FILE}"


def check_unclaimed(spark: SparkSession, output_root: str, run_date: dt.date) -> None:
    """Refuse early, before the work, when the run date is claimed already.

    Raises:
        RunDateTaken: naming the holder.
    """
    path = claim_path(output_root, run_date)
    if path_exists(spark, path):
        raise RunDateTaken(_taken_message(spark, path, run_date))


def claim(spark: SparkSession, output_root: str, run_date: dt.date, run_id: str) -> None:
    """Claim ``run_date`` for ``run_id``, atomically.

    Raises:
        RunDateTaken: when another run created the claim first.
    """
    path = claim_path(output_root, run_date)
    document = json.dumps({"run_id": run_id,
                           "claimed_at": dt.datetime.now(dt.timezone.utc).isoformat()})
    if not create_exclusive(spark, path, document):
        raise RunDateTaken(_taken_message(spark, path, run_date))


def release(spark: SparkSession, output_root: str, run_date: dt.date) -> None:
    """Delete the claim of a run that committed nothing (best effort)."""
    try:
        delete(spark, claim_path(output_root, run_date))
    except Exception:  # noqa: BLE001 - the run's own error matters more
        pass


def _taken_message(spark: SparkSession, path: str, run_date: dt.date) -> str:
    try:
        holder = json.loads(read_text(spark, path))
        who = f"run {holder['run_id']} (claimed at {holder['claimed_at']})"
    except Exception:  # noqa: BLE001 - a claim being written is still a claim
        who = "another run"
    return (
        f"output.mode is fail_if_run_exists and run_date {run_date} is held by {who}; nothing of "
        f"this run was written. Choose another --run-date, or set output.mode=replace_run. If "
        f"that run died before writing anything, delete {path} and rerun"
    )
