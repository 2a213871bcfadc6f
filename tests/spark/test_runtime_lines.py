"""What a user's function and job get on each supported Spark line (EMR 8: Spark 4.1, EMR 7:
Spark 3.5), where the two Spark releases could differ. ``.ci/run`` runs this file on both.

Each test keys its expectation by the Spark line running it; a Spark line not listed fails,
so a new line's behaviour is looked at before it is supported.
"""

from __future__ import annotations

import pandas as pd
import pyspark
import pytest
from pyspark.errors import PythonException
from pyspark.sql import functions as F

from batch_scoring.jobs.session import LINE_DEFAULTS, delta_package, scala_binary_version
from batch_scoring.udfs.contract import UnitFunction
from batch_scoring.udfs.engine.spark_execution import apply_packed, apply_reference

LINE = ".".join(pyspark.__version__.split(".")[:2])
KNOWN_LINES = ("3.5", "4.0", "4.1")


def for_this_line(expected: dict[str, object]) -> object:
    assert LINE in expected, f"Spark {pyspark.__version__} is a line no test has pinned yet"
    return expected[LINE]


def dtype_seen(key, pdf):
    """Reports the pandas dtype the function was handed for the nullable ``volume`` column."""
    return pd.DataFrame({"dtype": [str(pdf["volume"].dtype)], "nulls": [int(pdf["volume"].isna().sum())]})


DTYPE_SEEN = UnitFunction(name="dtype_seen", fn=dtype_seen, shape="unit",
                          output_columns={"dtype": "string", "nulls": "bigint"})


def units_with_a_null(spark):
    """Unit ``a`` has a null ``volume`` (bigint), unit ``b`` has none."""
    return spark.createDataFrame(
        [("a", 1, 10), ("a", 2, None), ("b", 1, 30), ("b", 2, 40)],
        "segment string, day int, volume bigint",
    )


def test_a_nullable_bigint_reaches_the_function_as_float64_with_nan(spark):
    """Spark 3.5 and 4.x hand a bigint column with nulls to pandas as float64 (NaN for null)
    and one without nulls as int64; Spark 4.2 changes this to pandas Int64 (SPARK-57452,
    DESIGN.md). The packed engine hands one Arrow batch of several units to pandas at once, so
    there a null in unit ``a`` makes unit ``b``'s column float64 too."""
    df = units_with_a_null(spark)
    expected_reference = for_this_line({line: {"a": ("float64", 1), "b": ("int64", 0)}
                                        for line in KNOWN_LINES})
    expected_packed = for_this_line({line: {"a": ("float64", 1), "b": ("float64", 0)}
                                     for line in KNOWN_LINES})

    reference = apply_reference(df, DTYPE_SEEN, dtype_seen, ["segment"], ["day"]).collect()
    packed = apply_packed(df, DTYPE_SEEN, dtype_seen, ["segment"], ["day"], buckets=1).collect()

    assert {r["segment"]: (r["dtype"], r["nulls"]) for r in reference} == expected_reference
    assert {r["segment"]: (r["dtype"], r["nulls"]) for r in packed} == expected_packed


def test_an_invalid_cast_fails_under_the_runs_ansi_setting_on_both_lines(spark):
    """Every run sets ``spark.sql.ansi.enabled=true`` (Spark 3.5's default is false, where
    ``cast('12,5' as double)`` is a silent null); ``try_cast`` is how a job asks for null."""
    assert LINE_DEFAULTS["spark.sql.ansi.enabled"] == "true"
    assert spark.conf.get("spark.sql.ansi.enabled") == "true"
    df = spark.createDataFrame([("12,5",)], "price string")

    with pytest.raises(Exception) as error:
        df.select(F.col("price").cast("double")).collect()
    assert "CAST_INVALID_INPUT" in str(error.value)
    assert df.selectExpr("try_cast(price as double) as p").first()["p"] is None


def test_a_function_error_reaches_the_driver_as_a_python_exception_with_its_text(spark):
    """Both lines raise ``pyspark.errors.PythonException`` (Spark 3.4+) carrying the worker's
    traceback; the engine's messages are found in that text on either."""
    def broken(key, pdf):
        raise ValueError("elasticity is undefined for unit " + str(key[0]))

    function = UnitFunction(name="broken", fn=broken, shape="unit", output_columns={"x": "double"})
    df = units_with_a_null(spark)

    with pytest.raises(PythonException) as error:
        apply_packed(df, function, broken, ["segment"], ["day"], buckets=1).collect()
    assert "ValueError: elasticity is undefined for unit a" in str(error.value)


def test_delta_is_resolved_for_the_scala_of_this_spark(spark):
    """pip's pyspark 3.5 is built with Scala 2.12, 4.x with 2.13: the Delta jar must match."""
    from importlib import metadata

    scala = for_this_line({"3.5": "2.12", "4.0": "2.13", "4.1": "2.13"})
    assert scala_binary_version() == scala
    assert delta_package() == f"io.delta:delta-spark_{scala}:{metadata.version('delta-spark')}"


def chunk_rows(pdf, keys):
    """Reports, for each unit, how many rows the call that priced it was handed."""
    return pdf[keys].drop_duplicates().assign(chunk_rows=len(pdf))


CHUNK_ROWS = UnitFunction(name="chunk_rows", fn=chunk_rows, shape="batch",
                          output_columns={"chunk_rows": "bigint"})


def test_the_packed_engine_sees_arrow_batches_of_max_records_per_batch(spark, arrow_batch_rows):
    """``mapInPandas`` cuts each partition into Arrow batches of at most
    ``spark.sql.execution.arrow.maxRecordsPerBatch`` rows on both lines; the engine re-cuts them
    at unit boundaries, so a call holds whole units: 12 one-row units in Arrow batches of 5, 5
    and 2 rows are priced in calls of 4 rows (the batch's last unit may continue in the next),
    5 (that unit and the next batch but its last), 2, and 1 (the last unit, at the end)."""
    arrow_batch_rows(5)
    df = spark.createDataFrame([(f"u{u:02d}", 1, 1) for u in range(12)],
                               "segment string, day int, volume bigint")

    priced = apply_packed(df, CHUNK_ROWS, chunk_rows, ["segment"], ["day"], buckets=1).collect()

    sizes = [r["chunk_rows"] for r in sorted(priced, key=lambda r: r["segment"])]
    assert sizes == for_this_line({line: [4] * 4 + [5] * 5 + [2] * 2 + [1] for line in KNOWN_LINES})
