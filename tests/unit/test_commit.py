"""The parts of batch_scoring.jobs.commit that need no SparkSession: run ids, path and partition
checks, counts, the messages of a failed or lost write, and the checks before the commit.

Spark stand-ins here are small classes with only the calls the code under test makes (a py4j
Java exception's ``getCause``/``getClass``/``getMessage``; a DataFrame's ``count``, ``persist``,
``groupBy``; a table's ``has_run``/``read_run``); the writes themselves are covered by tests/spark
and tests/integration.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
import types
from pathlib import Path

import pytest
from pyspark import StorageLevel

from batch_scoring.jobs import commit as commit_module
from batch_scoring.jobs import run_context as run_context_module
from batch_scoring.jobs.commit import (
    BucketCheck,
    CommitJournal,
    RunCounts,
    RunSummary,
    RunTargets,
    _counts_by,
    check_partition_columns,
    check_paths,
    check_reject_budget,
    check_run_date_free,
    check_targets,
    commit_checked,
    concurrent_run_error,
    new_run_id,
    persisted,
    reconcile,
    reconcile_buckets,
    root_cause,
    summarise,
    write_error,
)
from batch_scoring.jobs.config import load_job
from batch_scoring.jobs.errors import (
    ConcurrentRunError,
    ConfigError,
    ReconciliationError,
    RejectBudgetExceeded,
    WriteFailed,
)
from batch_scoring.jobs.run_context import RunContext
from batch_scoring.jobs.run_date_claim import RunDateTaken
from batch_scoring.jobs.sinks import DeltaSink, open_targets
from batch_scoring.jobs.sources import open_source
from batch_scoring.udfs.engine import spark_execution

ROOT = Path(__file__).resolve().parents[2]
JOB_FILE = ROOT / "conf" / "jobs" / "data_pricing.yaml"


# --------------------------------------------------------------------------- stand-ins


class JavaClass:
    def __init__(self, name: str) -> None:
        self.name = name

    def getName(self) -> str:  # noqa: N802 - py4j's name
        return self.name


class JavaException:
    """A py4j JavaObject of a Throwable: ``getCause`` is None at the end of the chain."""

    def __init__(self, name: str, message: str, cause: JavaException | None = None) -> None:
        self.name, self.message, self.cause = name, message, cause

    def getCause(self):  # noqa: N802
        return self.cause

    def getClass(self):  # noqa: N802
        return JavaClass(self.name)

    def getMessage(self):  # noqa: N802
        return self.message


class SelfCaused(JavaException):
    """A Throwable that is its own cause, seen through py4j: each ``getCause()`` is a new Python
    proxy, equal (Java ``equals``) to this one but not the same object."""

    def __init__(self, name: str, message: str, calls: list[int] | None = None) -> None:
        super().__init__(name, message)
        self.calls = calls if calls is not None else [0]

    def getCause(self):  # noqa: N802
        self.calls[0] += 1
        if self.calls[0] > 20:
            raise RuntimeError("the cause chain never ends")
        return SelfCaused(self.name, self.message, self.calls)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SelfCaused) and (other.name, other.message) == (self.name, self.message)

    __hash__ = None


class GatewayGone(JavaException):
    def getCause(self):  # noqa: N802
        raise ConnectionError("gateway closed")


class Py4JError(Exception):
    """Like py4j's Py4JJavaError: the Java exception in ``java_exception``."""

    def __init__(self, text: str, java: JavaException | None) -> None:
        super().__init__(text)
        self.java_exception = java


class CapturedError(Exception):
    """Like pyspark's CapturedException: the Java exception in ``_origin``."""

    def __init__(self, text: str, java: JavaException | None) -> None:
        super().__init__(text)
        self._origin = java


def disk_full() -> Py4JError:
    return Py4JError("An error occurred while calling o120.save", JavaException(
        "org.apache.spark.SparkException", "[TASK_WRITE_FAILED] Task failed while writing rows",
        JavaException("java.io.IOException", "No space left on device")))


class Rows:
    """What ``collect()`` gives: a list of Row-like dicts."""

    def __init__(self, rows: list[dict]) -> None:
        self.rows = rows

    def count(self) -> Rows:
        return self

    def orderBy(self, column: str) -> Rows:  # noqa: N802
        self.ordered_by = column
        return self

    def collect(self) -> list[dict]:
        return self.rows


class Frame:
    """A DataFrame with a row count, reject reasons, and a record of persist/unpersist."""

    def __init__(self, rows: int, reasons: list[dict] | None = None, unpersist_error: bool = False) -> None:
        self.rows, self.reasons, self.unpersist_error = rows, reasons or [], unpersist_error
        self.calls: list[object] = []

    def count(self) -> int:
        return self.rows

    def persist(self, level):
        self.calls.append(("persist", level))
        return self

    def unpersist(self):
        self.calls.append("unpersist")
        if self.unpersist_error:
            raise RuntimeError("JVM stopping")
        return self

    def groupBy(self, column: str) -> Rows:  # noqa: N802
        self.calls.append(("groupBy", column))
        return Rows(self.reasons)


class Table:
    """A sink with only what the checks and the summary ask of it: whether it holds a run date,
    that run date's rows (``rows``, None for none), its location and field; each call recorded."""

    in_folder = True

    def __init__(self, location: str, rows=None, holds_run: bool = False, field: str = "output.path") -> None:
        self.location, self.field, self.rows, self.holds_run = location, field, rows, holds_run
        self.calls: list[tuple] = []

    def has_run(self, run_date, check_rows=True) -> bool:
        self.calls.append(("has_run", run_date))
        return self.holds_run

    def read_run(self, run_date):
        self.calls.append(("read_run", run_date))
        return self.rows


def targets_of(output: Table, rejects: Table | None = None) -> RunTargets:
    rejects = rejects or Table("out_rejects", field="output.rejects_path")
    return RunTargets(output.location, rejects.location, output, rejects)


def context(job, journal: CommitJournal | None = None, targets: RunTargets | None = None,
            started: float | None = None, run_id: str = "r") -> RunContext:
    """A run's context: the job's own source, ``targets`` (stand-in tables by default)."""
    extra = {} if started is None else {"started": started}
    return RunContext(None, job, dt.date(2026, 11, 22), run_id, "s3a", journal or CommitJournal(),
                      open_source(job.source), targets or targets_of(Table("out")), **extra)


# --------------------------------------------------------------------------- summary, counts, run ids


def test_a_function_runs_summary_leaves_out_the_unset_model_fields():
    summary = RunSummary("j", "2026-11-22", "r1", 10, 2, 3, 8, 4, "out", "rej", 1.5)

    assert summary.as_dict() == {
        "job": "j", "run_date": "2026-11-22", "run_id": "r1", "rows_in": 10, "rows_rejected": 2,
        "units": 3, "rows_out": 8, "buckets": 4, "output_path": "out", "rejects_path": "rej",
        "seconds": 1.5,
    }


def test_a_model_runs_summary_keeps_its_model_fields():
    summary = RunSummary("j", "2026-11-22", "r1", 10, 0, 10, 10, 1, "out", "rej", 2.0,
                         model_uri="models:/m/1", model_version="1", model_sha256="ab", arrow_batches=0)

    assert summary.as_dict() == {
        "job": "j", "run_date": "2026-11-22", "run_id": "r1", "rows_in": 10, "rows_rejected": 0,
        "units": 10, "rows_out": 10, "buckets": 1, "output_path": "out", "rejects_path": "rej",
        "seconds": 2.0, "model_uri": "models:/m/1", "model_version": "1", "model_sha256": "ab",
        "arrow_batches": 0,
    }


def test_reject_fraction_divides_rejected_by_read_rows():
    assert RunCounts(3, 2, 1).reject_fraction == pytest.approx(1 / 3)
    assert RunCounts(4, 0, 4).reject_fraction == 1.0
    assert RunCounts(0, 0, 7).reject_fraction == 0.0


def test_a_run_id_is_the_run_date_the_utc_time_and_8_hex_digits():
    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    first, second = new_run_id(dt.date(2026, 11, 22)), new_run_id(dt.date(2026, 11, 22))
    after = dt.datetime.now(dt.timezone.utc)

    assert re.fullmatch(r"20261122-\d{6}-[0-9a-f]{8}", first), first
    clock = dt.datetime.strptime(f"{before:%Y%m%d}-{first.split('-')[1]}", "%Y%m%d-%H%M%S")
    assert before.replace(tzinfo=None) <= clock <= after.replace(tzinfo=None)
    assert first.split("-")[2] != second.split("-")[2]
    assert new_run_id(dt.date(1999, 1, 2)).startswith("19990102-")


# --------------------------------------------------------------------------- path and partition checks


def test_each_overlapping_pair_of_paths_is_named_as_written_and_as_resolved(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    cases = [
        ([f"source.path={src}", f"output.path={src}/o"],
         f"output.path {src}/o overlaps source.path {src} (they resolve to {src}/o and {src})"),
        ([f"source.path={src}", f"output.path={out}", f"output.rejects_path={src}"],
         f"output.rejects_path {src} overlaps source.path {src} (they resolve to {src} and {src})"),
        ([f"source.path={src}", f"output.path={out}", f"output.rejects_path=file://{out}/r"],
         f"output.rejects_path file://{out}/r overlaps output.path {out} (they resolve to {out}/r and {out})"),
    ]
    for overrides, start in cases:
        with pytest.raises(ConfigError) as caught:
            check_paths(load_job(JOB_FILE, overrides))
        assert str(caught.value) == (f"{start}: a run must never write into its own input or mix "
                                     "its outputs; choose separate folders")
    check_paths(load_job(JOB_FILE, [f"source.path={src}", f"output.path={out}"]))


def test_a_parquet_outputs_rejects_folder_is_checked_against_the_source_too(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    job = load_job(JOB_FILE, [f"source.path={src}", f"output.path={out}", "output.format=parquet",
                              f"output.rejects_path={src}/rejects"])

    with pytest.raises(ConfigError) as caught:
        check_paths(job)
    assert str(caught.value).startswith(f"output.rejects_path {src}/rejects overlaps source.path {src} ")


def test_a_database_output_checks_only_its_manifest_folder_against_the_source(tmp_path, monkeypatch):
    monkeypatch.setenv("PG_PASSWORD", "not-read-here")
    src = tmp_path / "src"
    database = ["output.format=jdbc", "output.jdbc.url=jdbc:postgresql://127.0.0.1:5432/db",
                "output.jdbc.user=u", "output.jdbc.password_env=PG_PASSWORD",
                "output.jdbc.table=public.prices"]
    inside = load_job(JOB_FILE, [f"source.path={src}", f"output.path={src}/state", *database])
    apart = load_job(JOB_FILE, [f"source.path={src}", f"output.path={tmp_path / 'state'}", *database])

    with pytest.raises(ConfigError) as caught:
        check_paths(inside)
    assert str(caught.value).startswith(f"output.path {src}/state overlaps source.path {src} ")
    check_paths(apart)  # the rejects are a table: no second folder, nothing else to compare


def test_partition_columns_the_output_lacks_are_refused_by_name():
    job = load_job(JOB_FILE, ["output.partition_by=[segment, region, product]"])

    with pytest.raises(ConfigError) as caught:
        check_partition_columns(job, ("segment", "product", "price"))

    assert str(caught.value) == ("output.partition_by names ['region'], which the output does not have; "
                                 "choose from ['segment', 'product', 'price']")
    check_partition_columns(job, ["price", "product", "region", "segment"])
    check_partition_columns(load_job(JOB_FILE, ["output.partition_by=[]"]), [])


# --------------------------------------------------------------------------- a failed write's message


def test_the_root_cause_is_the_deepest_java_exception():
    assert root_cause(disk_full()) == "java.io.IOException: No space left on device"
    captured = CapturedError("x", JavaException("java.io.IOException", "File name too long"))
    assert root_cause(captured) == "java.io.IOException: File name too long"
    assert root_cause(CapturedError("x", SelfCaused("a.B", "loops"))) == "a.B: loops"


def test_a_python_error_or_a_gone_gateway_has_no_root_cause():
    assert root_cause(ValueError("plain")) is None
    assert root_cause(Py4JError("x", None)) is None
    assert root_cause(Py4JError("x", GatewayGone("a.B", "m"))) is None


def test_a_failed_write_names_the_table_the_path_the_cause_and_what_committed():
    first = write_error(disk_full(), "/data/out", "output", [])
    assert isinstance(first, WriteFailed) and first.exit_code == 1
    assert str(first) == ("writing the run's output to /data/out failed: java.io.IOException: No space "
                          "left on device; nothing of this run was committed")

    second = write_error(disk_full(), "/data/out_rejects", "rejects", ["output"])
    assert str(second) == ("writing the run's rejects to /data/out_rejects failed: java.io.IOException: "
                           "No space left on device; this run's output was committed, its rejects was "
                           "not: rerun")
    assert write_error(OSError("plain"), "/data/out", "output", []) is None


# --------------------------------------------------------------------------- a lost race's message


@pytest.mark.parametrize("text", [
    "io.delta.exceptions.ConcurrentAppendException: Files were added",
    "ConcurrentDeleteReadException", "ConcurrentDeleteDeleteException",
    "ConcurrentTransactionException", "ConcurrentWriteException",
    "io.delta.exceptions.MetadataChangedException", "ProtocolChangedException",
    "[DELTA_CONCURRENT_APPEND] Transaction conflict",
])
def test_a_delta_conflict_is_a_concurrent_run_even_when_the_holder_is_unknown(monkeypatch, text):
    seen, sink = [], Table("/t/out")
    monkeypatch.setattr(commit_module, "other_run_ids", lambda *args: seen.append(args) or [])

    error = concurrent_run_error(RuntimeError(text), sink, dt.date(2026, 11, 22), "r-mine", "output", [])

    assert isinstance(error, ConcurrentRunError) and error.exit_code == 6
    assert str(error) == (
        "another run committed run_date 2026-11-22 of /t/out while this run (r-mine) was writing its "
        "output; nothing of this run was committed. Two runs of one run date must not run at once: "
        "check the scheduler (retries, overlapping schedules)")
    assert seen == [(sink, dt.date(2026, 11, 22), "r-mine")]


@pytest.mark.parametrize("text", ["java.io.FileNotFoundException: part-0", "FileAlreadyExistsException",
                                  "No such file or directory"])
def test_vanished_parquet_files_are_a_concurrent_run_only_when_another_run_holds_the_date(monkeypatch, text):
    sink = Table("/t/rej", field="output.rejects_path")
    monkeypatch.setattr(commit_module, "other_run_ids", lambda *args: ["r-a", "r-b"])
    error = concurrent_run_error(RuntimeError(text), sink, dt.date(2026, 1, 2), "r-mine", "rejects",
                                 ["output"])
    assert str(error) == (
        "run r-a, r-b committed run_date 2026-01-02 of /t/rej while this run (r-mine) was writing its "
        "rejects; this run's output was committed and its rejects was not: rerun to make the run date "
        "whole. Two runs of one run date must not run at once: check the scheduler (retries, "
        "overlapping schedules)")

    monkeypatch.setattr(commit_module, "other_run_ids", lambda *args: [])
    assert concurrent_run_error(RuntimeError(text), sink, dt.date(2026, 1, 2), "r-mine", "rejects",
                                ["output"]) is None


def test_another_write_failure_is_no_concurrent_run_and_reads_nothing(monkeypatch):
    def must_not_read(*args):
        raise AssertionError("read the table")

    monkeypatch.setattr(commit_module, "other_run_ids", must_not_read)

    assert concurrent_run_error(disk_full(), Table("/t/out"), dt.date(2026, 1, 2), "r", "output",
                                []) is None


# --------------------------------------------------------------------------- checks before the commit


def test_an_exceeded_reject_budget_names_counts_fraction_limit_and_reasons():
    rejects = Frame(3, [{"reject_reason": "null_key", "count": 1_200},
                        {"reject_reason": "out_of_range", "count": 300}])

    with pytest.raises(RejectBudgetExceeded) as caught:
        check_reject_budget(0.1, RunCounts(10_000, 8_500, 1_500), rejects)

    assert str(caught.value) == (
        "1,500 of 10,000 rows read were rejected (15.00%), more than output.max_reject_fraction 0.1 "
        "allows (null_key 1,200, out_of_range 300); nothing was committed, earlier runs are untouched")
    assert caught.value.rows == {"in": 10_000, "priced_or_scored": 8_500, "rejected": 1_500,
                                 "rejected_by_reason": {"null_key": 1_200, "out_of_range": 300}}
    assert rejects.calls == [("groupBy", "reject_reason")]


def test_a_budget_of_zero_refuses_one_rejected_row():
    with pytest.raises(RejectBudgetExceeded, match=r"^1 of 3 rows read were rejected \(33.33%\), more "
                                                   r"than output.max_reject_fraction 0 allows \(x 1\)"):
        check_reject_budget(0.0, RunCounts(3, 2, 1), Frame(1, [{"reject_reason": "x", "count": 1}]))


def test_a_reconciliation_names_a_surplus_and_a_shortfall():
    reconcile(RunCounts(5, 5, 0))
    with pytest.raises(ReconciliationError, match=r"^rows read 5 != rows priced or scored 3 \+ rows "
                                                  r"rejected 1 \(difference \+1\)"):
        reconcile(RunCounts(5, 3, 1))


def test_counts_by_bucket_are_ints_keyed_by_bucket():
    grouped = Rows([{"bucket": 3, "count": 7}, {"bucket": 0, "count": 2}])
    assert _counts_by(grouped) == {3: 7, 0: 2}


def test_persisted_caches_for_the_block_and_unpersists_after_it():
    frame = Frame(1)
    with persisted(frame) as cached:
        assert cached is frame
        assert frame.calls == [("persist", StorageLevel.MEMORY_AND_DISK)]
    assert frame.calls == [("persist", StorageLevel.MEMORY_AND_DISK), "unpersist"]


def test_persisted_keeps_the_blocks_error_when_unpersist_fails_too(caplog):
    frame = Frame(1, unpersist_error=True)
    with caplog.at_level(logging.DEBUG, logger="batch_scoring"), pytest.raises(KeyboardInterrupt):
        with persisted(frame):
            raise KeyboardInterrupt
    assert frame.calls == [("persist", StorageLevel.MEMORY_AND_DISK), "unpersist"]
    [record] = [r for r in caplog.records if r.name == "batch_scoring"]
    assert record.getMessage() == "could not unpersist after the block failed"
    assert str(record.exc_info[1]) == "JVM stopping"

    ok = Frame(1)
    with pytest.raises(ValueError, match="in the block"):
        with persisted(ok):
            raise ValueError("in the block")
    assert ok.calls == [("persist", StorageLevel.MEMORY_AND_DISK), "unpersist"]


def test_the_journal_times_its_phases_and_its_commit_hooks_do_nothing():
    journal = CommitJournal()
    assert journal.phases.current == "start"
    with journal.phase("reconcile") as record:
        assert record.name == "reconcile" and journal.phases.current == "reconcile"
    assert list(journal.phases.seconds) == ["reconcile"]
    assert journal.committing(targets_of(Table("o"))) is None
    assert journal.committed("output") is None


def checked(job, source: Frame, rejects: Frame, rows_done: int, journal: CommitJournal):
    return commit_checked(context(job, journal), result=None, rejects=rejects, source=source,
                          rows_done=rows_done)


def test_counts_that_do_not_add_up_stop_the_run_before_its_write_phase():
    journal, rejects = CommitJournal(), Frame(2)

    with pytest.raises(ReconciliationError, match=r"^rows read 10 != rows priced or scored 7 \+ rows "
                                                  r"rejected 2 \(difference \+1\)"):
        checked(load_job(JOB_FILE), Frame(10), rejects, 7, journal)

    assert journal.phases.current == "reconcile" and "write" not in journal.phases.seconds
    assert rejects.calls == [("persist", StorageLevel.MEMORY_AND_DISK), "unpersist"]


def test_an_exceeded_budget_stops_the_run_before_its_write_phase():
    journal = CommitJournal()
    job = load_job(JOB_FILE, ["output.max_reject_fraction=0.25"])

    with pytest.raises(RejectBudgetExceeded, match=r"^3 of 10 rows read were rejected \(30.00%\)"):
        checked(job, Frame(10), Frame(3, [{"reject_reason": "null_key", "count": 3}]), 7, journal)

    assert journal.phases.current == "reconcile" and "write" not in journal.phases.seconds


def test_an_empty_source_is_logged_before_its_counts_are_checked(caplog):
    with caplog.at_level(logging.WARNING, logger="batch_scoring"), pytest.raises(ReconciliationError):
        checked(load_job(JOB_FILE), Frame(0), Frame(0), 1, CommitJournal())

    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "source data/sample/bundle_sales has no rows (after source.filter): run_date 2026-11-22 "
        "commits an empty output, replacing its earlier rows"]


def test_a_source_with_rows_logs_no_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="batch_scoring"), pytest.raises(ReconciliationError):
        checked(load_job(JOB_FILE), Frame(1), Frame(0), 0, CommitJournal())

    assert not [r for r in caplog.records if r.levelno == logging.WARNING]


# --------------------------------------------------------------------------- per-bucket reconciliation


class BucketColumn:
    def __init__(self, keys, buckets) -> None:
        self.keys, self.buckets, self.name = list(keys), buckets, None

    def alias(self, name: str) -> BucketColumn:
        self.name = name
        return self


def by_bucket(counts: dict[int, int]) -> Frame:
    return Frame(sum(counts.values()), [{"bucket": b, "count": n} for b, n in counts.items()])


def reconciled(monkeypatch, check: BucketCheck, read: dict, rejected: dict, rows_done: int) -> RunCounts:
    monkeypatch.setattr(spark_execution, "bucket_of", BucketColumn)
    source, rejects = by_bucket(read), by_bucket(rejected)
    counts = reconcile_buckets(check, source, rejects, rows_done)
    bucket = source.calls[0][1]
    assert (bucket.keys, bucket.buckets, bucket.name) == (list(check.keys), check.buckets, "bucket")
    assert rejects.calls == [("groupBy", bucket)]
    return counts


def test_buckets_that_add_up_give_the_run_totals(monkeypatch):
    # bucket 2 is large (its sum is a new int object), 3 has no priced count, 4 no rejects, 6 no rows
    check = BucketCheck(["k", "j"], 8, {0: 5, 2: 1_000, 4: 2, 6: 0})
    counts = reconciled(monkeypatch, check, {0: 6, 2: 1_003, 3: 1, 4: 2}, {0: 1, 2: 3, 3: 1}, 1_007)

    assert counts == RunCounts(1_012, 1_007, 5)


def test_each_bucket_that_does_not_add_up_is_named_with_its_three_counts(monkeypatch):
    check = BucketCheck(["k"], 8, {0: 5, 1: 4, 3: 1, 4: 2, 5: 2})
    with pytest.raises(ReconciliationError) as caught:
        # 0 and 5 add up; each wrong bucket has its counts in another mix of the three:
        # 1 priced only, 2 read and rejected, 3 priced and rejected, 4 read and priced, 7 rejected only
        reconciled(monkeypatch, check, {0: 5, 2: 3, 4: 3, 5: 3}, {2: 1, 3: 1, 5: 1, 7: 1}, 14)

    assert str(caught.value) == (
        "5 of 8 buckets do not reconcile (bucket 1: read 0 != priced 4 + rejected 0; bucket 2: read 3 "
        "!= priced 0 + rejected 1; bucket 3: read 0 != priced 1 + rejected 1; bucket 4: read 3 != "
        "priced 2 + rejected 0; bucket 7: read 0 != priced 0 + rejected 1): rows were lost or "
        "duplicated; nothing was committed")


def test_a_bucket_whose_rows_are_all_rejected_adds_up(monkeypatch):
    assert reconciled(monkeypatch, BucketCheck(["k"], 2, {}), {1: 3}, {1: 3}, 0) == RunCounts(3, 0, 3)
    assert reconciled(monkeypatch, BucketCheck(["k"], 2, {1: 2}), {1: 3}, {1: 1}, 2) == RunCounts(3, 2, 1)


def test_at_most_five_wrong_buckets_are_listed_but_all_are_counted(monkeypatch):
    read = {b: 1_000 for b in range(7)}
    with pytest.raises(ReconciliationError) as caught:
        reconciled(monkeypatch, BucketCheck(["k"], 7, {}), read, {}, 0)

    message = str(caught.value)
    assert message.startswith("7 of 7 buckets do not reconcile (bucket 0: read 1,000 != priced 0 + "
                              "rejected 0; bucket 1: ")
    assert message.endswith("bucket 4: read 1,000 != priced 0 + rejected 0): rows were lost or duplicated; "
                            "nothing was committed")


# --------------------------------------------------------------------------- records, targets, summary


def test_the_run_records_are_frozen():
    records = [RunSummary("j", "d", "r", 1, 0, 1, 1, 1, "o", "r", 0.0), RunCounts(1, 1, 0),
               BucketCheck(["k"], 1, {}), targets_of(Table("o"))]
    for record in records:
        name = next(iter(vars(record)))
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(record, name, None)


def test_large_counts_that_add_up_reconcile():
    # counts above 256 are distinct int objects: compared by value, not identity
    reconcile(RunCounts(10_000, int("9000"), int("1000")))


def test_targets_resolve_s3_for_s3a_check_both_owners_and_claim_only_an_exclusive_date(monkeypatch):
    owners, dates, manifests = [], [], []

    def check_owner(spark, root, claim, field, legacy):
        owners.append((field, root, claim.table, legacy()))

    def manifest_jobs(spark, root):
        manifests.append(root)
        return {"data_pricing"}

    monkeypatch.setattr(commit_module, "check_owner", check_owner)
    monkeypatch.setattr(commit_module, "manifest_jobs", manifest_jobs)
    monkeypatch.setattr(commit_module, "check_run_date_free",
                        lambda spark, job, targets, run_date: dates.append((targets, run_date)))
    replace = load_job(JOB_FILE, ["output.path=s3://b/out"])
    targets = open_targets(None, replace.output, "s3a")

    check_targets(None, replace, targets, dt.date(2026, 11, 22))

    assert (targets.output, targets.rejects) == ("s3a://b/out", "s3a://b/out_rejects")
    assert [(type(s), s.location, s.field) for _, s in targets.sinks()] == [
        (DeltaSink, "s3a://b/out", "output.path"), (DeltaSink, "s3a://b/out_rejects", "output.rejects_path")]
    # the job's manifests under the output root are read once, for both owners
    assert owners == [("output.path", "s3a://b/out", "output", True),
                      ("output.rejects_path", "s3a://b/out_rejects", "rejects", True)]
    assert manifests == ["s3a://b/out"]
    assert dates == []

    exclusive = load_job(JOB_FILE, ["output.path=s3://b/out", "output.mode=fail_if_run_exists",
                                    "job=other_job"])
    owners.clear()
    targets = open_targets(None, exclusive.output, "s3")
    check_targets(None, exclusive, targets, dt.date(2026, 11, 22))
    assert (targets.output, targets.rejects) == ("s3://b/out", "s3://b/out_rejects")
    assert owners == [("output.path", "s3://b/out", "output", False),
                      ("output.rejects_path", "s3://b/out_rejects", "rejects", False)]
    assert dates == [(targets, dt.date(2026, 11, 22))]


@pytest.mark.parametrize(("holders", "named"), [(["r-1", "r-2"], "run r-1, r-2"), ([], "run unknown")])
def test_a_taken_run_date_names_its_runs(monkeypatch, holders, named):
    asked = []
    monkeypatch.setattr(commit_module, "other_run_ids",
                        lambda sink, run_date, run_id: asked.append((sink, run_date, run_id)) or holders)
    monkeypatch.setattr(commit_module, "check_unclaimed",
                        lambda *args: pytest.fail("a taken run date needs no claim check"))
    job = load_job(JOB_FILE, ["output.mode=fail_if_run_exists"])
    output = Table("out", holds_run=True)

    with pytest.raises(RunDateTaken) as caught:
        check_run_date_free(None, job, targets_of(output), dt.date(2026, 11, 22))

    assert str(caught.value) == (
        f"output.mode is fail_if_run_exists and output/data_pricing already holds run_date 2026-11-22 "
        f"({named}); nothing of this run was written. Choose another --run-date or set "
        "output.mode=replace_run")
    assert output.calls == [("has_run", dt.date(2026, 11, 22))]
    assert asked == [(output, dt.date(2026, 11, 22), "")]


def test_a_free_run_date_is_then_checked_for_a_claim(monkeypatch):
    claims = []
    monkeypatch.setattr(commit_module, "check_unclaimed", lambda spark, path, run_date: claims.append((path, run_date)))
    output = Table("out", holds_run=False)

    check_run_date_free(None, load_job(JOB_FILE), targets_of(output), dt.date(2026, 11, 22))

    assert output.calls == [("has_run", dt.date(2026, 11, 22))]
    assert claims == [("out", dt.date(2026, 11, 22))]


def test_other_run_ids_of_a_table_without_the_run_date_or_that_cannot_be_read_are_none():
    class Unreadable(Table):
        def read_run(self, run_date):
            raise RuntimeError("DELTA_TABLE_NOT_FOUND")

    empty = Table("out", rows=None)
    assert commit_module.other_run_ids(empty, dt.date(2026, 11, 22), "r") == []
    assert empty.calls == [("read_run", dt.date(2026, 11, 22))]
    assert commit_module.other_run_ids(Unreadable("out"), dt.date(2026, 11, 22), "r") == []


class Output:
    """A run's output read back: ``rows`` rows, ``units`` distinct key tuples."""

    def __init__(self, rows: int, units: int) -> None:
        self.rows, self.units, self.selected = rows, units, None

    def count(self) -> int:
        return self.rows

    def select(self, *columns):
        self.selected = columns
        return Output(self.units, self.units)

    def distinct(self):
        return self


def summarised(monkeypatch, output, unit_keys):
    # the run's clock reads 1000.0 now; the run started 12.345 s before
    monkeypatch.setattr(run_context_module, "time", types.SimpleNamespace(monotonic=lambda: 1000.0))
    table = Table("out", rows=output)
    ctx = context(load_job(JOB_FILE), targets=targets_of(table, Table("rej")), started=1000.0 - 12.345,
                  run_id="r-1")
    summary = summarise(ctx, RunCounts(100, 90, 10), unit_keys, 8, model_uri="models:/m/1")
    assert table.calls == [("read_run", dt.date(2026, 11, 22))]
    return summary


def test_the_summary_counts_units_by_their_keys_in_the_output(monkeypatch):
    output = Output(90, 30)
    summary = summarised(monkeypatch, output, ["segment", "product"])

    assert summary == RunSummary("data_pricing", "2026-11-22", "r-1", 100, 10, 30, 90, 8, "out", "rej", 12.3,
                                 model_uri="models:/m/1")
    assert output.selected == ("segment", "product")


def test_the_summary_of_a_model_run_counts_rows_as_units_and_of_no_output_zero(monkeypatch):
    assert summarised(monkeypatch, Output(90, 30), []).units == 90
    nothing = summarised(monkeypatch, None, ["segment"])
    assert (nothing.rows_out, nothing.units) == (0, 0)
