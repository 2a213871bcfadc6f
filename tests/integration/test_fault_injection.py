"""Faults injected into running jobs, each followed by a check of the exact data left behind.

Every job runs through ``./spark-submit.sh`` as a user starts it, with a user function module
written into the test's working folder (``fault_pricing.py``, :data:`FUNCTION_MODULE`): the
built-in data pricing (``BUILTINS["data_pricing"]``) wrapped with a fault chosen by
``function.params.fault``. The faults are real: a Python worker that SIGKILLs itself, a
standalone-cluster worker killed with its executor, a run that dies in one bucket. The
undisturbed run of the same function is the baseline every other output must equal exactly
(``run_id`` aside).

* A Python worker killed mid-task under ``local[2,4]`` (retries allowed): the task is retried,
  the job exits 0, output and rejects equal the baseline.
* A worker of a standalone cluster killed (its JVM, its executor and the executor's Python
  processes) while a task runs there: the job finishes on the remaining worker, exit 0, same
  output and rejects.
* A rerun of a run date that dies in one bucket under ``local[2]`` (no retries), Delta and
  Parquet: exit 1, the previous run of the date is untouched (same rows, same ``run_id``,
  same bytes on disk, no staging leftovers), and a clean rerun replaces it with exactly the
  clean output, without duplicates.

About 8 spark-submits (30-80 s each on a loaded 2-core machine) and one small cluster.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from batch_scoring.jobs.sample_data import write_sample
from batch_scoring.udfs.models.pandas_quarantine import split_rejects_pandas
from batch_scoring.udfs.pricing.data_pricing import DataPricingParams, data_pricing_input_rules, price_data
from job_inputs import BAD_ROWS, NO_REPORT, add_bad_rows

ROOT = Path(__file__).resolve().parents[2]
RUN_DATE = "2026-11-22"
UNITS, DAYS = 30, 20
BUCKETS = 8
KEYS = ["segment", "location", "product"]
SUBMIT_TIMEOUT_S = 600
HOLD_S = 300.0  # the longest a held call waits for the cluster test to release it

FUNCTION_MODULE = '''\
"""The built-in data pricing with injectable faults (tests/integration/test_fault_injection.py).

``price`` is a batch-shape unit-of-work function. It prices like the built-in, with the pool
priors computed over every valid row of ``source`` (the built-in computes them on the driver;
a user function gets no driver-side context, so each Python worker computes them once here).
``fault`` picks what goes wrong:

* ``none``: nothing;
* ``kill_first_call``: the first call of the run (the one that creates ``<fault_dir>/killed``
  with O_CREAT | O_EXCL) SIGKILLs its own Python worker;
* ``kill_unit``: the call whose units include ``fault_key`` SIGKILLs its own Python worker;
* ``hold``: every call waits, before pricing, until ``<fault_dir>/released`` exists (at most
  ``hold_s`` seconds), so a test can act while calls are surely in progress.

With a fault, every call records ``started-<pid>-<call>.json`` and, once priced,
``done-<pid>-<call>.json`` in ``fault_dir`` (``pid``, ``call``, ``units``: its unit keys).
"""

import json
import os
import signal
import time
import uuid

import pandas as pd

from batch_scoring.udfs.contract import unit_of_work_function
from batch_scoring.udfs.pricing.data_pricing import (
    DATA_PRICING_OUTPUT_COLUMNS, DataPricingParams, data_pricing_input_rules, prepare_pandas,
)
from batch_scoring.udfs.models.pandas_quarantine import split_rejects_pandas
from batch_scoring.udfs.registry import BUILTINS

_PRIORS = {}  # (source, keys, params) -> PoolPriors, once per Python worker


def whole_source_priors(source, keys, params):
    """Pool priors over the valid rows of the whole source, as the built-in's prepare step."""
    cache_key = (source, tuple(keys), params.model_dump_json())
    if cache_key not in _PRIORS:
        valid, _ = split_rejects_pandas(pd.read_parquet(source), data_pricing_input_rules(params), keys)
        _PRIORS[cache_key] = prepare_pandas(valid, list(keys), params)
    return _PRIORS[cache_key]


def record(fault_dir, event, call, units):
    """Write <event>-<pid>-<call>.json atomically (a reader never sees half a file)."""
    name = f"{event}-{os.getpid()}-{call}.json"
    text = json.dumps({"pid": os.getpid(), "call": call, "units": units.values.tolist()})
    temporary = os.path.join(fault_dir, "." + name)
    with open(temporary, "w") as handle:
        handle.write(text)
    os.replace(temporary, os.path.join(fault_dir, name))


def claim(path):
    """True for the one caller that creates ``path`` (O_CREAT | O_EXCL), False for the rest."""
    try:
        handle = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    os.write(handle, str(os.getpid()).encode())
    os.close(handle)
    return True


@unit_of_work_function(
    output_schema=dict(DATA_PRICING_OUTPUT_COLUMNS), shape="batch",
    input_rules=data_pricing_input_rules(DataPricingParams()),
)
def price(pdf, keys, *, source, fault="none", fault_dir=None, fault_key=None, hold_s=0.0, **pricing):
    """Price whole units like the built-in data pricing, after injecting ``fault``."""
    pricing_fn = BUILTINS["data_pricing"]
    params = pricing_fn.validate_params(pricing)
    units = pdf[list(keys)].drop_duplicates()
    call = uuid.uuid4().hex[:12]
    if fault != "none":
        record(fault_dir, "started", call, units)
    if fault == "kill_first_call" and claim(os.path.join(fault_dir, "killed")):
        os.kill(os.getpid(), signal.SIGKILL)
    if fault == "kill_unit" and (units == fault_key).all(axis=1).any():
        if claim(os.path.join(fault_dir, "killed")):
            os.kill(os.getpid(), signal.SIGKILL)
    if fault == "hold":
        deadline = time.monotonic() + hold_s
        while not os.path.exists(os.path.join(fault_dir, "released")) and time.monotonic() < deadline:
            time.sleep(0.05)
    priced = pricing_fn.bind(params, whole_source_priors(source, keys, params))(pdf, list(keys))
    if fault != "none":
        record(fault_dir, "done", call, units)
    return priced
'''


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """Bundle sales (30 units x 20 days plus 3 bad rows) and ``fault_pricing.py``."""
    folder = tmp_path_factory.mktemp("fault_injection")
    write_sample("bundle_sales", folder / "sales", rows=UNITS * DAYS, units=UNITS, seed=5)
    add_bad_rows(folder / "sales")
    (folder / "fault_pricing.py").write_text(FUNCTION_MODULE)
    return folder


def job_args(workdir: Path, output: str, *extra: str) -> list[str]:
    """Job arguments of the wrapped pricing on ``workdir/sales``, writing ``workdir/output``.

    Summary to ``workdir/<output>.json``; ``BUCKETS`` buckets, so every run hashes the units
    into the same partitions; ``extra`` (more ``--set``, ``--profile``, ``--master``) last.
    """
    sales = workdir / "sales"
    return [
        str(ROOT / "conf/jobs/data_pricing.yaml"), "--run-date", RUN_DATE,
        "--summary-json", str(workdir / f"{output}.json"),
        "--set", f"source.path={sales}", "--set", "source.filter=null", *NO_REPORT,
        "--set", f"output.path={workdir / output}", "--set", f"unit_of_work.buckets={BUCKETS}",
        "--set", "function.name=fault_pricing:price", "--set", "function.allowed_modules=[fault_pricing]",
        "--set", f"function.params.source={sales}", *extra,
    ]


def fault_args(fault: str, fault_dir: Path, **params: object) -> list[str]:
    """``--set function.params.*`` for ``fault`` recording into ``fault_dir`` (created).

    Values are given as JSON, which YAML reads unchanged (a key may hold spaces).
    """
    fault_dir.mkdir(parents=True, exist_ok=True)
    args = ["--set", f"function.params.fault={fault}", "--set", f"function.params.fault_dir={fault_dir}"]
    for name, value in params.items():
        args += ["--set", f"function.params.{name}={json.dumps(value)}"]
    return args


def start_submit(workdir: Path, target: str, args: list[str], log: Path) -> subprocess.Popen:
    """Start ``./spark-submit.sh <target> <args>`` from ``workdir`` in its own session.

    stdout and stderr (spark-submit merges the driver's stderr into stdout) go to ``log``,
    a file, so a long run never blocks on a full pipe.
    """
    env = {**os.environ, "BATCH_SCORE_PYTHON": sys.executable}
    with open(log, "wb") as handle:
        return subprocess.Popen(
            [str(ROOT / "spark-submit.sh"), target, *args], cwd=workdir, env=env,
            stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def finish(process: subprocess.Popen, log: Path, timeout_s: float = SUBMIT_TIMEOUT_S) -> tuple[int, str]:
    """Wait for a :func:`start_submit` process; return its exit code and output.

    On timeout its whole process group (spark-submit, the driver JVM, Python) is killed and
    the test fails with the output's tail.
    """
    try:
        code = process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        pytest.fail(f"spark-submit did not end within {timeout_s:.0f} s:\n{log.read_text()[-4000:]}")
    return code, log.read_text(errors="replace")


def submit(workdir: Path, target: str, args: list[str], name: str) -> tuple[int, str]:
    """Run ``./spark-submit.sh <target> <args>`` to its end (log ``workdir/<name>.log``)."""
    log = workdir / f"{name}.log"
    return finish(start_submit(workdir, target, args, log), log)


def succeeded(workdir: Path, output: str, code: int, text: str) -> dict:
    """The summary of run ``output``, which must have exited 0 with every count as expected.

    Every valid row priced, the three bad rows rejected, one output row per unit.
    """
    assert code == 0, f"run {output} exited {code}:\n{text[-4000:]}"
    summary = json.loads((workdir / f"{output}.json").read_text())
    counts = {k: summary[k] for k in ("rows_in", "rows_rejected", "units", "rows_out", "buckets")}
    assert counts == {"rows_in": source_rows(workdir), "rows_rejected": BAD_ROWS, "units": UNITS,
                      "rows_out": UNITS, "buckets": BUCKETS}
    return summary


def source_rows(workdir: Path) -> int:
    """Rows of the source, bad rows included, counted with pandas."""
    return len(pd.read_parquet(workdir / "sales"))


def read_table(spark, path: Path, output_format: str = "delta") -> DataFrame:
    """Every row of the Delta or Parquet table at ``path`` (all columns, ``run_id`` too)."""
    return spark.read.format(output_format).load(str(path))


def snapshot(df: DataFrame) -> DataFrame:
    """``df``'s rows collected now, as a DataFrame that later writes to its source cannot change."""
    return df.sparkSession.createDataFrame(df.collect(), df.schema)


def assert_same_rows(actual: DataFrame, expected: DataFrame, ignore: tuple[str, ...] = ("run_id",)) -> None:
    """Both hold exactly the same rows (order aside), columns in ``ignore`` left out.

    assertDataFrameEqual with no tolerance; it lets NaN match any float, so the (small) frames
    are also compared with pandas, which matches NaN only with NaN.
    """
    actual, expected = actual.drop(*ignore), expected.drop(*ignore)
    assertDataFrameEqual(actual, expected, rtol=0.0, atol=0.0)
    columns = sorted(actual.columns)

    def ordered(df: DataFrame) -> pd.DataFrame:
        pdf = df.select(*columns).toPandas()
        return pdf.sort_values(columns, na_position="first").reset_index(drop=True)

    pd.testing.assert_frame_equal(ordered(actual), ordered(expected), check_exact=True)


def files_with_hashes(folder: Path) -> dict[str, str]:
    """Every file below ``folder`` (hidden ones too) with its SHA-256; run manifests, which
    record failed runs too and which readers skip, left out."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.relative_to(folder).parts[0] != "_manifests"
    }


def fault_records(fault_dir: Path, event: str) -> list[dict]:
    """The ``started`` or ``done`` records the function wrote (see :data:`FUNCTION_MODULE`)."""
    return [json.loads(p.read_text()) for p in sorted(fault_dir.glob(f"{event}-*.json"))]


@pytest.fixture(scope="module")
def baseline(workdir) -> Path:
    """The undisturbed run of the wrapped pricing for RUN_DATE (run id ``baseline``, local[2],
    Delta): the output every faulted run must equal. Returns its output folder."""
    code, text = submit(workdir, "local", job_args(workdir, "baseline", "--run-id", "baseline"), "baseline")
    succeeded(workdir, "baseline", code, text)
    return workdir / "baseline"


def job_params() -> DataPricingParams:
    """``function.params`` of conf/jobs/data_pricing.yaml (what every run here prices with)."""
    params = yaml.safe_load((ROOT / "conf/jobs/data_pricing.yaml").read_text())["function"]["params"]
    return DataPricingParams(**params)


def test_the_undisturbed_run_prices_every_valid_unit_as_pandas_alone_does(spark, workdir, baseline):
    """The baseline is real pricing: equal to ``price_data`` (pandas, no Spark) over the rows
    that keep the input contract, and its rejects are the three bad rows."""
    params = job_params()
    rows = pd.read_parquet(workdir / "sales").drop(columns="sale_month")
    valid, bad = split_rejects_pandas(rows, data_pricing_input_rules(params), KEYS)
    assert len(bad) == BAD_ROWS
    expected = price_data(valid, KEYS, params).sort_values(KEYS).reset_index(drop=True)
    table = read_table(spark, baseline)
    runs = {(r.run_date.isoformat(), r.run_id) for r in table.select("run_date", "run_id").distinct().collect()}
    assert runs == {(RUN_DATE, "baseline")}
    actual = table.drop("run_date", "run_id").toPandas()[list(expected.columns)]
    actual = actual.sort_values(KEYS).reset_index(drop=True)
    for frame in (actual, expected):
        frame["last_date"] = pd.to_datetime(frame["last_date"])
    assert len(actual) == UNITS and actual["price"].gt(0).all()
    pd.testing.assert_frame_equal(actual, expected, check_exact=True, check_dtype=False)
    rejects = read_table(spark, Path(f"{baseline}_rejects"))
    assert sorted((r.reject_reason, r.reject_column) for r in rejects.collect()) == [
        ("null_key", "segment"), ("null_value", "price"), ("out_of_range", "unit_cost"),
    ]


@pytest.mark.one_line  # task retry is Spark's; the rerun tests below run on both lines
def test_a_python_worker_killed_mid_task_is_retried_and_changes_nothing(spark, workdir, baseline):
    """``local[2,4]``: the first call SIGKILLs its own Python worker; Spark retries the task.

    Exit 0, output and rejects equal to the baseline, no unit rejected for the kill.
    """
    profile = workdir / "local-retries.yaml"
    text, count = re.subn(r"(?m)^master: local\[2\]$", "master: local[2,4]",
                          (ROOT / "conf/local.yaml").read_text())
    assert count == 1, "conf/local.yaml no longer says 'master: local[2]'"
    profile.write_text(text)
    faults = workdir / "faults-python-worker"
    args = job_args(workdir, "worker_killed", "--profile", str(profile), "--run-id", "worker-killed",
                    *fault_args("kill_first_call", faults))

    code, output = submit(workdir, "local", args, "worker_killed")

    succeeded(workdir, "worker_killed", code, output)
    assert (faults / "killed").exists(), "the fault never fired"
    assert "Python worker exited unexpectedly (crashed)" in output  # the task that died
    assert len(fault_records(faults, "started")) > len(fault_records(faults, "done"))
    assert_same_rows(read_table(spark, workdir / "worker_killed"), read_table(spark, baseline))
    rejects = read_table(spark, workdir / "worker_killed_rejects")
    assert rejects.where("reject_reason = 'function_raised'").count() == 0
    assert_same_rows(rejects, read_table(spark, Path(f"{baseline}_rejects")))


def wait_for_running_call(faults: Path, process: subprocess.Popen, log: Path, timeout_s: float = 300) -> dict:
    """A ``started`` record of the running job's function without its ``done`` record yet
    (a call in progress); fails when the job ends first or none shows within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done = {record["call"] for record in fault_records(faults, "done")}
        running = [record for record in fault_records(faults, "started") if record["call"] not in done]
        if running:
            return running[0]
        if process.poll() is not None:
            pytest.fail(f"the job ended (exit {process.returncode}) before its function ran:\n"
                        f"{log.read_text()[-4000:]}")
        time.sleep(0.1)
    pytest.fail(f"no call of the function started within {timeout_s:.0f} s:\n{log.read_text()[-4000:]}")


def wait_for_cluster_state(cluster, alive_workers: int, completed_apps: int, timeout_s: float = 60) -> dict:
    """The master's state once it lists ``alive_workers`` alive workers and ``completed_apps``
    completed applications (the master records a worker's loss and an application's end a
    moment after they happen), or its last state at the timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        state = cluster.state()
        settled = (state["aliveworkers"], len(state["completedapps"])) == (alive_workers, completed_apps)
        if settled or time.monotonic() > deadline:
            return state
        time.sleep(0.5)


def test_a_cluster_worker_killed_mid_job_is_survived_with_the_same_output(spark, workdir, baseline, tmp_path):
    """A standalone cluster of two workers (1 core, 2 GiB each: one 2 GiB executor each, so
    the survivor can run every task). Every call of the function is held until released; while
    one is held, the worker running it is SIGKILLed with its executor and Python processes (a
    lost machine), then the calls are released. The job finishes on the other worker: exit 0,
    output and rejects equal to the baseline.

    The cluster is this test's own: a killed worker must not leak into other tests.
    """
    from spark_cluster import start_cluster

    faults = workdir / "faults-cluster"
    args = job_args(workdir, "cluster_killed", "--run-id", "cluster-killed",
                    *fault_args("hold", faults, hold_s=HOLD_S))
    log = workdir / "cluster_killed.log"
    with start_cluster(tmp_path / "cluster", workers=2, cores=1, memory="2g") as cluster:
        process = start_submit(workdir, "cluster", [*args, "--master", cluster.master_url], log)
        try:
            call = wait_for_running_call(faults, process, log)
            victims = [name for name in ("worker-1", "worker-2") if call["pid"] in cluster.process_tree(name)]
            assert len(victims) == 1, f"the Python worker {call['pid']} runs under {victims}"
            killed = cluster.kill_worker(victims[0])
            (faults / "released").touch()
            code, output = finish(process, log)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        state = wait_for_cluster_state(cluster, alive_workers=1, completed_apps=1)

    assert call["pid"] in killed  # the Python worker of a running call died with its worker
    assert any("CoarseGrainedExecutorBackend" in command for command in killed.values())
    assert call["call"] not in {record["call"] for record in fault_records(faults, "done")}
    assert state["aliveworkers"] == 1
    assert [(app["name"], app["state"]) for app in state["completedapps"]] == [("data_pricing", "FINISHED")]
    succeeded(workdir, "cluster_killed", code, output)
    assert_same_rows(read_table(spark, workdir / "cluster_killed"), read_table(spark, baseline))
    assert_same_rows(read_table(spark, workdir / "cluster_killed_rejects"),
                     read_table(spark, Path(f"{baseline}_rejects")))


def unit_in_last_bucket(spark, workdir: Path) -> list[str]:
    """The key of a unit in the highest non-empty bucket, as ``repartition(BUCKETS, *KEYS)``
    hashes them (``pmod(hash(keys), n)``, Spark's HashPartitioning). Under ``local[2]`` that
    bucket's task starts only after tasks of lower buckets have finished."""
    units = (
        spark.read.parquet(str(workdir / "sales")).where(F.col("segment").isNotNull())
        .select(*KEYS).distinct()
        .withColumn("bucket", F.expr(f"pmod(hash({', '.join(KEYS)}), {BUCKETS})"))
    )
    row = units.orderBy(F.col("bucket").desc(), *KEYS).first()
    return [row[k] for k in KEYS]


@pytest.mark.parametrize("output_format", ["delta", "parquet"])
def test_a_rerun_killed_in_one_bucket_fails_and_leaves_the_previous_run_intact(
    spark, workdir, baseline, output_format
):
    """A clean run for RUN_DATE, then a rerun whose call holding one unit of the last bucket
    SIGKILLs its Python worker under ``local[2]`` (no task retries), then a clean rerun.

    The failed rerun exits 1 and changes nothing: the earlier run's rows, run id and files
    (byte for byte, no ``.spark-staging*``/``_temporary`` leftovers). The pipeline persists
    and counts the function's output before it writes anything, so the kill stops the run
    before its commit. The clean rerun then holds exactly one row per unit, equal to the
    clean run. For Delta the clean run is the baseline's tables, copied (one submit fewer).
    """
    name = f"rerun_{output_format}"
    out, rejects_out = workdir / name, workdir / f"{name}_rejects"
    fmt = ["--set", f"output.format={output_format}"]
    if output_format == "delta":
        shutil.copytree(baseline, out)
        shutil.copytree(f"{baseline}_rejects", rejects_out)
        first_run_id = "baseline"
    else:
        code, text = submit(workdir, "local", job_args(workdir, name, *fmt, "--run-id", "clean"), f"{name}_clean")
        succeeded(workdir, name, code, text)
        first_run_id = "clean"
    before_files = {path: files_with_hashes(path) for path in (out, rejects_out)}
    before = snapshot(read_table(spark, out, output_format))
    before_rejects = snapshot(read_table(spark, rejects_out, output_format))
    assert before.count() == UNITS and before_rejects.count() == BAD_ROWS

    key = unit_in_last_bucket(spark, workdir)
    faults = workdir / f"faults-{name}"
    code, text = submit(workdir, "local", job_args(workdir, name, *fmt, "--run-id", "killed",
                                                   *fault_args("kill_unit", faults, fault_key=key)),
                        f"{name}_killed")

    assert code == 1, f"the killed rerun exited {code}:\n{text[-4000:]}"
    assert "Python worker exited unexpectedly (crashed)" in text
    assert (faults / "killed").exists()
    done_units = {tuple(unit) for record in fault_records(faults, "done") for unit in record["units"]}
    assert done_units and tuple(key) not in done_units  # other buckets were priced first
    assert {path: files_with_hashes(path) for path in (out, rejects_out)} == before_files
    leftovers = [p for p in (*out.rglob("*"), *rejects_out.rglob("*"))
                 if p.name.startswith((".spark-staging", "_temporary"))]
    assert leftovers == []
    kept = read_table(spark, out, output_format)
    assert {r.run_id for r in kept.select("run_id").distinct().collect()} == {first_run_id}
    assert_same_rows(kept, before, ignore=())
    assert_same_rows(read_table(spark, rejects_out, output_format), before_rejects, ignore=())

    code, text = submit(workdir, "local", job_args(workdir, name, *fmt, "--run-id", "rerun"), f"{name}_rerun")

    succeeded(workdir, name, code, text)
    rerun = read_table(spark, out, output_format)
    assert rerun.count() == UNITS and rerun.select(*KEYS).distinct().count() == UNITS
    assert {r.run_id for r in rerun.select("run_id").distinct().collect()} == {"rerun"}
    assert_same_rows(rerun, before)
    rerun_rejects = read_table(spark, rejects_out, output_format)
    assert {r.run_id for r in rerun_rejects.select("run_id").distinct().collect()} == {"rerun"}
    assert_same_rows(rerun_rejects, before_rejects)
