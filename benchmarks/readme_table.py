"""The README's benchmark tables, generated from committed harness results.

    .venv/bin/python -m benchmarks.readme_table S M P [--compare harness_compare_S_P.json]

Reads ``benchmarks/results/harness_<size>.json`` (written by ``benchmarks.run``) and prints
Markdown: one table of stage seconds per size (best round, with every round's seconds), one of
issue 13's targets with the measured ratio and met / NOT met per size where the issue states
it, and the machine and load average each run was measured under. Paste the output into the
README's "Benchmarks" section; the numbers are never typed by hand.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.stages import ORDER  # noqa: E402
from benchmarks.targets import met_text  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def load(size: str, results: Path = RESULTS) -> dict:
    """The harness report of one size (``harness_<size>.json``).

    Raises:
        FileNotFoundError: naming the file and the command that writes it.
    """
    path = results / f"harness_{size}.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run python -m benchmarks.run --size {size}")
    return json.loads(path.read_text())


def _stage_cell(stage: dict | None) -> str:
    if not stage:
        return ""
    if "seconds" not in stage:
        return stage.get("skipped") or stage.get("error", "")[:40]
    rounds = stage.get("round_seconds") or []
    spread = f" ({', '.join(f'{s:.1f}' for s in rounds)})" if len(rounds) > 1 else ""
    approx = "~" if stage.get("estimated") else ""
    return f"{approx}{stage['seconds']:.1f}{spread}"


def stages_table(reports: list[dict]) -> str:
    """Seconds per stage and size: best round, every round in parentheses."""
    header = "| stage (seconds: best (rounds)) | " + " | ".join(_size_label(r) for r in reports) + " |"
    lines = [header, "|---" * (len(reports) + 1) + "|"]
    for name in ORDER:
        cells = [_stage_cell(r["stages"].get(name)) for r in reports]
        if any(cells):
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _size_label(report: dict) -> str:
    rows = report["rows"]
    model = f", {rows['model']:,} model rows" if rows.get("model") else ""
    return f"{report['size']}: {rows['pricing']:,} rows / {report['units']:,} units{model}"


def targets_table(reports: list[dict]) -> str:
    """Each per-run target with its measured ratio and verdict per size (the across-size
    targets come from ``--compare``)."""
    labels = [t["target"] for t in reports[0]["targets"] if "ratio" in t]
    lines = ["| target | " + " | ".join(r["size"] for r in reports) + " |",
             "|---" * (len(reports) + 1) + "|"]
    for label in labels:
        cells = []
        for report in reports:
            target = next((t for t in report["targets"] if t["target"] == label), None)
            cells.append(_target_cell(target))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _target_cell(target: dict | None) -> str:
    if target is None or target.get("measured") is None:
        return "not measured"
    stated = "stated for size" not in (target.get("note") or "")
    verdict = met_text(target["met"]) if stated else "(not stated here)"
    return f"{target['measured']}x {verdict}"


def compare_lines(view: dict) -> str:
    """The across-sizes targets of a ``--compare`` result, one line each."""
    return "\n".join(f"* {t['target']}: **{met_text(t['met'])}**" for t in view["targets"])


def machine_lines(reports: list[dict]) -> str:
    """Where and under what load each run was measured."""
    out = []
    for report in reports:
        m, load = report["machine"], report["load_average"]
        out.append(f"* {report['size']}: {report['measured']}, {m['cpu']} {m['logical_cores']} cores, "
                   f"{m['ram_gib']} GiB, Spark {m['spark']}, Python {m['python']}; load average "
                   f"(1/5/15 min) {'/'.join(map(str, load['start']))} at the start, "
                   f"{'/'.join(map(str, load['end']))} at the end")
    return "\n".join(out)


def main(argv=None) -> int:
    """Print the tables for the sizes given."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.readme_table", description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="+", help="harness sizes with committed results, e.g. S M P")
    parser.add_argument("--compare", type=Path, help="a harness_compare_*.json for the across-size targets")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    try:
        reports = [load(size, args.results) for size in args.sizes]
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(stages_table(reports), end="\n\n")
    print(targets_table(reports), end="\n\n")
    if args.compare:
        print(compare_lines(json.loads((args.results / args.compare).read_text())), end="\n\n")
    print(machine_lines(reports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
