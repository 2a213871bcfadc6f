"""Bad input to the pricing and model jobs on local Spark: the exact rejects, output or message.

Corrupt and drifting Parquet files, extra, missing and retyped columns, nulls, NaN and
out-of-range values, an empty and a one-unit source, 64-bit ids and time-zoned timestamps
carried through a model job, and a unit of work larger than ``unit_of_work.max_unit_rows``.
Sources are small hand-built tables written with pyarrow, so every expected row is known.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from batch_scoring.jobs.config import load_job
from batch_scoring.jobs.errors import ConfigError, InputError
from batch_scoring.jobs.pipeline import run
from batch_scoring.udfs.pricing.data_pricing import DataPricingParams, price_data
from batch_scoring.udfs.pricing.voice_pricing import VoicePricingParams, price_voice_units
from user_modules import importable_module

ROOT = Path(__file__).resolve().parents[2]
KEYS = ["segment", "location", "product"]
READ = [*KEYS, "sale_date", "price", "volume", "unit_cost"]  # what a data-pricing job reads
REJECT = ["reject_reason", "reject_column", "reject_rule"]
DAY = dt.date(2026, 11, 22)
SALES = pa.schema([
    ("segment", pa.string()), ("location", pa.string()), ("product", pa.string()),
    ("sale_date", pa.date32()), ("price", pa.float64()), ("volume", pa.int64()),
    ("unit_cost", pa.float64()),
])
VOICE = pa.schema([
    ("cell_id", pa.string()), ("hour", pa.int32()), ("traffic_date", pa.date32()),
    ("load_erlangs", pa.float64()), ("capacity_erlangs", pa.float64()),
    ("base_price_per_min", pa.float64()),
])
# The data-pricing priors are collected with toPandas, which warns before re-raising a read error.
pytestmark = pytest.mark.filterwarnings("ignore:toPandas attempted Arrow optimization:UserWarning")


# --------------------------------------------------------------------------- helpers


def sales_rows(units: int = 3, days: int = 10, first: int = 0) -> list[dict]:
    """Clean daily sales: unit u sells at 10 + u (+0.5 on odd days), volume falls with price."""
    rows = []
    for unit in range(first, first + units):
        for day in range(days):
            price = 10.0 + unit + (0.5 if day % 2 else 0.0)
            rows.append({
                "segment": f"seg{unit % 2}", "location": f"loc{unit}", "product": "data_5gb",
                "sale_date": dt.date(2026, 10, 1) + dt.timedelta(days=day), "price": price,
                "volume": round(30_000 * price ** -1.6 * (1 + 0.04 * ((7 * day + unit) % 5))),
                "unit_cost": 4.0,
            })
    return rows


def write(path: Path, rows: list[dict], schema: pa.Schema = SALES) -> Path:
    """Write ``rows`` (None = null, float('nan') = NaN) as one Parquet file; return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return path


def pricing_job(tmp_path, source, *overrides, name="out"):
    return load_job(ROOT / "conf/jobs/data_pricing.yaml", [
        f"source.path={source}", "source.filter=null", f"output.path={tmp_path / name}",
        "unit_of_work.buckets=2", *overrides,
    ])


def voice_job(tmp_path, source, *overrides):
    return load_job(ROOT / "conf/jobs/voice_pricing.yaml", [
        f"source.path={source}", f"output.path={tmp_path / 'voice_out'}", "unit_of_work.buckets=2",
        *overrides,
    ])


def table(spark, path):
    return spark.read.format("delta").load(str(path))


def plain(value):
    """A collected value made comparable: NaN (never equal to itself) becomes the text 'NaN'."""
    return "NaN" if isinstance(value, float) and math.isnan(value) else value


def collected(df, columns) -> list[tuple]:
    """``df``'s ``columns`` as sorted tuples; nulls stay None, NaN becomes 'NaN'."""
    rows = [tuple(plain(v) for v in row) for row in df.select(*columns).collect()]
    return sorted(rows, key=lambda r: tuple((v is None, str(v)) for v in r))


def expected_rows(rows: list[dict], columns) -> list[tuple]:
    values = [tuple(plain(row[c]) for c in columns) for row in rows]
    return sorted(values, key=lambda r: tuple((v is None, str(v)) for v in r))


def expected_prices(spark, rows: list[dict], job, schema):
    """The pandas-only data pricing of ``rows`` (the function's reference), as Spark rows."""
    params = DataPricingParams(**job.function.params)
    return spark.createDataFrame(price_data(pd.DataFrame(rows), KEYS, params), schema=schema)


def assert_nothing_written(job):
    assert not os.path.exists(job.output.path)
    assert not os.path.exists(job.output.rejects)


# --------------------------------------------------------------------------- 1. corrupt files


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def overwrite_with_garbage(path: Path) -> None:
    path.write_bytes(b"this is not parquet\n" * 40)


@pytest.fixture(scope="module")
def good_run(spark, tmp_path_factory) -> Path:
    """A folder holding ``sales`` (three Parquet files, one unit each) and the committed run
    ``good`` of it (``out``, ``out_rejects``), made once; each test damages a copy."""
    folder = tmp_path_factory.mktemp("good_run")
    for part in range(3):  # one unit per file
        write(folder / "sales" / f"part-{part}.parquet", sales_rows(units=1, first=part))
    run(spark, pricing_job(folder, folder / "sales"), DAY, "good")
    return folder


@pytest.mark.parametrize("damage, victim", [
    (truncate, "part-1.parquet"),
    (overwrite_with_garbage, "part-0.parquet"),
])
def test_a_corrupt_parquet_file_stops_the_run_naming_the_file_and_commits_nothing(
    spark, tmp_path, good_run, damage, victim
):
    assert spark.conf.get("spark.sql.files.ignoreCorruptFiles") == "false"
    for folder in ("sales", "out", "out_rejects"):  # the source and the run "good" of it
        shutil.copytree(good_run / folder, tmp_path / folder)
    source = tmp_path / "sales"
    job = pricing_job(tmp_path, source)
    before = table(spark, job.output.path).toPandas()
    bad = source / victim
    damage(bad)

    with pytest.raises(InputError) as caught:
        run(spark, job, DAY, "after-damage")

    message = str(caught.value)
    assert caught.value.exit_code == 3
    assert re.fullmatch(
        re.escape(f"source file {bad} cannot be read as parquet (RuntimeException: file:{bad} is "
                  "not a Parquet file. Expected magic number at tail, but found ")
        + r"\[[-\d, ]+\]"
        + re.escape(f"); the file is corrupt or not parquet: replace it with a good copy from its "
                    f"producer, or move it out of source.path {source}, and rerun. Unreadable "
                    "files are never skipped: their rows would be lost without a reject."),
        message,
    ), message
    after = table(spark, job.output.path)
    assertDataFrameEqual(after, spark.createDataFrame(before, schema=after.schema))
    assert {r[0] for r in after.select("run_id").distinct().collect()} == {"good"}


def test_ignore_corrupt_files_is_refused_before_anything_is_read(spark, tmp_path):
    source = write(tmp_path / "sales.parquet", sales_rows())
    expected = ("spark.sql.files.ignoreCorruptFiles (or source.options.ignoreCorruptFiles) is "
                "true: Spark would skip unreadable source files and their rows would be lost "
                "without a reject; remove it from the profile's or the job's spark_conf and "
                "source.options")
    job = pricing_job(tmp_path, source, "source.options={ignoreCorruptFiles: 'true'}")
    with pytest.raises(ConfigError) as caught:
        run(spark, job, DAY)
    assert str(caught.value) == expected
    spark.conf.set("spark.sql.files.ignoreCorruptFiles", "true")
    try:
        with pytest.raises(ConfigError) as caught:
            run(spark, pricing_job(tmp_path, source), DAY)
    finally:
        spark.conf.set("spark.sql.files.ignoreCorruptFiles", "false")
    assert str(caught.value) == expected
    assert_nothing_written(job)


# --------------------------------------------------------------------------- 2. schema drift


@pytest.fixture(scope="module")
def plain_prices(spark, tmp_path_factory) -> Path:
    """The output of the data pricing of ``sales_rows()`` as written (SALES) for DAY, run id
    ``same``: what the same rows with extra or retyped columns must price to. Made once for
    the tests below, which only read it."""
    folder = tmp_path_factory.mktemp("plain")
    job = pricing_job(folder, write(folder / "plain.parquet", sales_rows()), name="plain")
    run(spark, job, DAY, "same")
    return Path(job.output.path)


def test_an_extra_source_column_is_ignored(spark, tmp_path, plain_prices):
    rows = sales_rows()
    extra = [{**row, "channel": "web", "campaign_id": i} for i, row in enumerate(rows)]
    wide = pa.schema([*SALES, ("channel", pa.string()), ("campaign_id", pa.int64())])
    extra_source = write(tmp_path / "extra.parquet", extra, wide)
    with_extra = pricing_job(tmp_path, extra_source, name="with_extra")

    summary = run(spark, with_extra, DAY, "same")

    got = table(spark, with_extra.output.path)
    assert "channel" not in got.columns and "campaign_id" not in got.columns
    assertDataFrameEqual(got, table(spark, plain_prices))
    assert (summary.rows_in, summary.rows_rejected, summary.units) == (30, 0, 3)
    assert table(spark, with_extra.output.rejects).columns == [*READ, *REJECT, "reject_raw", "run_date", "run_id"]


def test_a_missing_required_value_column_is_named(spark, tmp_path):
    rows = [{k: v for k, v in row.items() if k != "unit_cost"} for row in sales_rows()]
    source = write(tmp_path / "no_cost.parquet", rows, pa.schema(list(SALES)[:-1]))
    job = pricing_job(tmp_path, source)

    with pytest.raises(InputError) as caught:
        run(spark, job, DAY)

    assert str(caught.value) == (
        f"source {source} lacks column(s) 'unit_cost' needed by the job (unit_of_work "
        "keys/order_by or the function's inputs); it has ['segment', 'location', 'product', "
        "'sale_date', 'price', 'volume']"
    )
    assert_nothing_written(job)


def test_a_number_or_date_stored_as_string_is_named_with_found_and_expected_types(spark, tmp_path):
    rows = [{**row, "price": str(row["price"]), "sale_date": row["sale_date"].isoformat()}
            for row in sales_rows()]
    schema = SALES.set(3, pa.field("sale_date", pa.string())).set(4, pa.field("price", pa.string()))
    source = write(tmp_path / "strings.parquet", rows, schema)
    job = pricing_job(tmp_path, source)

    with pytest.raises(InputError) as caught:
        run(spark, job, DAY)

    assert str(caught.value) == (
        f"source {source} breaks the function's input contract: column 'sale_date' is string, "
        "expected date (date, timestamp or timestamp_ntz); column 'price' is string, expected "
        "numeric (tinyint, smallint, int, bigint, float, double or decimal). Fix the data, or "
        "map the function's column parameters to your columns."
    )
    assert_nothing_written(job)


def test_an_hour_stored_as_double_is_named_for_the_voice_job(spark, tmp_path):
    rows = [{"cell_id": "C1", "hour": 3.0, "traffic_date": dt.date(2026, 10, 1), "load_erlangs": 1.0,
             "capacity_erlangs": 10.0, "base_price_per_min": 0.05}]
    source = write(tmp_path / "voice.parquet", rows, VOICE.set(1, pa.field("hour", pa.float64())))
    job = voice_job(tmp_path, source)

    with pytest.raises(InputError) as caught:
        run(spark, job, DAY)

    assert str(caught.value) == (
        f"source {source} breaks the function's input contract: column 'hour' is double, "
        "expected integer (tinyint, smallint, int or bigint). Fix the data, or map the "
        "function's column parameters to your columns."
    )


def test_volume_as_double_is_accepted_as_numeric_and_prices_the_same(spark, tmp_path, plain_prices):
    rows = sales_rows()  # plain_prices: these rows with volume as bigint (SALES)
    doubles = [{**row, "volume": float(row["volume"])} for row in rows]
    as_doubles = SALES.set(5, pa.field("volume", pa.float64()))
    source = write(tmp_path / "double.parquet", doubles, as_doubles)
    as_double = pricing_job(tmp_path, source, name="double")

    run(spark, as_double, DAY, "same")

    assertDataFrameEqual(table(spark, as_double.output.path), table(spark, plain_prices))


def test_a_file_whose_column_type_drifted_from_the_others_is_named(spark, tmp_path):
    source = tmp_path / "drift"
    write(source / "part-0.parquet", sales_rows(units=1, first=0))
    write(source / "part-1.parquet", sales_rows(units=1, first=1))
    doubles = [{**row, "volume": float(row["volume"])} for row in sales_rows(units=1, first=2)]
    write(source / "part-2.parquet", doubles, SALES.set(5, pa.field("volume", pa.float64())))
    job = pricing_job(tmp_path, source)
    # Spark takes the schema from one file; the other type is then the drifted one.
    table_type = spark.read.parquet(str(source)).schema["volume"].dataType.simpleString()
    if table_type == "bigint":
        candidates, found = ["part-2.parquet"], "DOUBLE"
    else:
        candidates, found = ["part-0.parquet", "part-1.parquet"], "INT64"

    with pytest.raises(InputError) as caught:
        run(spark, job, DAY)

    assert str(caught.value) in [
        f"source file {source / name} does not match the schema of source.path {source}: "
        f"column [volume] is Parquet {found} in this file, but Spark reads the source as "
        f"{table_type}. The files disagree on this column's type (schema drift): rewrite the "
        "file with the type the other files have, or move it out of source.path, and rerun."
        for name in candidates
    ]
    assert_nothing_written(job)


# --------------------------------------------------------------------------- 3. bad rows


def test_nulls_nan_and_out_of_range_values_are_rejected_with_their_original_values(spark, tmp_path):
    good = sales_rows(units=3, days=10)
    nan = float("nan")
    bad = [  # (row changes, expected reason, column, rule); keys are checked first
        ({"segment": None}, "null_key", "segment", "not null"),
        ({"location": None, "price": -1.0}, "null_key", "location", "not null"),
        ({"sale_date": None}, "null_value", "sale_date", "not null"),
        ({"price": None}, "null_value", "price", "not null"),
        ({"price": nan}, "not_a_number", "price", "a number"),
        ({"price": -2.5}, "out_of_range", "price", "> 0"),
        ({"price": 0.0}, "out_of_range", "price", "> 0"),
        ({"volume": None}, "null_value", "volume", "not null"),
        ({"volume": -3}, "out_of_range", "volume", ">= 0"),
        ({"unit_cost": nan, "volume": -1}, "out_of_range", "volume", ">= 0"),
        ({"unit_cost": nan}, "not_a_number", "unit_cost", "a number"),
        ({"unit_cost": -0.5}, "out_of_range", "unit_cost", ">= 0"),
    ]
    rejected = []
    for i, (changes, *why) in enumerate(bad):  # extra days of unit i % 3, after its good days
        day = dt.date(2026, 10, 20) + dt.timedelta(days=i)
        row = {**good[(i % 3) * 10], "sale_date": day, **changes}
        rejected.append({**row, **dict(zip(REJECT, why))})
    source = write(tmp_path / "bad_rows.parquet",
                   good + [{k: r[k] for k in SALES.names} for r in rejected])
    job = pricing_job(tmp_path, source)

    summary = run(spark, job, DAY, "bad-rows")

    rejects = table(spark, job.output.rejects)
    assert rejects.columns == [*READ, *REJECT, "reject_raw", "run_date", "run_id"]
    assert collected(rejects, [*READ, *REJECT]) == expected_rows(rejected, [*READ, *REJECT])
    out = table(spark, job.output.path).drop("run_date", "run_id")
    assertDataFrameEqual(out, expected_prices(spark, good, job, out.schema), rtol=1e-9)
    assert (summary.rows_in, summary.rows_rejected, summary.units, summary.rows_out) == (42, 12, 3, 3)


def voice_rows(cells=("C1", "C2"), hours=(3, 23), days=7) -> list[dict]:
    """Clean hourly voice load: low at night (hour 3), high at hour 23 on C2."""
    rows = []
    for c, cell in enumerate(cells):
        for hour in hours:
            for day in range(days):
                rows.append({
                    "cell_id": cell, "hour": hour,
                    "traffic_date": dt.date(2026, 10, 1) + dt.timedelta(days=day),
                    "load_erlangs": 2.0 + 3.0 * c * (hour > 12) + 0.1 * day,
                    "capacity_erlangs": 10.0, "base_price_per_min": 0.05,
                })
    return rows


def test_voice_hour_24_and_other_bad_rows_are_rejected_and_the_rest_priced(spark, tmp_path):
    good = voice_rows()
    template = good[0]
    nan = float("nan")
    bad = [
        ({"hour": 24}, "out_of_range", "hour", ">= 0 and <= 23"),
        ({"hour": -1}, "out_of_range", "hour", ">= 0 and <= 23"),
        ({"hour": None}, "null_key", "hour", "not null"),
        ({"cell_id": None, "hour": 24}, "null_key", "cell_id", "not null"),
        ({"load_erlangs": nan}, "not_a_number", "load_erlangs", "a number"),
        ({"load_erlangs": -0.1}, "out_of_range", "load_erlangs", ">= 0"),
        ({"capacity_erlangs": 0.0}, "out_of_range", "capacity_erlangs", "> 0"),
        ({"base_price_per_min": None}, "null_value", "base_price_per_min", "not null"),
    ]
    rejected = [
        {**template, "traffic_date": dt.date(2026, 10, 20) + dt.timedelta(days=i), **changes,
         **dict(zip(REJECT, why))}
        for i, (changes, *why) in enumerate(bad)
    ]
    source = write(tmp_path / "voice.parquet",
                   good + [{k: r[k] for k in VOICE.names} for r in rejected], VOICE)
    job = voice_job(tmp_path, source)

    summary = run(spark, job, DAY, "voice")

    read = ["cell_id", "hour", "traffic_date", "load_erlangs", "capacity_erlangs",
            "base_price_per_min"]
    rejects = table(spark, job.output.rejects)
    assert rejects.columns == [*read, *REJECT, "reject_raw", "run_date", "run_id"]
    assert collected(rejects, [*read, *REJECT]) == expected_rows(rejected, [*read, *REJECT])
    out = table(spark, job.output.path).drop("run_date", "run_id")
    params = VoicePricingParams(**job.function.params).model_copy(update={"keys": ["cell_id", "hour"]})
    expected = price_voice_units(pd.DataFrame(good).astype({"hour": "int32"}), params)
    assertDataFrameEqual(out, spark.createDataFrame(expected, schema=out.schema), rtol=1e-9)
    assert sorted((r["cell_id"], r["hour"]) for r in out.collect()) == [
        ("C1", 3), ("C1", 23), ("C2", 3), ("C2", 23)]
    assert (summary.rows_in, summary.rows_rejected, summary.units) == (36, 8, 4)


def test_a_source_with_one_unit_prices_it_like_pandas(spark, tmp_path):
    rows = sales_rows(units=1, days=12)
    job = pricing_job(tmp_path, write(tmp_path / "one.parquet", rows))

    summary = run(spark, job, DAY, "one")

    out = table(spark, job.output.path).drop("run_date", "run_id")
    assertDataFrameEqual(out, expected_prices(spark, rows, job, out.schema), rtol=1e-9)
    assert collected(out, KEYS) == [("seg0", "loc0", "data_5gb")]
    assert (summary.rows_in, summary.rows_rejected, summary.units, summary.rows_out) == (12, 0, 1, 1)
    assert table(spark, job.output.rejects).count() == 0


@pytest.mark.parametrize("output_format", ["delta", "parquet"])
def test_an_empty_source_commits_an_empty_run_replacing_that_dates_rows(spark, tmp_path, output_format):
    job = pricing_job(tmp_path, write(tmp_path / "full.parquet", sales_rows()),
                      f"output.format={output_format}")
    other_day = DAY - dt.timedelta(days=1)
    run(spark, job, other_day, "other-day")
    run(spark, job, DAY, "full")
    empty = pricing_job(tmp_path, write(tmp_path / "empty.parquet", []),
                        f"output.format={output_format}")

    summary = run(spark, empty, DAY, "empty")

    assert (summary.rows_in, summary.rows_rejected, summary.units, summary.rows_out) == (0, 0, 0, 0)
    out = spark.read.format(output_format).load(job.output.path)
    assert collected(out, ["run_date", "run_id"]) == [(other_day, "other-day")] * 3
    if output_format == "delta":
        assert table(spark, job.output.rejects).count() == 0


# --------------------------------------------------------------------------- 4, 5. passthrough


@pytest.fixture(scope="module")
def demand_model(tmp_path_factory):
    """The sample demand model (inputs segment, product, price) and rows it can score."""
    from batch_scoring.jobs.sample_data import write_sample
    from batch_scoring.jobs.sample_model import FEATURES, save_sample_model

    folder = tmp_path_factory.mktemp("demand")
    write_sample("bundle_sales", folder / "sales", rows=20 * 30, units=20, seed=5)
    model_dir = save_sample_model(folder / "sales", folder / "model")
    return model_dir, pd.read_parquet(folder / "sales")[FEATURES].head(8)


UTC = dt.timezone.utc
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
BIG_IDS = [2**53 + 1, 2**62 + 7, None, -(2**63), 2**63 - 1, 2**53 + 3, None, 2**53 - 1]
INSTANTS = [  # across DST changes (Europe, New York), before the epoch, sub-second, null
    dt.datetime(2026, 3, 29, 0, 59, 59, 999_999, tzinfo=UTC),
    dt.datetime(2026, 3, 29, 1, 0, 0, 1, tzinfo=UTC),
    dt.datetime(2026, 11, 1, 5, 30, tzinfo=UTC),
    dt.datetime(2026, 11, 1, 6, 30, tzinfo=UTC),
    dt.datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
    None,
    dt.datetime(2099, 12, 31, 23, 59, 59, 123_456, tzinfo=UTC),
    dt.datetime(2000, 2, 29, 12, tzinfo=UTC),
]


def micros(instant: dt.datetime | None) -> int | None:
    return None if instant is None else (instant - EPOCH) // dt.timedelta(microseconds=1)


def test_64_bit_ids_and_zoned_timestamps_pass_through_a_model_job_exactly(spark, tmp_path, demand_model):
    model_dir, features = demand_model
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    source = tmp_path / "ids.parquet"
    zones = {"ts_utc": "UTC", "ts_kolkata": "+05:30", "ts_new_york": "America/New_York"}
    columns = {
        **{c: pa.array(features[c].tolist()) for c in features.columns},
        "row_id": pa.array(range(8), pa.int64()),
        "big_id": pa.array(BIG_IDS, pa.int64()),
        **{name: pa.array([micros(t) for t in INSTANTS], pa.int64())
           .cast(pa.timestamp("us", tz=zone)) for name, zone in zones.items()},
    }
    pq.write_table(pa.table(columns), source)
    assert pq.read_schema(source).field("ts_kolkata").type == pa.timestamp("us", tz="+05:30")
    job = load_job(ROOT / "conf/jobs/model_scoring.yaml", [
        f"source.path={source}", "source.filter=null", f"model.uri={model_dir}",
        f"model.allowed_uris=[{model_dir}]", f"output.path={tmp_path / 'scored'}",
        "output.partition_by=[]", f"model.passthrough=[row_id, big_id, {', '.join(zones)}]",
    ])

    summary = run(spark, job, DAY, "ids")

    out = table(spark, job.output.path)
    types = dict(out.dtypes)
    assert types["big_id"] == "bigint" and {types[c] for c in zones} == {"timestamp"}
    got = sorted(out.select("row_id", "big_id", *(F.unix_micros(c) for c in zones)).collect())
    assert [tuple(r) for r in got] == [
        (i, BIG_IDS[i], *([micros(INSTANTS[i])] * len(zones))) for i in range(8)
    ]
    assert (summary.rows_in, summary.rows_out, summary.rows_rejected) == (8, 8, 0)


# --------------------------------------------------------------------------- 6. max_unit_rows

MODULE = '''
import pandas as pd
from batch_scoring.udfs.contract import ColumnRule, unit_of_work_function

RULES = [ColumnRule("price", "numeric", minimum=0, minimum_exclusive=True)]


@unit_of_work_function(output_schema="days bigint", input_rules=RULES)
def days(key, pdf):
    return pd.DataFrame({"days": [len(pdf)]})


@unit_of_work_function(output_schema="days bigint", shape="batch", input_rules=RULES)
def days_batch(pdf, keys):
    return pdf.groupby(keys, as_index=False, sort=False).agg(days=("price", "size"))
'''


@pytest.fixture(scope="module")
def days_module(tmp_path_factory):
    """The module ``unit_days`` (a unit and a batch function counting rows) on the driver."""
    with importable_module(tmp_path_factory.mktemp("unit_days"), "unit_days", MODULE) as name:
        yield name


@pytest.fixture(scope="module")
def one_big_unit(tmp_path_factory):
    """One unit of 200 rows (segment 'big') and two units of 5 rows."""
    rows = [
        {"segment": segment, "location": "l0", "product": "p0",
         "sale_date": dt.date(2026, 1, 1) + dt.timedelta(days=day), "price": 10.0 + day % 7}
        for segment, days in (("big", 200), ("small1", 5), ("small2", 5)) for day in range(days)
    ]
    schema = pa.schema([("segment", pa.string()), ("location", pa.string()), ("product", pa.string()),
                        ("sale_date", pa.date32()), ("price", pa.float64())])
    return write(tmp_path_factory.mktemp("big") / "big.parquet", rows, schema)


def too_large(rows: int, limit: int = 50) -> str:
    return (
        f"unit of work (segment='big', location='l0', product='p0') has {rows} rows so far, more "
        f"than unit_of_work.max_unit_rows = {limit}; a unit is processed whole by one Python "
        "worker: raise unit_of_work.max_unit_rows (--set unit_of_work.max_unit_rows=N) if the "
        "executors have the memory, or split such units with finer unit_of_work.keys"
    )


def days_job(tmp_path, source, module, function, engine, *overrides):
    return pricing_job(
        tmp_path, source, f"function.name={module}:{function}", "function.params={}",
        f"function.allowed_modules=[{module}]", f"unit_of_work.engine={engine}",
        "output.partition_by=[]", *overrides,
    )


@pytest.mark.parametrize("function, engine", [
    ("days", "packed"), ("days_batch", "packed"), ("days", "reference"),
])
def test_a_unit_over_max_unit_rows_is_an_input_error_naming_it_and_commits_nothing(
    spark, tmp_path, one_big_unit, days_module, function, engine
):
    job = days_job(tmp_path, one_big_unit, days_module, function, engine,
                   "unit_of_work.max_unit_rows=50")

    with pytest.raises(InputError) as caught:
        run(spark, job, DAY, "too-large")

    assert str(caught.value) == too_large(200)
    assert caught.value.exit_code == 3
    assert_nothing_written(job)


def test_a_unit_carried_across_small_arrow_batches_stops_once_over_the_limit(
    spark, tmp_path, one_big_unit, days_module, arrow_batch_rows
):
    arrow_batch_rows(30)  # 'big' sorts first in its partition: 30 rows carried, then 60
    job = days_job(tmp_path, one_big_unit, days_module, "days_batch", "packed",
                   "unit_of_work.max_unit_rows=50", "unit_of_work.rows_per_call=1")

    with pytest.raises(InputError) as caught:
        run(spark, job, DAY, "too-large")

    assert str(caught.value) == too_large(60)
    assert_nothing_written(job)


def test_units_within_max_unit_rows_are_priced(spark, tmp_path, one_big_unit, days_module):
    job = days_job(tmp_path, one_big_unit, days_module, "days", "packed",
                   "unit_of_work.max_unit_rows=200")

    run(spark, job, DAY, "fits")

    out = table(spark, job.output.path)
    assert collected(out, [*KEYS, "days"]) == [
        ("big", "l0", "p0", 200), ("small1", "l0", "p0", 5), ("small2", "l0", "p0", 5)]
