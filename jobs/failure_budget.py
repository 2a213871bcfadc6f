"""The failed-work budget: how many units (or rows) may fail in the user's code before a run fails.

An exception raised by the user's function (``function_raised``) or model (``model_raised``)
is a failure of the code, not of the data, so by default (budget 0) one such failure fails the
run with exit 4 and nothing is committed, as Ray Data's ``max_errored_blocks`` defaults to 0.
The failed units or rows still go to the rejects of a run that the budget allows.

A budget is a count (``3``: at most three) or a fraction of the work (``"2%"``: at most 2 % of
the units, or rows, that reached the function or model). It is configured by
``function.max_failed_units`` and ``model.max_failed_rows``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from batch_scoring.jobs.errors import RejectBudgetExceeded

_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


class FailedWorkExceeded(RejectBudgetExceeded):
    """More units (or rows) raised in the user's function (or model) than the budget allows.

    Exit code 4, like :class:`~batch_scoring.jobs.errors.RejectBudgetExceeded`: raised before
    anything is written, so neither output nor rejects of the run are committed. The message
    names the counts, the budget's field, the first failed units and their error's last line.
    """


@dataclass(frozen=True)
class Budget:
    """A parsed budget: ``count`` (an absolute number) or ``fraction`` (0..1), exactly one set."""

    count: int | None = None
    fraction: float | None = None

    def allowed(self, total: int) -> int:
        """How many of ``total`` units or rows may fail (a fraction rounds down)."""
        if self.count is not None:
            return self.count
        return int(self.fraction * total + 1e-9)

    def describe(self) -> str:
        """The budget as configured: ``"0"`` or ``"2%"``."""
        if self.count is not None:
            return str(self.count)
        return f"{self.fraction * 100:g}%"


def parse_budget(value: int | str) -> Budget:
    """Parse a budget: a non-negative integer or a percentage string such as ``"2%"``.

    Raises:
        ValueError: for a negative count, a percentage outside 0..100, or any other text.
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a count or a percentage")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{value} is negative; give a count >= 0 or a percentage like '2%'")
        return Budget(count=value)
    if isinstance(value, str):
        if value.strip().isdigit():
            return Budget(count=int(value))
        match = _PERCENT.match(value)
        if match and float(match.group(1)) <= 100:
            return Budget(fraction=float(match.group(1)) / 100)
    raise ValueError(f"{value!r} is not a count (e.g. 3) or a percentage from 0% to 100% (e.g. '2%')")


def check_failed_work(
    field: str, value: int | str, failed: int, total: int, what: str, examples: Sequence[str],
) -> None:
    """Raise unless ``failed`` of ``total`` units or rows fit the budget ``value``.

    Args:
        field: the budget's config field, for the message (``function.max_failed_units``).
        value: the configured budget (see :func:`parse_budget`).
        failed: units (or rows) whose call raised.
        total: units (or rows) that reached the function (or model), failed ones included.
        what: ``"units raised in the function"`` or ``"rows raised in the model"``.
        examples: up to a few ``"<unit or row>: Type: message"`` texts, first failures first.

    Raises:
        FailedWorkExceeded: when ``failed`` exceeds what the budget allows; nothing committed.
            Its ``rows`` are ``{"units_failed": failed, "units_reached": total}`` (``rows_...``
            for the model) for the manifest.
    """
    budget = parse_budget(value)
    if failed <= budget.allowed(total):
        return
    share = f" ({failed / total:.2%})" if total else ""
    counted = what.split()[0]  # "units" or "rows"
    raise FailedWorkExceeded(
        f"{failed:,} of {total:,} {what}{share}, more than {field} = {budget.describe()} allows; "
        f"nothing was committed. First: {'; '.join(examples)}. Fix the code or the data, or "
        f"allow failures with --set {field}=N (a count) or --set {field}='2%' (a share); "
        "failed work then goes to the rejects",
        rows={f"{counted}_failed": failed, f"{counted}_reached": total},
    )
