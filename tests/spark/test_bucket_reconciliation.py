"""Reconciliation per unit-of-work bucket: rows read in a bucket = rows priced there + rejected there."""

from __future__ import annotations


import pandas as pd
import pytest
from pyspark.sql import functions as F

from batch_scoring.jobs.commit import BucketCheck, reconcile_buckets
from batch_scoring.jobs.errors import ReconciliationError
from batch_scoring.udfs.engine.spark_execution import BUCKET_COLUMN, apply_packed, bucket_of, split_status
from batch_scoring.udfs.registry import resolve_function
from user_modules import importable_module

KEYS = ["cell_id", "hour"]
BUCKETS = 5
MODULE = '''
from batch_scoring.udfs.contract import unit_of_work_function


@unit_of_work_function(output_schema="rows bigint", shape="batch")
def rows_per_unit(pdf, keys):
    return pdf.groupby(keys, as_index=False, sort=False).agg(rows=("load", "size"))
'''


@pytest.fixture(scope="module")
def counting(tmp_path_factory):
    """The batch function ``bucket_counting:rows_per_unit`` (rows of each unit), importable."""
    with importable_module(tmp_path_factory.mktemp("bucket_counting"), "bucket_counting", MODULE):
        yield resolve_function("bucket_counting:rows_per_unit")


def traffic(spark, units: int = 40, rows_per_unit: int = 6):
    """``units`` units of (cell_id string, hour int), ``rows_per_unit`` rows each; load 0 on the first row."""
    rows = [(f"c{u % 13}", u % 24, float(r), u * 100 + r) for u in range(units) for r in range(rows_per_unit)]
    return spark.createDataFrame(pd.DataFrame(rows, columns=["cell_id", "hour", "load", "seq"]))


def rows_by_bucket(df) -> dict[int, int]:
    grouped = df.groupBy(bucket_of(KEYS, BUCKETS).alias("b")).agg(F.count("*").alias("n"))
    return {int(r["b"]): int(r["n"]) for r in grouped.collect()}


def test_the_engine_counts_each_bucket_where_the_keys_hash_to(spark, counting):
    """The check relies on repartition(n, keys) placing a unit in pmod(hash(keys), n)."""
    df = traffic(spark)
    raw = apply_packed(df, counting, counting.bind({}), KEYS, ["seq"], BUCKETS, True).cache()
    try:
        status = split_status(raw, KEYS)
        priced = raw.where(F.col("_rows").isNull())
        assert priced.where(F.col(BUCKET_COLUMN) != bucket_of(KEYS, BUCKETS)).count() == 0
        assert status.rows_priced_by_bucket == rows_by_bucket(df)
        assert sum(status.rows_priced_by_bucket.values()) == status.rows_priced == 240
        assert BUCKET_COLUMN not in status.priced.columns
    finally:
        raw.unpersist()


def test_counts_that_add_up_per_bucket_give_the_run_totals(spark):
    source = traffic(spark)
    done = rows_by_bucket(source.where("load != 0"))
    counts = reconcile_buckets(BucketCheck(KEYS, BUCKETS, done), source, source.where("load = 0"),
                               sum(done.values()))
    assert (counts.rows_in, counts.rows_done, counts.rows_rejected) == (240, 200, 40)


def test_a_row_counted_in_the_wrong_bucket_is_caught_although_the_run_adds_up(spark):
    source = traffic(spark)
    rejects = source.where("load = 0")
    done = rows_by_bucket(source.where("load != 0"))
    rejected = rows_by_bucket(rejects)
    first, second = sorted(done)[:2]
    shifted = {**done, first: done[first] - 1, second: done[second] + 1}
    with pytest.raises(ReconciliationError) as caught:
        reconcile_buckets(BucketCheck(KEYS, BUCKETS, shifted), source, rejects, sum(shifted.values()))
    message = str(caught.value)
    assert message.startswith(f"2 of {BUCKETS} buckets do not reconcile")
    read = done[first] + rejected[first]
    assert f"bucket {first}: read {read:,} != priced {done[first] - 1:,} + rejected {rejected[first]:,}" in message
    assert message.endswith("nothing was committed")
