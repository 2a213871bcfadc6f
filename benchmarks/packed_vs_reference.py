"""Benchmark: the packed unit-of-work engine vs the applyInPandas reference, same data, one run.

    .venv/bin/python benchmarks/packed_vs_reference.py --rows 2000000 --units 5000

Generates seeded bundle-sales data (``batch-score sample-data``) under benchmarks/work/, then
times, one after the other in the same Spark session (local[2]):

1. floor:     read, repartition by the unit-of-work keys, sort, write Parquet; no function;
2. reference: the data-pricing job with ``unit_of_work.engine=reference`` (applyInPandas);
3. packed:    the same job with the packed engine (many units per Arrow batch);
4. pandas:    the same pricing on one pandas DataFrame, no Spark.

Each Spark timing is one whole job run (read, quarantine, priors, pricing, write, counts).
Prints a table of seconds, rows/s per core and ratios, and writes it as JSON to
benchmarks/results/. Not part of the test suite; timings are never asserted in tests.
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

import pandas as pd

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.harness import make_session, print_table, timed  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
KEYS = ["segment", "location", "product"]


def parse_args(argv=None) -> argparse.Namespace:
    """Parse --rows (source rows), --units (units of work), --cores, --skip-reference."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--units", type=int, default=5_000)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--skip-reference", action="store_true", help="for very many units")
    return parser.parse_args(argv)


def floor(spark, source: Path, out: Path, buckets: int) -> None:
    """The I/O floor: read, repartition by the keys, sort within partitions, write zstd Parquet."""
    (
        spark.read.parquet(str(source))
        .repartition(buckets, *KEYS)
        .sortWithinPartitions(*KEYS, "sale_date")
        .write.mode("overwrite")
        .option("compression", "zstd")
        .parquet(str(out))
    )


def python_floor(spark, source: Path, buckets: int) -> int:
    """The floor of any job that runs Python on the units: the job's columns read,
    repartitioned by the keys, sorted within partitions and handed to the Python workers as
    Arrow record batches (``mapInArrow``), which only count them; returns the rows counted.

    What this costs over :func:`floor` is moving every row from the JVM into Python, which no
    unit-of-work engine can avoid; what the packed job costs over this is its own work.
    """
    import pyarrow as pa

    def count_rows(batches):
        yield pa.RecordBatch.from_pydict({"rows": [sum(batch.num_rows for batch in batches)]})

    counted = (
        spark.read.parquet(str(source))
        .select(*KEYS, "sale_date", "price", "volume", "unit_cost")
        .repartition(buckets, *KEYS)
        .sortWithinPartitions(*KEYS, "sale_date")
        .mapInArrow(count_rows, "rows long")
        .groupBy().sum("rows")
        .first()
    )
    return int(counted[0])


def job_run(spark, source: Path, out: Path, engine: str, buckets: int):
    """One whole data-pricing job run with the given engine; returns its RunSummary."""
    from batch_scoring.jobs.config import load_job
    from batch_scoring.jobs.pipeline import run

    job = load_job(ROOT / "conf/jobs/data_pricing.yaml", [
        f"source.path={source}", f"output.path={out}", "output.format=parquet",
        "source.filter=null", f"unit_of_work.engine={engine}", f"unit_of_work.buckets={buckets}",
    ])
    return run(spark, job, dt.date(2026, 11, 22), f"bench-{engine}")


def pandas_alone(source: Path) -> None:
    """The same pricing with pandas alone: read all rows into memory and price them."""
    from batch_scoring.udfs.pricing.data_pricing import DataPricingParams, price_data
    from batch_scoring.jobs.config import load_job

    params = load_job(ROOT / "conf/jobs/data_pricing.yaml").function.params
    price_data(pd.read_parquet(source), KEYS, DataPricingParams(**params))


def main(argv=None) -> int:
    """Generate the data if missing, time every stage, print and save the table."""
    args = parse_args(argv)
    from batch_scoring.jobs.sample_data import write_sample

    work = HERE / "work" / f"r{args.rows}-u{args.units}"
    source = work / "bundle_sales"
    if not source.exists():
        write_sample("bundle_sales", source, rows=args.rows, units=args.units, seed=7)
    rows = len(pd.read_parquet(source, columns=["volume"]))
    spark = make_session(args.cores, "benchmark-packed-vs-reference")
    buckets = args.cores * 4
    print(f"{rows:,} rows, {args.units:,} units, local[{args.cores}], {buckets} buckets")
    results = [timed("floor", lambda: floor(spark, source, work / "floor", buckets))]
    if not args.skip_reference:
        results.append(timed("reference", lambda: job_run(spark, source, work / "ref", "reference", buckets)))
    results.append(timed("packed", lambda: job_run(spark, source, work / "packed", "packed", buckets)))
    results.append(timed("pandas", lambda: pandas_alone(source)))
    spark.stop()
    report = summarise(dict(results), rows, args)
    print_table(report)
    out = HERE / "results" / f"packed_vs_reference_r{args.rows}_u{args.units}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written {out.relative_to(ROOT)}")
    shutil.rmtree(work / "floor", ignore_errors=True)
    return 0


def summarise(seconds: dict[str, float], rows: int, args) -> dict:
    """Seconds per stage -> report with rows/s per core and ratios to the floor."""
    stages = {
        name: {
            "seconds": round(value, 2),
            "rows_per_s_per_core": round(rows / value / (1 if name == "pandas" else args.cores)),
            "x_floor": round(value / seconds["floor"], 2),
        }
        for name, value in seconds.items()
    }
    ratios = {}
    if "reference" in seconds:
        ratios["reference_over_packed"] = round(seconds["reference"] / seconds["packed"], 2)
    return {
        "rows": rows, "units": args.units, "cores": args.cores,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "measured": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "stages": stages, "ratios": ratios,
    }


if __name__ == "__main__":
    sys.exit(main())
