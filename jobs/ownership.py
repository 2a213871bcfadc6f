"""Ownership of an output root: a table folder belongs to the one job that first wrote it.

A job's output and rejects roots each get a small marker file on their first commit::

    <root>/_batch_scoring_table.json   {"job": ..., "table": "output"|"rejects",
                                        "format": ..., "partition_by": [...], ...}

Spark, Delta and pyarrow readers skip names that start with ``_``, so the marker never shows
up as data. Before a run reads anything, :func:`check_owner` refuses a root that

* holds another job's marker (two jobs sharing one folder would replace each other's run
  dates), or this job's marker with another format or other partition columns (the old and
  the new layout cannot be read as one table);
* is not empty and has no marker: it holds someone else's files (a home folder, another
  dataset), which a Parquet partition replacement would delete and a Delta log would hide.

A root laid out as this package laid out its tables before markers existed (only
``run_date=`` folders, ``_delta_log``, ``_SUCCESS``, ``_manifests`` and hidden files, and
manifests of this job in the output root) is adopted: its marker is written on the next commit.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from pyspark.sql import SparkSession

from batch_scoring.jobs.errors import ConfigError
from batch_scoring.jobs.filesystem import (
    create_exclusive,
    is_folder,
    list_children,
    list_files,
    path_exists,
    read_text,
)

MARKER = "_batch_scoring_table.json"
MANIFEST_FOLDER = "_manifests"
_OWN_ENTRIES = ("_delta_log", "_SUCCESS", MANIFEST_FOLDER, MARKER)


class OwnershipError(ConfigError):
    """An output root belongs to someone else, or to this job with another layout (exit 2).

    Nothing is written for such a run: not even its manifest, which would land in the
    foreign folder.
    """


@dataclass(frozen=True)
class TableClaim:
    """Who a table root belongs to and how it is laid out.

    Attributes:
        job: the job's name (``job`` in its YAML).
        table: ``output`` or ``rejects``.
        format: ``delta`` or ``parquet``.
        partition_by: the partition columns, ``run_date`` first.
    """

    job: str
    table: str
    format: str
    partition_by: tuple[str, ...]

    def describe(self) -> str:
        """One line for messages: job, table, format and partition columns."""
        return (f"job {self.job!r} ({self.table}, {self.format}, partitioned by "
                f"{', '.join(self.partition_by)})")


def marker_path(root: str) -> str:
    """Where the marker of the table at ``root`` lives."""
    return f"{root.rstrip('/')}/{MARKER}"


def read_claim(spark: SparkSession, root: str) -> TableClaim | None:
    """The claim recorded at ``root``, or None when the root has no marker.

    Raises:
        OwnershipError: when the marker exists but is not a marker this package wrote.
    """
    path = marker_path(root)
    if not path_exists(spark, path):
        return None
    try:
        data = json.loads(read_text(spark, path))
        return TableClaim(data["job"], data["table"], data["format"], tuple(data["partition_by"]))
    except (ValueError, KeyError, TypeError) as error:
        raise OwnershipError(
            f"{path} is not a batch-scoring table marker ({error}); it was changed by hand or "
            "belongs to another tool: restore it or choose another output folder"
        ) from None


def check_owner(
    spark: SparkSession, root: str, claim: TableClaim, field: str, legacy_owner: Callable[[], bool]
) -> None:
    """Refuse to write ``claim``'s table into ``root`` unless it is absent, empty or ours.

    Args:
        spark: the session (its Hadoop file systems reach ``root``).
        root: the table's folder or URI, as Spark will write it.
        claim: what this run would write there.
        field: the config field that names ``root`` (for messages).
        legacy_owner: asked only for a root without a marker laid out like this package's
            tables: True when the job's output root holds manifests of this job (a root
            written before markers existed is then adopted).

    Raises:
        OwnershipError: naming the root, the field, who owns it and what to do.
    """
    found = read_claim(spark, root)
    if found is not None:
        _check_same(found, claim, root, field)
        return
    if not path_exists(spark, root):
        return
    if not is_folder(spark, root):
        raise OwnershipError(f"{field} {root} is a file, not a folder: choose a folder for the table")
    children = list_children(spark, root)
    foreign = [c for c in children if not _is_own_entry(c)]
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise OwnershipError(
            f"{field} {root} is not empty and was not created by this job (it holds {shown}, "
            f"and no {MARKER}): writing there could delete or hide those files. Choose an empty "
            "or new folder for the job's output"
        )
    if children and not legacy_owner():
        raise OwnershipError(
            f"{field} {root} holds a table without a {MARKER} and no manifest of job "
            f"{claim.job!r}: it belongs to another job or tool. Choose another folder, or move "
            "the table away"
        )


def _check_same(found: TableClaim, claim: TableClaim, root: str, field: str) -> None:
    if found.job != claim.job or found.table != claim.table:
        raise OwnershipError(
            f"{field} {root} belongs to {found.describe()}, not to {claim.describe()}: two jobs "
            "sharing one folder would replace each other's run dates. Give this job its own "
            "output.path (and output.rejects_path)"
        )
    if (found.format, found.partition_by) != (claim.format, claim.partition_by):
        raise OwnershipError(
            f"{field} {root} was written as {found.format} partitioned by "
            f"{', '.join(found.partition_by)}; this run would write {claim.format} partitioned by "
            f"{', '.join(claim.partition_by)}, and the two layouts cannot be read as one table. "
            "Keep output.format and output.partition_by, or write to a new output.path"
        )


def _is_own_entry(name: str) -> bool:
    return name in _OWN_ENTRIES or name.startswith(("run_date=", ".", "_delta_log"))


def write_claim(spark: SparkSession, root: str, claim: TableClaim, field: str) -> None:
    """Write the marker of ``claim`` at ``root`` unless one exists (then it must match).

    Raises:
        OwnershipError: when a concurrent run of another job claimed the root first.
    """
    document = {**asdict(claim), "partition_by": list(claim.partition_by),
                "created_at": dt.datetime.now(dt.timezone.utc).isoformat()}
    if not create_exclusive(spark, marker_path(root), json.dumps(document, indent=2)):
        found = read_claim(spark, root)
        if found is not None:
            _check_same(found, claim, root, field)


def manifest_jobs(spark: SparkSession, output_root: str, limit: int = 20) -> set[str]:
    """Names of the jobs whose manifests lie under ``<output_root>/_manifests`` (at most
    ``limit`` manifests are read)."""
    jobs: set[str] = set()
    for file in list_files(spark, f"{output_root.rstrip('/')}/{MANIFEST_FOLDER}")[:limit]:
        if file.endswith(".json"):
            try:
                jobs.add(json.loads(read_text(spark, file)).get("job"))
            except Exception:  # noqa: BLE001 - an unreadable manifest names no job
                continue
    return jobs


def claims_of(job: Any, targets: Any) -> list[tuple[str, str, TableClaim]]:
    """``(field, root, claim)`` of a job's output and rejects tables: the output root
    (``output.path``, also the root of a database output's manifests) and the rejects folder
    when the rejects live in one.

    Args:
        job: the :class:`~batch_scoring.jobs.config.JobConfig`.
        targets: the run's resolved :class:`~batch_scoring.jobs.commit.RunTargets`.
    """
    out = job.output
    claims = [("output.path", targets.output,
               TableClaim(job.job, "output", out.format, ("run_date", *out.partition_by)))]
    if targets.rejects_sink.in_folder:
        claims.append(("output.rejects_path", targets.rejects,
                       TableClaim(job.job, "rejects", out.format, ("run_date",))))
    return claims
