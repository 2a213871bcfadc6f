"""Distribution drift between two runs: the population stability index (PSI) of a column.

The PSI compares the share of rows in each bin of a reference run (the previous run of the job)
with the share in the current run::

    PSI = sum_i (a_i - e_i) * ln(a_i / e_i)

where ``e_i`` is the reference's share of bin ``i`` and ``a_i`` the current run's. Bins are the
reference's deciles (ten bins of about equal reference share) for numbers, and the values
themselves for text. A bin one of the runs leaves empty has its share raised to
:data:`EMPTY_BIN_SHARE` so the logarithm stays finite.

The usual reading (Siddiqi, *Credit Risk Scorecards*, Wiley 2006, ch. 8; Yurdakul, *Statistical
Properties of Population Stability Index*, Western Michigan University 2018): below 0.1 no
significant change, 0.1 to 0.25 a moderate shift worth a look, 0.25 and above a major shift.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MODERATE = 0.1
MAJOR = 0.25
EMPTY_BIN_SHARE = 1e-4
DECILES = tuple(i / 10 for i in range(1, 10))


def population_stability_index(reference_counts: Sequence[float], current_counts: Sequence[float]) -> float:
    """The PSI of the current run's bin counts against the reference's (same bins, same order).

    Args:
        reference_counts: rows of the reference run per bin (non-negative).
        current_counts: rows of the current run per bin, as many bins.

    Returns:
        The PSI (>= 0, unitless); 0.0 when both runs have the same shares.

    Raises:
        ValueError: when the two have different numbers of bins, a count is negative, or either
            run has no rows at all.
    """
    expected = np.asarray(reference_counts, dtype=float)
    actual = np.asarray(current_counts, dtype=float)
    if expected.shape != actual.shape:
        raise ValueError(f"the runs have {expected.size} and {actual.size} bins; give the same bins")
    if (expected < 0).any() or (actual < 0).any():
        raise ValueError("bin counts must not be negative")
    if expected.sum() == 0 or actual.sum() == 0:
        raise ValueError("a run with no rows has no distribution to compare")
    e = np.maximum(expected / expected.sum(), EMPTY_BIN_SHARE)
    a = np.maximum(actual / actual.sum(), EMPTY_BIN_SHARE)
    return float(np.sum((a - e) * np.log(a / e)))


def drift_band(psi: float) -> str:
    """``"stable"`` (PSI < 0.1), ``"moderate"`` (0.1 <= PSI < 0.25) or ``"major"`` (>= 0.25)."""
    if psi < MODERATE:
        return "stable"
    return "moderate" if psi < MAJOR else "major"


def inner_edges(quantiles: Sequence[float | None]) -> list[float]:
    """The bin edges between the reference's bins: its quantiles, ascending, ties removed.

    ``k`` distinct edges make ``k + 1`` bins: ``(-inf, q1)``, ``[q1, q2)``, ..., ``[qk, inf)``;
    a column with one value in the reference has one edge and two bins. Missing quantiles
    (a column of nulls) give no edges.
    """
    return sorted({float(q) for q in quantiles if q is not None and np.isfinite(q)})


def equal_width_edges(low: float, high: float, bins: int) -> list[float]:
    """``bins + 1`` edges from ``low`` to ``high`` (a single value gets a bin of width 1 around it).

    Raises:
        ValueError: when ``bins`` < 1 or ``high`` < ``low``.
    """
    if bins < 1:
        raise ValueError(f"bins is {bins}; give at least 1")
    if high < low:
        raise ValueError(f"high ({high}) is below low ({low})")
    if high == low:
        low, high = low - 0.5, high + 0.5
    return [float(x) for x in np.linspace(low, high, bins + 1)]
