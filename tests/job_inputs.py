"""Test inputs shared by the integration tests that run jobs through ``spark-submit.sh``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
BAD_ROWS = 3  # null segment, null price, negative unit cost (see add_bad_rows)


def add_bad_rows(sales: Path) -> None:
    """Add a file of three rows that break the input contract to the first partition.

    A null segment (a null key for pricing, a null model input for scoring), a null price
    (both jobs reject it) and a negative unit cost (pricing rejects it, the model scores it).
    The rows are copies of the partition's first file's first three rows, in its own schema.
    """
    partition = sorted(sales.glob("sale_month=*"))[0]
    sample = pq.ParquetFile(next(partition.glob("*.parquet"))).read()
    rows = sample.slice(0, 3).to_pandas()
    rows.loc[0, "segment"] = None
    rows.loc[1, "price"] = None
    rows.loc[2, "unit_cost"] = -1.0
    bad = pa.Table.from_pandas(rows, schema=sample.schema, preserve_index=False)
    pq.write_table(bad, partition / "bad-rows.parquet")


# Job flags for a run whose report is not the test's subject: the report costs a few Spark
# jobs after every commit (tests/spark/test_run_report.py, test_run_manifest.py and the
# spark-submit, S3 and tutorial tests keep it on).
NO_REPORT = ("--set", "report.enabled=false")


def run_spark_submit(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``./spark-submit.sh <args>`` in ``cwd`` with this interpreter as the job's Python;
    output captured as text, at most 600 s."""
    env = {**os.environ, "BATCH_SCORE_PYTHON": sys.executable}
    return subprocess.run(
        [str(ROOT / "spark-submit.sh"), *args], cwd=cwd, env=env,
        capture_output=True, text=True, timeout=600,
    )
