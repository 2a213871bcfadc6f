"""An estimate of the applyInPandas reference's seconds when it is not run (it is slow at L).

The reference pays a fixed framework cost per unit of work on top of what the packed job
pays, so ``reference ≈ packed + units × per_unit``, with ``per_unit = (reference - packed) /
units`` taken from the earlier result on this results folder that measured both with the most
units (a harness JSON, else a ``packed_vs_reference_*.json``).
"""

from __future__ import annotations

import json
from pathlib import Path

SHIPPED = Path(__file__).resolve().parent / "results"


def _measured(stage: dict | None) -> float | None:
    if not stage or stage.get("estimated") or "seconds" not in stage:
        return None
    return float(stage["seconds"])


def per_unit_basis(results: Path) -> dict | None:
    """``{"per_unit_s", "units", "basis"}`` from the earlier result (in ``results`` or the
    repository's benchmarks/results) with both the reference and the packed job measured and the
    most units, or None when there is none."""
    best = None
    folders = dict.fromkeys(folder.resolve() for folder in (results, SHIPPED) if folder.is_dir())
    paths = [path for folder in folders for pattern in ("harness_*.json", "packed_vs_reference_*.json")
             for path in sorted(folder.glob(pattern))]
    for path in paths:
        try:
            report = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        stages = report.get("stages", {})
        reference, packed = _measured(stages.get("reference")), _measured(stages.get("packed"))
        units = report.get("units")
        if reference is None or packed is None or not units or reference <= packed:
            continue
        if best is None or units > best["units"]:
            best = {"per_unit_s": (reference - packed) / units, "units": units, "basis": path.name}
    return best


def reference_seconds(results: Path, units: int, packed_seconds: float | None) -> dict | None:
    """Estimated reference seconds for ``units`` units given this run's packed seconds.

    Returns ``{"seconds", "per_unit_ms", "basis", "estimated": True}``, or None when the packed
    job was not measured or no earlier result measured both engines.
    """
    basis = per_unit_basis(results)
    if basis is None or packed_seconds is None:
        return None
    return {
        "seconds": round(packed_seconds + units * basis["per_unit_s"], 1),
        "per_unit_ms": round(basis["per_unit_s"] * 1000, 2),
        "basis": f"{basis['basis']} ({basis['units']:,} units): packed + units x per-unit cost",
        "estimated": True,
    }
