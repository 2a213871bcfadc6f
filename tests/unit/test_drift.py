"""The population stability index and its bands (jobs/drift.py), on hand-computed values."""

from __future__ import annotations

import math

import pytest

from batch_scoring.jobs.drift import (
    drift_band,
    equal_width_edges,
    inner_edges,
    population_stability_index,
)


def test_psi_of_a_shift_from_even_halves_to_nine_tenths():
    # (0.9 - 0.5) ln(0.9 / 0.5) + (0.1 - 0.5) ln(0.1 / 0.5)
    expected = 0.4 * math.log(1.8) + (-0.4) * math.log(0.2)
    assert population_stability_index([50, 50], [900, 100]) == pytest.approx(expected)
    assert expected == pytest.approx(0.878889, abs=1e-6)


def test_psi_compares_shares_not_counts():
    assert population_stability_index([10, 30, 60], [100, 300, 600]) == pytest.approx(0.0, abs=1e-12)


def test_psi_is_symmetric_in_the_two_runs():
    # (a - e) ln(a / e) is unchanged when a and e swap: the PSI is the Jeffreys divergence
    assert population_stability_index([10, 30, 60], [30, 30, 40]) == pytest.approx(
        population_stability_index([30, 30, 40], [10, 30, 60]))
    assert population_stability_index([10, 30, 60], [30, 30, 40]) == pytest.approx(
        (0.3 - 0.1) * math.log(3) + (0.4 - 0.6) * math.log(0.4 / 0.6))


def test_an_empty_bin_is_raised_to_the_floor_share_and_stays_finite():
    # reference shares (1, 0 -> 1e-4), current (0.5, 0.5)
    expected = (0.5 - 1.0) * math.log(0.5 / 1.0) + (0.5 - 1e-4) * math.log(0.5 / 1e-4)
    assert population_stability_index([100, 0], [50, 50]) == pytest.approx(expected)


@pytest.mark.parametrize("reference, current, message", [
    ([1, 2], [1, 2, 3], "2 and 3 bins"),
    ([1, -1], [1, 1], "negative"),
    ([0, 0], [1, 1], "no rows"),
])
def test_bad_counts_are_refused(reference, current, message):
    with pytest.raises(ValueError, match=message):
        population_stability_index(reference, current)


@pytest.mark.parametrize("psi, band", [
    (0.0, "stable"), (0.0999, "stable"), (0.1, "moderate"), (0.2499, "moderate"), (0.25, "major"), (3.0, "major"),
])
def test_bands_follow_the_usual_thresholds(psi, band):
    assert drift_band(psi) == band


def test_inner_edges_drop_ties_missing_and_non_finite_quantiles():
    assert inner_edges([2.0, 1.0, 1.0, None, float("nan"), float("inf"), 3.5]) == [1.0, 2.0, 3.5]
    assert inner_edges([None, None]) == []


def test_equal_width_edges_and_a_single_value():
    assert equal_width_edges(0.0, 10.0, 5) == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    assert equal_width_edges(3.0, 3.0, 2) == [2.5, 3.0, 3.5]
    with pytest.raises(ValueError, match="bins is 0"):
        equal_width_edges(0.0, 1.0, 0)
    with pytest.raises(ValueError, match="below low"):
        equal_width_edges(2.0, 1.0, 3)
