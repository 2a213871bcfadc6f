"""JDBC source and sink against a real PostgreSQL server (tests/postgres_server.py).

Reads: parallel over a numeric or date column, over predicates, from a query; the filter pushed
into the JDBC query; bad input (a text partition column, a wrong password, a missing table or
column) refused with one clear line before any Spark job. Writes: a rerun replaces the run
date's rows (one copy), a backfill leaves other dates alone, a swap that fails after the staging
write leaves the target unchanged and a rerun converges, a killed attempt's staging table is
dropped by the next one.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pandas as pd
import pytest
from pyspark.sql import types as T
from pyspark.testing import assertDataFrameEqual

from batch_scoring.jobs.config import JdbcSinkConfig, JdbcSourceConfig, SourceConfig
from batch_scoring.jobs.errors import ConfigError, InputError, WriteFailed
from batch_scoring.jobs.jdbc_sink import JdbcSink, staging_prefix, staging_table
from batch_scoring.jobs.jdbc_source import JdbcSource

ROWS = 2000
SALES_SCHEMA = T.StructType([
    T.StructField("id", T.LongType()), T.StructField("segment", T.StringType()),
    T.StructField("sale_date", T.DateType()), T.StructField("price", T.DoubleType()),
    T.StructField("volume", T.IntegerType()),
])
DAY, EARLIER = dt.date(2026, 11, 22), dt.date(2026, 11, 21)


@pytest.fixture(scope="module")
def sales_table(postgres):
    """``public.sales``: 2,000 rows made by generate_series, and the same rows built in Python."""
    postgres.psql(
        "DROP TABLE IF EXISTS public.sales; "
        "CREATE TABLE public.sales (id bigint PRIMARY KEY, segment text NOT NULL, sale_date date, "
        "price double precision, volume integer); "
        f"INSERT INTO public.sales SELECT i, 'seg' || (i % 7), DATE '2026-01-01' + (i % 90), "
        f"i * 0.5, (i % 13)::int FROM generate_series(1, {ROWS}) AS i"
    )
    return pd.DataFrame({
        "id": range(1, ROWS + 1),
        "segment": [f"seg{i % 7}" for i in range(1, ROWS + 1)],
        "sale_date": [dt.date(2026, 1, 1) + dt.timedelta(days=i % 90) for i in range(1, ROWS + 1)],
        "price": [i * 0.5 for i in range(1, ROWS + 1)],
        "volume": [i % 13 for i in range(1, ROWS + 1)],
    })


def env(postgres) -> dict[str, str]:
    return {"PG_PASSWORD": postgres.password}


def source_cfg(postgres, **fields) -> JdbcSourceConfig:
    base = {"url": postgres.url, "user": postgres.user, "password_env": "PG_PASSWORD", "table": "public.sales"}
    return JdbcSourceConfig(**{**base, **fields})


def jdbc_source(cfg: JdbcSourceConfig, environ: dict[str, str], filter: str | None = None) -> JdbcSource:
    """The :class:`JdbcSource` of a ``source`` section holding ``cfg`` and ``filter``."""
    return JdbcSource(SourceConfig(format="jdbc", jdbc=cfg, filter=filter), environ=environ)


def expected(spark, rows: pd.DataFrame, columns=None):
    df = spark.createDataFrame(rows, SALES_SCHEMA)
    return df.select(*columns) if columns else df


class NoSparkJobs:
    """Asserts no Spark job ran inside the block (a job group watched by the status tracker)."""

    def __init__(self, spark):
        self.spark = spark
        self.group = f"no-jobs-{uuid.uuid4().hex}"

    def __enter__(self):
        self.spark.sparkContext.setJobGroup(self.group, "must run no job")
        return self

    def __exit__(self, *exc):
        self.spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)
        assert list(self.spark.sparkContext.statusTracker().getJobIdsForGroup(self.group)) == []


# --------------------------------------------------------------------------- reads

def test_a_read_over_a_numeric_column_uses_num_partitions_and_returns_every_row(spark, postgres, sales_table):
    source = jdbc_source(source_cfg(postgres, partition_column="id", num_partitions=4), env(postgres))
    df = source.read(spark, None)
    assert df.rdd.getNumPartitions() == 4
    assert all(n > 0 for n in df.rdd.glom().map(len).collect())
    assertDataFrameEqual(df, expected(spark, sales_table))
    described = source.describe_inputs(spark)
    assert described == {
        "format": "jdbc", "url": postgres.url, "table": "public.sales", "user": postgres.user,
        "partition_column": "id", "num_partitions": 4, "partitions": 4, "bounds": ["1", str(ROWS)],
        "predicates": None,
    }
    assert postgres.password not in json.dumps(described)


def test_a_read_over_a_date_column_with_projection(spark, postgres, sales_table):
    source = jdbc_source(source_cfg(postgres, partition_column="sale_date", num_partitions=3), env(postgres))
    df = source.read(spark, ["id", "sale_date"])
    assert df.rdd.getNumPartitions() == 3
    assert df.columns == ["id", "sale_date"]
    assertDataFrameEqual(df, expected(spark, sales_table, ["id", "sale_date"]))
    assert source.describe_inputs(spark)["bounds"] == ["2026-01-01", "2026-03-31"]


def test_a_read_over_predicates_is_one_partition_each(spark, postgres, sales_table):
    cfg = source_cfg(postgres, predicates=["segment < 'seg3'", "segment >= 'seg3' AND segment < 'seg5'",
                                           "segment >= 'seg5'"])
    df = jdbc_source(cfg, env(postgres)).read(spark, None)
    assert df.rdd.getNumPartitions() == 3
    assertDataFrameEqual(df, expected(spark, sales_table))


def test_a_query_read_in_parallel_with_given_bounds(spark, postgres, sales_table):
    cfg = source_cfg(postgres, table=None, query="SELECT id, price FROM public.sales WHERE volume = 0",
                     partition_column="id", lower_bound=0, upper_bound=2000, num_partitions=2)
    source = jdbc_source(cfg, env(postgres))
    df = source.read(spark, ["id", "price"])
    assert df.rdd.getNumPartitions() == 2
    want = sales_table[sales_table.volume == 0]
    assertDataFrameEqual(df, expected(spark, want, ["id", "price"]))
    described = source.describe_inputs(spark)
    assert described["query_sha256"].startswith("sha256:") and "table" not in described
    assert described["bounds"] == ["0", "2000"]


def test_the_filter_is_pushed_into_the_jdbc_query(spark, postgres, sales_table):
    source = jdbc_source(source_cfg(postgres, partition_column="id", num_partitions=4), env(postgres),
                         "price > 900 AND segment = 'seg1'")
    df = source.read(spark, ["id", "price"])
    plan = df._jdf.queryExecution().executedPlan().toString()
    assert "PushedFilters: [" in plan
    pushed = plan.split("PushedFilters: [", 1)[1].split("]", 1)[0]
    assert "GreaterThan(price,900.0)" in pushed and "EqualTo(segment,seg1)" in pushed
    want = sales_table[(sales_table.price > 900) & (sales_table.segment == "seg1")]
    assertDataFrameEqual(df, expected(spark, want, ["id", "price"]))


def test_an_empty_table_is_read_as_one_partition(spark, postgres):
    postgres.psql("DROP TABLE IF EXISTS public.empty_sales; CREATE TABLE public.empty_sales (id int, x text)")
    df = jdbc_source(source_cfg(postgres, table="public.empty_sales", partition_column="id"),
                     env(postgres)).read(spark, None)
    assert df.rdd.getNumPartitions() == 1 and df.count() == 0


# --------------------------------------------------------------------------- bad input

def test_a_text_partition_column_is_refused_before_any_spark_job(spark, postgres, sales_table):
    source = jdbc_source(source_cfg(postgres, partition_column="segment"), env(postgres))
    with NoSparkJobs(spark), pytest.raises(ConfigError) as info:
        source.read(spark, None)
    assert str(info.value) == (
        "source.jdbc.partition_column 'segment' of public.sales is of type text; a parallel read "
        "splits on a numeric, date or timestamp column (or give predicates instead)"
    )


def test_date_bounds_on_a_numeric_column_are_refused(spark, postgres, sales_table):
    cfg = source_cfg(postgres, partition_column="id", lower_bound="2026-01-01", upper_bound="2026-02-01")
    with NoSparkJobs(spark), pytest.raises(ConfigError, match="lower_bound/upper_bound are dates but partition_column 'id' is int8"):
        jdbc_source(cfg, env(postgres)).read(spark, None)


def test_a_wrong_password_is_refused_naming_url_user_and_field(spark, postgres, sales_table):
    wrong = "not-" + postgres.password
    source = jdbc_source(source_cfg(postgres, partition_column="id"), {"PG_PASSWORD": wrong})
    with NoSparkJobs(spark), pytest.raises(ConfigError) as info:
        source.read(spark, None)
    message = str(info.value)
    assert message.startswith(f"{postgres.url}: login as source.jdbc.user '{postgres.user}' refused (")
    assert message.endswith("check the user and the password in source.jdbc.password_env (PG_PASSWORD)")
    assert "\n" not in message and wrong not in message and postgres.password not in message


def test_a_missing_table_is_refused_naming_it(spark, postgres):
    source = jdbc_source(source_cfg(postgres, table="public.nothing", partition_column="id"), env(postgres))
    with NoSparkJobs(spark), pytest.raises(InputError) as info:
        source.read(spark, None)
    message = str(info.value)
    assert message.startswith(f"source.jdbc.table public.nothing does not exist at {postgres.url} (")
    assert "\n" not in message and postgres.password not in message


def test_a_missing_column_is_refused_listing_the_columns(spark, postgres, sales_table):
    source = jdbc_source(source_cfg(postgres, partition_column="id"), env(postgres))
    with NoSparkJobs(spark), pytest.raises(InputError) as info:
        source.read(spark, ["id", "prize"])
    assert "lacks column(s) 'prize' (did you mean 'price'?)" in str(info.value)
    assert "['id', 'segment', 'sale_date', 'price', 'volume']" in str(info.value)


def test_an_unset_password_variable_is_refused_without_spark(postgres):
    source = jdbc_source(source_cfg(postgres), {})
    with pytest.raises(ConfigError, match="source.jdbc.password_env: environment variable PG_PASSWORD is not set"):
        source.check_before_spark()


# --------------------------------------------------------------------------- writes

PRICES = T.StructType([T.StructField("segment", T.StringType()), T.StructField("price", T.DoubleType())])


def sink_cfg(postgres, table: str, **fields) -> JdbcSinkConfig:
    return JdbcSinkConfig(url=postgres.url, user=postgres.user, password_env="PG_PASSWORD", table=table, **fields)


def make_sink(spark, postgres, table: str) -> JdbcSink:
    return JdbcSink(spark, sink_cfg(postgres, table, num_partitions=2), table, "output.jdbc.table",
                    environ=env(postgres))


def prices(spark, factor: float, n: int = 20):
    rows = [(f"seg{i}", i * factor) for i in range(n)]
    return spark.createDataFrame(rows, PRICES).repartition(3)


def table_rows(postgres, table: str) -> list[str]:
    return sorted(postgres.psql(f"SELECT segment, price, run_date, run_id FROM {table}").splitlines())


def staging_tables(postgres) -> list[str]:
    return postgres.psql("SELECT table_name FROM information_schema.tables WHERE table_name LIKE '%\\_\\_stg\\_%'").splitlines()


@pytest.fixture
def target(postgres):
    name = f"public.prices_{uuid.uuid4().hex[:8]}"
    yield name
    postgres.psql(f"DROP TABLE IF EXISTS {name}")


def test_a_rerun_of_a_run_date_replaces_its_rows(spark, postgres, target):
    sink = make_sink(spark, postgres, target)
    assert sink.existing_schema() is None and not sink.has_run(DAY) and sink.read_run(DAY) is None
    sink.write_run(prices(spark, 1.0), [], DAY, "run-1")
    sink.write_run(prices(spark, 2.0), [], DAY, "run-2")
    assert sink.has_run(DAY) and not sink.has_run(EARLIER)
    back = sink.read_run(DAY)
    want = spark.createDataFrame([(f"seg{i}", i * 2.0, DAY, "run-2") for i in range(20)],
                                 "segment string, price double, run_date date, run_id string")
    assertDataFrameEqual(back, want)
    assert sink.existing_schema().fieldNames() == ["segment", "price", "run_date", "run_id"]
    assert sink.version() is None
    assert staging_tables(postgres) == []


def test_a_backfill_leaves_other_run_dates_untouched(spark, postgres, target):
    sink = make_sink(spark, postgres, target)
    sink.write_run(prices(spark, 1.0), [], DAY, "later")
    later = [r for r in table_rows(postgres, target) if str(DAY) in r]
    sink.write_run(prices(spark, 3.0, n=5), [], EARLIER, "backfill")
    rows = table_rows(postgres, target)
    assert [r for r in rows if str(DAY) in r] == later
    assert len(later) == 20 and all(r.endswith("|later") for r in later)
    assert len([r for r in rows if str(EARLIER) in r]) == 5


def test_a_swap_that_fails_after_staging_leaves_the_target_unchanged_and_a_rerun_converges(spark, postgres, target):
    sink = make_sink(spark, postgres, target)
    sink.write_run(prices(spark, 1.0), [], DAY, "first")
    before = table_rows(postgres, target)
    # The rerun's rows break a constraint added meanwhile: its INSERT fails inside the swap,
    # after the staging write and after the DELETE of the same transaction.
    postgres.psql(f"ALTER TABLE {target} ADD CONSTRAINT price_cap CHECK (price < 30) NOT VALID")
    with pytest.raises(WriteFailed) as info:
        sink.write_run(prices(spark, 2.0), [], DAY, "second")
    message = str(info.value)
    assert message.startswith(f"output.jdbc.table {target} at {postgres.url}: replacing the run date's rows failed")
    assert "price_cap" in message and "the table is unchanged" in message
    assert postgres.password not in message
    assert table_rows(postgres, target) == before
    assert staging_tables(postgres) == []
    postgres.psql(f"ALTER TABLE {target} DROP CONSTRAINT price_cap")
    sink.write_run(prices(spark, 2.0), [], DAY, "second")
    rows = table_rows(postgres, target)
    assert len(rows) == 20 and all(r.endswith("|second") for r in rows)


def test_a_killed_attempts_staging_table_is_dropped_by_the_next_attempt(spark, postgres, target):
    """A killed attempt leaves its staging table written and the target untouched."""
    sink = make_sink(spark, postgres, target)
    sink.write_run(prices(spark, 1.0), [], EARLIER, "other-date")
    killed = staging_table(target, DAY, "killed-attempt")
    rows = prices(spark, 9.0).selectExpr("*", f"DATE'{DAY}' AS run_date", "'killed-attempt' AS run_id")
    sink._write_staging(rows, killed)  # what the killed attempt had done before the swap
    other_date = staging_table(target, EARLIER, "still-running")
    sink._write_staging(rows, other_date)
    assert sorted(staging_tables(postgres)) == sorted(t.split(".")[1] for t in (killed, other_date))
    assert not sink.has_run(DAY)
    sink.write_run(prices(spark, 2.0), [], DAY, "rerun")
    assert staging_tables(postgres) == [other_date.split(".")[1]]  # another run date's stays
    day_rows = [r for r in table_rows(postgres, target) if str(DAY) in r]
    assert len(day_rows) == 20 and all(r.endswith("|rerun") for r in day_rows)
    postgres.psql(f"DROP TABLE {other_date}")


def test_new_columns_are_refused_before_writing_unless_added(spark, postgres, target):
    sink = make_sink(spark, postgres, target)
    sink.write_run(prices(spark, 1.0), [], EARLIER, "one")
    wider = prices(spark, 1.0).selectExpr("*", "price * 2 AS double_price")
    with pytest.raises(InputError, match=r"lacks column\(s\) \['double_price'\]"):
        sink.write_run(wider, [], DAY, "two")
    assert not sink.has_run(DAY) and staging_tables(postgres) == []
    sink.write_run(wider, [], DAY, "two", add_columns=True)
    assert postgres.psql(f"SELECT count(*), count(double_price) FROM {target}") == "40|20"


def test_staging_names_fit_postgresql_and_share_a_prefix_per_run_date():
    long = "analytics." + "p" * 120
    name = staging_table(long, DAY, "2026-11-22T02:00:00Z-manual-" + "x" * 80)
    assert name.startswith("analytics.") and len(name.split(".")[1]) <= 63
    assert name.split(".")[1].startswith(staging_prefix(long, DAY))
    assert staging_table(long, DAY, "a") != staging_table(long, DAY, "b")
    assert staging_prefix(long, DAY) != staging_prefix(long, EARLIER)


CHILD = '''
import datetime as dt, sys
from pyspark.sql import SparkSession
from batch_scoring.jobs.config import JdbcSinkConfig
from batch_scoring.jobs.jdbc import POSTGRESQL_PACKAGE
from batch_scoring.jobs.jdbc_sink import JdbcSink

url, user, table = sys.argv[1:4]
spark = (SparkSession.builder.master("local[1]").config("spark.jars.packages", POSTGRESQL_PACKAGE)
         .config("spark.ui.enabled", "false").getOrCreate())
cfg = JdbcSinkConfig(url=url, user=user, password_env="PG_PASSWORD", table=table)
rows = spark.createDataFrame([(f"seg{i}", i * 5.0) for i in range(20)], "segment string, price double")
JdbcSink(spark, cfg, table, "output.jdbc.table").write_run(rows, [], dt.date(2026, 11, 22), "killed")
print("committed", flush=True)
'''


@pytest.mark.one_line  # fault injection; the transaction it tests does not depend on the Spark line
def test_a_job_killed_between_staging_and_swap_leaves_the_target_unchanged(spark, postgres, target, tmp_path):
    """A child process writes the run; a lock held here stops its swap right after the staging
    write (its LOCK TABLE waits); the child is killed there. The target is unchanged, and a
    rerun drops the dead attempt's staging table and leaves exactly one copy of the run's rows."""
    import os
    import signal
    import subprocess
    import sys
    import time

    sink = make_sink(spark, postgres, target)
    sink.write_run(prices(spark, 1.0), [], DAY, "first")
    before = table_rows(postgres, target)
    holder = subprocess.Popen(
        [str(postgres.bin / "psql"), "-h", "127.0.0.1", "-p", str(postgres.port), "-U", postgres.user,
         "-d", postgres.database, "-X", "-q", "-v", "ON_ERROR_STOP=1"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        env={**os.environ, "PGPASSWORD": postgres.password},
    )
    # ROW EXCLUSIVE lets the child read the table's columns but not take the swap's lock.
    holder.stdin.write(f"BEGIN; LOCK TABLE {target} IN ROW EXCLUSIVE MODE; SELECT 1;\n")
    holder.stdin.flush()
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    child = subprocess.Popen(
        [sys.executable, str(script), postgres.url, postgres.user, target],
        env={**os.environ, "PG_PASSWORD": postgres.password}, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        deadline = time.monotonic() + 240
        waiting = ""
        while time.monotonic() < deadline and not waiting and child.poll() is None:
            waiting = postgres.psql(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE 'LOCK TABLE%'", admin=True).replace("0", "")
            time.sleep(0.5)
        assert waiting, "the child never reached the swap"
        staged = staging_tables(postgres)
        assert len(staged) == 1
        assert postgres.psql(f'SELECT count(*) FROM public."{staged[0]}"') == "20"  # the staging write is done
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(timeout=60)
        holder.stdin.write("COMMIT;\n")
        holder.stdin.close()
        holder.wait(timeout=60)
    assert "committed" not in child.stdout.read()
    assert table_rows(postgres, target) == before
    sink.write_run(prices(spark, 2.0), [], DAY, "rerun")
    rows = table_rows(postgres, target)
    assert len(rows) == 20 and all(r.endswith("|rerun") for r in rows)
    assert staging_tables(postgres) == []
