"""The run report's charts, drawn with matplotlib (Agg, no display) as PNG bytes.

Every function takes the numbers of :mod:`~batch_scoring.jobs.report_data` and returns one PNG
of :data:`WIDTH_INCHES` x its height at :data:`DPI` (800 px wide), or None when there is
nothing to draw. Shares, not row counts, are compared between runs, so runs of different sizes
compare.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the backend
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from batch_scoring.jobs.drift import MAJOR, MODERATE  # noqa: E402
from batch_scoring.jobs.report_data import GroupSpread, NumericColumn, TextColumn, UnitSizes  # noqa: E402

DPI = 100
WIDTH_INCHES = 8.0
CURRENT = "#1f77b4"
PREVIOUS = "#ff7f0e"


def _png(figure: Figure) -> bytes:
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    plt.close(figure)
    return buffer.getvalue()


def _figure(height: float = 3.2):
    return plt.subplots(figsize=(WIDTH_INCHES, height))


def phases_chart(phases: dict[str, float]) -> bytes | None:
    """Seconds per phase, one horizontal bar each, in run order."""
    if not phases:
        return None
    figure, axes = _figure(0.5 + 0.35 * len(phases))
    names = list(phases)[::-1]
    axes.barh(names, [phases[n] for n in names], color=CURRENT)
    axes.set_xlabel("seconds (driver wall-clock in the phase)")
    return _png(figure)


def histogram_chart(column: NumericColumn) -> bytes | None:
    """Share of rows per bin of this run (bars) and of the previous run (a step line)."""
    if not column.edges or not sum(column.counts):
        return None
    figure, axes = _figure()
    edges = column.edges
    widths = [b - a for a, b in zip(edges, edges[1:])]
    total = sum(column.counts)
    axes.bar(edges[:-1], [c / total for c in column.counts], width=widths, align="edge",
             color=CURRENT, alpha=0.75, label="this run")
    if column.previous_counts and sum(column.previous_counts):
        before = sum(column.previous_counts)
        shares = [c / before for c in column.previous_counts]
        axes.stairs(shares, edges, color=PREVIOUS, linewidth=2, label="previous run")
        axes.legend()
    axes.set_xlabel(f"{column.name} (1st to 99th percentile; outer bins hold the rest)")
    axes.set_ylabel("share of rows")
    return _png(figure)


def categories_chart(column: TextColumn) -> bytes | None:
    """Share of rows per value (most frequent first), this run's and the previous run's."""
    total = sum(c for _, c in column.top)
    if not total:
        return None
    labels = [v for v, _ in column.top][::-1]
    figure, axes = _figure(0.6 + 0.3 * len(labels))
    positions = range(len(labels))
    shares = dict(column.top)
    axes.barh([p + 0.2 for p in positions], [shares[v] / total for v in labels], height=0.4,
              color=CURRENT, label="this run")
    if column.previous_top and sum(c for _, c in column.previous_top):
        before_total = sum(c for _, c in column.previous_top)
        before = dict(column.previous_top)
        axes.barh([p - 0.2 for p in positions], [before.get(v, 0) / before_total for v in labels],
                  height=0.4, color=PREVIOUS, label="previous run")
        axes.legend()
    axes.set_yticks(list(positions), labels)
    axes.set_xlabel(f"share of rows ({column.name})")
    return _png(figure)


def spread_chart(spread: GroupSpread) -> bytes | None:
    """Box per group of ``spread.group_by``: p25 to p75 box, median line, p10 to p90 whiskers."""
    if not spread.groups:
        return None
    stats = [{"label": g, "whislo": p10, "q1": p25, "med": p50, "q3": p75, "whishi": p90, "fliers": []}
             for g, _, p10, p25, p50, p75, p90 in spread.groups]
    figure, axes = _figure(3.6)
    axes.bxp(stats, showfliers=False)
    axes.set_xlabel(f"{spread.group_by} (largest groups)")
    axes.set_ylabel(spread.column)
    axes.tick_params(axis="x", labelrotation=45)
    return _png(figure)


def drift_chart(psi: dict[str, float]) -> bytes | None:
    """PSI per column against the previous run, with the 0.1 and 0.25 bands."""
    if not psi:
        return None
    names = list(psi)[::-1]
    figure, axes = _figure(0.8 + 0.35 * len(names))
    colours = [PREVIOUS if psi[n] >= MODERATE else CURRENT for n in names]
    axes.barh(names, [psi[n] for n in names], color=colours)
    axes.axvline(MODERATE, color="grey", linestyle="--", label=f"{MODERATE} moderate")
    axes.axvline(MAJOR, color="red", linestyle="--", label=f"{MAJOR} major")
    axes.set_xlabel("population stability index against the previous run")
    axes.legend()
    return _png(figure)


def unit_size_chart(sizes: UnitSizes) -> bytes | None:
    """Units per size class (rows read per unit, powers of two; empty classes between the
    smallest and the largest are drawn as zero)."""
    if not sizes.size_counts:
        return None
    figure, axes = _figure()
    powers = [2 ** k for k in range(min(sizes.size_counts).bit_length() - 1, max(sizes.size_counts).bit_length())]
    axes.bar([_size_label(p) for p in powers], [sizes.size_counts.get(p, 0) for p in powers], color=CURRENT)
    axes.set_xlabel("rows read per unit of work")
    axes.set_ylabel("units")
    axes.tick_params(axis="x", labelrotation=45)
    return _png(figure)


def _size_label(power: int) -> str:
    return str(power) if power == 1 else f"{power:,}-{2 * power - 1:,}"


def bucket_chart(bucket_rows: dict[int, int]) -> bytes | None:
    """Rows per bucket (the packed engine's buckets), with the mean as a dashed line."""
    if not bucket_rows:
        return None
    figure, axes = _figure()
    buckets: Sequence[int] = list(bucket_rows)
    axes.bar(buckets, [bucket_rows[b] for b in buckets], color=CURRENT)
    mean = sum(bucket_rows.values()) / len(bucket_rows)
    axes.axhline(mean, color="grey", linestyle="--", label=f"mean {mean:,.0f} rows")
    axes.set_xlabel("bucket")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylabel("rows")
    axes.legend()
    return _png(figure)
