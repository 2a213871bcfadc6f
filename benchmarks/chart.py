"""A PNG of one harness run: seconds per stage annotated with x-floor ratios, and peak memory."""

from __future__ import annotations

from pathlib import Path

COLOURS = {"pricing": "#4C72B0", "model": "#DD8452"}


def write_png(report: dict, path: Path) -> None:
    """Bars of seconds per stage (hatched: estimated, not run), each annotated with its ratio to
    its floor, beside bars of peak RSS per stage (driver Python, JVM, largest Python worker)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = {name: s for name, s in report["stages"].items() if "seconds" in s}
    names = list(stages)
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [3, 2]})
    for i, name in enumerate(names):
        stage = stages[name]
        left.bar(i, stage["seconds"], color=COLOURS[stage["group"]],
                 hatch="//" if stage.get("estimated") else None, alpha=0.5 if stage.get("estimated") else 1)
        label = f"x{stage['x_floor']:.2f}" if "x_floor" in stage else ""
        if stage.get("estimated"):
            label += " (est.)"
        left.annotate(label, (i, stage["seconds"]), ha="center", va="bottom", fontsize=9)
    left.set_xticks(range(len(names)), names, rotation=30, ha="right")
    left.set_ylabel("wall seconds")
    left.set_title(f"size {report['size']}: {report['rows']['pricing']:,} rows, {report['units']:,} units, "
                   f"local[{report['cores']}] (label: x its floor)", fontsize=10)

    measured = [n for n in names if "memory" in stages[n]]
    width = 0.27
    for offset, (field, label) in enumerate(
            (("driver_python", "driver Python"), ("jvm", "JVM (driver + local executor)"),
             ("worker_max", "largest Python worker"))):
        right.bar([i + (offset - 1) * width for i in range(len(measured))],
                  [stages[n]["memory"]["peak_mib"][field] for n in measured], width, label=label)
    right.set_xticks(range(len(measured)), measured, rotation=30, ha="right")
    right.set_ylabel("peak RSS, MiB")
    right.set_title("peak memory per stage", fontsize=10)
    right.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=3)
    fig.suptitle(f"{report['machine']['cpu']}, {report['machine']['logical_cores']} cores, "
                 f"Spark {report['machine']['spark']}", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
