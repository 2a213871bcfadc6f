"""A PostgreSQL or Amazon Redshift table (or query) as a job's source, read in parallel over JDBC.

Spark reads a JDBC table through one connection and into one partition unless told how to split
it. :class:`JdbcSource` splits it one of two ways (``source.jdbc``):

* over ``partition_column`` (numeric, date or timestamp): ``num_partitions`` ranges between
  ``lower_bound`` and ``upper_bound``, taken from one ``SELECT min(c), max(c)`` query when not
  given. The bounds only set the ranges' width; rows outside them (and NULLs) are read by the
  first and last partition, never lost. A column holding no value is read as one partition.
* over ``predicates``: one partition per SQL condition (for skewed keys); rows matching no
  condition are not read, rows matching two are read twice: the conditions must cover the rows
  exactly once.

Everything a user can get wrong is checked on the driver before any Spark job runs: the
password (:meth:`JdbcSource.check_before_spark`, without Spark), the login, the table, the
columns the job needs and the partition column's type (:meth:`JdbcSource.read`).
``source.filter`` is applied with ``DataFrame.where``; Spark pushes what it can translate into
the JDBC query's WHERE clause of every partition (``PushedFilters`` in the physical plan).

Example::

    source = JdbcSource(job.source.jdbc)
    source.check_before_spark()                 # before the SparkSession starts
    df = source.read(spark, ["segment", "price"], job.source.filter)
    manifest_inputs = source.describe_inputs(spark)
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from batch_scoring.jobs.config import JdbcSourceConfig, SourceConfig
from batch_scoring.jobs.errors import ConfigError, InputError
from batch_scoring.jobs.jdbc import (
    ColumnType,
    configured_bounds,
    connected,
    database_error,
    display_url,
    query_digest,
    reader_options,
    relation,
    resolve_password,
)
from batch_scoring.jobs.sources import Source, apply_filter


class JdbcSource(Source):
    """``source.format: jdbc``: one table or query of a PostgreSQL or Redshift database.

    Args:
        config: the ``source`` section (its ``jdbc`` part, and ``filter``).
        s3_scheme: unused (a database source has no path); the :class:`Source` signature.
        environ: where ``password_env`` is looked up (default :data:`os.environ`).
        secrets: a boto3 ``secretsmanager`` client for ``password_secret`` (default: boto3's).

    The password is resolved once and kept in this object only; it never appears in a message,
    a log line or :meth:`describe_inputs`.
    """

    def __init__(self, config: SourceConfig, s3_scheme: str = "s3a",
                 environ: Mapping[str, str] | None = None, secrets: Any = None) -> None:
        super().__init__(config, s3_scheme)
        self.cfg: JdbcSourceConfig = config.jdbc
        self.field = "source.jdbc"
        self._environ = os.environ if environ is None else environ
        self._secrets = secrets
        self._password: str | None = None
        self._bounds: tuple[str, str] | None = None
        self._partitions: int | None = None

    # ------------------------------------------------------------------ checks without Spark

    def check_before_spark(self) -> None:
        """Resolve the password (environment variable or Secrets Manager); no Spark, no database.

        Raises:
            ConfigError: as :func:`~batch_scoring.jobs.jdbc.resolve_password`.
        """
        self.password()

    def password(self) -> str:
        """The database password, resolved on first use and then kept.

        Raises:
            ConfigError: as :func:`~batch_scoring.jobs.jdbc.resolve_password`.
        """
        if self._password is None:
            self._password = resolve_password(self.cfg, self._environ, self._secrets, self.field)
        return self._password

    # ------------------------------------------------------------------ reading

    @property
    def name(self) -> str:
        return f"{self.cfg.table or 'the query'} at {display_url(self.cfg.url)}"

    def read(self, spark: SparkSession, columns: Sequence[str] | None) -> DataFrame:
        """The source's rows: ``columns`` (all when None) with ``source.filter`` applied, read
        in parallel.

        Args:
            spark: the session (its JVM holds the JDBC driver, see
                :func:`~batch_scoring.jobs.jdbc.driver_package`).
            columns: columns the job needs, in order; database types mapped by Spark's
                dialect (``int4`` -> int, ``float8`` -> double, ``numeric(p,s)`` -> decimal,
                ``text``/``varchar`` -> string, ``date`` -> date, ``timestamp[tz]`` -> timestamp).

        Returns:
            A DataFrame of ``num_partitions`` partitions over ``partition_column`` (fewer when
            the range holds fewer whole values; one when the column holds no value), one per
            predicate with ``predicates``, or one without either. Nothing is read yet.

        Raises:
            ConfigError: the login is refused, the partition column is neither numeric, date nor
                timestamp, the configured bounds do not fit its type, or ``filter`` does not
                parse or names an unknown column.
            InputError: the database cannot be reached, the table does not exist, or it lacks a
                needed column (the message lists the columns it has).
        """
        cfg, password = self.cfg, self.password()
        source = relation(cfg)
        name = cfg.table or "the query"
        with connected(spark, cfg, password, self.field, name) as connection:
            available = connection.columns(source)
            names = [c[0] for c in available]
            self._check_columns(columns, names)
            bounds = None
            if cfg.partition_column is not None:
                column = self._partition_column(available)
                bounds = configured_bounds(cfg)
                if bounds is None:
                    bounds = _min_max(connection, source, column)
        options = reader_options(cfg, password, bounds)
        try:
            if cfg.predicates is not None:
                table = options.pop("dbtable")
                url = options.pop("url")
                df = spark.read.jdbc(url, table, predicates=list(cfg.predicates), properties=options)
            else:
                df = spark.read.format("jdbc").options(**options).load()
        except Exception as error:  # noqa: BLE001 - Py4JJavaError / AnalysisException around SQLException
            raise database_error(error, cfg, password, self.field, "read", name) from None
        self._bounds = bounds
        df = df.select(*(columns if columns is not None else df.columns))
        df = apply_filter(df, self.config.filter)
        self._partitions = df.rdd.getNumPartitions()
        return df

    def _check_columns(self, columns: Sequence[str] | None, names: list[str]) -> None:
        missing = [c for c in (columns or []) if c not in names]
        if missing:
            from batch_scoring.udfs.contract import did_you_mean

            named = ", ".join(f"{c!r}{did_you_mean(c, names)}" for c in missing)
            raise InputError(
                f"{self.field}.{'table ' + self.cfg.table if self.cfg.table else 'query'} at "
                f"{display_url(self.cfg.url)} lacks column(s) {named} needed by the job "
                f"(unit_of_work keys/order_by or the function's inputs); it has {names}"
            )

    def _partition_column(self, available: list[tuple[str, int, str, int, int]]) -> ColumnType:
        from batch_scoring.jobs.jdbc import _kind
        from batch_scoring.udfs.contract import did_you_mean

        cfg = self.cfg
        found = [c for c in available if c[0] == cfg.partition_column]
        if not found:
            names = [c[0] for c in available]
            raise InputError(
                f"{self.field}.partition_column {cfg.partition_column!r}"
                f"{did_you_mean(cfg.partition_column, names)} is not a column of "
                f"{cfg.table or 'the query'} at {display_url(cfg.url)}; it has {names}"
            )
        name, code, type_name, _, _ = found[0]
        column = ColumnType(name, type_name, _kind(code))
        if column.kind == "other":
            raise ConfigError(
                f"{self.field}.partition_column {name!r} of {cfg.table or 'the query'} is of type "
                f"{type_name}; a parallel read splits on a numeric, date or timestamp column "
                "(or give predicates instead)"
            )
        if cfg.lower_bound is not None:
            numeric_bounds = isinstance(cfg.lower_bound, (int, float))
            if numeric_bounds != (column.kind == "numeric"):
                raise ConfigError(
                    f"{self.field}.lower_bound/upper_bound are "
                    f"{'numbers' if numeric_bounds else 'dates'} but partition_column {name!r} is "
                    f"{type_name}; give bounds of its type, or none (then one min/max query finds them)"
                )
        return column

    # ------------------------------------------------------------------ the run manifest

    def describe_inputs(self, spark: SparkSession) -> dict[str, Any]:
        """What the run read, for its manifest; never the password or the user's secret.

        Returns:
            ``{"format": "jdbc", "url": <without credentials>, "table": ... | "query_sha256":
            "sha256:<hex>", "partition_column", "num_partitions", "partitions" (Spark's, of
            the last :meth:`read`, or None), "bounds": [lower, upper] | None, "predicates":
            <count> | None}``. Bounds not known from a read are looked up (one min/max query).
        """
        cfg = self.cfg
        bounds = self._bounds
        if bounds is None and cfg.partition_column is not None:
            bounds = configured_bounds(cfg)
            if bounds is None:
                with connected(spark, cfg, self.password(), self.field, cfg.table or "the query") as connection:
                    column = self._partition_column(connection.columns(relation(cfg)))
                    bounds = _min_max(connection, relation(cfg), column)
        described: dict[str, Any] = {"format": "jdbc", "url": display_url(cfg.url)}
        if cfg.table is not None:
            described["table"] = cfg.table
        else:
            described["query_sha256"] = query_digest(cfg.query)
        described.update({
            "user": cfg.user,
            "partition_column": cfg.partition_column,
            "num_partitions": cfg.num_partitions if cfg.partition_column else None,
            "partitions": self._partitions,
            "bounds": list(bounds) if bounds else None,
            "predicates": len(cfg.predicates) if cfg.predicates else None,
        })
        return described


def _min_max(connection: Any, source: str, column: ColumnType) -> tuple[str, str] | None:
    """:func:`~batch_scoring.jobs.jdbc.bounds` on an open connection."""
    from batch_scoring.jobs.jdbc import bounds_on

    return bounds_on(connection, source, column)


__all__ = ["JdbcSource"]
