"""Wait for a remote run (an EMR step, an EMR Serverless job run) to reach a final state.

Status calls back off exponentially: the first wait is ``poll.interval_seconds``, each next
one twice as long, never longer than ``poll.max_interval_seconds``. After
``poll.timeout_minutes`` the wait gives up with a :class:`DeployError`; the remote run itself
is not cancelled, so the message says how to look at it.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable, Collection
from typing import TextIO

from batch_scoring.jobs.config import PollConfig
from batch_scoring.jobs.errors import DeployError


@dataclasses.dataclass(frozen=True)
class RunOutcome:
    """How a remote run ended.

    ``state`` is the service's final state (``COMPLETED``, ``FAILED``, ``SUCCESS`` ...),
    ``detail`` its reason or failure message (may be empty), ``log_uri`` where the run's logs
    are (an s3:// folder or file), or None when the service keeps none.
    """

    state: str
    succeeded: bool
    detail: str
    log_uri: str | None


def wait(
    describe: Callable[[], tuple[str, str]],
    *,
    success_states: Collection[str],
    failure_states: Collection[str],
    poll: PollConfig,
    what: str,
    look: str = "",
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    out: TextIO | None = None,
) -> tuple[str, str]:
    """Call ``describe`` until it reports a final state, backing off between calls.

    Prints one line to ``out`` (default stderr) each time the state changes.

    Args:
        describe: returns the run's current ``(state, detail)``.
        success_states: states meaning the run succeeded.
        failure_states: states meaning the run ended without success.
        poll: first and longest interval between calls, and the overall timeout.
        what: the run, as the progress lines and the timeout message name it.
        look: how to inspect the run yourself (a command), added to the timeout message.
        sleep: waits the given seconds (a fake in tests).
        clock: monotonic seconds (a fake in tests).
        out: where progress lines go.

    Returns:
        The final ``(state, detail)``, a success or a failure state.

    Raises:
        DeployError: when no final state was reached within ``poll.timeout_minutes``; also
            whatever ``describe`` raises.
    """
    final = set(success_states) | set(failure_states)
    start = clock()
    deadline = start + poll.timeout_minutes * 60
    interval = poll.interval_seconds
    last = None
    while True:
        state, detail = describe()
        if state != last:
            _progress(out, what, state, detail, clock() - start)
            last = state
        if state in final:
            return state, detail
        remaining = deadline - clock()
        if remaining <= 0:
            raise DeployError(_timeout_message(what, state, clock() - start, look))
        sleep(min(interval, remaining))
        interval = min(interval * 2, poll.max_interval_seconds)


def format_duration(seconds: float) -> str:
    """``seconds`` as ``1h 02m 03s``, ``2m 05s`` or ``4.2s``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


def _progress(out: TextIO | None, what: str, state: str, detail: str, elapsed: float) -> None:
    suffix = f": {detail}" if detail else ""
    print(f"[{format_duration(elapsed)}] {what}: {state}{suffix}", file=out or sys.stderr, flush=True)


def _timeout_message(what: str, state: str, elapsed: float, look: str) -> str:
    message = (
        f"gave up waiting for {what} after {format_duration(elapsed)}; its last state was "
        f"{state}. The run was not cancelled and may still be going"
    )
    return f"{message}; look at it with: {look}" if look else message + "."
