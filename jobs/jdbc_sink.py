"""A PostgreSQL or Amazon Redshift table as a job's output (or rejects), written in one transaction.

A run owns its ``run_date``'s rows, as with Delta and Parquet. :meth:`JdbcSink.write_run`:

1. checks on the driver (no Spark job) that the run's columns fit the table, and drops staging
   tables that killed earlier attempts of the same target and run date left behind;
2. writes the rows in parallel (``output.jdbc.num_partitions`` connections, Spark's JDBC
   writer) into a staging table of its own, ``<table>__stg_<hash>_<yyyymmdd>_<run>`` in the
   target's schema (at most 63 characters: PostgreSQL truncates longer names);
3. in ONE transaction on one connection: creates the target like the staging table if it does
   not exist, locks it against a concurrent swap, adds new columns when allowed, ``DELETE``\\ s
   the run date's rows, ``INSERT``\\ s the staged ones, drops the staging table and commits;
   on any error it rolls back (the target is as it was) and drops the staging table.

Rows are never appended outside that transaction: a run that fails or is killed at any point
leaves the target as it was, and a rerun replaces its run date's rows, never duplicating them.
Other run dates' rows and ``run_id``\\ s are not touched.

Identifiers are quoted (case-sensitive); table names are ``table`` or ``schema.table``.

Example::

    sink = JdbcSink(spark, job.output.jdbc, job.output.jdbc.table, "output.jdbc.table")
    sink.write_run(priced, job.output.partition_by, run_date, run_id, add_columns=False)
    rejects = JdbcSink(spark, job.output.jdbc, job.output.jdbc.rejects, "output.jdbc.rejects_table")
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from batch_scoring.jobs.config import JdbcSinkConfig
from batch_scoring.jobs.errors import ConfigError, InputError, JobError, WriteFailed
from batch_scoring.jobs.jdbc import (
    JdbcConnection,
    connected,
    database_error,
    display_url,
    driver_class,
    quote_identifier,
    quote_table,
    resolve_password,
    sql_state,
)
from batch_scoring.jobs.sinks import Sink, with_run_columns
MAX_IDENTIFIER = 63  # PostgreSQL's NAMEDATALEN - 1; Redshift allows 127


def staging_prefix(table: str, run_date: dt.date) -> str:
    """The start of every staging table name of ``table`` and ``run_date`` (lower case):
    ``<name, cut to 24>__stg_<8 hex of the full name>_<yyyymmdd>_``, 48 characters at most."""
    name = table.split(".")[-1].lower()
    digest = hashlib.sha256(table.encode()).hexdigest()[:8]
    return f"{name[:24]}__stg_{digest}_{run_date:%Y%m%d}_"


def staging_table(table: str, run_date: dt.date, run_id: str) -> str:
    """The staging table of one attempt, in ``table``'s schema, at most 63 characters:
    :func:`staging_prefix` + up to 8 characters of the run id (letters and digits, lower case)
    + 6 hex of the full run id."""
    schema = table.split(".")[0] + "." if "." in table else ""
    clean = re.sub(r"[^a-z0-9]", "", run_id.lower())[:8]
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:6]
    name = f"{staging_prefix(table, run_date)}{clean}{digest}"
    assert len(name) <= MAX_IDENTIFIER
    return schema + name


class JdbcSink(Sink):
    """One table of a PostgreSQL or Redshift database that runs are written to.

    Args:
        spark: the session (its JVM holds the JDBC driver).
        cfg: the ``output.jdbc`` section (connection, batch size, write partitions).
        table: the table this sink writes: ``cfg.table`` or ``cfg.rejects``.
        field: the config field naming ``table``, for messages (``output.jdbc.table``).
        password: the resolved password; default resolved from ``cfg`` on first use.
        environ, secrets: as :func:`~batch_scoring.jobs.jdbc.resolve_password`.

    Raises:
        ConfigError: when ``table`` is not ``table`` or ``schema.table``.
    """

    format = "jdbc"
    in_folder = False

    def __init__(self, spark: SparkSession, cfg: JdbcSinkConfig, table: str, field: str,
                 password: str | None = None, environ: Mapping[str, str] | None = None,
                 secrets: Any = None) -> None:
        super().__init__(spark, table, field)
        self.cfg = cfg
        self.table = table
        self.quoted = quote_table(table)
        self._password = password
        self._environ = os.environ if environ is None else environ
        self._secrets = secrets

    def password(self) -> str:
        """The database password, resolved on first use.

        Raises:
            ConfigError: as :func:`~batch_scoring.jobs.jdbc.resolve_password`.
        """
        if self._password is None:
            section = self.field.rsplit(".", 1)[0]
            self._password = resolve_password(self.cfg, self._environ, self._secrets, section)
        return self._password

    def _connected(self):
        return connected(self.spark, self.cfg, self.password(), self.field.rsplit(".", 1)[0], self.table)

    # ------------------------------------------------------------------ what is there

    def _columns(self, connection: JdbcConnection) -> list[tuple[str, int, str, int, int]] | None:
        """The target's columns, or None when it does not exist."""
        schema, name = (self.table.split(".") if "." in self.table else (None, self.table))
        exists = connection.query(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ? AND "
            "table_schema = " + ("?" if schema else "current_schema()"),
            (name, schema) if schema else (name,),
        )[0][0]
        return connection.columns(self.quoted) if int(exists) else None

    def existing_schema(self) -> T.StructType | None:
        """The target's schema as Spark reads it, or None when the table does not exist.

        Raises:
            ConfigError, InputError: login refused, database unreachable.
        """
        with self._connected() as connection:
            if self._columns(connection) is None:
                return None
        return self._reader().load().schema

    def has_run(self, run_date: dt.date, check_rows: bool = True) -> bool:
        """True when the target holds rows of ``run_date`` (``check_rows=False``: when the
        table exists at all, as the Delta sink's cheaper check)."""
        with self._connected() as connection:
            if self._columns(connection) is None:
                return False
            if not check_rows:
                return True
            rows = connection.query(
                f"SELECT 1 FROM {self.quoted} WHERE {quote_identifier('run_date')} = CAST(? AS DATE) LIMIT 1",
                (run_date.isoformat(),),
            )
        return bool(rows)

    def read_run(self, run_date: dt.date) -> DataFrame | None:
        """The rows of ``run_date`` (all columns, with ``run_date`` and ``run_id``; the date
        condition is pushed into the JDBC query), or None when the table does not exist."""
        if not self.has_run(run_date, check_rows=False):
            return None
        return self._reader().load().where(F.col("run_date") == F.lit(run_date))

    def version(self) -> None:
        """A database table has no version (Delta's table version); always None."""
        return None

    def check_replaceable(self, run_date: dt.date) -> None:
        """Nothing to check: the swap deletes exactly the run date's rows (Parquet's check for
        foreign files in a run date's folder has no counterpart here)."""

    # ------------------------------------------------------------------ writing

    def write_run(self, df: DataFrame, partition_by: Sequence[str], run_date: dt.date, run_id: str,
                  add_columns: bool = False, stats_columns: Sequence[str] = ()) -> None:
        """Replace the target's rows of ``run_date`` with ``df``'s, in one transaction.

        Args:
            df: the rows (any schema without ``run_date``/``run_id``).
            partition_by: ``output.partition_by``; only checked to name columns of ``df``
                (a database table has no partition folders).
            run_date: gets its own ``run_date`` (date) column; its rows are replaced.
            run_id: written as the ``run_id`` (string) column of every row.
            add_columns: ``df``'s columns that the table lacks are added (nullable, the staging
                table's type); without it they are refused.

        Raises:
            ConfigError: a ``partition_by`` column is not in ``df``; the login is refused.
            InputError: the table lacks some of ``df``'s columns and ``add_columns`` is off
                (before anything is written); the database cannot be reached.
            WriteFailed: the staging write or the swap failed; the target is unchanged and the
                message names the table, the URL and the database's reason.
        """
        missing = [c for c in partition_by if c not in df.columns]
        if missing:
            raise ConfigError(f"output.partition_by names {missing}, which the output lacks; "
                              f"choose from {df.columns}")
        rows = with_run_columns(df, run_date, run_id)
        staging = staging_table(self.table, run_date, run_id)
        with self._connected() as connection:
            existing = self._columns(connection)
            if existing is not None and not add_columns:
                have = {c[0] for c in existing}
                new = [c for c in rows.columns if c not in have]
                if new:
                    raise InputError(
                        f"{self.field} {self.table} at {display_url(self.cfg.url)} lacks column(s) "
                        f"{new} of this run's output; set output.schema_change: add_columns to add "
                        "them (nothing was written)"
                    )
            self._drop_leftovers(connection, run_date)
        self._write_staging(rows, staging)
        self._swap(staging, rows.columns, run_date, add_columns)

    def _drop_leftovers(self, connection: JdbcConnection, run_date: dt.date) -> list[str]:
        """Drop the staging tables of this target and run date that earlier attempts left."""
        schema = self.table.split(".")[0] if "." in self.table else None
        prefix = staging_prefix(self.table, run_date)
        found = connection.query(
            f"SELECT table_name FROM information_schema.tables WHERE "
            f"substring(CAST(table_name AS varchar), 1, {len(prefix)}) = ? "
            "AND table_schema = " + ("?" if schema else "current_schema()"),
            (prefix, schema) if schema else (prefix,),
        )
        dropped = []
        for (name,) in found:
            qualified = f"{schema}.{name}" if schema else name
            connection.execute(f"DROP TABLE IF EXISTS {quote_table(qualified)}")
            dropped.append(qualified)
        return dropped

    def _write_staging(self, rows: DataFrame, staging: str) -> None:
        """Write ``rows`` into a new staging table with Spark's JDBC writer, in parallel."""
        cfg = self.cfg
        try:
            (rows.write.format("jdbc")
             .options(**cfg.options)
             .option("url", cfg.url)
             .option("driver", cfg.driver or driver_class(cfg.url))
             .option("user", cfg.user)
             .option("password", self.password())
             .option("dbtable", quote_table(staging))
             .option("batchsize", str(cfg.batch_size))
             .option("numPartitions", str(cfg.num_partitions))
             .mode("overwrite")
             .save())
        except Exception as error:  # noqa: BLE001 - Py4JJavaError / SparkException around SQLException
            self._drop_quietly(staging)
            state, _ = sql_state(error)
            if state.startswith("28") or state.startswith("08"):
                raise database_error(error, cfg, self.password(), self.field.rsplit(".", 1)[0],
                                     "write", self.table) from None
            raise self._failed(error, "writing the staging table") from None

    def _swap(self, staging: str, columns: list[str], run_date: dt.date, add_columns: bool) -> None:
        """The one transaction: create if absent, lock, add columns, delete the run date's rows,
        insert the staged ones, drop the staging table, commit (rollback on any error)."""
        quoted_staging = quote_table(staging)
        names = ", ".join(quote_identifier(c) for c in columns)
        with self._connected() as connection:
            java = connection.java
            java.setAutoCommit(False)
            try:
                connection.execute(f"CREATE TABLE IF NOT EXISTS {self.quoted} (LIKE {quoted_staging})")
                lock = "" if self.cfg.url.startswith("jdbc:redshift:") else " IN SHARE ROW EXCLUSIVE MODE"
                connection.execute(f"LOCK TABLE {self.quoted}{lock}")
                if add_columns:
                    self._add_columns(connection, quoted_staging)
                connection.execute(
                    f"DELETE FROM {self.quoted} WHERE {quote_identifier('run_date')} = CAST(? AS DATE)",
                    (run_date.isoformat(),),
                )
                connection.execute(f"INSERT INTO {self.quoted} ({names}) SELECT {names} FROM {quoted_staging}")
                connection.execute(f"DROP TABLE {quoted_staging}")
                java.commit()
            except BaseException as error:
                _rollback(java)
                self._drop_quietly(staging)
                if isinstance(error, JobError) or not isinstance(error, Exception):
                    raise
                raise self._failed(error, "replacing the run date's rows") from None

    def _add_columns(self, connection: JdbcConnection, quoted_staging: str) -> None:
        have = {c[0] for c in connection.columns(self.quoted)}
        for name, _, type_name, precision, scale in connection.columns(quoted_staging):
            if name not in have:
                connection.execute(
                    f"ALTER TABLE {self.quoted} ADD COLUMN {quote_identifier(name)} "
                    f"{_type_text(type_name, precision, scale)}"
                )

    def _drop_quietly(self, staging: str) -> None:
        try:
            with self._connected() as connection:
                connection.execute(f"DROP TABLE IF EXISTS {quote_table(staging)}")
        except Exception:  # noqa: BLE001 - the next attempt drops it (_drop_leftovers)
            pass

    def _failed(self, error: BaseException, step: str) -> WriteFailed:
        state, message = sql_state(error)
        password = self.password()
        text = (message.strip().splitlines() or [type(error).__name__])[0].replace(password, "***")
        from batch_scoring.jobs.redaction import redact_text

        return WriteFailed(
            f"{self.field} {self.table} at {display_url(self.cfg.url)}: {step} failed "
            f"[SQLState {state or '?'}]: {redact_text(text)}; the table is unchanged (rerun to "
            "replace the run date's rows)"
        )

    def _reader(self):
        cfg = self.cfg
        return (self.spark.read.format("jdbc").options(**cfg.options)
                .option("url", cfg.url).option("driver", cfg.driver or driver_class(cfg.url))
                .option("user", cfg.user).option("password", self.password())
                .option("dbtable", self.quoted))


def _type_text(type_name: str, precision: int, scale: int) -> str:
    """A column type for ``ALTER TABLE ADD COLUMN`` from JDBC metadata (``numeric(p,s)``,
    ``varchar(n)`` keep their sizes)."""
    if type_name.lower() in ("numeric", "decimal") and precision > 0:
        return f"{type_name}({precision},{scale})"
    if type_name.lower() in ("varchar", "bpchar", "char") and 0 < precision < 65536:
        return f"{type_name}({precision})"
    return type_name


def _rollback(java: Any) -> None:
    try:
        java.rollback()
    except Exception:  # noqa: BLE001 - a dead connection has rolled back already
        pass
