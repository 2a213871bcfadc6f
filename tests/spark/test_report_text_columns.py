"""The report's text and boolean columns (jobs/report_data.py ``text_columns``) against pandas'
value counts of the same rows: top values (ties by value), the rest, nulls, and the drift."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from batch_scoring.jobs.drift import population_stability_index
from batch_scoring.jobs.report_data import OTHER, TOP_VALUES, text_columns


def rows(seed: int, skew: float) -> pd.DataFrame:
    """3,000 rows: 25 tiers with Zipf-like frequencies, a boolean, and nulls in both."""
    generator = np.random.default_rng(seed)
    weights = np.array([1 / (i + 1) ** skew for i in range(25)])
    tiers = generator.choice([f"tier-{i:02d}" for i in range(25)], size=3_000, p=weights / weights.sum())
    frame = pd.DataFrame({"tier": tiers.astype(object), "flag": generator.random(3_000) < 0.3})
    frame.loc[generator.random(3_000) < 0.05, "tier"] = None
    frame["flag"] = frame["flag"].astype(object)
    frame.loc[::97, "flag"] = None
    return frame


def top_values(values: pd.Series) -> list[str]:
    counts = values.dropna().astype(str).value_counts().reset_index()
    counts.columns = ["v", "n"]
    return counts.sort_values(["n", "v"], ascending=[False, True])["v"].head(TOP_VALUES).tolist()


def expected(values: pd.Series, categories: list[str]) -> tuple[list[tuple[str, int]], int]:
    text = values.map(lambda v: None if v is None or v is pd.NA else str(v).lower() if isinstance(v, (bool, np.bool_)) else str(v))
    named = [(c, int((text == c).sum())) for c in categories]
    return named + [(OTHER, int((text.notna() & ~text.isin(categories)).sum()))], int(text.isna().sum())


@pytest.fixture(scope="module")
def runs(spark):
    current, previous = rows(seed=1, skew=1.0), rows(seed=2, skew=0.6)
    schema = "tier string, flag boolean"
    return current, previous, spark.createDataFrame(current, schema), spark.createDataFrame(previous, schema)


def test_top_values_the_rest_and_nulls_match_pandas_for_every_column(runs):
    current, _, output, _ = runs
    tier, flag = text_columns(output, None, ["tier", "flag"])

    categories = top_values(current["tier"])
    assert len(categories) == TOP_VALUES
    assert (tier.top, tier.nulls) == expected(current["tier"], categories)
    assert tier.rows == len(current) and tier.top[-1][1] > 0  # 25 tiers: ten are the rest
    assert [name for name, _ in flag.top] == ["false", "true", OTHER]
    assert (flag.top, flag.nulls) == expected(current["flag"], ["false", "true"])
    assert tier.psi is None and tier.previous_top is None


def test_drift_compares_both_runs_over_the_union_of_their_top_values(runs):
    current, previous, output, earlier = runs
    tier, flag = text_columns(output, earlier, ["tier", "flag"])

    categories = list(dict.fromkeys(top_values(current["tier"]) + top_values(previous["tier"])))
    assert tier.top == expected(current["tier"], categories)[0]
    assert tier.previous_top == expected(previous["tier"], categories)[0]
    assert tier.psi == pytest.approx(population_stability_index(
        [n for _, n in tier.previous_top], [n for _, n in tier.top]))
    assert tier.psi > 0.01 and flag.psi < tier.psi  # the tiers' skew changed; the flag's share did not
