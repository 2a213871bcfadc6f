"""Progress of a run's Spark stages, polled from the driver while the run goes on.

A daemon thread asks ``SparkContext.statusTracker()`` every ``interval`` seconds for the
active stages and their tasks (done, running, total) and shows them with the run's current
phase (:mod:`~batch_scoring.jobs.phases`) and an estimate of the time left: on a terminal as
a ``rich`` progress bar, elsewhere (EMR, a scheduler's log) as a plain log line per poll that
saw a change, at most one every ``interval`` seconds::

    progress: phase price, stage 7, tasks 120/200 (8 running), 41 s in the stage, about 27 s left

The estimate assumes the stage's remaining tasks take as long as its finished ones did on
average: elapsed / done x (total - done). It is shown once a task has finished.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from rich.console import Console

log = logging.getLogger("batch_scoring")

DEFAULT_INTERVAL_SECONDS = 10.0
CONSOLE = Console(stderr=True)  # shared by the progress bar and the log lines on a terminal


@dataclass(frozen=True)
class StageProgress:
    """Tasks of the active stages at one poll (``stage`` is the newest one's id)."""

    stage: int
    done: int
    running: int
    total: int
    seconds: float

    @property
    def seconds_left(self) -> float | None:
        """elapsed / done x (total - done), or None before the first task finished."""
        if not self.done:
            return None
        return self.seconds / self.done * (self.total - self.done)

    def describe(self, phase: str) -> str:
        """The plain log line of this poll."""
        left = self.seconds_left
        estimate = f", about {left:.0f} s left" if left is not None else ""
        return (f"progress: phase {phase}, stage {self.stage}, tasks {self.done}/{self.total} "
                f"({self.running} running), {self.seconds:.0f} s in the stage{estimate}")


def poll(tracker, started: dict[int, float], now: float) -> StageProgress | None:
    """Sum the tasks of the active stages, or None when none is active.

    ``started`` remembers when each stage was first seen (seconds of ``time.monotonic``);
    stages no longer active are forgotten.
    """
    infos = [info for info in (tracker.getStageInfo(i) for i in tracker.getActiveStageIds()) if info]
    for gone in set(started) - {info.stageId for info in infos}:
        del started[gone]
    if not infos:
        return None
    for info in infos:
        started.setdefault(info.stageId, now)
    newest = max(info.stageId for info in infos)
    return StageProgress(
        stage=newest,
        done=sum(info.numCompletedTasks for info in infos),
        running=sum(info.numActiveTasks for info in infos),
        total=sum(info.numTasks for info in infos),
        seconds=now - min(started.values()),
    )


@contextmanager
def stage_progress(
    spark, phase: Callable[[], str], interval: float = DEFAULT_INTERVAL_SECONDS,
    terminal: bool | None = None, quiet: bool = False,
) -> Iterator[None]:
    """Show the Spark stages' progress while the block runs (see the module's doc).

    Args:
        spark: the run's session.
        phase: returns the run's current phase name.
        interval: seconds between polls (log lines are at most one per interval).
        terminal: a ``rich`` bar when true, log lines when false; default: whether standard
            error is a terminal.
        quiet: show nothing.
    """
    if quiet:
        yield
        return
    stop = threading.Event()
    show = _bar() if (sys.stderr.isatty() if terminal is None else terminal) else _lines()
    thread = threading.Thread(target=_watch, args=(spark.sparkContext.statusTracker(), phase, interval, stop, show),
                              name="batch-scoring-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=2)
        show(None, "")


def _watch(tracker, phase, interval, stop: threading.Event, show) -> None:
    started: dict[int, float] = {}
    while not stop.wait(interval):
        try:
            progress = poll(tracker, started, time.monotonic())
        except Exception:  # noqa: BLE001 - the JVM is stopping (end of run, a signal)
            return
        if progress is not None:
            show(progress, phase())


def _lines():
    last: list[tuple] = []

    def show(progress: StageProgress | None, phase: str) -> None:
        if progress is None:
            return
        state = (phase, progress.stage, progress.done, progress.total)
        if last and last[-1] == state:
            return
        last[:] = [state]
        log.info(progress.describe(phase))

    return show


def _bar():
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} tasks"),
                   TimeElapsedColumn(), TimeRemainingColumn(), console=CONSOLE, transient=True)
    task = bar.add_task("starting", total=None)
    bar.start()

    def show(progress: StageProgress | None, phase: str) -> None:
        if progress is None:
            bar.stop()
            return
        bar.update(task, description=f"{phase} (stage {progress.stage})", completed=progress.done,
                   total=progress.total)

    return show
