"""Progress of the running Spark stages, polled from SparkContext.statusTracker()."""

from __future__ import annotations

import logging
import threading
import time

import pandas as pd

from batch_scoring.jobs.progress import StageProgress, poll, stage_progress


def slow_rows(spark, tasks: int, seconds: float):
    """A job of ``tasks`` tasks, each sleeping ``seconds`` before returning its rows."""
    def sleepy(batches):
        for batch in batches:
            time.sleep(seconds)
            yield batch

    return spark.range(0, tasks * 10, numPartitions=tasks).mapInPandas(sleepy, "id long")


def test_the_estimate_is_elapsed_per_task_times_the_tasks_left():
    assert StageProgress(stage=3, done=40, running=2, total=200, seconds=20.0).seconds_left == 80.0
    assert StageProgress(stage=3, done=0, running=2, total=200, seconds=5.0).seconds_left is None
    assert StageProgress(3, 40, 2, 200, 20.0).describe("price") == (
        "progress: phase price, stage 3, tasks 40/200 (2 running), 20 s in the stage, about 80 s left")


def test_a_poll_during_a_job_counts_its_tasks(spark):
    job = threading.Thread(target=slow_rows(spark, 8, 0.5).collect)
    job.start()
    tracker, started, seen = spark.sparkContext.statusTracker(), {}, []
    while job.is_alive():
        progress = poll(tracker, started, time.monotonic())
        if progress is not None:
            seen.append(progress)
        time.sleep(0.1)
    job.join()
    assert seen and {p.total for p in seen} == {8}
    assert all(p.done >= 0 and p.running >= 0 and p.done + p.running <= 8 for p in seen)  # events lag a little
    assert [p.done for p in seen] == sorted(p.done for p in seen)  # done only grows
    assert poll(tracker, started, time.monotonic()) is None and started == {}


def test_plain_progress_lines_name_the_phase_and_the_tasks(spark, caplog):
    caplog.set_level(logging.INFO, logger="batch_scoring")
    with stage_progress(spark, lambda: "price", interval=0.3, terminal=False):
        slow_rows(spark, 6, 0.6).collect()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("progress:")]
    assert lines, "no progress line while the job ran"
    assert all(line.startswith("progress: phase price, stage ") and "/6 (" in line for line in lines)
    assert len(lines) == len(set(lines))  # a poll that saw no change prints nothing


def test_quiet_shows_nothing(spark, caplog):
    caplog.set_level(logging.INFO, logger="batch_scoring")
    with stage_progress(spark, lambda: "price", interval=0.2, terminal=False, quiet=True):
        slow_rows(spark, 4, 0.4).collect()
    assert not [r for r in caplog.records if r.getMessage().startswith("progress:")]
