"""The reject budget and the reconciliation checks, and their config field (no Spark)."""

from __future__ import annotations

from pathlib import Path

import pytest

from batch_scoring.jobs.commit import RunCounts, check_reject_budget, reconcile
from batch_scoring.jobs.config import load_job
from batch_scoring.jobs.errors import (
    ConfigError,
    JobError,
    ReconciliationError,
    RejectBudgetExceeded,
)

ROOT = Path(__file__).resolve().parents[2]
JOB_FILE = ROOT / "conf" / "jobs" / "data_pricing.yaml"


def test_max_reject_fraction_defaults_to_no_limit_and_accepts_0_to_1():
    assert load_job(JOB_FILE).output.max_reject_fraction is None
    assert load_job(JOB_FILE, ["output.max_reject_fraction=0.05"]).output.max_reject_fraction == 0.05
    assert load_job(JOB_FILE, ["output.max_reject_fraction=0"]).output.max_reject_fraction == 0
    assert load_job(JOB_FILE, ["output.max_reject_fraction=1"]).output.max_reject_fraction == 1


@pytest.mark.parametrize("value", ["1.5", "-0.1", "lots"])
def test_max_reject_fraction_outside_0_to_1_is_a_config_error_naming_the_field(value):
    with pytest.raises(ConfigError, match="output.max_reject_fraction"):
        load_job(JOB_FILE, [f"output.max_reject_fraction={value}"])


def test_the_new_errors_have_their_exit_codes():
    assert issubclass(RejectBudgetExceeded, JobError) and RejectBudgetExceeded.exit_code == 4
    assert issubclass(ReconciliationError, JobError) and ReconciliationError.exit_code == 1


@pytest.mark.parametrize("limit, rejected", [(None, 100), (0.1, 10), (0.1, 0), (0.0, 0), (1.0, 100)])
def test_a_run_within_its_budget_passes(limit, rejected):
    # the rejects DataFrame is only read when the budget is exceeded
    check_reject_budget(limit, RunCounts(100, 100 - rejected, rejected), rejects=None)


def test_counts_that_add_up_reconcile_and_an_empty_run_has_no_reject_fraction():
    reconcile(RunCounts(10, 7, 3))
    reconcile(RunCounts(0, 0, 0))
    assert RunCounts(0, 0, 0).reject_fraction == 0.0
    assert RunCounts(8, 6, 2).reject_fraction == 0.25


@pytest.mark.parametrize("counts, difference", [
    (RunCounts(10, 7, 2), "+1"), (RunCounts(10, 7, 4), "-1"), (RunCounts(1_000, 0, 0), "+1,000"),
])
def test_counts_that_do_not_add_up_raise_naming_them(counts, difference):
    with pytest.raises(ReconciliationError) as error:
        reconcile(counts)
    assert str(error.value) == (
        f"rows read {counts.rows_in:,} != rows priced or scored {counts.rows_done:,} + rows "
        f"rejected {counts.rows_rejected:,} (difference {difference}): rows were lost or "
        "duplicated; nothing was committed"
    )
