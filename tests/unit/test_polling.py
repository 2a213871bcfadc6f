"""Waiting for a remote run: backoff sequence, timeout, final states, progress lines."""

from __future__ import annotations

import io

import pytest

from batch_scoring.jobs.config import PollConfig
from batch_scoring.jobs.deploy.polling import RunOutcome, format_duration, wait
from batch_scoring.jobs.errors import DeployError


class FakeTime:
    """A clock that only moves when ``sleep`` is called; records every sleep."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def scripted(states: list[tuple[str, str]]):
    """A describe() that returns ``states`` one by one, then repeats the last."""
    calls = []

    def describe() -> tuple[str, str]:
        calls.append(len(calls))
        return states[min(len(calls) - 1, len(states) - 1)]

    describe.calls = calls
    return describe


def run_wait(describe, poll: PollConfig, time: FakeTime, out=None, look=""):
    return wait(
        describe,
        success_states={"COMPLETED"},
        failure_states={"FAILED", "CANCELLED"},
        poll=poll,
        what="EMR step s-1 on cluster j-1",
        look=look,
        sleep=time.sleep,
        clock=time.clock,
        out=out or io.StringIO(),
    )


def test_interval_doubles_up_to_the_cap():
    time = FakeTime()
    describe = scripted([("RUNNING", "")] * 7 + [("COMPLETED", "")])
    poll = PollConfig(interval_seconds=10, max_interval_seconds=45, timeout_minutes=60)

    assert run_wait(describe, poll, time) == ("COMPLETED", "")

    assert time.sleeps == [10, 20, 40, 45, 45, 45, 45]
    assert len(describe.calls) == 8


def test_final_state_on_the_first_call_does_not_sleep():
    time = FakeTime()
    poll = PollConfig(interval_seconds=10, max_interval_seconds=120, timeout_minutes=1)

    state = run_wait(scripted([("FAILED", "Step failed: exit 1")]), poll, time)

    assert state == ("FAILED", "Step failed: exit 1")
    assert time.sleeps == []


@pytest.mark.parametrize("final", ["FAILED", "CANCELLED"])
def test_failure_states_end_the_wait_with_their_detail(final):
    time = FakeTime()
    describe = scripted([("PENDING", ""), ("RUNNING", ""), (final, "killed by user")])
    poll = PollConfig(interval_seconds=1, max_interval_seconds=1, timeout_minutes=1)

    assert run_wait(describe, poll, time) == (final, "killed by user")
    assert time.sleeps == [1, 1]


def test_timeout_names_the_run_the_last_state_and_the_elapsed_time():
    time = FakeTime()
    describe = scripted([("PENDING", ""), ("RUNNING", "")])
    poll = PollConfig(interval_seconds=10, max_interval_seconds=120, timeout_minutes=1)

    with pytest.raises(DeployError) as raised:
        run_wait(describe, poll, time, look="aws emr describe-step --cluster-id j-1 --step-id s-1")

    # 10 + 20 s, then the last wait is cut to the 30 s left, then one final status call.
    assert time.sleeps == [10, 20, 30]
    assert len(describe.calls) == 4
    message = str(raised.value)
    assert "EMR step s-1 on cluster j-1" in message
    assert "last state was RUNNING" in message
    assert "after 1m 00s" in message
    assert "may still be going" in message
    assert message.endswith("look at it with: aws emr describe-step --cluster-id j-1 --step-id s-1")


def test_timeout_shorter_than_the_first_interval_waits_only_the_timeout():
    time = FakeTime()
    poll = PollConfig(interval_seconds=30, max_interval_seconds=120, timeout_minutes=0.1)

    with pytest.raises(DeployError, match=r"after 6\.0s"):
        run_wait(scripted([("RUNNING", "")]), poll, time)

    assert time.sleeps == [pytest.approx(6.0)]


def test_one_progress_line_per_state_change():
    time = FakeTime()
    out = io.StringIO()
    describe = scripted(
        [("PENDING", ""), ("PENDING", ""), ("RUNNING", ""), ("RUNNING", ""), ("COMPLETED", "done")]
    )
    poll = PollConfig(interval_seconds=2, max_interval_seconds=2, timeout_minutes=1)

    run_wait(describe, poll, time, out=out)

    assert out.getvalue().splitlines() == [
        "[0.0s] EMR step s-1 on cluster j-1: PENDING",
        "[4.0s] EMR step s-1 on cluster j-1: RUNNING",
        "[8.0s] EMR step s-1 on cluster j-1: COMPLETED: done",
    ]


def test_an_error_from_describe_propagates_without_retrying():
    time = FakeTime()
    calls = []

    def describe():
        calls.append(1)
        raise DeployError("EMR step s-1: AWS answered ThrottlingException: slow down")

    with pytest.raises(DeployError, match="ThrottlingException"):
        run_wait(describe, PollConfig(), time)
    assert len(calls) == 1 and time.sleeps == []


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.04, "0.0s"), (4.25, "4.2s"), (59.9, "59.9s"), (60, "1m 00s"), (125.4, "2m 05s"), (3723, "1h 02m 03s")],
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_run_outcome_is_immutable():
    outcome = RunOutcome(state="SUCCESS", succeeded=True, detail="", log_uri=None)
    with pytest.raises(AttributeError):
        outcome.state = "FAILED"
