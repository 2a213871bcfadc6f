"""The input contract applied to a pandas DataFrame: the no-Spark twin of jobs/quarantine.py.

Used where a function or model runs without Spark (one record, a local file), so bad rows get
the same reason codes there as in the Spark job: ``null_key``, ``null_value`` and
``out_of_range``; the first broken rule of a row is reported. pandas holds a missing float as
NaN, so it cannot tell a null from a NaN: both are ``null_value`` here, where Spark reports a
NaN as ``not_a_number``.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from batch_scoring.udfs.contract import ColumnRule


def split_rejects_pandas(
    pdf: pd.DataFrame, rules: Sequence[ColumnRule], keys: Sequence[str] = ()
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split ``pdf`` into rows that keep the contract and rejected rows with their reason.

    Returns:
        ``(valid, rejects)``: ``valid`` has ``pdf``'s columns; ``rejects`` adds
        ``reject_reason``, ``reject_column`` and ``reject_rule`` (str). Every row lands in
        exactly one of them, index kept.

    Raises:
        KeyError: when a rule's column is missing from ``pdf``.
    """
    checks = [(pdf[k].isna(), "null_key", k, "not null") for k in keys]
    for rule in rules:
        checks.extend(_checks_of(pdf[rule.name], rule))
    reason = pd.Series([None] * len(pdf), index=pdf.index, dtype=object)
    column = reason.copy()
    text = reason.copy()
    for broken, code, name, rule_text in reversed(checks):
        hit = broken.to_numpy(dtype=bool)
        reason[hit], column[hit], text[hit] = code, name, rule_text
    bad = reason.notna().to_numpy()
    rejects = pdf[bad].assign(
        reject_reason=reason[bad], reject_column=column[bad], reject_rule=text[bad]
    )
    return pdf[~bad], rejects


def _checks_of(values: pd.Series, rule: ColumnRule) -> list[tuple[pd.Series, str, str, str]]:
    checks = []
    if not rule.nullable:
        checks.append((values.isna(), "null_value", rule.name, "not null"))
    if rule.minimum is not None or rule.maximum is not None:
        checks.append((_out_of_range(values, rule), "out_of_range", rule.name, rule.describe_domain()))
    return checks


def _out_of_range(values: pd.Series, rule: ColumnRule) -> pd.Series:
    outside = pd.Series(False, index=values.index)
    if rule.minimum is not None:
        outside |= (values <= rule.minimum) if rule.minimum_exclusive else (values < rule.minimum)
    if rule.maximum is not None:
        outside |= (values >= rule.maximum) if rule.maximum_exclusive else (values > rule.maximum)
    return outside.fillna(False).astype(bool)
