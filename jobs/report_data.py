"""What a run's report shows, computed with Spark over the committed output and rejects.

:func:`collect_report` reads one committed run back (its run date's rows with its run id) and
returns a :class:`RunReport`: the manifest's counts and phase timings, example rejected rows
per reason, rows per unit of work and per bucket, the distribution of each output column, and,
when the job has an earlier run date with a succeeded manifest, the same distributions of that
run and their drift (:mod:`~batch_scoring.jobs.drift`).

Cost, after the run committed: one read of the run's output and one of the previous run's,
each persisted (up to :data:`SAMPLE_ROWS` rows; a larger run's distributions come from a seeded
sample of about that many rows, and the report says so) and then aggregated a few times
(statistics, histograms, top values, per-group spreads); one aggregation over the rejects;
and, for function jobs with ``report.unit_sizes``, one more read of the source's key columns
only, grouped by unit (persisted: one row per unit). Everything collected to the driver is
bounded: bins, top values, top groups and example rows, never rows of the output.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from batch_scoring.jobs.config import JobConfig
from batch_scoring.jobs.drift import (
    DECILES,
    drift_band,
    equal_width_edges,
    inner_edges,
    population_stability_index,
)
from batch_scoring.jobs.errors import InputError
from batch_scoring.jobs.manifest import manifest_dates, run_date_manifests
from batch_scoring.jobs.sinks import RunTargets, Sink
from batch_scoring.jobs.sources import open_source
from batch_scoring.udfs.contract import did_you_mean
from batch_scoring.udfs.engine.spark_execution import bucket_of
from batch_scoring.udfs.models.model_scoring import STAMP_COLUMNS

log = logging.getLogger("batch_scoring")

HISTOGRAM_BINS = 30
MAX_COLUMNS = 12
TOP_VALUES = 15
TOP_GROUPS = 12
LARGEST_UNITS = 10
REJECT_EXAMPLES = 3
SAMPLE_ROWS = 1_000_000
NUMERIC = (T.ByteType, T.ShortType, T.IntegerType, T.LongType, T.FloatType, T.DoubleType, T.DecimalType)
TEXT = (T.StringType, T.BooleanType)
SUMMARY_QUANTILES = (0.01, 0.25, 0.5, 0.75, 0.99)
OTHER = "(other values)"
RUN_COLUMNS = ("run_date", "run_id")


@dataclass
class NumericColumn:
    """One numeric output column of the run (values in the column's own units).

    ``edges`` are the histogram's ``HISTOGRAM_BINS + 1`` bin edges, spanning the 1st to 99th
    percentile of both runs (values outside are counted in the outer bins); ``counts`` and
    ``previous_counts`` are rows per bin of this run and of the previous run. ``psi`` is the
    drift against the previous run over the previous run's deciles, None without one.
    """

    name: str
    rows: int
    nulls: int
    mean: float | None
    minimum: float | None
    maximum: float | None
    quantiles: dict[float, float | None]
    edges: list[float] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    previous_counts: list[int] | None = None
    previous_mean: float | None = None
    psi: float | None = None

    @property
    def band(self) -> str | None:
        """The PSI's band (``stable``/``moderate``/``major``), None without a previous run."""
        return None if self.psi is None else drift_band(self.psi)


@dataclass
class TextColumn:
    """One text or boolean output column: ``top`` its most frequent values with their rows
    (the rest summed as ``(other values)``), ``previous_top`` the previous run's rows for the
    same values, and ``psi`` the drift over those categories."""

    name: str
    rows: int
    nulls: int
    top: list[tuple[str, int]]
    previous_top: list[tuple[str, int]] | None = None
    psi: float | None = None

    @property
    def band(self) -> str | None:
        """The PSI's band, None without a previous run."""
        return None if self.psi is None else drift_band(self.psi)


@dataclass
class GroupSpread:
    """The spread of ``column`` per value of ``group_by`` over the largest groups: for each,
    ``(group value, rows, p10, p25, p50, p75, p90)``."""

    column: str
    group_by: str
    groups: list[tuple[str, int, float, float, float, float, float]]


@dataclass
class UnitSizes:
    """Rows read per unit of work: ``units``; ``size_counts`` maps a power of two ``2**k`` to
    the units with ``2**k <= rows < 2**(k+1)``; ``largest`` the largest units as
    ``({key: value}, rows)``; ``bucket_rows`` rows per bucket (packed engine), else empty."""

    units: int
    size_counts: dict[int, int]
    largest: list[tuple[dict[str, Any], int]]
    bucket_rows: dict[int, int]


@dataclass
class RunReport:
    """Everything the run report shows (see the module docstring).

    ``manifest`` is the run's succeeded manifest (a dict, :mod:`~batch_scoring.jobs.manifest`);
    ``previous`` the previous run's, or None; ``reject_examples`` maps each reject reason to up
    to :data:`REJECT_EXAMPLES` rejected rows (column -> value as text); ``notes`` lists what the
    report left out and why.
    """

    manifest: dict[str, Any]
    previous: dict[str, Any] | None
    reject_examples: dict[str, list[dict[str, str]]]
    unit_sizes: UnitSizes | None
    numeric: list[NumericColumn]
    text: list[TextColumn]
    spreads: list[GroupSpread]
    notes: list[str] = field(default_factory=list)

    def drift(self) -> dict[str, dict[str, Any]]:
        """``{column: {"psi": value, "band": band}}`` of every column compared with the previous run."""
        return {c.name: {"psi": round(c.psi, 6), "band": c.band}
                for c in [*self.numeric, *self.text] if c.psi is not None}


def collect_report(
    spark: SparkSession, job: JobConfig, manifest: dict[str, Any], targets: RunTargets,
    s3_scheme: str = "s3a",
) -> RunReport:
    """Compute the report of a committed run.

    Args:
        manifest: the run's succeeded manifest (``run_date``, ``run_id``, ``rows``, ``phases``).
        targets: the run's output and rejects tables, and the output root (where the earlier
            runs' manifests are).

    Returns:
        The :class:`RunReport`.

    Raises:
        ValueError: when the output holds no rows of the manifest's run (nothing to report on).
    """
    run_date = dt.date.fromisoformat(manifest["run_date"])
    output = _run_rows(targets.output_sink, run_date, manifest["run_id"])
    if output is None:
        raise ValueError(f"{targets.output_sink.location} holds no rows of run_date={run_date} "
                         f"run_id={manifest['run_id']}")
    notes: list[str] = []
    numeric_names, text_names = chart_columns(job, output.schema, notes)
    previous = previous_manifest(spark, targets.output, run_date)
    previous_rows = _run_rows(targets.output_sink, dt.date.fromisoformat(previous["run_date"]),
                              previous["run_id"]) if previous else None
    if previous is not None and previous_rows is None:
        notes.append(f"the previous run (run_date={previous['run_date']}) has no rows left in the output; "
                     "no drift is shown")
        previous = None
    current = _bounded(output, manifest, "this run", notes)
    earlier = _bounded(previous_rows, previous, "the previous run", notes) if previous else None
    try:
        numeric = numeric_columns(current, earlier, numeric_names)
        text = text_columns(current, earlier, text_names)
        group_by = _group_by(job, current, notes)
        spreads = group_spreads(current, group_by, [c.name for c in numeric]) if group_by else []
    finally:
        for df in (current, earlier):
            if df is not None:
                df.unpersist()
    return RunReport(
        manifest=manifest, previous=previous,
        reject_examples=reject_examples(targets.rejects_sink, run_date, manifest["run_id"]),
        unit_sizes=unit_sizes(spark, job, manifest, s3_scheme, notes),
        numeric=numeric, text=text, spreads=spreads, notes=notes,
    )


def _bounded(rows: DataFrame, manifest: dict[str, Any], label: str, notes: list[str]) -> DataFrame:
    """The run's rows to take distributions from, persisted: all of them up to
    :data:`SAMPLE_ROWS`, else a seeded Bernoulli sample of about that many (noted)."""
    total = int((manifest.get("rows") or {}).get("out") or 0)
    if total > SAMPLE_ROWS:
        notes.append(f"distributions of {label} are from a sample of about {SAMPLE_ROWS:,} of its "
                     f"{total:,} rows")
        rows = rows.sample(fraction=SAMPLE_ROWS / total, seed=0)
    return rows.persist()


def _run_rows(sink: Sink, run_date: dt.date, run_id: str) -> DataFrame | None:
    rows = sink.read_run(run_date)
    return None if rows is None else rows.where(F.col("run_id") == F.lit(run_id))


def chart_columns(job: JobConfig, schema: T.StructType, notes: list[str]) -> tuple[list[str], list[str]]:
    """The output columns to chart: ``(numeric, text)`` names.

    ``report.columns`` when set (a name the output lacks is noted, with the closest names);
    else every numeric, text and boolean column the function or model produced: not a unit
    key, a model passthrough or stamp column (``model_uri``, ``model_version``, ...),
    ``run_date`` or ``run_id``. At most :data:`MAX_COLUMNS`.
    """
    types = {f.name: f.dataType for f in schema.fields}
    chosen = job.report.columns
    if chosen:
        for name in [c for c in chosen if c not in types]:
            notes.append(f"report.columns names {name!r}, which the output lacks"
                         f"{did_you_mean(name, list(types))}")
        names = [c for c in chosen if c in types]
    else:
        inputs = {*(job.unit_of_work.keys if job.unit_of_work else []), *RUN_COLUMNS,
                  *((*job.model.passthrough, *STAMP_COLUMNS) if job.model else ())}
        names = [c for c in types if c not in inputs]
    charted = [c for c in names if isinstance(types[c], NUMERIC + TEXT)]
    if len(charted) > MAX_COLUMNS:
        notes.append(f"{len(charted)} columns could be charted; the first {MAX_COLUMNS} are "
                     "(choose with report.columns)")
        charted = charted[:MAX_COLUMNS]
    return ([c for c in charted if isinstance(types[c], NUMERIC)],
            [c for c in charted if isinstance(types[c], TEXT)])


def previous_manifest(spark: SparkSession, output_path: str, run_date: dt.date) -> dict[str, Any] | None:
    """The succeeded manifest of the latest run date before ``run_date`` (its latest attempt by
    ``finished_at``), or None when there is none."""
    for date in (d for d in manifest_dates(spark, output_path) if d < run_date):
        succeeded = [m for m in run_date_manifests(spark, output_path, date) if m.get("status") == "succeeded"]
        if succeeded:
            return succeeded[0]
    return None


def numeric_columns(output: DataFrame, previous: DataFrame | None, names: list[str]) -> list[NumericColumn]:
    """Statistics, histograms and drift of the numeric ``names`` (see :class:`NumericColumn`)."""
    if not names:
        return []
    columns = _statistics(output, names)
    before = {c.name: c for c in _statistics(previous, names)} if previous is not None else {}
    for column in columns:
        column.edges = _histogram_edges(column, before.get(column.name))
    deciles = {c.name: inner_edges([before[c.name].quantiles.get(q) for q in DECILES])
               for c in columns if c.name in before}
    deciles = {name: edges for name, edges in deciles.items() if edges}
    histograms = {c.name: c.edges for c in columns}
    counts = _binned(output, histograms, deciles)
    earlier = _binned(previous, histograms, deciles) if previous is not None else {}
    for column in columns:
        column.counts = counts.get(("histogram", column.name), [0] * HISTOGRAM_BINS)
        if previous is None:
            continue
        column.previous_counts = earlier.get(("histogram", column.name), [0] * HISTOGRAM_BINS)
        column.previous_mean = before[column.name].mean
        reference, current = earlier.get(("deciles", column.name)), counts.get(("deciles", column.name))
        if reference and current and sum(reference) and sum(current):
            column.psi = population_stability_index(reference, current)
    return columns


def _statistics(df: DataFrame, names: list[str]) -> list[NumericColumn]:
    quantiles = [*SUMMARY_QUANTILES, *DECILES]
    aggregates = [F.count(F.lit(1)).alias("_rows")]
    for i, name in enumerate(names):
        value = F.col(name).cast("double")
        aggregates += [F.count(value).alias(f"n{i}"), F.min(value).alias(f"lo{i}"),
                       F.max(value).alias(f"hi{i}"), F.avg(value).alias(f"mean{i}"),
                       F.percentile_approx(value, quantiles, 10_000).alias(f"q{i}")]
    row = df.agg(*aggregates).first()
    out = []
    for i, name in enumerate(names):
        values = row[f"q{i}"] or [None] * len(quantiles)
        out.append(NumericColumn(
            name=name, rows=int(row["_rows"]), nulls=int(row["_rows"]) - int(row[f"n{i}"]),
            mean=row[f"mean{i}"], minimum=row[f"lo{i}"], maximum=row[f"hi{i}"],
            quantiles=dict(zip(quantiles, values)),
        ))
    return out


def _histogram_edges(current: NumericColumn, previous: NumericColumn | None) -> list[float]:
    lows = [c.quantiles.get(0.01) for c in (current, previous) if c is not None]
    highs = [c.quantiles.get(0.99) for c in (current, previous) if c is not None]
    lows, highs = [v for v in lows if v is not None], [v for v in highs if v is not None]
    if not lows:
        return []
    return equal_width_edges(min(lows), max(highs), HISTOGRAM_BINS)


def _binned(
    df: DataFrame, histograms: dict[str, list[float]], deciles: dict[str, list[float]] | None = None,
) -> dict[tuple[str, str], list[int]]:
    """Rows per bin in one pass: ``{("histogram" | "deciles", column): counts}``."""
    entries = [(("histogram", n), _histogram_bin(n, e), len(e) - 1) for n, e in histograms.items() if e]
    entries += [(("deciles", n), _decile_bin(n, e), len(e) + 1) for n, e in (deciles or {}).items()]
    if not entries:
        return {}
    tags = [f"{kind}\t{name}" for (kind, name), _, _ in entries]
    bins = F.explode(F.array(*[F.struct(F.lit(tag).alias("tag"), expr.alias("bin"))
                                for tag, (_, expr, _) in zip(tags, entries)])).alias("b")
    rows = (df.select(bins).where(F.col("b.bin").isNotNull())
            .groupBy("b.tag", "b.bin").count().collect())
    out = {key: [0] * size for key, _, size in entries}
    for row in rows:
        kind, name = row["tag"].split("\t", 1)
        out[(kind, name)][int(row["bin"])] = int(row["count"])
    return out


def _histogram_bin(name: str, edges: list[float]) -> Column:
    low, width, last = edges[0], (edges[-1] - edges[0]) / (len(edges) - 1), len(edges) - 2
    value = F.col(name).cast("double")
    index = F.floor((value - F.lit(low)) / F.lit(width))
    return F.when(value.isNull() | F.isnan(value), None).otherwise(
        F.least(F.greatest(index, F.lit(0)), F.lit(last)).cast("int"))


def _decile_bin(name: str, edges: list[float]) -> Column:
    value = F.col(name).cast("double")
    index = F.lit(0)
    for edge in edges:
        index = index + F.when(value >= F.lit(edge), 1).otherwise(0)
    return F.when(value.isNull() | F.isnan(value), None).otherwise(index.cast("int"))


def text_columns(output: DataFrame, previous: DataFrame | None, names: list[str]) -> list[TextColumn]:
    """Top values of each text or boolean column in ``names``, and their drift against the
    previous run: two aggregations per run, whatever the number of columns."""
    if not names:
        return []
    runs = [output] if previous is None else [output, previous]
    tops = [_top_values(df, names) for df in runs]
    categories = {n: list(dict.fromkeys(v for top in tops for v in top[n])) for n in names}
    counts = _category_counts(output, categories)
    before = _category_counts(previous, categories) if previous is not None else {}
    columns = []
    for name in names:
        top, nulls = counts[name]
        column = TextColumn(name=name, rows=sum(c for _, c in top) + nulls, nulls=nulls, top=top)
        if previous is not None:
            column.previous_top = before[name][0]
            column.psi = population_stability_index([c for _, c in column.previous_top],
                                                    [c for _, c in column.top])
        columns.append(column)
    return columns


def _as_pairs(names: list[str], value_of) -> Column:
    """One ``(i, v)`` row per column ``names[i]`` of each input row, ``v`` = ``value_of(name)``."""
    return F.explode(F.array(*[F.struct(F.lit(i).alias("i"), value_of(n).alias("v"))
                               for i, n in enumerate(names)])).alias("p")


def _top_values(df: DataFrame, names: list[str]) -> dict[str, list[str]]:
    """The :data:`TOP_VALUES` most frequent non-null values of each column (ties by value)."""
    pairs = df.select(_as_pairs(names, lambda n: F.col(n).cast("string")))
    counted = pairs.where(F.col("p.v").isNotNull()).groupBy("p.i", "p.v").count()
    rank = F.row_number().over(Window.partitionBy("i").orderBy(F.desc("count"), "v"))
    rows = counted.withColumn("_r", rank).where(F.col("_r") <= TOP_VALUES).orderBy("i", "_r").collect()
    out: dict[str, list[str]] = {n: [] for n in names}
    for row in rows:
        out[names[row["i"]]].append(row["v"])
    return out


def _category_counts(
    df: DataFrame, categories: dict[str, list[str]],
) -> dict[str, tuple[list[tuple[str, int]], int]]:
    """Per column, rows per category (the rest as :data:`OTHER`) and its null rows, in one
    aggregation over every column."""
    def category(name: str) -> Column:
        value = F.col(name).cast("string")
        return F.when(value.isNull(), None).when(value.isin(categories[name]), value).otherwise(F.lit(OTHER))

    names = list(categories)
    counts: dict[str, dict[str | None, int]] = {n: {} for n in names}
    for row in df.select(_as_pairs(names, category)).groupBy("p.i", "p.v").count().collect():
        counts[names[row["i"]]][row["v"]] = int(row["count"])
    return {n: ([(c, counts[n].get(c, 0)) for c in categories[n] if c != OTHER]
                + [(OTHER, counts[n].get(OTHER, 0))], counts[n].get(None, 0)) for n in names}


def _group_by(job: JobConfig, output: DataFrame, notes: list[str]) -> str | None:
    name = job.report.group_by or (job.unit_of_work.keys[0] if job.unit_of_work else None)
    if name is None:
        return None
    if name not in output.columns:
        notes.append(f"report.group_by names {name!r}, which the output lacks"
                     f"{did_you_mean(name, output.columns)}")
        return None
    return name


def group_spreads(output: DataFrame, group_by: str, names: list[str]) -> list[GroupSpread]:
    """The p10/p25/p50/p75/p90 of each of ``names`` per value of ``group_by``, over the
    :data:`TOP_GROUPS` groups with the most rows (ties by value)."""
    if not names:
        return []
    group = F.col(group_by).cast("string")
    top = [r["g"] for r in output.groupBy(group.alias("g")).count()
           .orderBy(F.desc("count"), F.asc_nulls_last("g")).limit(TOP_GROUPS).collect()]
    quantiles = [0.1, 0.25, 0.5, 0.75, 0.9]
    chosen = group.isin([g for g in top if g is not None])
    if None in top:
        chosen = chosen | group.isNull()
    rows = (output.where(chosen)
            .groupBy(group.alias("g"))
            .agg(F.count(F.lit(1)).alias("_rows"),
                 *[F.percentile_approx(F.col(n).cast("double"), quantiles, 1_000).alias(f"q{i}")
                   for i, n in enumerate(names)])
            .collect())
    by_group = {r["g"]: r for r in rows}
    spreads = []
    for i, name in enumerate(names):
        groups = [(str(g), int(by_group[g]["_rows"]), *by_group[g][f"q{i}"]) for g in top
                  if g in by_group and by_group[g][f"q{i}"] is not None and None not in by_group[g][f"q{i}"]]
        if groups:
            spreads.append(GroupSpread(name, group_by, groups))
    return spreads


def reject_examples(rejects_sink: Sink, run_date: dt.date, run_id: str) -> dict[str, list[dict[str, str]]]:
    """Up to :data:`REJECT_EXAMPLES` rejected rows of the run per reason, values as text (at
    most 80 characters each), in a stable order (by every column's text)."""
    rejects = _run_rows(rejects_sink, run_date, run_id)
    if rejects is None:
        return {}
    columns = [c for c in rejects.columns if c not in RUN_COLUMNS]
    as_text = [F.substring(F.col(c).cast("string"), 1, 80).alias(c) for c in columns]
    order = Window.partitionBy("reject_reason").orderBy(*[F.col(c).asc_nulls_first() for c in columns])
    rows = (rejects.select(*as_text).withColumn("_n", F.row_number().over(order))
            .where(F.col("_n") <= REJECT_EXAMPLES).drop("_n").collect())
    out: dict[str, list[dict[str, str]]] = {}
    for row in sorted(rows, key=lambda r: (r["reject_reason"] or "", [str(v) for v in r])):
        out.setdefault(row["reject_reason"], []).append(
            {c: "" if row[c] is None else row[c] for c in columns})
    return out


def unit_sizes(
    spark: SparkSession, job: JobConfig, manifest: dict[str, Any], s3_scheme: str, notes: list[str],
) -> UnitSizes | None:
    """Rows read per unit of work, from the source's key columns (after ``source.filter``);
    None for a model job, when ``report.unit_sizes`` is off, or when the source lacks a key
    column (a chained job keyed by a prediction; noted)."""
    if job.unit_of_work is None or job.function is None:
        return None
    if not job.report.unit_sizes:
        notes.append("unit sizes are off (report.unit_sizes: false)")
        return None
    keys = job.unit_of_work.keys
    try:
        source = open_source(job.source, s3_scheme).read(spark, keys)
    except InputError as error:  # a chained job's keys may be the model's output columns
        notes.append(f"unit sizes are not shown: {error}")
        return None
    units = source.groupBy(*keys).agg(F.count(F.lit(1)).alias("_rows")).persist()
    try:
        return _unit_sizes(units, keys, int((manifest.get("rows") or {}).get("buckets") or 0))
    finally:
        units.unpersist()


def _unit_sizes(units: DataFrame, keys: list[str], buckets: int) -> UnitSizes:
    power = F.pow(F.lit(2), F.floor(F.log2(F.col("_rows")))).cast("long")
    sizes = {int(r["p"]): int(r["count"]) for r in units.groupBy(power.alias("p")).count().collect()}
    largest = [({k: r[k] for k in keys}, int(r["_rows"]))
               for r in units.orderBy(F.desc("_rows"), *keys).limit(LARGEST_UNITS).collect()]
    bucket_rows: dict[int, int] = {}
    if buckets:
        per_bucket = units.groupBy(bucket_of(keys, buckets).alias("b")).agg(F.sum("_rows").alias("rows"))
        bucket_rows = {int(r["b"]): int(r["rows"]) for r in per_bucket.collect()}
    return UnitSizes(units=sum(sizes.values()), size_counts=dict(sorted(sizes.items())),
                     largest=largest, bucket_rows=dict(sorted(bucket_rows.items())))
