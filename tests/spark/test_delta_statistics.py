"""Delta outputs keep per-file statistics for the columns readers filter on, not the first 32."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from batch_scoring.jobs.sinks import STATS_COLUMNS_PROPERTY, open_sink

DAY1, DAY2 = dt.date(2026, 11, 21), dt.date(2026, 11, 22)


def rows(spark, n: int):
    return spark.createDataFrame(
        [(f"s{i % 2}", f"u{i}", 1.0 + i, "x" * i) for i in range(n)],
        "segment string, unit string, price double, note string",
    )


def file_statistics(table: Path) -> list[dict]:
    """The ``stats`` of every file added in the table's log, parsed."""
    stats = []
    for commit in sorted((table / "_delta_log").glob("*.json")):
        for line in commit.read_text().splitlines():
            action = json.loads(line)
            if "add" in action:
                stats.append(json.loads(action["add"]["stats"]))
    return stats


def test_a_new_delta_table_keeps_statistics_of_keys_and_run_id_only(spark, tmp_path):
    table = tmp_path / "prices"
    sink = open_sink(spark, "delta", str(table))
    sink.write_run(rows(spark, 4), ["segment"], DAY1, "a", stats_columns=["unit", "segment", "absent"])
    sink.write_run(rows(spark, 3), ["segment"], DAY2, "b", stats_columns=["price"])

    detail = spark.sql(f"DESCRIBE DETAIL delta.`{table}`").first()
    assert detail["properties"][STATS_COLUMNS_PROPERTY] == "unit,run_id"
    stats = file_statistics(table)
    assert len(stats) >= 2
    for file_stats in stats:
        assert set(file_stats["minValues"]) == {"unit", "run_id"}
        assert set(file_stats["nullCount"]) == {"unit", "run_id"}
    assert sorted(r["unit"] for r in sink.read_run(DAY2).collect()) == ["u0", "u1", "u2"]
