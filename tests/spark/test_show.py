"""``batch-score show``: an output read as its readers must read it (Delta through its log)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from batch_scoring.jobs import show
from batch_scoring.jobs.errors import InputError
from batch_scoring.jobs.sinks import open_sink

DAY1, DAY2 = dt.date(2026, 11, 21), dt.date(2026, 11, 22)


def prices(spark, n: int, price: float):
    return spark.createDataFrame(
        [(f"s{i % 2}", f"u{i}", price + i) for i in range(n)], "segment string, unit string, new_price double"
    )


@pytest.fixture(params=["delta", "parquet"])
def output(request, spark, tmp_path):
    """An output holding run ``a`` of DAY1 (3 rows) and, of DAY2, run ``b`` (4 rows) replaced by
    run ``c`` (2 rows)."""
    path, fmt = str(tmp_path / "prices"), request.param
    sink = open_sink(spark, fmt, path)
    sink.write_run(prices(spark, 3, 1.0), ["segment"], DAY1, "a")
    sink.write_run(prices(spark, 4, 10.0), ["segment"], DAY2, "b")
    sink.write_run(prices(spark, 2, 20.0), ["segment"], DAY2, "c")
    return path, fmt


def test_show_lists_runs_and_the_latest_run_dates_rows(spark, output):
    path, fmt = output
    text = show.show(spark, path, None, 20)

    lines = text.splitlines()
    assert lines[:3] == [
        f"{path} ({fmt}): 5 rows",
        "  run_date=2026-11-22  run_id=c  2 rows",
        "  run_date=2026-11-21  run_id=a  3 rows",
    ]
    assert lines[4] == "run_date=2026-11-22: 2 rows"
    assert sorted(lines[5].split()) == ["new_price", "run_date", "run_id", "segment", "unit"]
    assert sorted(sorted(line.split()) for line in lines[6:]) == [  # columns in the table's order
        ["20.0", "2026-11-22", "c", "s0", "u0"],
        ["2026-11-22", "21.0", "c", "s1", "u1"],
    ]


def test_show_one_run_date_with_a_limit(spark, output):
    path, _ = output
    text = show.show(spark, path, DAY1, 1)
    assert "run_date=2026-11-21: 3 rows, first 1" in text.splitlines()


def test_delta_is_read_through_its_log_where_raw_files_show_replaced_rows(spark, output):
    path, fmt = output
    files = [f for f in Path(path).rglob("*.parquet") if "_delta_log" not in f.parts]
    raw = pd.read_parquet(path) if fmt == "parquet" else pd.concat(pd.read_parquet(f) for f in files)
    shown = show.show(spark, path, None, 20).splitlines()[0]
    assert shown == f"{path} ({fmt}): 5 rows"
    assert len(raw) == (5 if fmt == "parquet" else 9)  # Delta keeps run b's files until VACUUM


def test_a_date_without_rows_names_the_dates_there_are(spark, output):
    path, _ = output
    with pytest.raises(InputError, match="holds no rows of run_date 2026-11-20; it holds 2026-11-22, 2026-11-21"):
        show.show(spark, path, dt.date(2026, 11, 20), 5)


def test_nothing_at_the_path_is_exit_3(spark, tmp_path, capsys):
    assert show.main([str(tmp_path / "nowhere")]) == 3
    assert f"{tmp_path / 'nowhere'} does not exist" in capsys.readouterr().err
