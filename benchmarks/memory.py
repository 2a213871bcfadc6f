"""Peak memory of one benchmark stage, per process role, sampled by a background thread.

The process tree of a local-mode run: this Python process (the driver's Python side) starts
the JVM (``spark-submit`` execs ``java``: the driver, and in local mode the executor too),
and the JVM starts ``python -m pyspark.daemon``, which forks the Python workers (same command
line). Every ~0.2 s the sampler reads the resident set size (RSS) of each of them with psutil
and keeps the peak per role. Caveats: a spike shorter than the interval can be missed; RSS
counts pages a forked worker still shares with the daemon in each process (``workers_total``
over-counts them); the JVM and the reused workers keep memory from earlier stages (the start
values are recorded beside the peaks).
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass

import psutil

MIB = 1024 * 1024
INTERVAL_S = 0.2


def role(process: psutil.Process) -> str | None:
    """``"jvm"``, ``"worker"`` (pyspark.daemon or a worker forked from it) or None (other)."""
    try:
        cmdline = process.cmdline()
        name = process.name()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None
    if name == "java" or (cmdline and cmdline[0].endswith("/java")):
        return "jvm"
    if any(part.startswith(("pyspark.daemon", "pyspark.worker")) for part in cmdline):
        return "worker"
    return None


@dataclass
class Sample:
    """RSS in MiB at one instant: this process, the JVM, the largest worker, all workers."""

    driver_python: float = 0.0
    jvm: float = 0.0
    worker_max: float = 0.0
    workers_total: float = 0.0
    workers: int = 0


def _rss(process: psutil.Process) -> float:
    try:
        return process.memory_info().rss / MIB
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return 0.0


def sample(me: psutil.Process | None = None) -> Sample:
    """One reading of the driver's Python process, its JVM child and the Python workers."""
    me = me or psutil.Process()
    now = Sample(driver_python=_rss(me))
    for child in me.children(recursive=True):
        kind = role(child)
        if kind == "jvm":
            now.jvm += _rss(child)
        elif kind == "worker":
            rss = _rss(child)
            now.worker_max = max(now.worker_max, rss)
            now.workers_total += rss
            now.workers += 1
    return now


class PeakMemory:
    """Context manager: peak RSS per role while the ``with`` body runs.

    ``result()`` gives ``{"start": Sample, "peak": Sample, "samples": n}`` as plain dicts,
    MiB rounded to 1 decimal (``peak.workers`` is the most worker processes seen at once).
    """

    def __init__(self, interval_s: float = INTERVAL_S):
        self.interval_s = interval_s
        self._me = psutil.Process()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="peak-memory", daemon=True)
        self.start = Sample()
        self.peak = Sample()
        self.samples = 0

    def _take(self) -> None:
        now = sample(self._me)
        for field in ("driver_python", "jvm", "worker_max", "workers_total", "workers"):
            setattr(self.peak, field, max(getattr(self.peak, field), getattr(now, field)))
        self.samples += 1

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._take()

    def __enter__(self) -> PeakMemory:
        self.start = sample(self._me)
        self.peak = Sample(**asdict(self.start))
        self.samples = 1
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._take()

    def result(self) -> dict:
        """Start and peak readings in MiB, and the number of samples taken."""
        return {"start_mib": _rounded(self.start), "peak_mib": _rounded(self.peak),
                "samples": self.samples}


def _rounded(reading: Sample) -> dict:
    return {k: round(v, 1) if isinstance(v, float) else v for k, v in asdict(reading).items()}
