"""What every benchmark script shares: the Spark session it measures in, and the stopwatch.

Benchmarks run stages one after the other in one session, on the same data, and print ratios;
timings are never asserted in tests.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable


def make_session(
    cores: int, app_name: str, batch_rows: int = 10_000, extra_conf: dict | None = None
):
    """A local[cores] SparkSession sized for a 2-core, 24 GiB machine (no Delta needed).

    ``batch_rows`` is ``spark.sql.execution.arrow.maxRecordsPerBatch``, the rows per Arrow
    batch sent to the Python workers (the shipped profiles use 10,000); ``extra_conf`` adds
    settings (e.g. the event log of :func:`benchmarks.spark_profile.event_log_conf`).
    """
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder
    for key, value in (extra_conf or {}).items():
        builder = builder.config(key, value)
    return (
        builder.master(f"local[{cores}]")
        .appName(app_name)
        .config("spark.driver.memory", "6g")
        .config("spark.sql.shuffle.partitions", str(cores * 4))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(batch_rows))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.log.level", "ERROR")
        .getOrCreate()
    )


def timed(label: str, action: Callable[[], object]) -> tuple[str, float]:
    """Run ``action`` once; return (label, wall-clock seconds) and print it."""
    started = time.perf_counter()
    action()
    seconds = time.perf_counter() - started
    print(f"  {label:<12} {seconds:8.1f} s", flush=True)
    return label, seconds


def print_table(report: dict) -> None:
    """Print a report's stages (seconds, rows/s per core, x floor) and ratios as a table."""
    print(f"\n{'stage':<12} {'seconds':>9} {'rows/s/core':>12} {'x floor':>8}")
    for name, stage in report["stages"].items():
        print(f"{name:<12} {stage['seconds']:>9.1f} {stage['rows_per_s_per_core']:>12,} "
              f"{stage['x_floor']:>8.2f}")
    for name, value in report["ratios"].items():
        print(f"{name}: {value}x")
