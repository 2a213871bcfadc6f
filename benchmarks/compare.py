"""Scaling across sizes from saved harness reports (``python -m benchmarks.run --compare S M L``).

From the smallest to the largest size given: each stage's time ratio against its row ratio
(target: no worse than 1.1x), the driver's peak memory change (target: within 20 %), and the
largest Python worker's peak RSS next to the rows per Arrow batch at every size.
"""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmarks.report import wide_console
from benchmarks.stages import ORDER
from benchmarks.targets import MEMORY_FLAT, SCALING_SLACK, met_text, verdict


def load(name: str, results: Path) -> dict:
    """The report of size ``name`` (``results/harness_<name>.json``) or of a JSON file path."""
    path = Path(name) if name.endswith(".json") else results / f"harness_{name}.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run python -m benchmarks.run --size {name} first")
    report = json.loads(path.read_text())
    report["_file"], report["_label"] = path.name, path.stem.removeprefix("harness_")
    return report


def _measured(report: dict) -> dict:
    return {n: s for n, s in report["stages"].items() if "seconds" in s and not s.get("estimated")}


def time_scaling(base: dict, top: dict) -> list[dict]:
    """Per stage measured at both sizes: time ratio, row ratio, their quotient, and whether the
    time ratio is at most ``SCALING_SLACK`` times the row ratio."""
    small, large = _measured(base), _measured(top)
    rows = []
    for name in (n for n in large if n in small):
        time_ratio = large[name]["seconds"] / small[name]["seconds"]
        row_ratio = large[name]["rows"] / small[name]["rows"]
        quotient = time_ratio / row_ratio
        rows.append({"stage": name, "seconds": [small[name]["seconds"], large[name]["seconds"]],
                     "time_ratio": round(time_ratio, 2), "row_ratio": round(row_ratio, 2),
                     "time_over_rows": round(quotient, 2),
                     "met": verdict(quotient, "<=", SCALING_SLACK)})
    return rows


def driver_memory(base: dict, top: dict) -> list[dict]:
    """Per Spark stage measured at both sizes: peak RSS of the driver's Python process and of
    the JVM, their sum, and the Python driver's change from ``base`` to ``top``, met when it
    stays within ``MEMORY_FLAT`` (issue 13: "driver Python flat"). The JVM is shown, not
    judged: in local mode it is the executor too, so it holds the data being shuffled. The
    pandas stage is left out (it runs in the driver by design)."""
    small, large = _measured(base), _measured(top)
    rows = []
    for name in (n for n in large if n in small and n != "pandas"):
        a, b = small[name]["memory"]["peak_mib"], large[name]["memory"]["peak_mib"]
        before, after = a["driver_python"] + a["jvm"], b["driver_python"] + b["jvm"]
        change = b["driver_python"] / a["driver_python"] - 1
        rows.append({"stage": name, "driver_python_mib": [a["driver_python"], b["driver_python"]],
                     "jvm_mib": [a["jvm"], b["jvm"]], "driver_mib": [round(before), round(after)],
                     "change": round(change, 3), "met": verdict(change, "<=", MEMORY_FLAT)})
    return rows


def worker_memory(reports: list[dict]) -> list[dict]:
    """Per size: rows per Arrow batch, rows per unit of work, and the largest Python worker's
    peak RSS per stage (MiB)."""
    out = []
    for report in reports:
        stages = _measured(report)
        out.append({
            "size": report["_label"], "batch_rows": report["batch_rows"],
            "rows_per_unit": round(report["rows"]["pricing"] / report["units"], 1),
            "worker_max_mib": {n: s["memory"]["peak_mib"]["worker_max"] for n, s in stages.items()},
        })
    return out


def worker_flat(base: dict, top: dict) -> list[dict]:
    """Per Spark stage measured at both sizes: the largest Python worker's peak RSS at each and
    the change, met when within ``MEMORY_FLAT`` either way (issue 13: flat +-20 % S->P)."""
    rows = []
    for name, a_stage in _measured(base).items():
        b_stage = _measured(top).get(name)
        if b_stage is None or name == "pandas":
            continue
        a, b = a_stage["memory"]["peak_mib"]["worker_max"], b_stage["memory"]["peak_mib"]["worker_max"]
        change = b / a - 1 if a else None
        rows.append({"stage": name, "worker_max_mib": [a, b],
                     "change": None if change is None else round(change, 3),
                     "met": None if change is None else abs(change) <= MEMORY_FLAT})
    return rows


def compare(names: list[str], results: Path) -> dict:
    """Load the reports, compute the three views, print them; returns them as one dict."""
    if len(names) < 2:
        raise ValueError("--compare needs at least two sizes, e.g. --compare S M L")
    reports = sorted((load(name, results) for name in names), key=lambda r: r["rows"]["pricing"])
    base, top = reports[0], reports[-1]
    label = f"{top['_label']}/{base['_label']}"
    view = {"sizes": [r["_label"] for r in reports], "files": [r["_file"] for r in reports],
            "span": label, "time_scaling": time_scaling(base, top),
            "driver_memory": driver_memory(base, top), "worker_memory": worker_memory(reports),
            "worker_flat": worker_flat(base, top)}
    view["notes"] = _notes(reports)
    view["targets"] = [
        {"target": f"{label} time ratio <= {SCALING_SLACK}x the row ratio (every stage)",
         "met": _all(row["met"] for row in view["time_scaling"])},
        {"target": f"Python driver memory flat within {MEMORY_FLAT:.0%} {label} (every Spark stage)",
         "met": _all(row["met"] for row in view["driver_memory"])},
        {"target": f"largest Python worker flat within {MEMORY_FLAT:.0%} {label} (every Spark stage)",
         "met": _all(row["met"] for row in view["worker_flat"])},
    ]
    print_compare(view)
    return view


def _notes(reports: list[dict]) -> list[str]:
    """Differences between the runs that make a comparison unfair (options, stages, machine)."""
    notes = []
    for key in ("cores", "batch_rows", "model", "stages_requested"):
        values = {json.dumps(r.get(key)) for r in reports}
        if len(values) > 1:
            each = ", ".join(f"{r['_label']}={r.get(key)}" for r in reports)
            notes.append(f"runs differ in {key}: {each}")
    if len({r["machine"]["cpu"] for r in reports}) > 1:
        notes.append("runs come from different CPUs")
    notes.append("local mode: the JVM is the driver and the executor, so its RSS includes the "
                 "executor's memory (on a cluster the driver's would be smaller)")
    notes.append("the JVM and the reused Python workers keep memory from earlier stages of a run: "
                 "compare runs made with the same --stages")
    return notes


def _all(verdicts) -> bool | None:
    values = list(verdicts)
    return None if not values or None in values else all(values)


def print_compare(view: dict, console: Console | None = None) -> None:
    """Print the three tables and the two targets of a comparison."""
    console = console or wide_console()
    span = view["span"]
    table = Table(title=f"time scaling {span} (target: time ratio <= {SCALING_SLACK}x row ratio)")
    for column in ("stage", "seconds", "time ratio", "row ratio", "time / rows", "verdict"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for row in view["time_scaling"]:
        table.add_row(row["stage"], " -> ".join(f"{s:,.1f}" for s in row["seconds"]),
                      f"{row['time_ratio']}x", f"{row['row_ratio']}x", f"{row['time_over_rows']}",
                      met_text(row["met"]))
    console.print(table)
    table = Table(title=f"driver peak RSS {span}, MiB (target: the Python driver within {MEMORY_FLAT:.0%})")
    for column in ("stage", "Python driver", "JVM", "driver total", "Python change", "verdict"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for row in view["driver_memory"]:
        table.add_row(row["stage"], *(" -> ".join(f"{v:,.0f}" for v in row[key])
                                      for key in ("driver_python_mib", "jvm_mib", "driver_mib")),
                      f"{row['change']:+.0%}", met_text(row["met"]))
    console.print(table)
    sizes = view["worker_memory"]
    stages = [n for n in ORDER if any(n in row["worker_max_mib"] for row in sizes)]
    table = Table(title="largest Python worker, peak RSS MiB, vs rows per Arrow batch")
    table.add_column("")
    for row in sizes:
        table.add_column(row["size"], justify="right")
    table.add_row("rows per Arrow batch", *(f"{row['batch_rows']:,}" for row in sizes))
    table.add_row("rows per unit of work", *(f"{row['rows_per_unit']:,}" for row in sizes),
                  end_section=True)
    for name in stages:
        peaks = [row["worker_max_mib"].get(name) for row in sizes]
        table.add_row(name, *("-" if peak is None else f"{peak:,.0f}" for peak in peaks))
    console.print(table)
    for note in view["notes"]:
        console.print(f"note: {note}", soft_wrap=True)
    for target in view["targets"]:
        console.print(f"{target['target']}: {met_text(target['met'])}")
