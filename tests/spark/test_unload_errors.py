"""A Redshift UNLOAD that fails stops the read with one line, before any Spark job runs.

No Redshift exists here: the JDBC connection is replaced by a stand-in whose ``execute`` raises
what the Redshift driver raises (an SQLException with its SQLState and message, inside py4j's
error) or writes nothing. The rest is the source's own read path on the test session.
"""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager

import pytest

import batch_scoring.jobs.jdbc_unload as jdbc_unload
from batch_scoring.jobs.config import SourceConfig
from batch_scoring.jobs.errors import ConfigError, InputError
from batch_scoring.jobs.jdbc_source import JdbcSource
from batch_scoring.jobs.sources import open_source

pytestmark = pytest.mark.one_line  # refused before any Spark job: no Spark-line behaviour

ROLE = "arn:aws:iam::123456789012:role/redshift-unload"
PASSWORD = "pw-Redshift-42"


class SQLException:
    """What py4j hands over for a ``java.sql.SQLException``: state, message, no cause."""

    def __init__(self, state: str, message: str) -> None:
        self.state, self.message = state, message

    def getSQLState(self) -> str:  # noqa: N802 - the Java method's name
        return self.state

    def getMessage(self) -> str:  # noqa: N802
        return self.message

    def getCause(self) -> None:  # noqa: N802
        return None


class Py4JJavaError(Exception):
    def __init__(self, state: str, message: str) -> None:
        super().__init__(f"An error occurred while calling o42.execute.\n: {message}")
        self.java_exception = SQLException(state, message)


class Refusing:
    """The connection's stand-in: ``execute`` raises ``error`` (or does nothing if None)."""

    def __init__(self, error: Exception | None) -> None:
        self.error, self.statements = error, []

    def execute(self, sql: str, parameters: tuple = ()) -> int:
        self.statements.append(sql)
        if self.error is not None:
            raise self.error
        return 0


@pytest.fixture
def redshift(monkeypatch):
    """Install a stand-in connection; returns a setter for the error its UNLOAD raises."""
    state = {"connection": Refusing(None)}

    @contextmanager
    def connected(spark, cfg, password, field="jdbc", table=None):
        yield state["connection"]

    monkeypatch.setattr(jdbc_unload, "connected", connected)
    monkeypatch.setenv("SALES_DB_PASSWORD", PASSWORD)

    def refuse(error: Exception | None) -> Refusing:
        state["connection"] = Refusing(error)
        return state["connection"]

    return refuse


def unload_source(s3_uri: str = "s3://scoring-unload/sales/", **source) -> JdbcSource:
    config = SourceConfig(format="jdbc", **source, jdbc={
        "url": "jdbc:redshift://analytics.example.invalid:5439/sales", "user": "scorer",
        "password_env": "SALES_DB_PASSWORD", "table": "public.daily_sales",
        "unload": {"s3_uri": s3_uri, "iam_role": ROLE}})
    return open_source(config).for_run(dt.date(2026, 11, 22), "r1")


def jobs_run(spark) -> int:
    return len(spark.sparkContext.statusTracker().getJobIdsForGroup(None))


@pytest.mark.parametrize(("state", "message", "kind", "field"), [
    ("XX000", f"User arn:aws:redshift:eu-west-1:123456789012:dbuser:c/scorer is not authorized to "
              f"assume IAM Role {ROLE}", ConfigError, "source.jdbc.unload.iam_role"),
    ("XX000", "S3ServiceException:Access Denied,Status 403,Error AccessDenied,Rid X", ConfigError,
     "source.jdbc.unload.iam_role"),
    ("XX000", "S3ServiceException:The S3 bucket addressed by the query is in a different region "
              "from this cluster.,Status 301,Error PermanentRedirect", ConfigError, "source.jdbc.unload.s3_uri"),
    ("42P01", 'relation "public.daily_sales" does not exist', InputError, "source.jdbc.table"),
])
def test_a_refused_unload_is_one_line_before_any_spark_job(spark, redshift, state, message, kind, field):
    connection = redshift(Py4JJavaError(state, f"{message} (password {PASSWORD})"))
    source = unload_source(filter="sale_date >= DATE'2026-06-01'")
    before = jobs_run(spark)

    with pytest.raises(kind) as info:
        source.read(spark, ["segment", "price"])

    text = str(info.value)
    assert field in text and "s3://scoring-unload/sales/2026-11-22/r1/" in text, text
    assert "\n" not in text and PASSWORD not in text
    assert jobs_run(spark) == before
    assert len(connection.statements) == 1 and connection.statements[0].startswith("UNLOAD (")


def test_a_missing_manifest_names_the_folder_and_the_permissions(spark, redshift, tmp_path):
    redshift(None)  # "succeeds" without writing anything
    source = unload_source()
    source.run_folder = f"{tmp_path.as_uri()}/2026-11-22/r1/"  # a local folder stands for S3 here
    before = jobs_run(spark)

    with pytest.raises(InputError, match=r"manifest .*/r1/manifest cannot be read") as info:
        source.read(spark, ["segment"])

    assert "s3:GetObject" in str(info.value)
    assert jobs_run(spark) == before


def test_a_filter_spark_cannot_parse_is_refused_before_the_unload(spark, redshift):
    connection = redshift(None)
    with pytest.raises(ConfigError, match="source.filter"):
        unload_source(filter="price >").read(spark, ["price"])
    assert connection.statements == []


def test_without_a_run_folder_the_manifest_says_jdbc_and_a_run_folder_says_unload():
    config = unload_source().config
    assert "mode" not in open_source(config).describe_inputs(None)  # no run folder: a JDBC read
    described = unload_source().describe_inputs(None)
    assert (described["mode"], described["folder"], described["iam_role"]) == (
        "unload", "s3://scoring-unload/sales/2026-11-22/r1/", ROLE)
    assert described["files"] is None and described["deleted"] is False
