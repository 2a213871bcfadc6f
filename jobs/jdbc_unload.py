"""The Redshift UNLOAD read of :class:`~batch_scoring.jobs.jdbc_source.JdbcSource`, on the driver.

:func:`read_unloaded` runs the one ``UNLOAD`` statement (:mod:`~batch_scoring.jobs.unload`) over
the source's JDBC connection, reads the manifest Redshift wrote next to the files, and reads
exactly the listed Parquet files with Spark (``s3://`` through the profile's scheme, as for a
file source), with ``source.filter`` applied again and the needed columns selected. Everything
a user can act on fails here, before any Spark stage: the login, a refused UNLOAD
(:func:`~batch_scoring.jobs.unload.unload_error`), a missing manifest, a missing column.

:func:`delete_unloaded` removes the run's files and manifest once the run committed (unless
``unload.keep``): only what the manifest listed, all inside the run's own folder.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pyspark.errors import ParseException
from pyspark.sql import DataFrame, SparkSession

from batch_scoring.jobs.errors import ConfigError, InputError, JobError
from batch_scoring.jobs.filesystem import hadoop_filesystem, read_text
from batch_scoring.jobs.jdbc import (
    _scrub,
    connected,
    database_error,
    display_url,
    driver_class,
    query_digest,
    sql_state,
)
from batch_scoring.jobs.locations import resolve_path
from batch_scoring.jobs.sources import apply_filter, missing_columns
from batch_scoring.jobs.unload import (
    FIELD,
    MANIFEST_NAME,
    UnloadedFile,
    manifest_files,
    split_filter,
    unload_error,
    unload_select,
    unload_statement,
    unloaded_columns,
)

if TYPE_CHECKING:
    from batch_scoring.jobs.jdbc_source import JdbcSource

log = logging.getLogger("batch_scoring")


@dataclass
class Unloaded:
    """One UNLOAD of a run and what Spark reads of it.

    Attributes:
        folder: the run's folder (``s3://.../<run_date>/<run id>/``).
        statement: the UNLOAD statement run (holds the query; the manifest keeps its sha256).
        pushed_filter: the part of ``source.filter`` in the query's WHERE, or None.
        files: the Parquet files the manifest lists.
        rows: the DataFrame over them (filter applied, columns selected).
        deleted: True once :func:`delete_unloaded` removed them.
    """

    folder: str
    statement: str
    pushed_filter: str | None
    files: list[UnloadedFile]
    rows: DataFrame
    deleted: bool = field(default=False)


def read_unloaded(source: JdbcSource, spark: SparkSession, columns: Sequence[str] | None) -> Unloaded:
    """UNLOAD the source's rows to its run folder and read them with Spark.

    Args:
        source: a :class:`JdbcSource` with ``unload`` and a run folder (``for_run``).
        spark: the session (its JVM holds the JDBC driver; its Hadoop configuration reaches S3).
        columns: the columns the job needs (None: all). The columns the pushed filter names
            are unloaded too, and every column when ``source.filter`` is not pushed whole, so
            Spark can apply the whole filter again.

    Raises:
        ConfigError: the login is refused, Redshift cannot assume ``unload.iam_role`` or the
            role may not write to the folder, the bucket is in another region; or
            ``source.filter`` does not parse.
        InputError: the database cannot be reached, the query is refused (a missing table or
            column), the manifest is missing, or the files lack a needed column.
    """
    cfg, folder = source.cfg, source.run_folder
    _check_filter_parses(spark, source.config.filter)
    pushed = split_filter(source.config.filter)
    select = unload_select(cfg, unloaded_columns(columns, pushed), pushed.sql)
    statement = unload_statement(select, folder, cfg.unload)
    password = source.password()
    name = cfg.table or "the query"
    log.info("UNLOAD of %s at %s to %s (filter pushed: %s)", name, display_url(cfg.url), folder,
             pushed.sql or "none")
    with connected(spark, cfg, password, source.field, name) as connection:
        try:
            connection.execute(statement)
        except JobError:
            raise
        except Exception as error:  # noqa: BLE001 - Py4JJavaError around SQLException
            state, message = sql_state(error)
            if state.startswith(("28", "08")) or state == "3D000":
                raise database_error(error, cfg, password, source.field, "unload", name) from None
            lines = message.strip().splitlines()
            raise unload_error(state, _scrub(lines[0] if lines else "", password), cfg, folder,
                               pushed.sql) from None
    files = _listed(spark, folder, source.s3_scheme)
    if files:
        rows = spark.read.parquet(*(resolve_path(f.url, source.s3_scheme) for f in files))
    else:  # no row: Redshift may write no file; the columns' types come from the driver
        rows = _empty(spark, source, select, password)
    if columns is not None:
        available = {c.lower() for c in rows.columns}
        missing = [c for c in columns if c.lower() not in available]
        if missing:
            raise missing_columns(f"{source.name} (unloaded to {folder})", missing, rows.columns)
    rows = apply_filter(rows, source.config.filter)
    if columns is not None:
        rows = rows.select(*columns)
    return Unloaded(folder, statement, pushed.sql, files, rows)


def _check_filter_parses(spark: SparkSession, predicate: str | None) -> None:
    """Refuse a ``source.filter`` Spark cannot parse before anything is unloaded.

    Raises:
        ConfigError: as :func:`~batch_scoring.jobs.sources.apply_filter` says it.
    """
    if not predicate:
        return
    try:
        spark._jsparkSession.sessionState().sqlParser().parseExpression(predicate)
    except Exception as error:  # noqa: BLE001 - ParseException, as pyspark or py4j raise it
        if not isinstance(error, ParseException) and "ParseException" not in str(error):
            raise
        lines = [line for line in str(error).strip().splitlines() if line.strip()]
        first_line = lines[0] if lines else type(error).__name__
        raise ConfigError(f"source.filter {predicate!r} is not valid here: {first_line}") from None


def _listed(spark: SparkSession, folder: str, s3_scheme: str) -> list[UnloadedFile]:
    """The files of the UNLOAD's manifest, sizes looked up where the manifest has none."""
    manifest = folder + MANIFEST_NAME
    try:
        text = read_text(spark, resolve_path(manifest, s3_scheme))
    except Exception as error:  # noqa: BLE001 - py4j FileNotFoundException / AccessDenied
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(
            f"{FIELD}.s3_uri folder {folder}: the UNLOAD's manifest {manifest} cannot be read "
            f"({first[:300]}); the job's role needs s3:GetObject and s3:ListBucket there") from None
    files = manifest_files(text, folder)
    sized = []
    for file in files:
        size = file.bytes
        if size is None:
            filesystem, path = hadoop_filesystem(spark, resolve_path(file.url, s3_scheme))
            size = int(filesystem.getFileStatus(path).getLen())
        sized.append(UnloadedFile(file.url, int(size)))
    return sized


def _empty(spark: SparkSession, source: JdbcSource, select: str, password: str) -> DataFrame:
    """An empty DataFrame with the columns and types Spark's JDBC reader gives ``select``
    (the driver's metadata; no row is read)."""
    cfg = source.cfg
    options = {**cfg.options, "url": cfg.url, "driver": cfg.driver or driver_class(cfg.url),
               "user": cfg.user, "password": password, "query": select}
    try:
        schema = spark.read.format("jdbc").options(**options).load().schema
    except Exception as error:  # noqa: BLE001
        raise database_error(error, cfg, password, source.field, "read the columns of",
                             cfg.table or "the query") from None
    return spark.createDataFrame([], schema)


def delete_unloaded(spark: SparkSession, unloaded: Unloaded, s3_scheme: str = "s3a") -> None:
    """Delete the files the manifest listed, the manifest, then the run's folder if empty.

    Never anything outside the run's folder (the manifest's entries were checked to lie
    inside it). A failure is logged, not raised: the run has committed; the files are then
    left to the bucket's lifecycle rule.
    """
    targets = [f.url for f in unloaded.files] + [unloaded.folder + MANIFEST_NAME]
    try:
        for url in targets:
            if not url.startswith(unloaded.folder):  # second guard; manifest_files checked it
                continue
            filesystem, path = hadoop_filesystem(spark, resolve_path(url, s3_scheme))
            filesystem.delete(path, False)
        filesystem, path = hadoop_filesystem(spark, resolve_path(unloaded.folder, s3_scheme))
        if filesystem.exists(path) and not filesystem.listStatus(path):
            filesystem.delete(path, False)
        unloaded.deleted = True
        log.info("deleted the %d unloaded file(s) of %s", len(unloaded.files), unloaded.folder)
    except Exception as error:  # noqa: BLE001 - the run committed; cleaning up must not fail it
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        log.warning("could not delete the unloaded files in %s (%s); grant the job's role "
                    "s3:DeleteObject there, or let a lifecycle rule expire them", unloaded.folder,
                    first[:300])


def describe_unload(source: JdbcSource) -> dict[str, Any]:
    """The manifest's ``inputs`` of an unload read: the table (or the query's sha256), the
    folder, the role's ARN (not a secret), the files (after a read) and whether they were
    deleted; never the password or the query text."""
    cfg, unloaded = source.cfg, source._unloaded
    described: dict[str, Any] = {"format": "jdbc", "mode": "unload", "url": display_url(cfg.url)}
    if cfg.table is not None:
        described["table"] = cfg.table
    else:
        described["query_sha256"] = query_digest(cfg.query)
    files = unloaded.files if unloaded is not None else None
    described.update({
        "user": cfg.user,
        "folder": source.run_folder,
        "manifest": source.run_folder + MANIFEST_NAME,
        "iam_role": cfg.unload.iam_role,
        "pushed_filter": unloaded.pushed_filter if unloaded is not None else None,
        "statement_sha256": query_digest(unloaded.statement) if unloaded is not None else None,
        "files": None if files is None else [{"file": f.url, "bytes": f.bytes} for f in files],
        "file_count": None if files is None else len(files),
        "total_bytes": None if files is None else sum(f.bytes or 0 for f in files),
        "keep": cfg.unload.keep,
        "deleted": bool(unloaded is not None and unloaded.deleted),
    })
    return described


__all__ = ["Unloaded", "delete_unloaded", "describe_unload", "read_unloaded"]
