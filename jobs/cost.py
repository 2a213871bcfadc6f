"""What a run cost: executor core-seconds from Spark, billed resources from EMR Serverless.

Two measures, each turned into money at the profile's ``prices``
(:class:`~batch_scoring.jobs.config.PricesConfig`, currency units):

* **Executor core-seconds** (every run, measured by the driver): from the Spark UI's REST API
  (``/api/v1/applications/<id>/allexecutors``, Spark's monitoring documentation), ``allocated``
  is each executor's cores times the seconds it was up (what a cluster pays for) and ``busy``
  the seconds its tasks ran (``totalDuration``). The amount is ``allocated / 3600 *
  prices.core_hour`` when a core-hour price is set, else None. With ``spark.ui.enabled=false``
  there is no REST API and no measure.
* **Billed resources** (EMR Serverless, read by the submitter after the run ended): the job
  run's ``billedResourceUtilization`` from ``GetJobRun`` (vCPU-hours, memory GB-hours,
  storage GB-hours), priced at ``vcpu_hour``, ``memory_gb_hour`` and ``storage_gb_hour``
  (AWS's EMR Serverless pricing: the sum of the three).

Both give the amount per million rows read when the row count is known.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import urllib.request
from dataclasses import asdict, dataclass
from typing import Any

from batch_scoring.jobs.config import PricesConfig

log = logging.getLogger("batch_scoring")

REST_TIMEOUT_SECONDS = 5.0
LABELS = {"allocated_core_seconds": "executor core-seconds allocated", "busy_core_seconds": "busy",
          "vcpu_hours": "vCPU-hours", "memory_gb_hours": "memory GB-hours", "storage_gb_hours": "storage GB-hours"}


@dataclass(frozen=True)
class RunCost:
    """A run's resources and what they cost.

    Attributes:
        basis: ``executor core-seconds`` or ``EMR Serverless billed resources``.
        resources: the measured quantities, e.g. ``{"allocated_core_seconds": 52.1,
            "busy_core_seconds": 31.4}`` or ``{"vcpu_hours": 1.2, "memory_gb_hours": 4.8,
            "storage_gb_hours": 0.0}``.
        amount: the cost in ``currency`` units, or None when the prices do not cover the basis.
        currency: e.g. ``USD``; ``prices_as_of``: when the prices were taken.
        per_million_rows: ``amount`` per million rows read, or None (no amount or no rows).
    """

    basis: str
    resources: dict[str, float]
    amount: float | None
    currency: str
    prices_as_of: str
    per_million_rows: float | None

    def as_dict(self) -> dict[str, Any]:
        """The cost as the manifest's ``cost`` field (JSON types only)."""
        return asdict(self)

    def describe(self) -> str:
        """One line, e.g. ``USD 0.0123 (USD 0.41 per million rows; 3.2 vCPU-hours ...)``."""
        measured = ", ".join(f"{value:,.4g} {LABELS.get(name, name)}" for name, value in self.resources.items())
        if self.amount is None:
            return f"{measured} (no price for {self.basis}: set prices.core_hour in the profile)"
        per_million = (f", {self.currency} {self.per_million_rows:,.4f} per million rows"
                       if self.per_million_rows is not None else "")
        return (f"{self.currency} {self.amount:,.4f}{per_million}; {measured} "
                f"at prices of {self.prices_as_of}")


def core_seconds_cost(allocated: float, busy: float, prices: PricesConfig, rows: int | None) -> RunCost:
    """The cost of ``allocated`` executor core-seconds (``busy`` of them running tasks).

    Args:
        allocated, busy: core-seconds (seconds times cores).
        prices: ``core_hour`` prices an allocated core-hour; None gives no amount.
        rows: rows read by the run, for the cost per million rows; None when unknown.
    """
    amount = None if prices.core_hour is None else allocated / 3600 * prices.core_hour
    return RunCost(
        basis="executor core-seconds",
        resources={"allocated_core_seconds": round(allocated, 3), "busy_core_seconds": round(busy, 3)},
        amount=_rounded(amount), currency=prices.currency, prices_as_of=prices.as_of,
        per_million_rows=_per_million(amount, rows),
    )


def billed_cost(utilization: dict[str, Any], prices: PricesConfig, rows: int | None) -> RunCost:
    """The cost of an EMR Serverless job run's ``billedResourceUtilization``.

    Args:
        utilization: ``GetJobRun``'s ``jobRun.billedResourceUtilization``: ``vCPUHour``,
            ``memoryGBHour``, ``storageGBHour`` (floats; a missing one counts as 0).
        prices: ``vcpu_hour``, ``memory_gb_hour``, ``storage_gb_hour``.
        rows: rows read by the run, for the cost per million rows; None when unknown.
    """
    vcpu = float(utilization.get("vCPUHour") or 0.0)
    memory = float(utilization.get("memoryGBHour") or 0.0)
    storage = float(utilization.get("storageGBHour") or 0.0)
    amount = vcpu * prices.vcpu_hour + memory * prices.memory_gb_hour + storage * prices.storage_gb_hour
    return RunCost(
        basis="EMR Serverless billed resources",
        resources={"vcpu_hours": vcpu, "memory_gb_hours": memory, "storage_gb_hours": storage},
        amount=_rounded(amount), currency=prices.currency, prices_as_of=prices.as_of,
        per_million_rows=_per_million(amount, rows),
    )


def executor_core_seconds(spark) -> tuple[float, float] | None:
    """``(allocated, busy)`` executor core-seconds of this application so far, or None.

    Read from the driver's own Spark UI REST API (``allexecutors``, including executors
    already removed). In local mode the driver is the executor and counts; on a cluster the
    driver has no task cores and adds nothing. None (logged at debug) when the UI is disabled
    or does not answer within :data:`REST_TIMEOUT_SECONDS`.
    """
    context = spark.sparkContext
    try:  # a stopped run may have lost the JVM
        ui, task_cpus = context.uiWebUrl, int(context.getConf().get("spark.task.cpus", "1"))
    except Exception as error:  # noqa: BLE001 - py4j errors of a JVM that is gone
        log.debug("no executor core-seconds: %s", error)
        return None
    if not ui:
        return None
    url = f"{ui.rstrip('/')}/api/v1/applications/{context.applicationId}/allexecutors"
    try:
        with urllib.request.urlopen(url, timeout=REST_TIMEOUT_SECONDS) as response:  # noqa: S310 - the driver's own UI
            executors = json.load(response)
    except (OSError, ValueError) as error:
        log.debug("no executor core-seconds from %s: %s", url, error)
        return None
    now = time.time()
    allocated = sum(e.get("totalCores", 0) * _seconds_up(e, now) for e in executors)
    busy = sum(e.get("totalDuration", 0) for e in executors) / 1000 * task_cpus
    return allocated, busy


def _seconds_up(executor: dict[str, Any], now: float) -> float:
    added = _rest_time(executor.get("addTime"))
    removed = _rest_time(executor.get("removeTime"))
    if added is None:
        return 0.0
    return max(0.0, (removed if removed is not None else now) - added)


def _rest_time(text: str | None) -> float | None:
    """Epoch seconds of a REST API time such as ``2026-12-06T21:48:49.123GMT``."""
    if not text:
        return None
    parsed = dt.datetime.strptime(text.removesuffix("GMT"), "%Y-%m-%dT%H:%M:%S.%f")
    return parsed.replace(tzinfo=dt.timezone.utc).timestamp()


def _per_million(amount: float | None, rows: int | None) -> float | None:
    return None if amount is None or not rows else _rounded(amount / rows * 1_000_000)


def _rounded(amount: float | None) -> float | None:
    return None if amount is None else round(amount, 6)
