"""Find, in the text of a Spark error, which source file could not be read and why.

The two runtime lines report a file Spark cannot read differently:

* Spark 4 (EMR 8): ``[FAILED_READ_FILE.<kind>] Encountered error while reading file <path>.``
  with the cause in a later ``Caused by: <class>: <message>`` line; a column whose Parquet type
  differs from the table's is kind ``PARQUET_COLUMN_DATA_TYPE_MISMATCH`` ("Data type mismatches
  when reading Parquet column [c]. Expected Spark type bigint, actual Parquet type DOUBLE.").
* Spark 3.5 (EMR 7): no error class. The failed task's own exception names the file
  (``Lost task ... : java.lang.RuntimeException: <path> is not a Parquet file. ...``), a type
  mismatch reads "Parquet column cannot be converted in file <path>. Column: [c], Expected:
  bigint, Found: DOUBLE", an unreadable footer met while inferring the schema
  "[CANNOT_READ_FILE_FOOTER] Could not read footer for file: <path>." and an I/O error
  "Encountered error while reading file <path>. Details:", both followed by ``Caused by`` lines.

:func:`find_read_failure` gives one :class:`ReadFailure` for either, so the job's message is
the same on both lines. Sources: Spark's ``error-conditions.json`` (4.x) and
``QueryExecutionErrors.scala`` (3.5: ``cannotReadFilesError``, ``unsupportedSchemaColumnConvertError``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from batch_scoring.jobs.locations import local_path

_FAILED_READ = re.compile(
    r"\[FAILED_READ_FILE\.(\w+)\] Encountered error while reading file (.+?)\.(?=\s)([^\n]*)"
)
_TYPE_MISMATCH_KIND = "PARQUET_COLUMN_DATA_TYPE_MISMATCH"
_SPARK4_DRIFT = re.compile(r"column \[(.+?)\]\. Expected Spark type (\S+), actual Parquet type (\w+)")
_SPARK35_DRIFT = re.compile(
    r"Parquet column cannot be converted in file (\S+?)\. Column: \[(.+?)\], Expected: (\S+?), "
    r"Found: (\w+)"
)
_SPARK35_READ = re.compile(
    r"Encountered error while reading file (\S+?)\. Details:|"
    r"\[CANNOT_READ_FILE_FOOTER\] Could not read footer for file: (\S+?)\.(?=\s)"
)
_TASK_FAILURE = re.compile(r"Lost task [^\n]*?\([^()]*executor [^()]*\): (?:[\w$]+\.)*([\w$]+): ([^\n]+)")
_CAUSE = re.compile(r"Caused by: (?:[\w$]+\.)*([\w$]+): (.+)")
_WRAPPERS = ("FAILED_READ_FILE", "CANNOT_READ_FILE_FOOTER", "awaitResult")
_PATH = re.compile(r"(?:file:|s3a?://|/)\S+")


@dataclass(frozen=True)
class ColumnDrift:
    """A column whose Parquet type in one file differs from the type Spark reads the source as."""

    column: str
    table_type: str  # Spark type the source is read as, e.g. "bigint"
    file_type: str  # Parquet physical type in the file, e.g. "DOUBLE"


@dataclass(frozen=True)
class ReadFailure:
    """One file Spark could not read.

    Attributes:
        file: the file's path or URI as Spark wrote it, ``file:`` prefix removed.
        detail: ``"<ExceptionClass>: <message>"`` of the cause (one line), or Spark's own text.
        drift: set when the cause is a column type that differs from the other files'.
        named_by_spark: False when the file is only a path found in the message of a failed
            task (Spark 3.5), which may be some other file than a source file.
    """

    file: str
    detail: str
    drift: ColumnDrift | None = None
    named_by_spark: bool = True


def find_read_failure(text: str) -> ReadFailure | None:
    """The file a Spark error (its ``str()``) says could not be read, or None.

    A task failure on Spark 3.5 that names no file, or any error of another kind (a user
    function raising, an analysis error), gives None.
    """
    return _spark4(text) or _spark35(text)


def _spark4(text: str) -> ReadFailure | None:
    match = _FAILED_READ.search(text)
    if match is None:
        return None
    kind, file = match.group(1), local_path(match.group(2))
    detail = match.group(3).split(" SQLSTATE")[0].strip()
    if kind == _TYPE_MISMATCH_KIND:
        drift = _SPARK4_DRIFT.search(detail)
        return ReadFailure(file, detail, drift and ColumnDrift(*drift.groups()))
    cause = _first_cause(text, match.end())
    return ReadFailure(file, cause or detail or match.group(0).split(" SQLSTATE")[0])


def _spark35(text: str) -> ReadFailure | None:
    drift = _SPARK35_DRIFT.search(text)
    if drift:
        file, column, table_type, file_type = drift.groups()
        return ReadFailure(local_path(file), drift.group(0), ColumnDrift(column, table_type, file_type))
    read = _SPARK35_READ.search(text)
    if read:
        file = read.group(1) or read.group(2)
        return ReadFailure(local_path(file), _first_cause(text, read.end()) or read.group(0))
    task = _TASK_FAILURE.search(text)
    path = task and _PATH.search(task.group(2))
    if path:
        detail = f"{task.group(1)}: {task.group(2).strip()}"
        return ReadFailure(local_path(path.group(0).rstrip(".,;:")), detail, named_by_spark=False)
    return None


def _first_cause(text: str, start: int) -> str | None:
    for cause in _CAUSE.finditer(text, start):
        if not any(wrapper in cause.group(2) for wrapper in _WRAPPERS):
            return f"{cause.group(1)}: {cause.group(2).strip()}"
    return None
