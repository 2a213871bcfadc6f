"""A harness run as a report: per-stage numbers, ratios, targets; printed as tables, saved as JSON."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmarks.stages import STAGES
from benchmarks.targets import evaluate_run, met_text

PAIRS = (  # (numerator, denominator): "numerator_over_denominator", > 1 means the denominator is faster
    ("reference", "packed"),
    ("packed", "python_floor"),
    ("spark_udf", "scorer"),
    ("spark_udf", "scorer_compiled"),
    ("scorer", "scorer_compiled"),
    ("model_job", "scorer"),
    ("spark_udf", "model_job"),
    ("packed", "pandas"),
)


def _seconds(stage: dict | None) -> float | None:
    return stage.get("seconds") if stage else None


def ratios(stages: dict) -> tuple[dict, list[str]]:
    """Each stage over its floor, and the pairs in ``PAIRS``; also the ratios that use an
    estimated stage. Returns (ratios, estimated ratio names)."""
    out, estimated = {}, []

    def add(top: str, bottom: str) -> None:
        a, b = _seconds(stages.get(top)), _seconds(stages.get(bottom))
        if a and b:
            key = f"{top}_over_{bottom}"
            out[key] = round(a / b, 2)
            if stages[top].get("estimated") or stages[bottom].get("estimated"):
                estimated.append(key)

    for name, stage in stages.items():
        floor = STAGES[name].floor
        if name != floor:
            add(name, floor)
    for top, bottom in PAIRS:
        add(top, bottom)
    return out, estimated


def build(size, stages: dict, **facts) -> dict:
    """The run's report: ``facts`` (rows, units, cores, machine, ...) + stages with ``x_floor``
    + ratios + the issue's targets evaluated."""
    for name, stage in stages.items():
        floor = _seconds(stages.get(STAGES[name].floor))
        if _seconds(stage) and floor:
            stage["x_floor"] = round(stage["seconds"] / floor, 2)
    values, estimated = ratios(stages)
    report = {"harness": 1, "size": size.name, "units": size.units, **facts,
              "stages": stages, "ratios": values, "estimated_ratios": estimated}
    report["targets"] = evaluate_run(report)
    return report


def write_json(report: dict, path: Path) -> None:
    """Write the report as indented JSON (parent folders created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")


def _mib(stage: dict, field: str) -> str:
    peak = stage.get("memory", {}).get("peak_mib")
    return f"{peak[field]:,.0f}" if peak else ""


def wide_console() -> Console:
    """A rich console at least 110 columns wide (rich assumes 80 when output is piped)."""
    return Console(width=max(Console().width, 110))


def print_report(report: dict, console: Console | None = None) -> None:
    """Print the stages, ratios and targets tables of a report, and what each stage ran."""
    console = console or wide_console()
    table = Table(title=f"harness size {report['size']}: {report['rows']['pricing']:,} pricing rows, "
                        f"{report['units']:,} units, {report['rows']['model']:,} model rows, "
                        f"local[{report['cores']}], {report['batch_rows']:,} rows per Arrow batch")
    for column in ("stage", "seconds", "rows/s/core", "x floor", "driver py", "JVM",
                   "worker max / all"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    notes = []
    for name, stage in report["stages"].items():
        if "seconds" not in stage:
            table.add_row(name, "-", "", "", "", "", "")
            notes.append(f"[yellow]{name}: {stage.get('skipped') or stage.get('error')}[/]")
            continue
        est = stage.get("estimated")
        table.add_row(
            name, f"{'~' if est else ''}{stage['seconds']:,.1f}",
            "" if est else f"{stage['rows_per_s_per_core']:,}",
            f"{stage['x_floor']:.2f}" if "x_floor" in stage else "",
            _mib(stage, "driver_python"), _mib(stage, "jvm"),
            f"{_mib(stage, 'worker_max')} / {_mib(stage, 'workers_total')}" if "memory" in stage else "",
        )
        notes.append(f"[yellow]{name}: ESTIMATE, not run: {stage['per_unit_ms']} ms per unit from "
                     f"{stage['basis']}[/]" if est else f"{name}: {stage['what']}")
    console.print(table)
    console.print("seconds: wall, one run; memory: peak RSS in MiB (sampled every 0.2 s)")
    load, cores = report["load_average"]["start"], report["machine"]["logical_cores"]
    if load and cores and load[0] > cores / 2:
        console.print(f"[yellow]warning: load average {load[0]} on {cores} cores before the run: "
                      "other work shared the machine, timings are not representative[/]")
    for note in notes:
        console.print("  " + note, soft_wrap=True)
    if report.get("pricing_measured_as"):
        console.print(f"pricing measured as {report['pricing_measured_as']}", soft_wrap=True)
    estimated = set(report["estimated_ratios"])
    console.print("ratios: " + ", ".join(
        f"{key} {'~' if key in estimated else ''}{value}x" for key, value in report["ratios"].items()),
        soft_wrap=True)
    targets = Table(title="targets of the issue")
    for column in ("target", "measured", "verdict", "note"):
        targets.add_column(column)
    for row in report["targets"]:
        approx = "~" if row.get("ratio") in estimated else ""
        value = "" if row["measured"] is None else f"{approx}{row['measured']}x"
        colour = {True: "green", False: "red", None: "yellow"}[row["met"]]
        targets.add_row(row["target"], value, f"[{colour}]{met_text(row['met'])}[/]", row["note"])
    console.print(targets)
