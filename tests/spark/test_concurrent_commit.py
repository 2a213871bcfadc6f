"""Two runs of one run date committing at once: Delta keeps exactly one, and the run that
lost the race gets ConcurrentRunError naming the winner and saying nothing of it committed."""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from pyspark.sql import functions as F

from batch_scoring.jobs.commit import commit
from batch_scoring.jobs.config import load_job
from batch_scoring.jobs.errors import ConcurrentRunError
from batch_scoring.jobs.run_context import RunContext
from batch_scoring.jobs.sinks import DeltaSink

ROOT = Path(__file__).resolve().parents[2]
DAY = dt.date(2026, 11, 22)


def prices(spark, value: float, slow_seconds: float = 0.0):
    """Four priced units in one partition; writing them takes ``slow_seconds`` longer."""
    rows = spark.createDataFrame(
        [(f"s{u % 2}", f"l{u}", "p", value) for u in range(4)],
        "segment string, location string, product string, new_price double",
    ).coalesce(1)
    if not slow_seconds:
        return rows

    def slowly(batches):
        time.sleep(slow_seconds)
        yield from batches

    return rows.mapInPandas(slowly, rows.schema)


def no_rejects(spark):
    return spark.createDataFrame(pd.DataFrame({"segment": pd.Series([], dtype=str)}),
                                 "segment string").selectExpr(
        "segment", "cast(null as string) reject_reason", "cast(null as string) reject_column",
        "cast(null as string) reject_rule")


def test_the_run_that_loses_a_delta_commit_race_is_told_who_won(spark, tmp_path):
    job = load_job(ROOT / "conf/jobs/data_pricing.yaml", [
        f"source.path={tmp_path / 'sales'}", f"output.path={tmp_path / 'prices'}"])
    def attempt(run_id: str) -> RunContext:
        return RunContext.open(spark, job, DAY, run_id)

    targets = attempt("earlier").targets
    commit(attempt("earlier"), prices(spark, 1.0), no_rejects(spark))

    outcome: dict[str, BaseException | None] = {}

    def slow_run():
        try:
            commit(attempt("slow"), prices(spark, 3.0, slow_seconds=15), no_rejects(spark))
            outcome["slow"] = None
        except BaseException as error:  # noqa: BLE001 - handed to the test thread
            outcome["slow"] = error

    loser = threading.Thread(target=slow_run)
    loser.start()
    time.sleep(4)  # the slow run's transaction has started and is writing its files
    commit(attempt("fast"), prices(spark, 2.0), no_rejects(spark))
    loser.join(120)

    error = outcome["slow"]
    assert isinstance(error, ConcurrentRunError), repr(error)
    assert str(error).startswith(f"run fast committed run_date {DAY} of {targets.output} while "
                                 "this run (slow) was writing its output; nothing of this run was "
                                 "committed")
    assert error.exit_code == 6
    table = spark.read.format("delta").load(targets.output).collect()
    assert {(r["run_id"], r["new_price"]) for r in table} == {("fast", 2.0)}
    assert len(table) == 4


def test_a_delta_log_without_a_commit_yet_is_no_table(spark, tmp_path):
    """Between a concurrent run's first write creating ``_delta_log`` and its first commit, the
    folder is not a table yet: the other run must see "no rows, no schema", not fail with
    DELTA_TABLE_NOT_FOUND (it did, as exit 1, when the check was the folder's existence)."""
    table = tmp_path / "prices"
    (table / "_delta_log").mkdir(parents=True)
    sink = DeltaSink(spark, str(table), "output.path")

    assert sink.has_run(DAY) is False
    assert sink.existing_schema() is None

    prices(spark, 1.0).withColumn("run_date", F.lit(DAY)).write.format("delta").save(str(table))
    assert sink.has_run(DAY) is True
    assert sink.existing_schema().fieldNames()[-1] == "run_date"
