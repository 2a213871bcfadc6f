"""CSV and JSON sources: columns bound by the header, malformed records kept with their raw text."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from batch_scoring.jobs.config import load_job
from batch_scoring.jobs.errors import ConfigError, InputError
from batch_scoring.jobs.pipeline import run
from user_modules import importable_module

ROOT = Path(__file__).resolve().parents[2]
DAY = dt.date(2026, 11, 22)
SCHEMA = "unit string, day date, price double, unit_cost double, volume bigint"
HEADER = "unit,day,price,unit_cost,volume"

MODULE = '''
import pandas as pd
from batch_scoring.udfs.contract import ColumnRule, unit_of_work_function


@unit_of_work_function(
    output_schema="price double, unit_cost double, rows bigint",
    input_rules=[ColumnRule("price", "numeric"), ColumnRule("unit_cost", "numeric"),
                 ColumnRule("volume", "integer")],
)
def last_row(key, pdf):
    last = pdf.iloc[-1]
    return pd.DataFrame({"price": [last["price"]], "unit_cost": [last["unit_cost"]], "rows": [len(pdf)]})
'''


@pytest.fixture(scope="module")
def module(tmp_path_factory):
    with importable_module(tmp_path_factory.mktemp("text"), "text_functions", MODULE) as name:
        yield name


def job(source, output, fmt, module, *overrides):
    return load_job(ROOT / "conf/jobs/data_pricing.yaml", [
        f"source.path={source}", f"source.format={fmt}", f"source.schema={SCHEMA}",
        "source.filter=null", "unit_of_work.keys=[unit]", "unit_of_work.order_by=[day]",
        "unit_of_work.buckets=2", f"function.name={module}:last_row",
        f"function.allowed_modules=[{module}]", "function.params={}",
        f"output.path={output}", "output.partition_by=[]", *overrides,
    ])


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return folder


def rejects_of(spark, path):
    rows = spark.read.format("delta").load(str(path)).orderBy("reject_raw").collect()
    return [(r["unit"], r["reject_reason"], r["reject_column"], r["reject_rule"], r["reject_raw"])
            for r in rows]


def test_a_csv_header_in_another_order_stops_the_run_naming_the_file(spark, tmp_path, module):
    source = write(tmp_path / "csv", "a.csv", f"{HEADER}\nu1,2026-11-01,6.48,2.61,10\n")
    write(source, "b.csv", "unit,day,unit_cost,price,volume\nu2,2026-11-01,2.61,6.48,10\n")
    out = tmp_path / "out"
    with pytest.raises(InputError) as caught:
        run(spark, job(source, out, "csv", module), DAY)
    message = str(caught.value)
    assert message.startswith(f"source file {source / 'b.csv'} has the header "
                              "[unit, day, unit_cost, price, volume] but source.schema lists "
                              "[unit, day, price, unit_cost, volume]")
    assert "nothing was committed" in message
    assert not out.exists() and not (tmp_path / "out_rejects").exists()


def test_malformed_and_unparseable_csv_records_are_rejected_with_their_raw_line(spark, tmp_path, module):
    lines = [
        HEADER,
        "u1,2026-11-01,6.48,2.61,10",
        "u1,2026-11-02,6.50,2.61,11,surplus",          # one field too many
        "u1,2026-11-03,abc,2.61,12",                    # text in a numeric column
        "u2,2026-02-30,5.00,2.00,10",                   # an impossible date
        "u2,2026-11-01,5.00,2.00,99999999999999999999",  # overflows bigint
        "u2,2026-11-02,5.10,2.00,9",
        "u3,2026-11-01",                                # fields missing
    ]
    source = write(tmp_path / "csv", "sales.csv", "\n".join(lines) + "\n")
    out = tmp_path / "out"
    summary = run(spark, job(source, out, "csv", module), DAY)

    assert (summary.rows_in, summary.rows_rejected, summary.rows_out) == (7, 5, 2)
    assert rejects_of(spark, tmp_path / "out_rejects") == sorted([
        ("u1", "malformed_record", None, "a well-formed csv record", "u1,2026-11-02,6.50,2.61,11,surplus"),
        ("u1", "unparseable", "price", "parses as double", "u1,2026-11-03,abc,2.61,12"),
        ("u2", "unparseable", "day", "parses as date", "u2,2026-02-30,5.00,2.00,10"),
        ("u2", "unparseable", "volume", "parses as bigint", "u2,2026-11-01,5.00,2.00,99999999999999999999"),
        ("u3", "malformed_record", None, "a well-formed csv record", "u3,2026-11-01"),
    ], key=lambda r: r[4])
    prices = {r["unit"]: (r["price"], r["unit_cost"], r["rows"])
              for r in spark.read.format("delta").load(str(out)).collect()}
    assert prices == {"u1": (6.48, 2.61, 1), "u2": (5.10, 2.00, 1)}


def test_malformed_json_lines_are_rejected_with_their_raw_text(spark, tmp_path, module):
    lines = [
        '{"unit": "u1", "day": "2026-11-01", "price": 6.48, "unit_cost": 2.61, "volume": 10}',
        '{"unit": "u1", "day": "2026-11-02", "price": 6.5, "unit_cost": 2.61, "volume": 11} trailing',
        '{"unit": "u1", "day": "2026-11-03", "price": "abc", "unit_cost": 2.61, "volume": 12}',
        'not json at all',
        '',
        '{"unit": "u2", "day": "2026-11-01", "price": 5.0, "unit_cost": 2.0, "volume": 9}',
    ]
    source = write(tmp_path / "json", "sales.json", "\n".join(lines) + "\n")
    summary = run(spark, job(source, tmp_path / "out", "json", module), DAY)

    assert (summary.rows_in, summary.rows_rejected, summary.rows_out) == (5, 3, 2)
    got = {r[1:] for r in rejects_of(spark, tmp_path / "out_rejects")}
    assert got == {
        ("malformed_record", None, "a well-formed json record", lines[1]),
        ("unparseable", "price", "parses as double", lines[2]),
        ("malformed_record", None, "a well-formed json record", lines[3]),
    }


def test_dropmalformed_is_refused_as_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="mode DROPMALFORMED drops malformed records without a trace"):
        load_job(ROOT / "conf/jobs/data_pricing.yaml", [
            f"source.path={tmp_path}", "source.format=csv", f"source.schema={SCHEMA}",
            "source.options={mode: DROPMALFORMED}"])


def test_csv_without_column_pruning_off_is_refused(spark, tmp_path, module):
    source = write(tmp_path / "csv", "a.csv", f"{HEADER}\nu1,2026-11-01,6.48,2.61,10\n")
    spark.conf.set("spark.sql.csv.parser.columnPruning.enabled", "true")
    try:
        with pytest.raises(ConfigError, match="spark.sql.csv.parser.columnPruning.enabled is on"):
            run(spark, job(source, tmp_path / "out", "csv", module), DAY)
    finally:
        spark.conf.set("spark.sql.csv.parser.columnPruning.enabled", "false")
    assert not (tmp_path / "out").exists()
