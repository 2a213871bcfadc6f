"""The cost of a planned run, estimated from the job's latest run that recorded one.

``--dry-run`` counts the rows the run would read and prices them at the cost per million rows
read of the latest succeeded run of the same output root whose manifest has an amount: the
EMR Serverless bill (``remote.cost``, written by ``batch-score submit``) when there is one,
else the driver's executor core-seconds at ``prices.core_hour`` (``cost``,
:mod:`~batch_scoring.jobs.cost`). Cost scales with rows read only to a first approximation
(a fixed start-up part makes small runs dearer per row), so the estimate is a guide for
``output.max_cost``, not a quote. A job with no priced run yet has no estimate, and
``output.max_cost`` then refuses nothing (the plan says so).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from pyspark.sql import SparkSession

from batch_scoring.jobs.errors import CostLimitExceeded
from batch_scoring.jobs.manifest import manifest_dates, run_date_manifests

LOOKED_AT_DATES = 30


@dataclass(frozen=True)
class CostEstimate:
    """A planned run's estimated cost.

    Attributes:
        amount: estimated cost in ``currency`` units; ``rows``: rows the run would read.
        per_million_rows: the earlier run's cost per million rows read, the estimate's rate.
        basis: what the earlier run's amount measured (``EMR Serverless billed resources`` or
            ``executor core-seconds``); ``run_date`` and ``run_id``: that run.
    """

    amount: float
    currency: str
    rows: int
    per_million_rows: float
    basis: str
    run_date: str
    run_id: str

    def describe(self) -> str:
        """One line for the plan, e.g. ``about USD 0.42 (1,000,000 rows at USD 0.42 per ...)``."""
        return (f"about {self.currency} {self.amount:,.4f} ({self.rows:,} rows at {self.currency} "
                f"{self.per_million_rows:,.4f} per million rows, the {self.basis} of run "
                f"{self.run_id} of {self.run_date})")


def estimate_cost(spark: SparkSession, output_root: str, rows: int) -> CostEstimate | None:
    """Estimate a run that reads ``rows`` rows into the (resolved) ``output_root``.

    Looks at the manifests of the latest :data:`LOOKED_AT_DATES` run dates, latest first.

    Returns:
        The estimate, or None when no succeeded run there recorded an amount and rows read.
    """
    dates = itertools.islice(manifest_dates(spark, output_root), LOOKED_AT_DATES)
    for date in dates:
        for manifest in run_date_manifests(spark, output_root, date):
            rate = _priced_rate(manifest)
            if rate is not None:
                per_million, currency, basis = rate
                return CostEstimate(
                    amount=round(per_million * rows / 1_000_000, 6), currency=currency, rows=rows,
                    per_million_rows=per_million, basis=basis,
                    run_date=manifest["run_date"], run_id=manifest["run_id"],
                )
    return None


def check_cost_limit(estimate: CostEstimate | None, max_cost: float | None, currency: str) -> None:
    """Refuse a plan whose estimate is above ``max_cost`` (``output.max_cost``, ``currency``).

    Raises:
        CostLimitExceeded: when both are known and the estimate is above the limit, or the
            estimate is in another currency than the profile's prices (it cannot be compared).
    """
    if estimate is None or max_cost is None:
        return
    if estimate.currency != currency:
        raise CostLimitExceeded(
            f"output.max_cost is in {currency} (the profile's prices.currency) but the estimate is "
            f"in {estimate.currency} ({estimate.describe()}); set prices.currency to match")
    if estimate.amount > max_cost:
        raise CostLimitExceeded(
            f"the run is estimated to cost {estimate.describe()}, above output.max_cost "
            f"{currency} {max_cost:,.4f}; raise output.max_cost or narrow source.filter")


def _priced_rate(manifest: dict[str, Any]) -> tuple[float, str, str] | None:
    """``(cost per million rows read, currency, basis)`` of a succeeded, priced run, or None."""
    if manifest.get("status") != "succeeded":
        return None
    cost = (manifest.get("remote") or {}).get("cost") or manifest.get("cost") or {}
    rows = (manifest.get("rows") or {}).get("in")
    if cost.get("amount") is None or not rows:
        return None
    return float(cost["amount"]) / rows * 1_000_000, cost.get("currency", ""), cost.get("basis", "")

