"""The harness's data: sizes, and the seeded datasets and model generated once per size.

Everything lives under ``benchmarks/work/<size>/`` (git-ignored) and is reused when present:

* ``bundle_sales/``: the pricing source, ``batch_scoring.jobs.sample_data.write_sample``
  (Hive-partitioned zstd Parquet, published atomically, so an existing folder is complete);
* ``model_source/``: the numeric model source of ``model_scoring_vs_spark_udf.write_source``
  (int64 ``id`` + 8 float64 features, renamed into place when complete);
* ``model-<kind>/``: the MLflow model of ``model_scoring_vs_spark_udf.save_model``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / "work"
SEED = 7


@dataclass(frozen=True)
class Size:
    """A benchmark size: rows of both sources and units of work of the pricing source."""

    name: str
    rows: int
    units: int


SIZES = {
    "T": Size("T", 50_000, 500),  # tiny: smoke runs only
    "S": Size("S", 1_000_000, 1_000),
    "M": Size("M", 5_000_000, 10_000),
    "L": Size("L", 20_000_000, 100_000),
    "P": Size("P", 5_000_000, 100_000),  # the pricing target's shape: 100k units over 5M rows
}


def size_folder(size: Size) -> Path:
    """``benchmarks/work/<size>/``, the cache of one size's data and the stages' scratch outputs."""
    return WORK / size.name


def count_rows(path: Path) -> int:
    """Rows of a (Hive-partitioned) Parquet dataset, from the files' metadata only."""
    import pyarrow.dataset as ds

    return ds.dataset(str(path), format="parquet", partitioning="hive").count_rows()


def pricing_source(size: Size) -> Path:
    """The bundle-sales source of ``size``, generated with the project's seeded generator when
    missing (``write_sample("bundle_sales", ..., rows=, units=, seed=7)``)."""
    from batch_scoring.jobs.sample_data import write_sample

    source = size_folder(size) / "bundle_sales"
    if not source.exists():
        print(f"generating {source.relative_to(HERE.parent)} ({size.rows:,} rows, "
              f"{size.units:,} units)", flush=True)
        write_sample("bundle_sales", source, rows=size.rows, units=size.units, seed=SEED)
    return source


def model_data(size: Size, kind: str) -> tuple[Path, Path]:
    """(model source, MLflow model folder) of ``size``, generated when missing with the
    one-off model benchmark's own setup (``write_source`` and ``save_model``, seed 7)."""
    from benchmarks.model_scoring_vs_spark_udf import save_model, write_source

    folder = size_folder(size)
    source, model_path = folder / "model_source", folder / f"model-{kind}"
    if not source.exists():
        print(f"generating {source.relative_to(HERE.parent)} ({size.rows:,} rows)", flush=True)
        write_source(source, size.rows, SEED)
    if not (model_path / "MLmodel").exists():
        print(f"training {model_path.relative_to(HERE.parent)}", flush=True)
        save_model(source, model_path, SEED, kind)
    return source, model_path


def generate_in_subprocess(size: Size, pricing: bool, model_kind: str | None) -> None:
    """Generate whatever of ``size``'s data is missing in a child Python process, so the
    memory the generator uses never shows in the harness's own (driver) RSS."""
    import subprocess
    import sys

    missing_pricing = pricing and not (size_folder(size) / "bundle_sales").exists()
    missing_model = model_kind is not None and not (
        (size_folder(size) / "model_source").exists()
        and (size_folder(size) / f"model-{model_kind}" / "MLmodel").exists())
    if not (missing_pricing or missing_model):
        return
    command = [sys.executable, "-m", "benchmarks.datasets", "--size", size.name]
    if not pricing:
        command.append("--no-pricing")
    if model_kind is not None:
        command += ["--model", model_kind]
    subprocess.run(command, cwd=HERE.parent, check=True)


def main(argv=None) -> int:
    """``python -m benchmarks.datasets --size S [--model hgb|ridge] [--no-pricing]``: generate
    (or keep) one size's pricing source and, with ``--model``, its model source and model."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m benchmarks.datasets", description=main.__doc__)
    parser.add_argument("--size", required=True, choices=sorted(SIZES))
    parser.add_argument("--model", choices=("hgb", "ridge"))
    parser.add_argument("--no-pricing", action="store_true")
    args = parser.parse_args(argv)
    size = SIZES[args.size]
    if not args.no_pricing:
        print(f"{pricing_source(size)}: {count_rows(pricing_source(size)):,} rows")
    if args.model:
        source, model_path = model_data(size, args.model)
        print(f"{source}: {count_rows(source):,} rows; model {model_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
