"""The targets of issue 13 ("Faster than the peers on the same work"), and whether a
measurement meets them.

Per run (one size), ratios measured side by side in one harness run:

* scoring: our scorer with the compiled tree backend >= 1.5x faster than ``spark_udf`` on the
  harness's HGB model, >= 1.2x with it off (the native backend); the whole model job <= 1.1x
  our scorer alone;
* pricing: the whole data-pricing job <= 1.5x its I/O floor (stated at M and at P, 100k units),
  and >= 30x faster than ``applyInPandas`` (stated at P).

Across sizes (``--compare S P``): the largest Python worker's peak RSS flat within 20 % from
the smallest to the largest size, the driver's too, and the time ratio no worse than 1.1x the
row ratio.
"""

from __future__ import annotations

from dataclasses import dataclass

MEMORY_FLAT = 0.20
SCALING_SLACK = 1.1


@dataclass(frozen=True)
class Target:
    """``ratio`` (a key of a report's ``ratios``) must be ``>=`` or ``<=`` ``threshold``;
    ``sizes`` are the harness sizes the issue states it for (empty: every size)."""

    label: str
    ratio: str
    op: str
    threshold: float
    sizes: tuple[str, ...] = ()


RUN_TARGETS = (
    Target("scoring: compiled scorer >= 1.5x faster than spark_udf", "spark_udf_over_scorer_compiled", ">=", 1.5),
    Target("scoring: native scorer >= 1.2x faster than spark_udf", "spark_udf_over_scorer", ">=", 1.2),
    Target("scoring: whole model job <= 1.1x the scorer alone", "model_job_over_scorer", "<=", 1.1),
    Target("pricing: whole job <= 1.5x its I/O floor", "packed_over_floor", "<=", 1.5, ("M", "P")),
    Target("pricing: whole job >= 30x faster than applyInPandas", "reference_over_packed", ">=", 30.0, ("P",)),
)


def verdict(value: float | None, op: str, threshold: float) -> bool | None:
    """True/False when ``value`` meets ``op threshold``; None when there is no value."""
    if value is None:
        return None
    return value >= threshold if op == ">=" else value <= threshold


def evaluate_run(report: dict) -> list[dict]:
    """Each run target with the measured ratio, met (True / False / None = not measured) and a
    note: an estimated input, or a size the issue does not state the target for."""
    ratios, estimated = report["ratios"], set(report.get("estimated_ratios", ()))
    out = []
    for target in RUN_TARGETS:
        value = ratios.get(target.ratio)
        notes = []
        met = verdict(value, target.op, target.threshold)
        if target.ratio in estimated:
            notes.append("reference not run: ~ratio from its estimate")
            met = None
        if target.sizes and report["size"] not in target.sizes and value is not None:
            notes.append(f"stated for size {' and '.join(target.sizes)}; measured at {report['size']}")
        out.append({"target": target.label, "ratio": target.ratio, "op": target.op,
                    "threshold": target.threshold, "measured": value, "met": met,
                    "note": "; ".join(notes)})
    for label in ("Python worker", "driver"):
        out.append({"target": f"{label} peak memory flat within {MEMORY_FLAT:.0%} S->P",
                    "measured": None, "met": None,
                    "note": "across sizes: python -m benchmarks.run --compare S P"})
    return out


def met_text(met: bool | None) -> str:
    """"met", "NOT met" or "n/a" for a verdict."""
    return {True: "met", False: "NOT met", None: "n/a"}[met]
