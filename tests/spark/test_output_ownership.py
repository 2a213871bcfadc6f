"""Output roots belong to one job: foreign folders refused, foreign files never deleted,
schema changes between runs refused before anything is committed."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batch_scoring.jobs.config import load_job
from batch_scoring.jobs.errors import InputError
from batch_scoring.jobs.ownership import MARKER, OwnershipError
from batch_scoring.jobs.pipeline import run
from batch_scoring.jobs.schema_change import SchemaChangeError
from user_modules import importable_module

ROOT = Path(__file__).resolve().parents[2]
DAY, EARLIER = dt.date(2026, 11, 22), dt.date(2026, 11, 21)
SALES = pa.schema([("segment", pa.string()), ("location", pa.string()), ("product", pa.string()),
                   ("sale_date", pa.date32()), ("price", pa.float64()), ("volume", pa.int64())])

MODULE = '''
import pandas as pd
from batch_scoring.udfs.contract import unit_of_work_function


@unit_of_work_function(output_schema="last_price double, days bigint")
def two_columns(key, pdf):
    return pd.DataFrame({"last_price": [pdf["price"].iloc[-1]], "days": [len(pdf)]})


@unit_of_work_function(output_schema="last_price double")
def one_column(key, pdf):
    return pd.DataFrame({"last_price": [pdf["price"].iloc[-1]]})


@unit_of_work_function(output_schema="last_price string, days bigint")
def text_price(key, pdf):
    return pd.DataFrame({"last_price": [str(pdf["price"].iloc[-1])], "days": [len(pdf)]})


@unit_of_work_function(output_schema="last_price double, days bigint, first_price double")
def three_columns(key, pdf):
    return pd.DataFrame({"last_price": [pdf["price"].iloc[-1]], "days": [len(pdf)],
                         "first_price": [pdf["price"].iloc[0]]})
'''


@pytest.fixture(scope="module")
def functions(tmp_path_factory):
    with importable_module(tmp_path_factory.mktemp("fns"), "shape_functions", MODULE) as name:
        yield name


def write_source(folder: Path) -> Path:
    """Four units of three days each in ``folder/sales``; return that folder."""
    rows = [{"segment": f"s{u % 2}", "location": f"l{u}", "product": "p",
             "sale_date": dt.date(2026, 11, 1 + d), "price": 10.0 + u + d, "volume": 5}
            for u in range(4) for d in range(3)]
    path = folder / "sales" / "part.parquet"
    path.parent.mkdir()
    pq.write_table(pa.Table.from_pylist(rows, schema=SALES), path)
    return path.parent


@pytest.fixture
def source(tmp_path):
    return write_source(tmp_path)


def job(source, output, function="two_columns", module="shape_functions", *overrides, name="prices"):
    return load_job(ROOT / "conf/jobs/data_pricing.yaml", [
        f"job={name}", f"source.path={source}", "source.filter=null",
        f"function.name={module}:{function}", f"function.allowed_modules=[{module}]",
        "function.params={}", "unit_of_work.buckets=2", f"output.path={output}",
        "output.partition_by=[segment]", *overrides,
    ])


def listing(folder: Path) -> dict[str, tuple[int, str]]:
    """Every file below ``folder`` with its size and SHA-256."""
    return {str(p.relative_to(folder)): (p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(folder.rglob("*")) if p.is_file()}


def users_files(folder: Path) -> dict[str, tuple[int, str]]:
    (folder / f"run_date={DAY}").mkdir(parents=True)
    (folder / f"run_date={DAY}" / "notes.txt").write_text("my own notes\n")
    (folder / "budget.xlsx").write_bytes(b"PK\x03\x04 not really a spreadsheet")
    return listing(folder)


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
def test_a_folder_holding_the_users_own_files_is_refused_and_left_as_it_was(
    spark, tmp_path, source, functions, fmt
):
    output = tmp_path / "home"
    before = users_files(output)
    with pytest.raises(OwnershipError) as caught:
        run(spark, job(source, output, "two_columns", functions, f"output.format={fmt}"), DAY)
    assert f"output.path {output} is not empty and was not created by this job" in str(caught.value)
    assert "budget.xlsx" in str(caught.value)
    assert listing(output) == before
    assert not (tmp_path / "home_rejects").exists()


def test_another_datasets_parquet_folder_is_refused_and_keeps_its_rows(spark, tmp_path, source, functions):
    dataset = tmp_path / "other_dataset"
    spark.range(300).selectExpr("id", "id % 3 as part").write.partitionBy("part").parquet(str(dataset))
    before = listing(dataset)
    with pytest.raises(OwnershipError):
        run(spark, job(source, dataset, "two_columns", functions, "output.format=parquet"), DAY)
    assert listing(dataset) == before
    assert spark.read.parquet(str(dataset)).count() == 300


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
def test_a_second_job_cannot_share_the_first_jobs_output_folder(spark, tmp_path, source, functions, fmt):
    shared = tmp_path / "shared"
    first = job(source, shared, "two_columns", functions, f"output.format={fmt}",
                f"output.rejects_path={tmp_path / 'r1'}", name="first_job")
    second = job(source, shared, "two_columns", functions, f"output.format={fmt}",
                 f"output.rejects_path={tmp_path / 'r2'}", name="second_job")
    run(spark, first, DAY, "first-run")
    before = listing(shared)
    with pytest.raises(OwnershipError) as caught:
        run(spark, second, DAY, "second-run")
    assert f"output.path {shared} belongs to job 'first_job' (output, {fmt}, partitioned by " \
           "run_date, segment), not to job 'second_job'" in str(caught.value)
    assert listing(shared) == before
    marker = json.loads((shared / MARKER).read_text())
    assert (marker["job"], marker["table"], marker["format"], marker["partition_by"]) == \
        ("first_job", "output", fmt, ["run_date", "segment"])


def test_a_changed_format_or_partitioning_is_refused_before_the_run(spark, tmp_path, source, functions):
    output = tmp_path / "prices"
    run(spark, job(source, output, "two_columns", functions, "output.format=parquet"), DAY)
    with pytest.raises(OwnershipError, match="was written as parquet partitioned by run_date, segment; "
                       "this run would write parquet partitioned by run_date"):
        run(spark, job(source, output, "two_columns", functions, "output.format=parquet",
                       "output.partition_by=[]"), DAY)
    with pytest.raises(OwnershipError, match="this run would write delta"):
        run(spark, job(source, output, "two_columns", functions, "output.format=delta"), DAY)


def test_a_foreign_file_in_a_parquet_run_date_stops_the_rerun_and_stays(spark, tmp_path, source, functions):
    output = tmp_path / "prices"
    prices = job(source, output, "two_columns", functions, "output.format=parquet")
    run(spark, prices, EARLIER, "earlier")
    run(spark, prices, DAY, "first")
    note = output / f"run_date={DAY}" / "segment=s0" / "README.txt"
    note.write_text("do not delete\n")
    elsewhere = output / f"run_date={EARLIER}" / "segment=s1" / "keep.csv"
    elsewhere.write_text("a,b\n")
    before = listing(output)
    with pytest.raises(InputError, match=f"holds 1 file\\(s\\) under run_date={DAY} that this package "
                       "did not write .*README.txt"):
        run(spark, prices, DAY, "second")
    assert listing(output) == before

    note.unlink()
    run(spark, prices, DAY, "third")
    assert elsewhere.read_text() == "a,b\n"
    got = spark.read.parquet(str(output)).where(f"run_date = '{DAY}'")
    assert {r["run_id"] for r in got.select("run_id").distinct().collect()} == {"third"}
    assert got.count() == 4


def test_a_root_written_before_markers_existed_is_adopted(spark, tmp_path, source, functions):
    output = tmp_path / "prices"
    prices = job(source, output, "two_columns", functions, "output.format=delta")
    run(spark, prices, EARLIER, "legacy")
    for table in (output, tmp_path / "prices_rejects"):
        (table / MARKER).unlink()
    manifest = output / "_manifests" / f"run_date={EARLIER}" / "legacy.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({"job": "prices", "run_id": "legacy"}))
    run(spark, prices, DAY, "after-upgrade")
    assert json.loads((output / MARKER).read_text())["job"] == "prices"
    assert spark.read.format("delta").load(str(output)).count() == 8


def content_hash(spark, path, fmt, day) -> str:
    rows = spark.read.format(fmt).load(str(path)).where(f"run_date = '{day}'").drop("run_date")
    return hashlib.sha256(repr(sorted(map(tuple, rows.collect()))).encode()).hexdigest()


@pytest.fixture(scope="module")
def two_run_dates(spark, tmp_path_factory, functions):
    """``copy(fmt, folder)``: ``folder/prices`` (and ``folder/prices_rejects``) holding the runs
    ``earlier`` (EARLIER) and ``day`` (DAY) of ``two_columns`` in ``fmt``, as if written there.

    The two runs are made once per format and copied for each test (the marker and the Delta
    log hold no absolute path), instead of running them again for every schema change.
    """
    written: dict[str, Path] = {}

    def copy(fmt: str, folder: Path) -> Path:
        if fmt not in written:
            made = tmp_path_factory.mktemp(f"two_run_dates_{fmt}")
            source, output = write_source(made), made / "prices"
            prices = job(source, output, "two_columns", functions, f"output.format={fmt}")
            run(spark, prices, EARLIER, "earlier")
            run(spark, prices, DAY, "day")
            written[fmt] = made
        for table in ("prices", "prices_rejects"):
            if (written[fmt] / table).exists():
                shutil.copytree(written[fmt] / table, folder / table)
        return folder / "prices"

    return copy


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
@pytest.mark.parametrize("function, change", [
    ("one_column", "dropped days bigint"),
    ("text_price", "retyped last_price: double -> string"),
    ("three_columns", "added first_price double"),
])
def test_a_changed_output_schema_is_refused_and_leaves_every_run_date_intact(
    spark, tmp_path, source, functions, two_run_dates, fmt, function, change
):
    output = two_run_dates(fmt, tmp_path)
    hashes = {d: content_hash(spark, output, fmt, d) for d in (EARLIER, DAY)}
    files = listing(output)
    with pytest.raises(SchemaChangeError) as caught:
        run(spark, job(source, output, function, functions, f"output.format={fmt}"), DAY, "changed")
    assert change in str(caught.value) and "nothing was committed" in str(caught.value)
    assert {d: content_hash(spark, output, fmt, d) for d in (EARLIER, DAY)} == hashes
    assert {k: v for k, v in listing(output).items() if "_manifests" not in k} == \
        {k: v for k, v in files.items() if "_manifests" not in k}


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
def test_add_columns_adds_a_nullable_column_and_keeps_earlier_run_dates(spark, tmp_path, source, functions, fmt):
    output = tmp_path / "prices"
    run(spark, job(source, output, "two_columns", functions, f"output.format={fmt}"), EARLIER, "earlier")
    run(spark, job(source, output, "three_columns", functions, f"output.format={fmt}",
                   "output.schema_change=add_columns"), DAY, "day")
    reader = spark.read.option("mergeSchema", "true").format(fmt)
    table = reader.load(str(output))
    earlier = table.where(f"run_date = '{EARLIER}'")
    assert earlier.count() == 4 and earlier.where("first_price is not null").count() == 0
    day = table.where(f"run_date = '{DAY}'").orderBy("location").collect()
    assert [r["first_price"] for r in day] == [10.0, 11.0, 12.0, 13.0]


def test_a_source_that_gained_a_column_keeps_the_rejects_table_whole(spark, tmp_path, functions):
    rows = [{"segment": "s0" if u else None, "location": f"l{u}", "product": "p",
             "sale_date": dt.date(2026, 11, 1), "price": 10.0, "volume": 5} for u in range(3)]
    narrow = tmp_path / "narrow"
    narrow.mkdir()
    pq.write_table(pa.Table.from_pylist(rows, schema=SALES), narrow / "part.parquet")
    wide = tmp_path / "wide"
    wide.mkdir()
    wide_schema = SALES.append(pa.field("channel", pa.string()))
    pq.write_table(pa.Table.from_pylist([{**r, "channel": "web"} for r in rows], schema=wide_schema),
                   wide / "part.parquet")
    output = tmp_path / "prices"
    run(spark, job(narrow, output, "two_columns", functions, "output.format=delta"), EARLIER, "narrow")
    summary = run(spark, job(wide, output, "two_columns", functions, "output.format=delta"), DAY, "wide")
    assert (summary.rows_in, summary.rows_rejected) == (3, 1)
    rejects = spark.read.format("delta").load(str(tmp_path / "prices_rejects"))
    got = {(str(r["run_date"]), r["channel"], r["reject_reason"]) for r in rejects.collect()}
    assert got == {(str(EARLIER), None, "null_key"), (str(DAY), "web", "null_key")}
