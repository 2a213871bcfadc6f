"""A run's bookkeeping in one object: session, job, run date, run id, source, targets, journal.

The pipeline (:mod:`~batch_scoring.jobs.pipeline`, :mod:`~batch_scoring.jobs.model_job`) and the
commit (:mod:`~batch_scoring.jobs.commit`) pass one :class:`RunContext` instead of the same
half-dozen arguments to every stage.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field

from pyspark.sql import SparkSession

from batch_scoring.jobs.commit import CommitJournal
from batch_scoring.jobs.config import JobConfig
from batch_scoring.jobs.sinks import RunTargets, open_targets
from batch_scoring.jobs.sources import Source, open_source


@dataclass(frozen=True)
class RunContext:
    """Everything a stage of one run needs to know besides its rows.

    Attributes:
        spark: the run's session.
        job: the job as run (overrides applied).
        run_date: the date whose rows the run owns in its outputs.
        run_id: the attempt's id, stamped on every row it writes.
        s3_scheme: how ``s3://`` paths are reached (the profile's).
        journal: hears the run's phases and commit (the manifest recorder in a real run).
        source: where the rows come from (:class:`~batch_scoring.jobs.sources.Source`).
        targets: the output and rejects tables (:class:`~batch_scoring.jobs.sinks.RunTargets`).
        started: ``time.monotonic()`` when the run started, for its seconds.
    """

    spark: SparkSession
    job: JobConfig
    run_date: dt.date
    run_id: str
    s3_scheme: str
    journal: CommitJournal
    source: Source
    targets: RunTargets
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def open(
        cls, spark: SparkSession, job: JobConfig, run_date: dt.date, run_id: str,
        s3_scheme: str = "s3a", journal: CommitJournal | None = None,
    ) -> RunContext:
        """The context of a run, its source and tables opened from the config (nothing is read
        or checked yet)."""
        return cls(spark, job, run_date, run_id, s3_scheme, journal or CommitJournal(),
                   open_source(job.source, s3_scheme), open_targets(spark, job.output, s3_scheme))

    def seconds(self) -> float:
        """Wall-clock seconds since the run started."""
        return time.monotonic() - self.started
