"""A stop signal is recognised behind the errors of the cleanups it caused, and kept for the errors
that reach the entry point without it (jobs/stop_signals.py)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from batch_scoring.jobs.stop_signals import DEFAULT_STOP_TIMEOUT_SECONDS, RunStopped, answered_signals, stop_of


def raised_while_handling(stop: BaseException, cause: BaseException | None = None) -> BaseException:
    """A cleanup error raised while ``stop`` propagated, optionally ``raise ... from cause``."""
    try:
        try:
            raise stop
        except BaseException:
            if cause is None:
                raise RuntimeError("the JVM is gone")
            raise RuntimeError("the JVM is gone") from cause
    except RuntimeError as error:
        return error


def received(signum: signal.Signals) -> None:
    """Raise ``signum`` in this process under ``answered_signals``; the ``RunStopped`` its
    handler raises is caught."""
    try:
        signal.raise_signal(signum)
    except RunStopped:
        pass


def test_the_stop_itself_and_one_in_the_context_chain():
    stop = RunStopped(signal.SIGTERM)
    assert stop_of(stop) is stop
    assert stop_of(raised_while_handling(stop)) is stop


def test_a_stop_in_the_context_is_found_when_the_error_also_has_an_unrelated_cause():
    stop = RunStopped(signal.SIGINT)
    error = raised_while_handling(stop, cause=ValueError("py4j could not convert the Java error"))
    assert error.__cause__ is not None and error.__context__ is stop
    assert stop_of(error) is stop and stop_of(error).exit_code == 130


def test_errors_without_a_stop_are_not_stops():
    assert stop_of(None) is None
    assert stop_of(raised_while_handling(ValueError("bad value"))) is None


def test_a_signal_is_kept_for_an_error_that_reaches_the_entry_point_without_it():
    with answered_signals() as signals:
        assert signals.stop_behind(ValueError("bad value")) is None
        received(signal.SIGTERM)
        jvm_error = RuntimeError("Py4JJavaError: SparkContext was shut down")
        assert jvm_error.__context__ is None
        stop = signals.stop_behind(jvm_error)
        assert stop is signals.received
        assert (stop.name, stop.exit_code) == ("SIGTERM", 143)


def test_a_second_signal_is_ignored_and_the_first_is_kept():
    with answered_signals() as signals:
        received(signal.SIGINT)
        signal.raise_signal(signal.SIGTERM)
        assert signals.received.name == "SIGINT" and signals.received.exit_code == 130


def test_the_previous_handlers_come_back_after_the_block():
    def previous(signum, frame):
        raise AssertionError("not expected")

    before = signal.signal(signal.SIGTERM, previous)
    try:
        with answered_signals():
            assert signal.getsignal(signal.SIGTERM) is not previous
        assert signal.getsignal(signal.SIGTERM) is previous
    finally:
        signal.signal(signal.SIGTERM, before)


def test_a_stop_exits_with_the_shells_code_for_its_signal():
    assert (RunStopped(signal.SIGTERM).exit_code, RunStopped(signal.SIGINT).exit_code) == (143, 130)
    assert str(RunStopped(signal.SIGTERM)) == "stopped by SIGTERM"
    assert DEFAULT_STOP_TIMEOUT_SECONDS == 30.0  # the documented default of --stop-timeout


def test_a_stop_is_found_behind_a_cause_chain_and_a_cycle_ends():
    stop = RunStopped(signal.SIGTERM)
    wrapped = RuntimeError("py4j error")
    wrapped.__cause__ = stop
    outer = ValueError("cleanup failed")
    outer.__context__ = wrapped
    assert stop_of(outer) is stop
    first, second = ValueError("a"), ValueError("b")
    first.__context__, second.__context__ = second, first  # a cycle without a stop
    assert stop_of(first) is None


def test_an_error_behind_a_stop_wins_over_the_signal_received():
    with answered_signals() as signals:
        received(signal.SIGTERM)
        own = RunStopped(signal.SIGINT)
        assert signals.stop_behind(own) is own


WATCHDOG = """
import sys, time
from batch_scoring.jobs.stop_signals import start_watchdog
start_watchdog(float(sys.argv[1]), 143)
time.sleep(float(sys.argv[2]))
"""


def run_watchdog(seconds: float, work: float) -> tuple[int, float]:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", WATCHDOG, str(seconds), str(work)], timeout=60, check=False)
    return done.returncode, time.monotonic() - started


def test_the_watchdog_ends_a_process_still_cleaning_up_with_the_signals_code():
    code, _ = run_watchdog(0.2, 30)
    assert code == 143


def test_the_watchdog_does_not_keep_a_finished_process_alive():
    code, took = run_watchdog(20, 0)
    assert code == 0 and took < 15
