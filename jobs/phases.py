"""The phases of a run, each logged when it starts and when it ends, with rows and seconds.

A function job goes through ``checks`` (config, function, output tables), ``read`` (source,
partition values, malformed records, the input contract), ``quarantine``, ``bucket`` (bucket
count and the function's driver-side ``prepare``), ``price``, ``reconcile`` (counts, budgets)
and ``write`` (the output and the rejects, each committed in turn); a model job has ``model``
(resolve, check against the source, ship), ``backend`` (after ``quarantine``: the model backend
chosen, a compiled library checked on a sample) and ``score`` in place of ``bucket`` and ``price``,
and a chained job both. Spark evaluates lazily, so a phase's seconds are those
the driver spent in it: the read of the source is mostly paid in ``price`` / ``score`` and
``reconcile``, where the actions run.

The phase a run is in when it stops (an error, SIGTERM) is recorded in its manifest, and the
seconds of each phase fill the manifest's ``phases``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

log = logging.getLogger("batch_scoring")

NOT_STARTED = "start"


@dataclass
class PhaseRecord:
    """What a phase reports about itself: ``rows`` (a short text such as ``"600 rows read"``),
    shown in its end line."""

    name: str
    rows: str | None = None


@dataclass
class RunPhases:
    """The run's phases so far: seconds per phase (a phase entered twice adds up) and the
    phase it is in (``current``; ``"start"`` before the first)."""

    seconds: dict[str, float] = field(default_factory=dict)
    current: str = NOT_STARTED

    @contextmanager
    def phase(self, name: str) -> Iterator[PhaseRecord]:
        """Within the block the run is in phase ``name``; logs ``phase NAME: started`` and,
        when the block ends normally, ``phase NAME: done in S s[, ROWS]``.

        A block left by an exception (or a stop signal) keeps ``current`` at ``name``, so the
        manifest says where the run stopped, and still counts its seconds.
        """
        record = PhaseRecord(name)
        self.current = name
        log.info("phase %s: started", name)
        started = time.monotonic()
        try:
            yield record
        finally:
            elapsed = time.monotonic() - started
            self.seconds[name] = self.seconds.get(name, 0.0) + elapsed
        rows = f", {record.rows}" if record.rows else ""
        log.info("phase %s: done in %.1f s%s", name, elapsed, rows)
