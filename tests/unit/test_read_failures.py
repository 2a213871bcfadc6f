"""Spark's reports of an unreadable source file, as Spark 4.1 and 3.5 print them (texts taken
from real runs of tests/spark/test_bad_input.py on each line, stack frames left out)."""

from __future__ import annotations

from batch_scoring.jobs.read_failures import ColumnDrift, ReadFailure, find_read_failure

SPARK4_CORRUPT = (
    "An error occurred while calling o644.collectToPython.\n"
    ": org.apache.spark.SparkException: [FAILED_READ_FILE.NO_HINT] Encountered error while reading "
    "file file:///data/sales/part-1.parquet.  SQLSTATE: KD001\n"
    "\tat org.apache.spark.sql.errors.QueryExecutionErrors$.cannotReadFilesError(...)\n"
    "Caused by: java.lang.RuntimeException: file:/data/sales/part-1.parquet is not a Parquet "
    "file. Expected magic number at tail, but found [0, 0, 38, 0]\n"
)
SPARK35_CORRUPT = (
    "An error occurred while calling o644.collectToPython.\n"
    ": org.apache.spark.SparkException: Job aborted due to stage failure: Task 0 in stage 34.0 "
    "failed 1 times, most recent failure: Lost task 0.0 in stage 34.0 (TID 63) (192.0.2.2 "
    "executor driver): java.lang.RuntimeException: file:/data/sales/part-1.parquet is not a "
    "Parquet file. Expected magic number at tail, but found [0, 0, 38, 0]\n"
    "\tat org.apache.parquet.hadoop.ParquetFileReader.readFooter(ParquetFileReader.java:565)\n"
)
SPARK35_FOOTER = (
    "Lost task 0.0 in stage 32.0 (TID 61) (192.0.2.2 executor driver): "
    "org.apache.spark.SparkException: Exception thrown in awaitResult: \n"
    "Caused by: org.apache.spark.SparkException: [CANNOT_READ_FILE_FOOTER] Could not read footer "
    "for file: file:/data/sales/part-1.parquet. Please ensure that the file is in either ORC or "
    "Parquet format.\n"
    "Caused by: java.lang.RuntimeException: file:/data/sales/part-1.parquet is not a Parquet "
    "file. Expected magic number at tail, but found [0, 0, 38, 0]\n"
)
SPARK4_DRIFT = (
    ": org.apache.spark.SparkException: [FAILED_READ_FILE.PARQUET_COLUMN_DATA_TYPE_MISMATCH] "
    "Encountered error while reading file file:///data/drift/part-2.parquet. Data type "
    "mismatches when reading Parquet column [volume]. Expected Spark type bigint, actual "
    "Parquet type DOUBLE. SQLSTATE: KD001\n"
)
SPARK35_DRIFT = (
    "Lost task 1.0 in stage 200.0 (TID 351) (192.0.2.2 executor driver): "
    "org.apache.spark.SparkException: Parquet column cannot be converted in file "
    "file:///data/drift/part-2.parquet. Column: [volume], Expected: bigint, Found: DOUBLE.\n"
)
SPARK35_PYTHON = (
    "Lost task 0.0 in stage 3.0 (TID 7) (192.0.2.2 executor driver): "
    "org.apache.spark.api.python.PythonException: Traceback (most recent call last):\n"
    '  File "/data/sales/pricing.py", line 3, in price\n'
)
DETAIL = ("RuntimeException: file:/data/sales/part-1.parquet is not a Parquet file. Expected "
          "magic number at tail, but found [0, 0, 38, 0]")


def test_a_corrupt_file_is_found_alike_on_both_lines():
    assert find_read_failure(SPARK4_CORRUPT) == ReadFailure("/data/sales/part-1.parquet", DETAIL)
    assert find_read_failure(SPARK35_CORRUPT) == ReadFailure(
        "/data/sales/part-1.parquet", DETAIL, named_by_spark=False)
    assert find_read_failure(SPARK35_FOOTER) == ReadFailure("/data/sales/part-1.parquet", DETAIL)


def test_a_drifted_column_type_is_found_alike_on_both_lines():
    drift = ColumnDrift("volume", "bigint", "DOUBLE")
    assert find_read_failure(SPARK4_DRIFT).drift == drift
    assert find_read_failure(SPARK35_DRIFT).drift == drift
    assert {find_read_failure(t).file for t in (SPARK4_DRIFT, SPARK35_DRIFT)} == {"/data/drift/part-2.parquet"}


def test_a_failed_task_naming_no_file_on_its_first_line_is_no_read_failure():
    assert find_read_failure(SPARK35_PYTHON) is None
    assert find_read_failure("ValueError: elasticity is undefined") is None
