"""SIGTERM and SIGINT answered: a stopped run cancels its Spark jobs and leaves a manifest.

Schedulers stop a run with SIGTERM and, after a grace period, SIGKILL (Airflow's task timeout,
an EMR step cancel, ``timeout`` in cron); a user presses Ctrl-C (SIGINT). While
:func:`answered_signals` is active, either signal raises :class:`RunStopped` in the driver's
main thread, also while it waits on the JVM, so the entry point can cancel the Spark jobs,
write the attempt's manifest (``status: failed``, ``signal``, the phase reached) and exit
with the shell's code for the signal: 128 + its number, 143 for SIGTERM and 130 for SIGINT.
A watchdog ends the process with that code if this takes longer than the stop timeout, so
the scheduler's SIGKILL does not find it still cleaning up.
"""

from __future__ import annotations

import os
import signal
import threading

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
DEFAULT_STOP_TIMEOUT_SECONDS = 30.0


class RunStopped(BaseException):
    """The run was stopped by a signal (a ``BaseException``, like ``KeyboardInterrupt``, so
    no ``except Exception`` on the way up swallows it).

    Attributes:
        signum: the signal's number; ``name``: e.g. ``SIGTERM``; ``exit_code``: 128 + signum.
    """

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.name = signal.Signals(signum).name
        self.exit_code = 128 + signum
        super().__init__(f"stopped by {self.name}")


class StopSignals:
    """While active (``with``), SIGTERM and SIGINT raise :class:`RunStopped` in the main
    thread, and the first one is kept in ``received`` (``None`` until then).

    Kept because the JVM, stopping on the same signal to the process group, may answer a call
    with its own error, which can reach the entry point before the ``RunStopped`` or without
    it in its chain; the run is still answered as a stop. The previous handlers come back when
    the block ends. A second signal while the first is being answered is ignored (the
    watchdog bounds the time).

    Raises:
        ValueError: on entering outside the main thread (Python handles signals there only).
    """

    def __init__(self) -> None:
        self.received: RunStopped | None = None
        self._previous: dict = {}

    def __enter__(self) -> StopSignals:
        self._previous = {number: signal.signal(number, self._handle) for number in STOP_SIGNALS}
        return self

    def __exit__(self, *exc_info) -> None:
        for number, old in self._previous.items():
            signal.signal(number, old)

    def stop_behind(self, error: BaseException | None) -> RunStopped | None:
        """The stop that ended the run: one in ``error``'s chain (:func:`stop_of`), else the
        signal received while the block was active, else ``None``."""
        return stop_of(error) or self.received

    def _handle(self, signum, frame):
        for number in STOP_SIGNALS:
            signal.signal(number, signal.SIG_IGN)
        self.received = RunStopped(signum)
        raise self.received


def answered_signals() -> StopSignals:
    """A :class:`StopSignals` to use as ``with answered_signals() as signals:``."""
    return StopSignals()


def stop_of(error: BaseException | None) -> RunStopped | None:
    """The :class:`RunStopped` behind ``error``: itself, or one in its cause or context chain
    (a cleanup that failed after the signal, e.g. a call to a JVM already gone)."""
    seen, pending = set(), [error]
    while pending:
        error = pending.pop()
        if error is None or id(error) in seen:
            continue
        if isinstance(error, RunStopped):
            return error
        seen.add(id(error))
        pending += [error.__context__, error.__cause__]
    return None


def start_watchdog(seconds: float, exit_code: int) -> threading.Timer:
    """End the process with ``exit_code`` after ``seconds`` unless it has exited by then."""
    timer = threading.Timer(seconds, os._exit, args=(exit_code,))
    timer.daemon = True
    timer.start()
    return timer
