"""The harness's stages: what each one runs, and running one with its clock and memory sampler.

Every stage reuses the one-off benchmarks' code, so the harness measures exactly what they do:

============ ======= ====================================================================
stage        group   what runs (and its floor)
============ ======= ====================================================================
floor        pricing read bundle sales, repartition by the unit keys, sort within
                     partitions, write zstd Parquet; no function
python_floor pricing the job's columns read, repartitioned, sorted and handed to Python
                     workers over ``mapInArrow``, which only count them
reference    pricing the whole data-pricing job, ``unit_of_work.engine=reference``
                     (``groupBy(keys).applyInPandas``, one call per unit)
packed       pricing the whole data-pricing job, packed engine (what users run)
pandas       pricing the same pricing on one pandas DataFrame in this process, no Spark
model_floor  model   read id + features, write zstd Parquet; no model
spark_udf    model   ``mlflow.pyfunc.spark_udf`` on the features, id + prediction written
scorer       model   our scorer alone (``ship_model`` + ``score_spark``), id + prediction
                     + model stamp written
scorer_      model   the same with ``model.backend: compiled``: the trees compiled on the
compiled             driver (treelite / tl2cgen), checked on a 2,000-row sample, the library
                     shipped and loaded once per worker (compile and check are timed too)
model_job    model   the whole model-scoring job (``pipeline.run``): signature check,
                     quarantine, scoring, rejects, counts
============ ======= ====================================================================
"""

from __future__ import annotations

import shutil
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks import model_scoring_vs_spark_udf as model_bench
from benchmarks import packed_vs_reference as pricing_bench
from benchmarks.datasets import Size
from benchmarks.memory import PeakMemory
from benchmarks.spark_profile import tag_stage


@dataclass
class Context:
    """What the stages of one run share: the session, the data and the scratch folder."""

    spark: object
    size: Size
    cores: int
    batch_rows: int
    scratch: Path
    pandas_max_rows: int
    pricing_source: Path | None = None
    pricing_rows: int = 0
    model_source: Path | None = None
    model_path: Path | None = None
    model_rows: int = 0
    model_kind: str = "hgb"

    @property
    def buckets(self) -> int:
        """Buckets of the unit-of-work repartition: 4 per core, as the one-off benchmark uses."""
        return self.cores * 4


@dataclass(frozen=True)
class Stage:
    """One timed stage: its group (pricing or model), the floor it is compared with, and what
    it runs (``action(context, output_folder)``)."""

    name: str
    group: str
    floor: str
    what: str
    action: Callable[[Context, Path], object]


def _floor(ctx: Context, out: Path) -> None:
    pricing_bench.floor(ctx.spark, ctx.pricing_source, out, ctx.buckets)


def _python_floor(ctx: Context, out: Path) -> None:
    pricing_bench.python_floor(ctx.spark, ctx.pricing_source, ctx.buckets)


def _reference(ctx: Context, out: Path) -> None:
    pricing_bench.job_run(ctx.spark, ctx.pricing_source, out, "reference", ctx.buckets)


def _packed(ctx: Context, out: Path) -> None:
    pricing_bench.job_run(ctx.spark, ctx.pricing_source, out, "packed", ctx.buckets)


def _pandas(ctx: Context, out: Path) -> None:
    pricing_bench.pandas_alone(ctx.pricing_source)


def _model_floor(ctx: Context, out: Path) -> None:
    model_bench.floor(ctx.spark, ctx.model_source, out)


def _spark_udf(ctx: Context, out: Path) -> None:
    model_bench.spark_udf(ctx.spark, ctx.model_source, ctx.model_path, out)


def _scorer(ctx: Context, out: Path) -> None:
    model_bench.engine(ctx.spark, ctx.model_source, ctx.model_path, out, ctx.batch_rows)


def _scorer_compiled(ctx: Context, out: Path) -> None:
    model_bench.engine(ctx.spark, ctx.model_source, ctx.model_path, out, ctx.batch_rows,
                       backend="compiled")


def _model_job(ctx: Context, out: Path) -> None:
    model_bench.job_run(ctx.spark, ctx.model_source, ctx.model_path, out, ctx.batch_rows)


STAGES = {
    stage.name: stage
    for stage in (
        Stage("floor", "pricing", "floor",
              "I/O floor: read, repartition by keys, sortWithinPartitions, write; no function", _floor),
        Stage("python_floor", "pricing", "floor",
              "floor of a job running Python per unit: the job's columns read, repartitioned, "
              "sorted and handed to Python workers as Arrow batches (mapInArrow) that only "
              "count them", _python_floor),
        Stage("reference", "pricing", "floor",
              "whole pricing job (pipeline.run), engine=reference: applyInPandas per unit", _reference),
        Stage("packed", "pricing", "floor",
              "whole pricing job (pipeline.run), engine=packed: many units per Arrow batch", _packed),
        Stage("pandas", "pricing", "floor",
              "same pricing, pandas alone in this process (price_data on all rows)", _pandas),
        Stage("model_floor", "model", "model_floor",
              "I/O floor of the model columns: read id + features, write; no model", _model_floor),
        Stage("spark_udf", "model", "model_floor",
              "mlflow.pyfunc.spark_udf on the features; id + prediction written", _spark_udf),
        Stage("scorer", "model", "model_floor",
              "our scorer (ship_model + score_spark); id + prediction + model stamp written", _scorer),
        Stage("scorer_compiled", "model", "model_floor",
              "our scorer, model.backend compiled (treelite/tl2cgen: compile + sample check on "
              "the driver, library shipped); id + prediction + model stamp written", _scorer_compiled),
        Stage("model_job", "model", "model_floor",
              "whole model-scoring job (pipeline.run): checks, quarantine, scoring, rejects", _model_job),
    )
}
ORDER = tuple(STAGES)
PRICING = tuple(name for name in ORDER if STAGES[name].group == "pricing")
MODEL = tuple(name for name in ORDER if STAGES[name].group == "model")


def parse_stages(text: str) -> list[str]:
    """``"floor,packed"`` -> the named stages in run order; a model stage brings its floor.

    Raises:
        ValueError: an unknown stage name.
    """
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = sorted(set(names) - set(STAGES))
    if unknown:
        raise ValueError(f"unknown stage(s) {', '.join(unknown)}; choose from {', '.join(ORDER)}")
    chosen = set(names)
    if chosen & set(MODEL):
        chosen.add("model_floor")
    return [name for name in ORDER if name in chosen]


def rows_of(ctx: Context, stage: Stage) -> int:
    """Source rows the stage reads."""
    return ctx.pricing_rows if stage.group == "pricing" else ctx.model_rows


def run_stage(ctx: Context, stage: Stage) -> dict:
    """Run one stage once under the memory sampler; print and return its measurements.

    Returns a dict with ``group``, ``what``, ``rows``, ``cores``, ``seconds``,
    ``rows_per_s_per_core`` and ``memory`` (see :class:`benchmarks.memory.PeakMemory`), or
    ``skipped`` (the pandas stage above ``pandas_max_rows``) or ``error`` (the stage raised;
    the run goes on with the next stage).
    """
    rows = rows_of(ctx, stage)
    cores = 1 if stage.name == "pandas" else ctx.cores
    result = {"group": stage.group, "what": stage.what, "rows": rows, "cores": cores}
    if stage.name == "pandas" and rows > ctx.pandas_max_rows:
        result["skipped"] = (f"{rows:,} rows > --pandas-max-rows {ctx.pandas_max_rows:,}: "
                             "all rows would be loaded into this process")
        print(f"  {stage.name:<12} skipped: {result['skipped']}", flush=True)
        return result
    out = ctx.scratch / stage.name
    tag_stage(ctx.spark, stage.name)
    started = time.perf_counter()
    try:
        with PeakMemory() as memory:
            stage.action(ctx, out)
    except Exception as error:  # a benchmark reports a failing stage and goes on
        first_line = (str(error).strip().splitlines() or [""])[0]
        result["error"] = f"{type(error).__name__}: {first_line[:300]}"
        print(f"  {stage.name:<12} FAILED: {result['error']}", flush=True)
        traceback.print_exc()
        return result
    finally:
        tag_stage(ctx.spark, None)
    seconds = time.perf_counter() - started
    result.update(seconds=round(seconds, 2), rows_per_s_per_core=round(rows / seconds / cores),
                  memory=memory.result())
    peak = result["memory"]["peak_mib"]
    print(f"  {stage.name:<12} {seconds:8.1f} s   driver py {peak['driver_python']:7.0f} MiB"
          f"   jvm {peak['jvm']:7.0f} MiB   worker {peak['worker_max']:6.0f} MiB", flush=True)
    return result


def warm_up_pricing(ctx: Context) -> float:
    """Untimed: one floor pass (the JVM compiles the Parquet, shuffle and sort paths) and a
    mapInPandas pass that imports the pricing code into the Python workers. Returns seconds."""
    from batch_scoring.udfs.pricing import data_pricing  # noqa: F401  (fails here, not in a worker)

    def import_pricing(batches):
        import pandas as pd

        import batch_scoring.udfs.pricing.data_pricing  # noqa: F401
        import batch_scoring.udfs.engine.unit_of_work  # noqa: F401

        for _ in batches:
            pass
        yield pd.DataFrame({"n": [0]})

    started = time.perf_counter()
    pricing_bench.floor(ctx.spark, ctx.pricing_source, ctx.scratch / "warm_up", ctx.buckets)
    shutil.rmtree(ctx.scratch / "warm_up", ignore_errors=True)
    ctx.spark.read.parquet(str(ctx.pricing_source)).select("volume").mapInPandas(
        import_pricing, "n long").collect()
    return time.perf_counter() - started


def warm_up_model(ctx: Context, jvm_warm: bool) -> float:
    """Untimed: the model benchmark's own warm-up (workers import mlflow and scikit-learn,
    spark_udf runs on one file), with one floor pass when the pricing stages already warmed the
    JVM (``jvm_warm``), else its default passes. Returns seconds."""
    started = time.perf_counter()
    floors = 1 if jvm_warm else model_bench.WARM_UP_FLOORS
    model_bench.warm_up(ctx.spark, ctx.model_source, ctx.model_path, ctx.scratch / "warm_up", floors)
    return time.perf_counter() - started


def check_predictions(ctx: Context, measured: dict) -> dict:
    """spark_udf vs our scorer and model job on a 1 % sample joined on id (both must have run)."""
    checks = {}
    if "seconds" not in measured.get("spark_udf", {}):
        return checks
    for name in ("scorer", "scorer_compiled", "model_job"):
        if "seconds" not in measured.get(name, {}):
            continue
        sampled, matched, diff = model_bench.max_difference(
            ctx.spark, ctx.scratch / "spark_udf", ctx.scratch / name)
        ok = sampled > 0 and matched == sampled and diff < model_bench.TOLERANCE
        checks[f"spark_udf_vs_{name}"] = {
            "sampled_rows": sampled, "matched_rows": matched, "max_abs_diff": diff, "ok": ok}
        print(f"  check spark_udf vs {name}: {matched:,}/{sampled:,} sampled ids matched, "
              f"max |diff| {diff:.3g} -> {'OK' if ok else 'MISMATCH'}", flush=True)
    return checks


def remove_outputs(ctx: Context, names) -> None:
    """Delete the stages' outputs (and a job's ``_rejects`` sibling) from the scratch folder."""
    for name in names:
        shutil.rmtree(ctx.scratch / name, ignore_errors=True)
        shutil.rmtree(ctx.scratch / f"{name}_rejects", ignore_errors=True)
