"""JDBC on the driver: passwords, drivers, one connection, and the options of a parallel read.

Used by :mod:`~batch_scoring.jobs.jdbc_source` and :mod:`~batch_scoring.jobs.jdbc_sink` for
PostgreSQL and Amazon Redshift (``jdbc:postgresql:`` and ``jdbc:redshift:`` URLs).

* The password is never in the config: :func:`resolve_password` reads it from the environment
  variable ``password_env`` or the AWS Secrets Manager secret ``password_secret`` at run time.
  No message of this module holds it.
* The driver's jar comes from Maven Central like Delta's (:func:`driver_package`, added to the
  run's ``spark.jars.packages``). Jars added that way are visible to Spark's class loader, not
  always to ``java.sql.DriverManager``, so :func:`connect` instantiates the driver class through
  Spark's context class loader and calls its ``connect(url, properties)`` directly.
* :func:`reader_options` builds Spark's JDBC options for one table or query, split over a
  partition column's range (bounds from :func:`bounds`, one ``min``/``max`` query) when asked.

Every database error a user can act on (wrong credentials, an unknown host, a missing table or
column) becomes a :class:`~batch_scoring.jobs.errors.ConfigError` or
:class:`~batch_scoring.jobs.errors.InputError` of one line naming the URL (:func:`display_url`,
without credentials), the table and the config field.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from batch_scoring.jobs.config import JdbcConnectionConfig, JdbcSourceConfig
from batch_scoring.jobs.errors import ConfigError, InputError, JobError
from batch_scoring.jobs.redaction import redact_text

POSTGRESQL_PACKAGE = "org.postgresql:postgresql:42.7.14"
REDSHIFT_PACKAGE = "com.amazon.redshift:redshift-jdbc42:2.1.0.33"
POSTGRESQL_DRIVER = "org.postgresql.Driver"
REDSHIFT_DRIVER = "com.amazon.redshift.jdbc42.Driver"

# java.sql.Types codes, by the kind of partition column Spark can split on.
_NUMERIC_TYPES = {-7, -6, 5, 4, -5, 6, 7, 8, 2, 3}  # BIT TINYINT SMALLINT INTEGER BIGINT FLOAT REAL DOUBLE NUMERIC DECIMAL
_DATE_TYPES = {91}  # DATE
_TIMESTAMP_TYPES = {93, 2014}  # TIMESTAMP, TIMESTAMP_WITH_TIMEZONE

ColumnKind = Literal["numeric", "date", "timestamp", "other"]


# --------------------------------------------------------------------------- drivers

def _is_redshift(url: str) -> bool:
    return url.startswith("jdbc:redshift:")


def driver_package(url: str) -> str:
    """Maven coordinate of the JDBC driver for ``url``, for ``spark.jars.packages``.

    ``org.postgresql:postgresql:42.7.14`` for ``jdbc:postgresql:``,
    ``com.amazon.redshift:redshift-jdbc42:2.1.0.33`` for ``jdbc:redshift:`` (both on Maven
    Central). On EMR the preinstalled Redshift integration's jar can be named in the profile's
    ``jars`` instead.

    Raises:
        ConfigError: for a URL of another database.
    """
    if _is_redshift(url):
        return REDSHIFT_PACKAGE
    if url.startswith("jdbc:postgresql:"):
        return POSTGRESQL_PACKAGE
    raise ConfigError(f"{display_url(url)} is neither a jdbc:postgresql: nor a jdbc:redshift: URL")


def driver_class(url: str) -> str:
    """The JDBC driver class for ``url`` (``org.postgresql.Driver`` or
    ``com.amazon.redshift.jdbc42.Driver``).

    Raises:
        ConfigError: for a URL of another database.
    """
    driver_package(url)  # refuses other databases
    return REDSHIFT_DRIVER if _is_redshift(url) else POSTGRESQL_DRIVER


def display_url(url: str) -> str:
    """``url`` as messages and manifests show it: no user info, no query parameters that name
    a credential (the config refuses those, this is a second guard)."""
    return redact_text(re.sub(r"^(jdbc:[a-z]+://)[^/?;#@]*@", r"\1", url))


# --------------------------------------------------------------------------- passwords

def resolve_password(
    cfg: JdbcConnectionConfig,
    environ: Mapping[str, str] = os.environ,
    secrets: Any = None,
    field: str = "jdbc",
) -> str:
    """The database password, from ``cfg.password_env`` or ``cfg.password_secret``.

    Args:
        cfg: the connection config (``source.jdbc`` or ``output.jdbc``).
        environ: the environment ``password_env`` is looked up in.
        secrets: a boto3 ``secretsmanager`` client; default one from boto3's credential chain
            (in the region of the secret's ARN when an ARN is given).
        field: the config section, for messages (``source.jdbc``).

    Returns:
        The password: the variable's value; or the secret's ``SecretString``: its
        ``password_secret_key`` when it is a JSON object (as RDS and Redshift store
        credentials), else the whole string.

    Raises:
        ConfigError: naming ``<field>.password_env`` / ``<field>.password_secret``, when the
            variable is unset or empty, the secret does not exist, access is denied, it has no
            string value, its JSON has no ``password_secret_key``, or the password is empty.
            No message holds the password.
    """
    if cfg.password_env is not None:
        value = environ.get(cfg.password_env, "")
        if not value:
            raise ConfigError(
                f"{field}.password_env: environment variable {cfg.password_env} is "
                f"{'empty' if cfg.password_env in environ else 'not set'}; export the database "
                "password there (or use password_secret)"
            )
        return value
    return _secret_password(cfg, secrets, field)


def _secret_password(cfg: JdbcConnectionConfig, secrets: Any, field: str) -> str:
    from botocore.exceptions import BotoCoreError, ClientError

    name = f"{field}.password_secret {cfg.password_secret}"
    try:
        client = secrets if secrets is not None else _secrets_client(cfg.password_secret)
        answer = client.get_secret_value(SecretId=cfg.password_secret)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 403:
            code = "AccessDeniedException"  # also when a proxy or emulator names it otherwise
        reason = {
            "ResourceNotFoundException": "does not exist (check the name or ARN and the region)",
            "AccessDeniedException": "cannot be read: access denied (grant "
                                     "secretsmanager:GetSecretValue to the job's role)",
            "DecryptionFailure": "cannot be decrypted with its KMS key (grant kms:Decrypt)",
        }.get(code, f"cannot be read: {code or 'error'}")
        raise ConfigError(f"{name} {reason}") from None
    except BotoCoreError as error:
        raise ConfigError(f"{name} cannot be read: {redact_text(str(error))}") from None
    text = answer.get("SecretString")
    if text is None:
        raise ConfigError(f"{name} holds a binary value; store the password as a string or as "
                          f"JSON with the key {cfg.password_secret_key!r}")
    password = _password_in(text, cfg, name)
    if not password:
        raise ConfigError(f"{name} holds an empty password")
    return password


def _password_in(text: str, cfg: JdbcConnectionConfig, name: str) -> str:
    try:
        document = json.loads(text)
    except ValueError:
        return text
    if not isinstance(document, dict):
        return text
    value = document.get(cfg.password_secret_key)
    if not isinstance(value, str):
        raise ConfigError(
            f"{name} is a JSON secret without a string {cfg.password_secret_key!r} key (its keys: "
            f"{sorted(document)}); set {name.split()[0]}_key to the key holding the password"
        )
    return value


def _secrets_client(secret_id: str | None):
    import boto3

    arn = re.match(r"arn:aws[a-z-]*:secretsmanager:([a-z0-9-]+):", secret_id or "")
    return boto3.client("secretsmanager", region_name=arn.group(1) if arn else None)


# --------------------------------------------------------------------------- SQL text

def quote_identifier(name: str) -> str:
    """``name`` in double quotes (case-sensitive in PostgreSQL and Redshift), ``"`` doubled."""
    return '"' + name.replace('"', '""') + '"'


def quote_table(table: str) -> str:
    """``public.prices`` -> ``"public"."prices"``; the name was checked by
    :func:`~batch_scoring.jobs.config.jdbc_table_name` (``table`` or ``schema.table``).

    Raises:
        ConfigError: for any other name.
    """
    parts = table.split(".")
    if not 1 <= len(parts) <= 2 or not all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", p) for p in parts):
        raise ConfigError(f"{table!r} is not a table name (table or schema.table)")
    return ".".join(quote_identifier(p) for p in parts)


def relation(cfg: JdbcSourceConfig) -> str:
    """The source as a FROM item: the quoted table, or ``(query) AS src``."""
    if cfg.table is not None:
        return quote_table(cfg.table)
    return f"({cfg.query.strip().rstrip(';')}) AS src"


def query_digest(query: str) -> str:
    """``sha256:<hex>`` of a source query, what the manifest records instead of its text."""
    return "sha256:" + hashlib.sha256(query.encode()).hexdigest()


# --------------------------------------------------------------------------- connections

class JdbcConnection:
    """A ``java.sql.Connection`` through py4j, closed when the ``with`` block ends.

    Attributes:
        java: the JVM connection object (``prepareStatement``, ``commit``, ``rollback``...).
    """

    def __init__(self, java: Any, password: str) -> None:
        self.java = java
        self._password = password

    def query(self, sql: str, parameters: tuple = ()) -> list[tuple]:
        """Run a SELECT; return its rows as tuples of strings (``None`` for SQL NULL).

        ``parameters`` are bound as strings to the ``?`` marks in order.
        """
        statement = self.java.prepareStatement(sql)
        try:
            _bind(statement, parameters)
            result = statement.executeQuery()
            width = result.getMetaData().getColumnCount()
            rows = []
            while result.next():
                rows.append(tuple(result.getString(i) for i in range(1, width + 1)))
            return rows
        finally:
            statement.close()

    def execute(self, sql: str, parameters: tuple = ()) -> int:
        """Run one statement; return its update count."""
        statement = self.java.prepareStatement(sql)
        try:
            _bind(statement, parameters)
            statement.execute()
            return int(statement.getUpdateCount())
        finally:
            statement.close()

    def columns(self, relation_sql: str) -> list[tuple[str, int, str, int, int]]:
        """The columns of a FROM item (``SELECT * ... WHERE 1=0``, no rows read): tuples of
        (name, java.sql.Types code, database type name, precision, scale)."""
        statement = self.java.prepareStatement(f"SELECT * FROM {relation_sql} WHERE 1=0")
        try:
            meta = statement.executeQuery().getMetaData()
            return [
                (meta.getColumnName(i), int(meta.getColumnType(i)), meta.getColumnTypeName(i),
                 int(meta.getPrecision(i)), int(meta.getScale(i)))
                for i in range(1, meta.getColumnCount() + 1)
            ]
        finally:
            statement.close()

    def close(self) -> None:
        """Close the connection (idempotent)."""
        try:
            self.java.close()
        except Exception:  # noqa: BLE001 - closing a broken connection must not hide the cause
            pass

    def __enter__(self) -> JdbcConnection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _bind(statement: Any, parameters: tuple) -> None:
    """Bind every parameter as a string; the SQL casts where needed (``CAST(? AS DATE)``)."""
    for index, value in enumerate(parameters, start=1):
        statement.setString(index, str(value))


def connect(spark: Any, cfg: JdbcConnectionConfig, password: str, field: str = "jdbc") -> JdbcConnection:
    """Open a connection to ``cfg.url`` as ``cfg.user`` on the driver's JVM.

    The driver class (``cfg.driver`` or :func:`driver_class`) is loaded by Spark's context class
    loader, which sees jars added by ``spark.jars.packages``; ``cfg.options`` go along as
    connection properties (``sslmode``...). Use it as a context manager; it always closes.

    Raises:
        ConfigError: the driver class is not on the classpath, or the login is refused (wrong
            user or password), naming the URL, the user and ``<field>``.
        InputError: the database cannot be reached or does not exist.
    """
    jvm = spark.sparkContext._jvm
    name = cfg.driver or driver_class(cfg.url)
    try:
        loader = jvm.java.lang.Thread.currentThread().getContextClassLoader()
        driver = jvm.java.lang.Class.forName(name, True, loader).newInstance()
    except Exception as error:  # noqa: BLE001 - py4j wraps ClassNotFoundException
        raise ConfigError(
            f"{field}.driver: JDBC driver class {name} cannot be loaded ({_first_line(error, password)}); "
            f"add {driver_package(cfg.url)} to the run's spark.jars.packages or the profile's jars"
        ) from None
    properties = jvm.java.util.Properties()
    for key, value in cfg.options.items():
        properties.setProperty(key, value)
    properties.setProperty("user", cfg.user)
    properties.setProperty("password", password)
    try:
        java = driver.connect(cfg.url, properties)
    except Exception as error:  # noqa: BLE001
        raise database_error(error, cfg, password, field, "connect") from None
    if java is None:
        raise ConfigError(f"{field}.url: driver {name} does not accept {display_url(cfg.url)}")
    return JdbcConnection(java, password)


@contextmanager
def connected(spark: Any, cfg: JdbcConnectionConfig, password: str, field: str = "jdbc",
              table: str | None = None) -> Iterator[JdbcConnection]:
    """:func:`connect` as one ``with`` block whose database errors become :func:`database_error`'s
    one-line errors naming ``table``."""
    with connect(spark, cfg, password, field) as connection:
        try:
            yield connection
        except JobError:
            raise
        except Exception as error:  # noqa: BLE001 - py4j's Py4JJavaError around SQLException
            raise database_error(error, cfg, password, field, "query", table) from None


def sql_state(error: BaseException) -> tuple[str, str]:
    """(SQLState, message) of the deepest ``java.sql.SQLException`` inside a py4j error, or
    ("", the error's first line) when there is none."""
    java = getattr(error, "java_exception", None)
    state, message = "", ""
    while java is not None:
        try:
            found = java.getSQLState() if hasattr(java, "getSQLState") else None
        except Exception:  # noqa: BLE001 - not an SQLException
            found = None
        if found:
            state, message = str(found), str(java.getMessage())
        java = java.getCause()
    return state, message or str(error)


def database_error(
    error: BaseException, cfg: JdbcConnectionConfig, password: str, field: str, action: str,
    table: str | None = None,
) -> JobError:
    """A one-line error for a failed JDBC call, naming the URL, user, table and field.

    Login refused (SQLState class 28) and an unknown driver are :class:`ConfigError`; an
    unreachable server (class 08), a missing database (3D000), table (42P01) or column (42703)
    are :class:`InputError`; anything else an :class:`InputError` with the database's message.
    The password never appears, even if the database echoed it.
    """
    state, message = sql_state(error)
    message = _scrub(message.strip().splitlines()[0] if message.strip() else "", password)
    where = display_url(cfg.url)
    if state.startswith("28"):
        source = (f"{field}.password_env ({cfg.password_env})" if cfg.password_env
                  else f"{field}.password_secret ({cfg.password_secret})")
        return ConfigError(f"{where}: login as {field}.user {cfg.user!r} refused ({message}); "
                           f"check the user and the password in {source}")
    if state.startswith("08"):
        return InputError(f"{field}.url {where} cannot be reached ({message}); check host, port "
                          "and network access")
    if state == "3D000":
        return InputError(f"{field}.url {where}: the database does not exist ({message})")
    if state == "42P01":
        return InputError(f"{field}.table {table} does not exist at {where} ({message})")
    if state == "42703":
        return InputError(f"{where}: a column named in {field} does not exist in {table} ({message})")
    return InputError(f"{where}: {action} failed on {table or 'the database'} "
                      f"[SQLState {state or '?'}]: {message}")


def _scrub(text: str, password: str) -> str:
    if password:
        text = text.replace(password, "***")
    return redact_text(text)


def _first_line(error: BaseException, password: str) -> str:
    lines = str(error).strip().splitlines()
    return _scrub(lines[0] if lines else type(error).__name__, password)


# --------------------------------------------------------------------------- parallel reads

@dataclass(frozen=True)
class ColumnType:
    """A source column's database type.

    Attributes:
        name: the column name as the database reports it.
        type_name: the database's type name (``int4``, ``date``, ``timestamptz``, ``text``).
        kind: ``numeric``, ``date`` or ``timestamp`` (Spark can split a read on these) or
            ``other``.
    """

    name: str
    type_name: str
    kind: ColumnKind


def _kind(type_code: int) -> ColumnKind:
    if type_code in _NUMERIC_TYPES:
        return "numeric"
    if type_code in _DATE_TYPES:
        return "date"
    if type_code in _TIMESTAMP_TYPES:
        return "timestamp"
    return "other"


def column_type(spark: Any, cfg: JdbcSourceConfig, password: str, table_or_query: str, column: str,
                field: str = "source.jdbc") -> ColumnType:
    """The type of ``column`` of a FROM item (:func:`relation`), from the driver's metadata.

    Raises:
        InputError: when the relation has no such column (naming the columns it has), or the
            relation does not exist.
        ConfigError: when the login is refused.
    """
    with connected(spark, cfg, password, field, cfg.table or "the query") as connection:
        columns = connection.columns(table_or_query)
    for name, code, type_name, _, _ in columns:
        if name == column:
            return ColumnType(name, type_name, _kind(code))
    from batch_scoring.udfs.contract import did_you_mean

    names = [c[0] for c in columns]
    raise InputError(
        f"{field}.partition_column {column!r}{did_you_mean(column, names)} is not a column of "
        f"{cfg.table or 'the query'} at {display_url(cfg.url)}; it has {names}"
    )


def bounds(spark: Any, cfg: JdbcSourceConfig, password: str, table_or_query: str, column: ColumnType,
           field: str = "source.jdbc") -> tuple[str, str] | None:
    """The smallest and largest value of ``column``, from one ``SELECT min(c), max(c)`` query, as
    Spark's ``lowerBound``/``upperBound`` take them: whole numbers (the minimum rounded down,
    the maximum up), ``YYYY-MM-DD`` dates, or ISO timestamps in UTC.

    Returns:
        None when the column holds no value (an empty table, or only NULLs).
    """
    with connected(spark, cfg, password, field, cfg.table or "the query") as connection:
        return bounds_on(connection, table_or_query, column)


def bounds_on(connection: JdbcConnection, table_or_query: str, column: ColumnType) -> tuple[str, str] | None:
    """:func:`bounds` on an open connection (one ``SELECT min(c), max(c)`` query)."""
    quoted = quote_identifier(column.name)
    if column.kind == "numeric":
        sql = f"SELECT floor(min({quoted})), ceil(max({quoted})) FROM {table_or_query}"
        low, high = connection.query(sql)[0]
        return None if low is None else (_integer(low), _integer(high))
    statement = connection.java.prepareStatement(f"SELECT min({quoted}), max({quoted}) FROM {table_or_query}")
    try:
        result = statement.executeQuery()
        result.next()
        if column.kind == "date":
            low, high = result.getDate(1), result.getDate(2)
            return None if low is None else (str(low.toString()), str(high.toString()))
        low, high = result.getTimestamp(1), result.getTimestamp(2)
        return None if low is None else (str(low.toInstant().toString()), str(high.toInstant().toString()))
    finally:
        statement.close()


def _integer(text: str) -> str:
    return str(int(float(text))) if re.search(r"[.eE]", text) else text


def configured_bounds(cfg: JdbcSourceConfig) -> tuple[str, str] | None:
    """``cfg.lower_bound``/``upper_bound`` as Spark takes them, or None when not given.
    Numbers become whole numbers (the lower rounded down, the upper up)."""
    import datetime as dt
    import math

    if cfg.lower_bound is None or cfg.upper_bound is None:
        return None

    def text(value: Any, up: bool) -> str:
        if isinstance(value, (int, float)):
            return str(math.ceil(value) if up else math.floor(value))
        if isinstance(value, dt.datetime):
            return value.isoformat(sep=" ")
        return value.isoformat()

    return text(cfg.lower_bound, False), text(cfg.upper_bound, True)


def reader_options(cfg: JdbcSourceConfig, password: str, bounds: tuple[str, str] | None = None) -> dict[str, str]:
    """Spark JDBC reader options for the source.

    Args:
        cfg: ``source.jdbc``.
        password: from :func:`resolve_password`.
        bounds: (lowerBound, upperBound) of ``cfg.partition_column`` as :func:`bounds` or
            :func:`configured_bounds` give them; None without a partition column, or when the
            column holds no value (then the read is one partition).

    Returns:
        ``url``, ``driver``, ``user``, ``password``, ``fetchsize``, ``cfg.options``, and either
        ``query`` / ``dbtable`` alone, or (a range read) ``dbtable`` (a query wrapped as
        ``(query) AS src``: Spark refuses ``query`` with ``partitionColumn``) with
        ``partitionColumn``, ``lowerBound``, ``upperBound`` and ``numPartitions``. With
        ``predicates`` the caller passes them to ``DataFrameReader.jdbc`` and ``dbtable`` is
        the relation.
    """
    options = {
        **cfg.options,
        "url": cfg.url,
        "driver": cfg.driver or driver_class(cfg.url),
        "user": cfg.user,
        "password": password,
        "fetchsize": str(cfg.fetch_size),
    }
    ranged = cfg.partition_column is not None and bounds is not None
    if ranged or cfg.predicates is not None or cfg.table is not None:
        options["dbtable"] = relation(cfg)
    else:
        options["query"] = cfg.query.strip().rstrip(";")
    if ranged:
        options.update({
            "partitionColumn": quote_identifier(cfg.partition_column),
            "lowerBound": bounds[0],
            "upperBound": bounds[1],
            "numPartitions": str(cfg.num_partitions),
        })
    return options
