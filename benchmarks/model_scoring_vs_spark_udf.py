"""Benchmark: our model scorer vs ``mlflow.pyfunc.spark_udf``, same data, same model, one run.

    .venv/bin/python benchmarks/model_scoring_vs_spark_udf.py --rows 2000000 [--model hgb|ridge]

Generates a seeded numeric dataset (int64 ``id`` + 8 float64 features, zstd Parquet, 8 files)
and a scikit-learn HistGradientBoostingRegressor trained on a 20k-row sample, saved as an
MLflow model folder with an inferred signature, both under benchmarks/work/. Then times, one
after the other in the same Spark session (local[2]), after an untimed warm-up (see
:func:`warm_up`: the JVM's Parquet and Arrow code paths are compiled and the Python workers have
mlflow and scikit-learn imported, so the first timed stage does not pay for that):

1. floor:       read id + features, write zstd Parquet; no model;
2. spark_udf:   ``mlflow.pyfunc.spark_udf(..., result_type="double")`` on ``struct(*features)``,
                id + prediction written as Parquet;
3. ours_engine: ``ship_model`` + ``score_spark`` (id passthrough, ``mapInArrow``), its output
                (id, prediction, model stamp columns) written as Parquet: the scorer alone;
4. ours_job:    the whole model job (``pipeline.run`` on conf/jobs/model_scoring.yaml): signature
                check, quarantine, predictions and rejects written, counts read back.

Checks that spark_udf and our scorer give the same predictions (a sample joined on id; exits 1
when they differ). Prints a table of seconds, rows/s per core and ratios, and writes it as JSON
to benchmarks/results/. Not part of the test suite; timings are never asserted in tests.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.harness import make_session, print_table, timed  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FEATURES = [f"x{i}" for i in range(8)]
FILES = 8
TRAIN_ROWS = 20_000
BATCH_SIZE = 10_000
TOLERANCE = 1e-9
WARM_UP_FLOORS = 3
HGB_PREDICTOR = "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"


def parse_args(argv=None) -> argparse.Namespace:
    """Parse --rows (source rows), --cores, --seed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds of the scoring stages, the order reversed every other "
                             "round; each stage reports its best round")
    parser.add_argument("--suffix", default="", help="appended to the result file's name")
    parser.add_argument("--no-job", action="store_true", help="skip the whole model job stage")
    parser.add_argument("--model", choices=sorted(MODELS), default="hgb",
                        help="hgb: predict-bound; ridge: nearly free predict, shows scorer overhead")
    return parser.parse_args(argv)


def warm_up(spark, source: Path, model_path: Path, scratch: Path, floors: int = WARM_UP_FLOORS) -> int:
    """Untimed: count the rows, run the floor ``floors`` times, start the Python workers
    with mlflow and scikit-learn imported (a mapInPandas pass over every column), and run
    spark_udf on one source file into the noop sink. Returns the source's rows.

    Without it the first timed stages pay the JVM's JIT compilation of the Parquet and Arrow
    paths (the floor takes about 5 s on its first pass and about 2 s from the fourth on, on this
    machine) and the workers' imports of mlflow and scikit-learn (3 to 7 s per worker). No model
    stays loaded for a timed stage: spark_udf loads its model per task, and our per-worker
    cache is still empty.
    """
    from pyspark.sql import functions as F

    def import_model_libraries(batches):
        import mlflow.pyfunc  # noqa: F401
        import sklearn.ensemble  # noqa: F401

        for _ in batches:
            pass
        yield pd.DataFrame({"pid": [os.getpid()]})

    import mlflow.pyfunc

    rows = spark.read.parquet(str(source)).count()
    for _ in range(floors):
        floor(spark, source, scratch)
    shutil.rmtree(scratch, ignore_errors=True)
    spark.read.parquet(str(source)).select("id", *FEATURES).mapInPandas(
        import_model_libraries, "pid long"
    ).collect()
    predict = mlflow.pyfunc.spark_udf(spark, str(model_path), result_type="double")
    one_file = sorted(source.glob("*.parquet"))[0]
    (
        spark.read.parquet(str(one_file)).withColumn("prediction", predict(F.struct(*FEATURES)))
        .select("id", "prediction").write.format("noop").mode("overwrite").save()
    )
    return rows


def features_frame(rng: np.random.Generator, rows: int) -> pd.DataFrame:
    """``rows`` rows of the 8 float64 features: normal, uniform, log-normal and skewed columns."""
    return pd.DataFrame({
        "x0": rng.normal(0.0, 1.0, rows),
        "x1": rng.uniform(-2.0, 2.0, rows),
        "x2": rng.normal(5.0, 2.0, rows),
        "x3": rng.lognormal(0.0, 0.5, rows),
        "x4": rng.normal(0.0, 3.0, rows),
        "x5": rng.exponential(1.0, rows),
        "x6": rng.uniform(0.0, 10.0, rows),
        "x7": rng.standard_t(5, rows),
    })


def target_of(features: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    """A nonlinear target with interactions and noise, so the trees have something to learn."""
    f = features
    signal = (
        3 * np.sin(f["x0"]) + f["x1"] ** 2 + 0.3 * f["x2"] * f["x3"] + 2 * (f["x4"] > 0)
        + np.log1p(f["x5"]) + 0.5 * f["x6"] - 0.3 * f["x7"]
    )
    return (signal + rng.normal(0.0, 0.5, len(f))).to_numpy()


def write_source(source: Path, rows: int, seed: int) -> None:
    """Write the seeded dataset as ``FILES`` zstd Parquet files: ``id`` (int64) + features."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    staging = source.with_name(source.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    bounds = np.linspace(0, rows, FILES + 1).astype(np.int64)
    for part, (start, stop) in enumerate(zip(bounds[:-1], bounds[1:])):
        frame = features_frame(rng, int(stop - start))
        frame.insert(0, "id", np.arange(start, stop, dtype=np.int64))
        table = pa.Table.from_pandas(frame, preserve_index=False)
        pq.write_table(table, staging / f"part-{part:05d}.parquet", compression="zstd")
    staging.rename(source)


MODELS = {
    "hgb": "HistGradientBoostingRegressor(max_iter=100, max_leaf_nodes=31), skops",
    "ridge": "Ridge(alpha=1.0), skops",
}


def new_estimator(kind: str, seed: int):
    """The benchmark's scikit-learn estimator of ``kind`` (see MODELS)."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import Ridge

    if kind == "ridge":
        return Ridge(alpha=1.0)
    return HistGradientBoostingRegressor(max_iter=100, max_leaf_nodes=31, random_state=seed)


def save_model(source: Path, model_path: Path, seed: int, kind: str = "hgb") -> None:
    """Train the ``kind`` estimator on a 20k-row sample; save it as an MLflow model."""
    import mlflow.sklearn
    from mlflow.models import infer_signature

    rng = np.random.default_rng(seed + 1)
    sample = pd.read_parquet(source, columns=FEATURES).sample(
        n=TRAIN_ROWS, random_state=seed
    ).reset_index(drop=True)
    model = new_estimator(kind, seed)
    model.fit(sample, target_of(sample, rng))
    signature = infer_signature(sample, model.predict(sample.head(100)))
    shutil.rmtree(model_path, ignore_errors=True)
    mlflow.sklearn.save_model(
        model, str(model_path), signature=signature, skops_trusted_types=[HGB_PREDICTOR]
    )


def floor(spark, source: Path, out: Path) -> None:
    """The I/O floor: read id + features, write them as zstd Parquet; no model."""
    (
        spark.read.parquet(str(source)).select("id", *FEATURES)
        .write.mode("overwrite").option("compression", "zstd").parquet(str(out))
    )


def spark_udf(spark, source: Path, model_path: Path, out: Path) -> None:
    """MLflow's own Spark scoring: ``spark_udf`` on a struct of the features, id + prediction."""
    import mlflow.pyfunc
    from pyspark.sql import functions as F

    predict = mlflow.pyfunc.spark_udf(spark, str(model_path), result_type="double")
    (
        spark.read.parquet(str(source))
        .withColumn("prediction", predict(F.struct(*FEATURES)))
        .select("id", "prediction")
        .write.mode("overwrite").option("compression", "zstd").parquet(str(out))
    )


def engine(spark, source: Path, model_path: Path, out: Path, batch_size: int = BATCH_SIZE,
           scorer=None, backend: str = "native") -> dict | None:
    """Our scorer alone: ``ship_model`` + ``score_spark`` with id passthrough, written as Parquet;
    ``batch_size`` is the rows per ``predict`` call at most; ``scorer`` replaces ``score_spark``.

    ``backend="compiled"`` first compiles the model on the driver, checks it on a 2,000-row
    sample of the source and ships the library (:func:`batch_scoring.jobs.model_backend.choose_backend`,
    as the job does; its time is part of the stage); returns the choice's record then, else None.

    Raises:
        ConfigError: with ``compiled``, when the model cannot be compiled or its predictions differ.
    """
    import tempfile

    from mlflow.models import Model

    from batch_scoring.jobs.model_backend import choose_backend
    from batch_scoring.jobs.model_resolution import ResolvedModel, content_hash
    from batch_scoring.udfs.models.model_scoring import ModelStamp, ScoringSpec
    from batch_scoring.udfs.models.model_signature import model_inputs
    from batch_scoring.udfs.models.spark_scoring import score_spark, ship_library, ship_model

    score_spark = scorer or score_spark

    uri = str(model_path)
    meta = Model.load(uri)
    spec = ScoringSpec(tuple(model_inputs(meta.signature, None, uri)), {"prediction": "double"}, ("id",))
    shipped = ship_model(spark, uri, content_hash(model_path), ModelStamp(uri))
    df = spark.read.parquet(str(source)).select("id", *FEATURES)
    with tempfile.TemporaryDirectory(prefix="bench-compiled-") as folder:
        choice = None
        if backend != "native":
            resolved = ResolvedModel(uri, uri, shipped.sha256, None, None, tuple(meta.flavors), meta.signature)
            choice = choose_backend(backend, resolved, spec, df, folder)
            if choice.backend == "compiled":
                shipped = ship_library(spark, shipped, choice.library)
        (
            score_spark(df, {(): shipped}, {shipped.sha256: spec}, (), batch_size)
            .write.mode("overwrite").option("compression", "zstd").parquet(str(out))
        )
    return choice.describe() if choice else None


def job_run(spark, source: Path, model_path: Path, out: Path, batch_size: int | None = None):
    """One whole model-scoring job run on the data and model; returns its RunSummary.

    ``batch_size`` overrides ``model.batch_size`` (rows per ``predict`` call); None keeps the YAML's.
    """
    from batch_scoring.jobs.config import load_job
    from batch_scoring.jobs.pipeline import run

    job = load_job(ROOT / "conf/jobs/model_scoring.yaml", [
        f"source.path={source}", "source.filter=null",
        f"model.uri={model_path}", f"model.allowed_uris={json.dumps([str(model_path)])}",
        "model.passthrough=[id]", "model.output_schema=prediction double",
        f"output.path={out}", "output.format=parquet", "output.partition_by=[]",
        *([f"model.batch_size={batch_size}"] if batch_size else []),
    ])
    return run(spark, job, dt.date(2026, 11, 22), "bench-model-job")


def max_difference(spark, left: Path, right: Path, fraction: float = 0.01) -> tuple[int, int, float]:
    """Join a sample of ``left``'s predictions to ``right``'s on id.

    Returns:
        (sampled rows, rows matched in ``right``, max |prediction difference|).
    """
    from pyspark.sql import functions as F

    sample = spark.read.parquet(str(left)).select("id", F.col("prediction").alias("a"))
    sample = sample.sample(fraction=fraction, seed=11)
    other = spark.read.parquet(str(right)).select("id", F.col("prediction").alias("b"))
    row = sample.join(other, "id", "left").agg(
        F.count("*").alias("n"), F.count("b").alias("matched"),
        F.max(F.abs(F.col("a") - F.col("b"))).alias("diff"),
    ).first()
    return row["n"], row["matched"], float(row["diff"] if row["diff"] is not None else np.inf)


def check_predictions(spark, work: Path, names=("ours_engine", "ours_pandas_udf", "ours_job")) -> dict:
    """spark_udf vs our scorers (and the job) on a sample joined on id; prints the result."""
    checks = {}
    for name in names:
        sampled, matched, diff = max_difference(spark, work / "spark_udf", work / name)
        ok = sampled > 0 and matched == sampled and diff < TOLERANCE
        checks[f"spark_udf_vs_{name}"] = {
            "sampled_rows": sampled, "matched_rows": matched, "max_abs_diff": diff, "ok": ok,
        }
        print(f"check spark_udf vs {name}: {matched:,}/{sampled:,} sampled ids matched, "
              f"max |diff| {diff:.3g} -> {'OK' if ok else 'MISMATCH'}")
    return checks


def main(argv=None) -> int:
    """Generate the data and model if missing, time every stage, check, print and save."""
    args = parse_args(argv)
    work = HERE / "work" / f"model-r{args.rows}-s{args.seed}"
    source, model_path = work / "source", work / f"model-{args.model}"
    if not source.exists():
        write_source(source, args.rows, args.seed)
    if not (model_path / "MLmodel").exists():
        save_model(source, model_path, args.seed, args.model)
    spark = make_session(args.cores, "benchmark-model-scoring-vs-spark-udf")
    rows = warm_up(spark, source, model_path, work / "warm_up")
    print(f"{rows:,} rows, {len(FEATURES)} features, {FILES} files, local[{args.cores}], "
          f"{MODELS[args.model]}")
    stages = {
        "floor": lambda: floor(spark, source, work / "floor"),
        "spark_udf": lambda: spark_udf(spark, source, model_path, work / "spark_udf"),
        "ours_engine": lambda: engine(spark, source, model_path, work / "ours_engine"),
    }
    rounds: dict[str, list[float]] = {name: [] for name in stages}
    for number in range(max(1, args.repeat)):
        order = list(stages) if number % 2 == 0 else list(stages)[::-1]
        print(f"round {number + 1}: {', '.join(order)}")
        for name in order:
            rounds[name].append(timed(name, stages[name])[1])
    results = {name: min(seconds) for name, seconds in rounds.items()}
    if not args.no_job:
        results["ours_job"] = timed("ours_job", lambda: job_run(spark, source, model_path, work / "ours_job"))[1]
    checks = check_predictions(spark, work, [n for n in ("ours_engine", "ours_pandas_udf", "ours_job")
                                             if n in results])
    spark.stop()
    report = summarise(results, rows, args, checks)
    report["round_seconds"] = {name: [round(s, 2) for s in seconds] for name, seconds in rounds.items()}
    report["load_average"] = [round(x, 2) for x in os.getloadavg()]
    print_table(report)
    suffix = ("" if args.model == "hgb" else f"_{args.model}") + getattr(args, "suffix", "")
    out = HERE / "results" / f"model_scoring_vs_spark_udf_r{args.rows}{suffix}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written {out.relative_to(ROOT)}")
    for name in ("floor", "spark_udf", "ours_engine", "ours_pandas_udf", "ours_job", "ours_job_rejects"):
        shutil.rmtree(work / name, ignore_errors=True)
    if not all(check["ok"] for check in checks.values()):
        print("error: spark_udf and our scorer disagree (see the checks above)", file=sys.stderr)
        return 1
    return 0


def summarise(seconds: dict[str, float], rows: int, args, checks: dict) -> dict:
    """Seconds per stage -> report with rows/s per core, ratios to the floor and the checks."""
    stages = {
        name: {
            "seconds": round(value, 2),
            "rows_per_s_per_core": round(rows / value / args.cores),
            "x_floor": round(value / seconds["floor"], 2),
        }
        for name, value in seconds.items()
    }
    ratios = {
        "spark_udf_over_ours_engine": round(seconds["spark_udf"] / seconds["ours_engine"], 2),
        "ours_engine_over_floor": round(seconds["ours_engine"] / seconds["floor"], 2),
    }
    if "ours_pandas_udf" in seconds:
        ratios["spark_udf_over_ours_pandas_udf"] = round(seconds["spark_udf"] / seconds["ours_pandas_udf"], 2)
        ratios["ours_pandas_udf_over_ours_engine"] = round(seconds["ours_pandas_udf"] / seconds["ours_engine"], 2)
    if "ours_job" in seconds:
        ratios["spark_udf_over_ours_job"] = round(seconds["spark_udf"] / seconds["ours_job"], 2)
        ratios["ours_job_over_floor"] = round(seconds["ours_job"] / seconds["floor"], 2)
    return {
        "rows": rows, "features": len(FEATURES), "cores": args.cores,
        "model": MODELS[args.model],
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "measured": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "stages": stages, "ratios": ratios, "checks": checks,
    }


if __name__ == "__main__":
    sys.exit(main())
