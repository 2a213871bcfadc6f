"""Job configuration: one YAML file per job, loaded into typed, strict pydantic models.

A job file (``conf/jobs/*.yaml``) describes the source, the unit-of-work keys, the function
and its parameters, and the output. A platform profile (``conf/local.yaml`` ...) holds the
Spark settings of one place the job runs. Both reject unknown and missing fields, naming the
field's path. Strings may hold ``${NAME}`` (or ``${NAME:-default}``) environment references,
meant for ids, buckets and ARNs; never put credentials in these files. ``--set a.b=c``
overrides any field; the value is parsed as YAML (``--set unit_of_work.buckets=16``,
``--set 'unit_of_work.keys=[cell_id, hour]'``, ``--set spark_conf.spark.sql.shuffle.partitions=64``).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import string
import zoneinfo
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)

from batch_scoring.jobs.errors import ConfigError
from batch_scoring.jobs.failure_budget import parse_budget
from batch_scoring.udfs.models.preprocessing import PreprocessStep

_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class StrictModel(BaseModel):
    """Base for config models: unknown fields are errors, values are immutable.

    A field with an alias (``source.schema``) is read by its alias only: its Python name
    (``ddl_schema``) is an unknown field, so a config has one documented name for each field.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, validate_by_name=False, validate_by_alias=True)


# --------------------------------------------------------------------------- JDBC sources and sinks
# PostgreSQL and Amazon Redshift over JDBC (``source.format: jdbc``, ``output.format: jdbc``).
# The password is never in the config: it comes from an environment variable or AWS Secrets
# Manager at run time (:func:`batch_scoring.jobs.jdbc.resolve_password`).

JDBC_URL_PREFIXES = ("jdbc:postgresql:", "jdbc:redshift:")
_JDBC_PASSWORD_PARAMETER = re.compile(r"[?&;](password|pwd)\s*=", re.IGNORECASE)
_JDBC_USERINFO = re.compile(r"^jdbc:[a-z]+://[^/?;#@]*:[^/?;#@]*@", re.IGNORECASE)
_JDBC_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
JDBC_OWN_OPTIONS = {
    "url": "url", "driver": "driver", "dbtable": "table", "query": "query",
    "partitioncolumn": "partition_column", "lowerbound": "lower_bound",
    "upperbound": "upper_bound", "numpartitions": "num_partitions", "fetchsize": "fetch_size",
    "batchsize": "batch_size",
}
"""Spark JDBC options that have their own config field (option, lowercased -> field)."""
_JDBC_CREDENTIAL_OPTIONS = {"user", "password", "pwd", "uid"}

JdbcBound = int | float | dt.date | dt.datetime


def jdbc_table_name(value: str) -> str:
    """Check a table name: ``table`` or ``schema.table``, each part a plain identifier
    (letters, digits, ``_``, ``$``; at most 127 characters). Returned unchanged; it is quoted
    (so case-sensitive) wherever it is put into SQL.

    Raises:
        ValueError: for anything else (quotes, spaces, SQL).
    """
    parts = value.split(".")
    if not 1 <= len(parts) <= 2 or not all(_JDBC_IDENTIFIER.fullmatch(p) and len(p) <= 127 for p in parts):
        raise ValueError(
            f"{value!r} is not a table name: use table or schema.table, each a plain identifier "
            "(letters, digits, _ and $, not starting with a digit); for anything else use a query"
        )
    return value


class JdbcConnectionConfig(StrictModel):
    """How to reach a PostgreSQL or Amazon Redshift database over JDBC; never its password.

    The password comes from exactly one of ``password_env`` (an environment variable of the
    driver) or ``password_secret`` (an AWS Secrets Manager secret, read with boto3 at run time).
    """

    url: str = Field(description="jdbc:postgresql://host:5432/db or jdbc:redshift://host:5439/db, "
                                 "without user or password")
    user: str = Field(min_length=1, description="database user")
    password_env: str | None = Field(None, description="environment variable holding the password")
    password_secret: str | None = Field(
        None, description="AWS Secrets Manager secret id or ARN holding the password")
    password_secret_key: str = Field(
        "password", min_length=1,
        description="key of the password in a JSON secret (as RDS and Redshift store them); a "
        "secret that is not a JSON object is the password itself",
    )
    driver: str | None = Field(None, description="JDBC driver class; default from the URL")
    options: dict[str, str] = Field(
        default_factory=dict, description="extra Spark JDBC options / driver properties (sslmode...)"
    )

    @model_validator(mode="before")
    @classmethod
    def _no_password_field(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "password" in data:
            raise ValueError(
                "password must never be in the config (files, --set and manifests are not "
                "secret); remove it and use password_env (an environment variable) or "
                "password_secret (an AWS Secrets Manager secret)"
            )
        return data

    @field_validator("url")
    @classmethod
    def _jdbc_url(cls, value: str) -> str:
        if not value.startswith(JDBC_URL_PREFIXES):
            raise ValueError(f"must start with {' or '.join(JDBC_URL_PREFIXES)} (a PostgreSQL or "
                             "Amazon Redshift JDBC URL)")
        if _JDBC_PASSWORD_PARAMETER.search(value) or _JDBC_USERINFO.match(value):
            raise ValueError("holds a password; remove it from the URL and use password_env or "
                             "password_secret")
        return value

    @field_validator("password_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.fullmatch(value):
            raise ValueError("must be the name of an environment variable (letters, digits, _), "
                             "not its value")
        return value

    @field_validator("options")
    @classmethod
    def _no_credentials_or_own_fields(cls, options: dict[str, str]) -> dict[str, str]:
        for key in options:
            if key.strip().lower() in _JDBC_CREDENTIAL_OPTIONS:
                raise ValueError(
                    f"option {key!r} is a credential; use the user field and password_env or "
                    "password_secret (a password must never be in the config)"
                )
            own = JDBC_OWN_OPTIONS.get(key.strip().lower())
            if own is not None:
                raise ValueError(f"option {key!r} has its own field; set {own!r} instead")
        return options

    @model_validator(mode="after")
    def _one_password_source(self) -> JdbcConnectionConfig:
        if (self.password_env is None) == (self.password_secret is None):
            raise ValueError("give exactly one of password_env (an environment variable) or "
                             "password_secret (an AWS Secrets Manager secret id or ARN)")
        return self


_S3_FOLDER = re.compile(r"s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?P<key>/[^'\\\s?#]*)?")


class JdbcUnloadConfig(StrictModel):
    """``source.jdbc.unload``: read a Redshift source through ``UNLOAD`` to S3 as Parquet.

    Each run unloads into its own folder ``<s3_uri><run_date>/<run id>/`` (see
    :mod:`~batch_scoring.jobs.unload`), which Spark then reads in parallel. No credentials: the
    cluster assumes ``iam_role`` to write there; the job reads with its own AWS credentials.
    """

    s3_uri: str = Field(description="s3://bucket/prefix/ under which each run unloads to its own folder")
    iam_role: str = Field(
        description="ARN of the IAM role Redshift assumes to write to s3_uri (chained roles "
        "comma-separated), or 'default' for the cluster's default role")
    max_file_size_mb: int | None = Field(
        None, ge=5, le=6200, description="largest file UNLOAD writes, 5 to 6200 MB; default Redshift's (6.2 GB)")
    keep: bool = Field(
        False, description="keep the run's unloaded files after it committed (default: delete them)")

    @field_validator("s3_uri")
    @classmethod
    def _s3_folder(cls, value: str) -> str:
        match = _S3_FOLDER.fullmatch(value.strip())
        if match is None:
            raise ValueError(
                "must be an s3://bucket/prefix/ URI (Redshift writes to s3:// only; no quotes, "
                "spaces, ? or #)")
        key = (match.group("key") or "/").strip("/")
        if any(part in ("", ".", "..") for part in key.split("/")) and key:
            raise ValueError("must not hold empty, '.' or '..' folder names")
        return f"s3://{match.group('bucket')}/{key + '/' if key else ''}"

    @field_validator("iam_role")
    @classmethod
    def _role_arn(cls, value: str) -> str:
        value = value.strip()
        if value.lower() == "default":
            return "default"
        roles = [r.strip() for r in value.split(",")]
        if not all(_IAM_ROLE_ARN.fullmatch(r) for r in roles):
            raise ValueError(
                "must be an IAM role ARN (arn:aws:iam::<12-digit account>:role/<name>), several "
                "comma-separated for role chaining, or 'default'; never an access key")
        return ",".join(roles)


class JdbcSourceConfig(JdbcConnectionConfig):
    """``source.jdbc``: a table or query read in parallel over JDBC.

    Spark's JDBC read is one connection unless told how to split it: over ``partition_column``
    (numeric, date or timestamp; ``num_partitions`` ranges between the bounds, which come from
    one ``min``/``max`` query when not given) or over ``predicates`` (one partition each, for
    skewed keys).
    """

    table: str | None = Field(None, description="table or schema.table")
    query: str | None = Field(None, description="a SELECT whose rows are the source, instead of table")
    partition_column: str | None = Field(None, description="numeric, date or timestamp column to split on")
    lower_bound: JdbcBound | None = Field(None, description="with partition_column; default its minimum")
    upper_bound: JdbcBound | None = Field(None, description="with partition_column; default its maximum")
    num_partitions: PositiveInt = Field(4, description="parallel reads (connections) over partition_column")
    predicates: list[str] | None = Field(
        None, min_length=1, description="SQL conditions, one partition each, instead of partition_column")
    fetch_size: PositiveInt = Field(10_000, description="rows fetched per round trip")
    unload: JdbcUnloadConfig | None = Field(
        None, description="Redshift only: UNLOAD the rows to S3 as Parquet and read those in parallel")

    _table = field_validator("table")(lambda v: v if v is None else jdbc_table_name(v))

    @model_validator(mode="after")
    def _how_to_read(self) -> JdbcSourceConfig:
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of table or query")
        if self.partition_column is not None and self.predicates is not None:
            raise ValueError("give partition_column (ranges) or predicates (one partition each), not both")
        bounds = [b for b in (self.lower_bound, self.upper_bound) if b is not None]
        if bounds and self.partition_column is None:
            raise ValueError("lower_bound and upper_bound need partition_column")
        if len(bounds) == 1:
            raise ValueError("give both lower_bound and upper_bound, or neither (then one min/max "
                             "query finds them)")
        if len(bounds) == 2:
            kinds = {"number" if isinstance(b, (int, float)) else "time" for b in bounds}
            if len(kinds) > 1:
                raise ValueError("lower_bound and upper_bound must be both numbers or both ISO "
                                 "dates / timestamps")
            low, high = (_as_comparable(b) for b in bounds)
            if not low < high:
                raise ValueError("lower_bound must be below upper_bound")
        if self.unload is not None:
            self._check_unload()
        return self

    def _check_unload(self) -> None:
        if not self.url.startswith("jdbc:redshift:"):
            raise ValueError(
                "unload needs a jdbc:redshift: URL: UNLOAD is Amazon Redshift's, PostgreSQL has no "
                "UNLOAD; remove source.jdbc.unload (the rows are then read over JDBC in parallel)")
        split = [f for f in ("partition_column", "predicates", "num_partitions")
                 if f in self.model_fields_set]
        if split:
            raise ValueError(
                f"{' and '.join(split)} split a JDBC read; with unload Redshift writes the rows "
                "from every slice in parallel and Spark reads the files in parallel: remove "
                f"{', '.join(split)} (or remove unload to read over JDBC)")


def _as_comparable(bound: JdbcBound) -> int | float | dt.datetime:
    """A bound as a number or a datetime (a date is its midnight), so two bounds compare."""
    if isinstance(bound, dt.date) and not isinstance(bound, dt.datetime):
        return dt.datetime.combine(bound, dt.time())
    return bound


class JdbcSinkConfig(JdbcConnectionConfig):
    """``output.jdbc``: the table a run's rows go to (and its rejects table).

    A run writes into a staging table, then one transaction deletes the run date's rows of the
    target and inserts the staged ones (:mod:`~batch_scoring.jobs.jdbc_sink`).
    """

    table: str = Field(description="target table or schema.table; created on the first run")
    rejects_table: str | None = Field(None, description="default <table>_rejects")
    batch_size: PositiveInt = Field(10_000, description="rows per JDBC batch insert")
    num_partitions: PositiveInt = Field(4, description="parallel connections writing the staging table")

    _tables = field_validator("table", "rejects_table")(
        lambda v: v if v is None else jdbc_table_name(v))

    @property
    def rejects(self) -> str:
        """The rejects table: ``rejects_table`` or ``<table>_rejects``."""
        return self.rejects_table or f"{self.table}_rejects"


class SourceConfig(StrictModel):
    """Where and how to read the input."""

    path: str | None = Field(
        None, description="file or folder, local path or s3:// / s3a:// URI; every format but jdbc"
    )
    format: Literal["parquet", "csv", "json", "delta", "binaryFile", "jdbc"] = "parquet"
    jdbc: JdbcSourceConfig | None = Field(None, description="the database to read, with format jdbc")
    options: dict[str, str] = Field(default_factory=dict, description="Spark reader options")
    ddl_schema: str | None = Field(
        None, alias="schema", description="DDL schema, required for csv and json"
    )
    columns: list[str] | None = Field(
        None, description="columns to read; default: keys + order_by + the function's inputs"
    )
    filter: str | None = Field(
        None, description="Spark SQL predicate; on partition columns it prunes files"
    )

    @field_validator("options")
    @classmethod
    def _no_silent_loss(cls, options: dict[str, str]) -> dict[str, str]:
        lowered = {k.lower(): str(v).strip().lower() for k, v in options.items()}
        if lowered.get("mode") == "dropmalformed":
            raise ValueError(
                "mode DROPMALFORMED drops malformed records without a trace; remove it: malformed "
                "records go to the rejects as malformed_record with their raw text (or use FAILFAST "
                "to stop at the first one)"
            )
        if lowered.get("enforceschema") == "true":
            raise ValueError(
                "enforceSchema true binds CSV columns by position and ignores the header, so a file "
                "whose header lists the columns in another order is read with the values swapped; "
                "remove it (the header is checked against source.schema)"
            )
        return options

    @model_validator(mode="after")
    def _path_or_jdbc(self) -> SourceConfig:
        if self.format == "jdbc":
            if self.jdbc is None:
                raise ValueError("format jdbc needs source.jdbc (url, user, password_env or "
                                 "password_secret, and table or query)")
            if self.path is not None:
                raise ValueError("format jdbc reads source.jdbc; remove source.path")
        else:
            if self.path is None:
                raise ValueError(f"format {self.format} needs source.path")
            if self.jdbc is not None:
                raise ValueError(f"source.jdbc is only read with format jdbc, not {self.format}")
        return self


class UnitOfWorkConfig(StrictModel):
    """How rows are grouped into units of work and spread over buckets."""

    keys: list[str] = Field(min_length=1, description="columns whose values name one unit")
    order_by: list[str] = Field(default_factory=list, description="row order inside a unit")
    buckets: PositiveInt | Literal["auto"] = Field(
        "auto", description="partitions to hash units into; auto = from input size"
    )
    target_bucket_mb: PositiveInt = Field(
        64, description="with buckets=auto: input megabytes per bucket"
    )
    engine: Literal["packed", "reference"] = Field(
        "packed", description="packed = many units per Arrow batch; reference = applyInPandas"
    )
    max_unit_rows: PositiveInt = Field(
        5_000_000,
        description="largest unit of work, in rows; a larger unit stops the run (exit 3) "
        "instead of exhausting a Python worker's memory",
    )
    rows_per_call: PositiveInt = Field(
        100_000,
        description="packed engine: Arrow batches are joined until a batch-shaped function "
        "call gets at least this many rows of whole units (fewer calls, less per-call "
        "overhead); a Python worker holds about this many rows plus its largest unit",
    )


class FunctionConfig(StrictModel):
    """The unit-of-work function: a built-in name or ``package.module:function``.

    Importing a module runs its code, so a ``module:function`` is imported only when its module
    is, or sits below, one of ``allowed_modules`` (``acme.pricing`` allows
    ``acme.pricing.voice:price``); config strings are never evaluated.
    """

    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    shape: Literal["unit", "batch"] | None = None
    output_schema: str | None = Field(None, description="DDL of non-key output columns")
    allowed_modules: list[str] = Field(
        default_factory=list, description="module prefixes a package.module:function may come from"
    )
    max_failed_units: int | str = Field(
        0,
        description="units whose function call may raise before the run fails (exit 4, nothing "
        "committed): a count, or a share of the units as '2%'. Failed units go to the rejects",
    )

    @field_validator("max_failed_units")
    @classmethod
    def _unit_budget(cls, value: int | str) -> int | str:
        parse_budget(value)
        return value

    @model_validator(mode="after")
    def _module_is_allowed(self) -> FunctionConfig:
        module = self.name.partition(":")[0] if ":" in self.name else None
        if module is None or any(module == p or module.startswith(p + ".") for p in self.allowed_modules):
            return self
        raise ValueError(
            f"function.name {self.name!r} comes from module {module!r}, which is not in "
            f"function.allowed_modules {self.allowed_modules}; importing a module runs its code, "
            f"so add {module!r} (or a parent package) there if you trust it"
        )


class RouteConfig(StrictModel):
    """Route each unit of work to its own model: one model per value of the ``by`` columns."""

    by: list[str] = Field(min_length=1, description="key columns that choose the model")
    uri_template: str = Field(
        description="model URI with {column} placeholders, e.g. models:/demand_{segment}@champion"
    )
    fallback_uri: str | None = Field(
        None, description="model for keys whose templated model does not exist; none = reject"
    )
    max_models_per_worker: PositiveInt = Field(4, description="models each Python worker keeps")

    @model_validator(mode="after")
    def _placeholders_are_keys(self) -> RouteConfig:
        names = {name for _, name, _, _ in string.Formatter().parse(self.uri_template) if name}
        unknown = sorted(names - set(self.by))
        if unknown:
            raise ValueError(f"uri_template uses {unknown}, which are not in 'by' {self.by}")
        if not names:
            raise ValueError("uri_template has no {column} placeholder; use model.uri for one model")
        return self


class ModelConfig(StrictModel):
    """An MLflow / scikit-learn model scored row by row (instead of a unit-of-work function)."""

    uri: str | None = Field(
        None, description="local path, runs:/, models:/name/version, models:/name@alias, s3://"
    )
    route: RouteConfig | None = Field(None, description="one model per unit of work, instead of uri")
    allowed_uris: list[str] = Field(
        min_length=1, description="URI prefixes models may be loaded from (loading runs code)"
    )
    tracking_uri: str | None = Field(None, description="MLflow tracking server; default $MLFLOW_TRACKING_URI")
    registry_uri: str | None = Field(None, description="model registry; default the tracking URI")
    input_columns: list[str] | None = Field(
        None, description="model inputs in order; required when the model has no signature"
    )
    passthrough: list[str] = Field(default_factory=list, description="source columns copied to the output")
    output_schema: str | None = Field(
        None, description="DDL of the prediction columns; default from the signature, else 'prediction double'"
    )
    preprocess: list[PreprocessStep] = Field(
        default_factory=list, description="ordered transforms applied before the model"
    )
    batch_size: PositiveInt = Field(10_000, description="rows per predict call")
    predict_params: dict[str, Any] = Field(default_factory=dict, description="params for predict()")
    allow_version_mismatch: bool = Field(
        False,
        description="score although the model's flavor library (e.g. scikit-learn) is at another "
        "major.minor version here than the model was saved with (a warning instead of exit 2)",
    )
    backend: Literal["auto", "native", "compiled"] = Field(
        "native",
        description="native: the model's own predict; compiled: a tree ensemble compiled with "
        "treelite/tl2cgen on the driver (exit 2 when it cannot be, or its predictions differ on "
        "a sample); auto: compiled only when it can be, matches and is faster on the sample",
    )
    max_failed_rows: int | str = Field(
        0,
        description="rows on which predict may raise before the run fails (exit 4, nothing "
        "committed): a count, or a share of the rows scored as '2%'. Failed rows go to the rejects",
    )

    @field_validator("max_failed_rows")
    @classmethod
    def _row_budget(cls, value: int | str) -> int | str:
        parse_budget(value)
        return value

    @model_validator(mode="after")
    def _uri_or_route(self) -> ModelConfig:
        if (self.uri is None) == (self.route is None):
            raise ValueError("give exactly one of model.uri (one model) or model.route (one per key)")
        return self


class OutputConfig(StrictModel):
    """Where the results go; every row gets run_date and run_id."""

    path: str = Field(
        description="the table folder; with format jdbc the folder of the run's manifests, "
        "run-date claims and reports (no table data)"
    )
    format: Literal["delta", "parquet", "jdbc"] = "delta"
    jdbc: JdbcSinkConfig | None = Field(None, description="the database table, with format jdbc")
    partition_by: list[str] = Field(
        default_factory=list, description="partition columns after run_date"
    )
    mode: Literal["replace_run", "fail_if_run_exists"] = "replace_run"
    schema_change: Literal["refuse", "add_columns"] = Field(
        "refuse",
        description="when the run's output has columns the table lacks: refuse (exit 3) or "
        "add them as nullable columns; dropped or retyped columns are always refused",
    )
    empty_partition_value: str = Field(
        "reject", min_length=1,
        description="an empty string in a partition column: reject (quarantined as "
        "empty_partition_value) or a token written instead",
    )
    long_partition_value: Literal["fail", "reject"] = Field(
        "fail",
        description="a partition value whose folder name exceeds 255 bytes: fail (exit 3, before "
        "any unit is priced) or reject (quarantined as partition_value_too_long)",
    )
    rejects_path: str | None = Field(None, description="default: <path>_rejects")
    max_reject_fraction: float | None = Field(
        None, ge=0, le=1,
        description="largest share of rows read that may be rejected; above it the run fails "
        "(exit 4) and commits nothing. Default: no limit",
    )
    max_cost: float | None = Field(
        None, gt=0,
        description="largest estimated cost of a run, in the profile's prices.currency; "
        "--dry-run refuses a plan estimated above it (exit 3). Default: no limit",
    )

    @model_validator(mode="after")
    def _jdbc_iff_format(self) -> OutputConfig:
        if (self.format == "jdbc") != (self.jdbc is not None):
            raise ValueError("output.format jdbc needs output.jdbc (url, user, password_env or "
                             "password_secret, table), and output.jdbc needs output.format jdbc")
        return self

    @property
    def empty_token(self) -> str | None:
        """The token written for an empty partition value, or None to reject it."""
        return None if self.empty_partition_value == "reject" else self.empty_partition_value

    @property
    def rejects(self) -> str:
        """The rejects output path: ``rejects_path`` or ``<path>_rejects``."""
        return self.rejects_path or self.path.rstrip("/") + "_rejects"


class ScheduleConfig(StrictModel):
    """When EventBridge Scheduler starts the job on EMR Serverless (``spark-submit.sh schedule``)."""

    expression: str = Field(
        description="EventBridge Scheduler expression, e.g. 'cron(0 2 * * ? *)' or 'rate(1 day)'"
    )
    timezone: str = Field("UTC", description="IANA time zone the cron expression is read in")
    enabled: bool = True

    @field_validator("expression")
    @classmethod
    def _scheduler_syntax(cls, value: str) -> str:
        if not re.fullmatch(r"(cron|rate|at)\(.+\)", value.strip()):
            raise ValueError(
                "use EventBridge Scheduler syntax: 'cron(min hour day-of-month month "
                "day-of-week year)', 'rate(N unit)' or 'at(yyyy-mm-ddThh:mm:ss)'"
            )
        return value.strip()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone such as 'UTC' or 'Europe/Paris'") from None
        return value


class ReportConfig(StrictModel):
    """The run report written beside each succeeded run's manifest (:mod:`~batch_scoring.jobs.run_report`)."""

    enabled: bool = Field(True, description="write the HTML run report after the commit")
    columns: list[str] | None = Field(
        None, description="output columns to chart; default every numeric, text and boolean "
        "column the function or model produced (up to 12)",
    )
    group_by: str | None = Field(
        None, description="column whose largest groups get per-group spreads; default the first unit key",
    )
    unit_sizes: bool = Field(
        True, description="chart rows per unit of work and per bucket (reads the source's key columns once more)",
    )


class TrackingConfig(StrictModel):
    """Each succeeded run recorded as an MLflow run (:mod:`~batch_scoring.jobs.tracking`).

    Off unless a tracking URI is given here or in ``$MLFLOW_TRACKING_URI``.
    """

    uri: str | None = Field(
        None, description="MLflow tracking URI (http://host:5000, databricks, file:...); default "
        "$MLFLOW_TRACKING_URI; neither set = no tracking",
    )
    experiment: str | None = Field(
        None, min_length=1, max_length=500, description="experiment the runs go to; default the job name",
    )
    enabled: bool = Field(True, description="false: no tracking, even with a URI")
    timeout_seconds: PositiveInt = Field(
        10, description="seconds each HTTP call to the tracking server may take (retried twice)",
    )


class JobConfig(StrictModel):
    """One job: source -> unit of work -> function -> output."""

    job: str = Field(description="job name: letters, digits, _ and -")
    description: str | None = None
    source: SourceConfig
    unit_of_work: UnitOfWorkConfig | None = None
    function: FunctionConfig | None = None
    model: ModelConfig | None = None
    output: OutputConfig
    spark_conf: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Spark settings of this job, over the profile's"
    )
    schedule: ScheduleConfig | None = Field(
        None, description="when the job runs on EMR Serverless (spark-submit.sh schedule)"
    )
    requirements: list[str] = Field(
        default_factory=list,
        description="extra pip requirements packed for clusters, e.g. scikit-learn==1.7.2 for its models",
    )
    report: ReportConfig = Field(default_factory=ReportConfig, description="the run report")
    tracking: TrackingConfig = Field(default_factory=TrackingConfig, description="MLflow run tracking")

    @field_validator("job")
    @classmethod
    def _job_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_-]+", value):
            raise ValueError("use only letters, digits, '_' and '-'")
        return value

    @model_validator(mode="after")
    def _function_or_model(self) -> JobConfig:
        if self.function is None and self.model is None:
            raise ValueError(
                "give 'function' (a unit-of-work function), 'model', or both (the model scores "
                "rows, then the function runs per unit of work on the scored rows)"
            )
        if self.function is not None and self.unit_of_work is None:
            raise ValueError("'unit_of_work' is required with 'function': set unit_of_work.keys")
        return self

    @property
    def uses_delta(self) -> bool:
        """True when the source or the output is a Delta table."""
        return self.source.format == "delta" or self.output.format == "delta"

    def paths(self) -> list[str]:
        """All paths the job reads or writes (a jdbc source has none but its ``unload.s3_uri``,
        a jdbc output only its ``output.path`` of manifests)."""
        rejects = self.output.rejects if self.output.format != "jdbc" else None
        unload = self.source.jdbc.unload if self.source.jdbc is not None else None
        return [p for p in (self.source.path, unload.s3_uri if unload else None, self.output.path, rejects)
                if p is not None]

    def jdbc_urls(self) -> list[str]:
        """The JDBC URLs of a database source and output (none, one or two)."""
        sections = (self.source.jdbc, self.output.jdbc)
        return list(dict.fromkeys(s.url for s in sections if s is not None))


class PollConfig(StrictModel):
    """How a submitter waits for an EMR step or job run: capped exponential backoff."""

    interval_seconds: float = Field(10.0, gt=0, description="first wait between status calls")
    max_interval_seconds: float = Field(120.0, gt=0, description="longest wait between calls")
    timeout_minutes: float = Field(240.0, gt=0, description="give up waiting after this long")


class AwsConfig(StrictModel):
    """Where the job's artifacts go and how AWS is reached; never credentials.

    Credentials come from the standard boto3 chain (instance profile, job role, SSO, env).
    ``AWS_ENDPOINT_URL`` (read by boto3 itself) points every client at another endpoint.
    """

    region: str = Field(description="AWS region of the cluster / application and the bucket")
    artifacts_uri: str = Field(
        description="s3:// prefix the wheel, environment archive, entry script and config go to"
    )
    poll: PollConfig = Field(default_factory=PollConfig)

    @field_validator("artifacts_uri")
    @classmethod
    def _s3_prefix(cls, value: str) -> str:
        if not re.fullmatch(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?", value):
            raise ValueError("must be an s3://bucket/prefix URI")
        return value.rstrip("/")


class EmrConfig(StrictModel):
    """An EMR on EC2 cluster that runs the job as a step."""

    cluster_id: str = Field(description="the cluster's id, j-XXXXXXXXXXXXX")
    action_on_failure: Literal["CONTINUE", "CANCEL_AND_WAIT"] = "CONTINUE"

    @field_validator("cluster_id")
    @classmethod
    def _cluster_id(cls, value: str) -> str:
        if not re.fullmatch(r"j-[A-Z0-9]+", value):
            raise ValueError(f"{value!r} is not an EMR cluster id (j-XXXXXXXXXXXXX)")
        return value


_IAM_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+")


def _role_arn(value: str | None) -> str | None:
    if value in (None, ""):
        return None
    if not _IAM_ROLE_ARN.fullmatch(value):
        raise ValueError(f"{value!r} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)")
    return value


class SchedulerTargetConfig(StrictModel):
    """What EventBridge Scheduler needs to start EMR Serverless job runs."""

    role_arn: str | None = Field(
        None, description="role Scheduler assumes; needs emr-serverless:StartJobRun and iam:PassRole"
    )
    group_name: str = Field("default", description="schedule group")

    _arn = field_validator("role_arn")(_role_arn)


class EmrServerlessConfig(StrictModel):
    """An EMR Serverless application that runs the job as a job run."""

    application_id: str
    execution_role_arn: str = Field(description="the job runtime role")
    log_uri: str = Field(description="s3:// prefix for the driver and executor logs")

    @field_validator("execution_role_arn")
    @classmethod
    def _execution_role(cls, value: str) -> str:
        if not _role_arn(value):
            raise ValueError("is empty; give the job runtime role's ARN")
        return value

    @field_validator("log_uri")
    @classmethod
    def _log_prefix(cls, value: str) -> str:
        if not value.startswith("s3://"):
            raise ValueError("must be an s3:// URI")
        return value.rstrip("/")
    execution_timeout_minutes: PositiveInt = 240
    scheduler: SchedulerTargetConfig | None = Field(
        None, description="needed only by 'spark-submit.sh schedule'"
    )


class PricesConfig(StrictModel):
    """Prices that turn a run's resources into money (:mod:`~batch_scoring.jobs.cost`).

    The defaults are AWS's public on-demand prices of EMR Serverless in us-east-1 for x86
    workers, as given in issue 12 (taken 2026-12): per vCPU-hour, per GB-hour of memory and
    per GB-hour of ephemeral storage beyond the 20 GB per worker that is free. ``core_hour``
    prices an executor core-hour of a local run, a standalone cluster or EMR on EC2 (an
    instance's hourly price divided by its vCPUs); without it those runs report core-seconds
    and no amount.
    """

    currency: str = Field("USD", description="currency of every price below")
    vcpu_hour: float = Field(0.052624, ge=0, description="EMR Serverless, per vCPU-hour")
    memory_gb_hour: float = Field(0.005786, ge=0, description="EMR Serverless, per GB-hour of memory")
    storage_gb_hour: float = Field(0.000111, ge=0, description="EMR Serverless, per billed storage GB-hour")
    core_hour: float | None = Field(
        None, ge=0, description="local / cluster / EMR on EC2: per executor core-hour; default none",
    )
    as_of: str = Field("2026-12", description="when the prices were taken (shown with every cost)")


class PlatformProfile(StrictModel):
    """Everything platform-specific of one place a job runs (``conf/<name>.yaml``).

    ``target`` says how ``spark-submit.sh`` starts the job: ``local`` (spark-submit here),
    ``cluster`` (spark-submit here against ``master``), ``emr`` (a step on ``emr.cluster_id``)
    or ``emr-serverless`` (a job run on ``emr_serverless.application_id``).
    """

    name: str
    target: Literal["local", "cluster", "emr", "emr-serverless"] = "local"
    master: str | None = Field(None, description="Spark master URL; None = spark-submit's")
    deploy_mode: Literal["client", "cluster"] = "client"
    spark_conf: dict[str, str | int | float | bool] = Field(default_factory=dict)
    packages: list[str] = Field(default_factory=list, description="extra Maven coordinates")
    jars: list[str] = Field(
        default_factory=list, description="jars on the cluster, e.g. EMR's own Delta jars"
    )
    s3_scheme: Literal["s3", "s3a"] = Field(
        "s3a", description="scheme s3:// paths are read with: s3a off EMR, s3 on EMR"
    )
    aws: AwsConfig | None = None
    emr: EmrConfig | None = None
    emr_serverless: EmrServerlessConfig | None = None
    prices: PricesConfig = Field(default_factory=PricesConfig, description="what a run's resources cost")

    @model_validator(mode="after")
    def _target_has_its_fields(self) -> PlatformProfile:
        needed = {
            "cluster": ["master"],
            "emr": ["aws", "emr"],
            "emr-serverless": ["aws", "emr_serverless"],
        }.get(self.target, [])
        missing = [name for name in needed if getattr(self, name) is None]
        if missing:
            raise ValueError(
                f"target {self.target!r} needs {', '.join(missing)}; see conf/{self.target}.yaml "
                "in the package for a complete example"
            )
        return self


def load_job(path: str | os.PathLike, overrides: Iterable[str] = ()) -> JobConfig:
    """Load and validate a job YAML file, applying ``--set`` overrides.

    Raises:
        ConfigError: when the file is missing or not YAML, an override is malformed, an
            environment reference is unset, or a field is unknown, missing or invalid (the
            message names the file and every failing field path).
    """
    data = _read_yaml(path)
    overrides = list(overrides)
    for override in overrides:
        _apply_override(data, override)
    return _validate(JobConfig, _substitute_env(data, path), path, overrides)


def load_profile(path: str | os.PathLike) -> PlatformProfile:
    """Load and validate a platform profile YAML file.

    Raises:
        ConfigError: as :func:`load_job`.
    """
    return _validate(PlatformProfile, _substitute_env(_read_yaml(path), path), path)


def parse_run_date(value: str | None, timezone: str = "UTC") -> dt.date:
    """Parse ``--run-date``: ``YYYY-MM-DD``, or an ISO timestamp; default today in UTC.

    A timestamp is what EventBridge Scheduler puts in a scheduled run's arguments
    (``<aws.scheduler.scheduled-time>``, in UTC, e.g. ``2026-11-21T23:30:00Z``); its run date is
    its calendar date in ``timezone`` (the schedule's, so a 00:30 Europe/Paris run is dated that day).

    Raises:
        ConfigError: when the value is neither an ISO date nor an ISO timestamp.
    """
    if value is None:
        return dt.datetime.now(dt.timezone.utc).date()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            return dt.date.fromisoformat(value)
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}T[0-9:.]+(Z|[+-]\d{2}:?\d{2})", value):
            raise ValueError(value)
        instant = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        return instant.astimezone(zoneinfo.ZoneInfo(timezone)).date()
    except ValueError:
        raise ConfigError(
            f"--run-date {value!r} is not a date in the form YYYY-MM-DD "
            "(or an ISO timestamp with its offset, e.g. 2026-11-22T02:00:00Z)"
        ) from None


def _read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    text = _read_s3_text(str(path)) if str(path).startswith("s3://") else _read_local_text(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {path} is not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of fields, not {data!r:.60}")
    return data


def _read_local_text(path: str | os.PathLike) -> str:
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"config file {file} does not exist")
    return file.read_text()


def _read_s3_text(uri: str) -> str:
    """A config staged on S3 for a cluster run (see ``jobs/deploy/staging.py``), read with boto3."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, _, key = uri.removeprefix("s3://").partition("/")
    try:
        return boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    except (BotoCoreError, ClientError) as error:
        raise ConfigError(f"config file {uri} cannot be read: {error}") from None


def _apply_override(data: dict[str, Any], override: str) -> None:
    dotted, sep, raw = override.partition("=")
    parts = _field_path(dotted.strip())
    if not sep or not all(parts):
        raise ConfigError(f"--set {override!r} is not of the form field.path=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as error:
        raise ConfigError(f"--set {override!r}: the value is not valid YAML: {error}") from None
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {override!r}: {part!r} is not a section with fields")
        node = child
    node[parts[-1]] = value


def _field_path(dotted: str) -> list[str]:
    """Split ``a.b.c``; below ``spark_conf`` the rest is one Spark key (``spark.sql.x``)."""
    parts = dotted.split(".")
    if parts[0] == "spark_conf" and len(parts) > 1:
        return ["spark_conf", ".".join(parts[1:])]
    return parts


def _substitute_env(node: Any, path: str | os.PathLike, where: str = "") -> Any:
    if isinstance(node, dict):
        return {k: _substitute_env(v, path, f"{where}.{k}" if where else str(k)) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute_env(v, path, f"{where}[{i}]") for i, v in enumerate(node)]
    if isinstance(node, str):
        return _ENV_REFERENCE.sub(lambda m: _env_value(m, path, where), node)
    return node


def _env_value(match: re.Match[str], path: str | os.PathLike, where: str) -> str:
    name, default = match.group(1), match.group(2)
    value = os.environ.get(name)
    if not value and default is not None:  # as in a shell, ${X:-d} also covers an empty X
        value = default
    if value is None:
        raise ConfigError(
            f"{path}: {where} refers to environment variable ${{{name}}}, which is not set; "
            f"export it or write ${{{name}:-default}}"
        )
    return value


def _validate(
    model: type[StrictModel], data: Mapping[str, Any], path: str | os.PathLike,
    overrides: Iterable[str] = (),
):
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ConfigError(
            format_validation_error(error, f"config file {path}", model, overrides)
        ) from None


def format_validation_error(
    error: ValidationError, what: str, model: type[BaseModel] | None = None,
    overrides: Iterable[str] = (),
) -> str:
    """Render a pydantic error as one line per failing field path.

    Args:
        error: the validation error.
        what: what was validated, for the first line (``config file conf/jobs/x.yaml``).
        model: the validated model; with it an unknown field gets the nearest known one of
            its section (``partiton_by`` -> ``did you mean 'partition_by'?``) and the list of
            the section's fields.
        overrides: the ``--set field=value`` texts applied; a problem in a field one of them
            set names that ``--set`` instead of the file (and so does the first line when
            every problem came from one).
    """
    from batch_scoring.udfs.contract import did_you_mean

    set_paths = {o.partition("=")[0].strip(): o for o in overrides}
    lines, from_set = [], []
    for item in error.errors():
        loc = [str(part) for part in item["loc"]]
        field = ".".join(loc) or "(top level)"
        if item["type"] == "extra_forbidden":
            known = _field_names(model, loc[:-1]) if model is not None else []
            alias = _alias_of(model, loc) if model is not None else None
            if alias is not None:
                documented = ".".join([*loc[:-1], alias])
                message = (f"unknown field (did you mean {documented!r}?); {loc[-1]!r} is its name "
                           "in the code, a config uses the documented one")
            else:
                message = f"unknown field{did_you_mean(loc[-1], known)}; remove it or check its spelling"
            if known:
                message += f" (fields here: {', '.join(known)})"
        else:
            message = item["msg"]
        override = next((o for p, o in set_paths.items()
                         if field == p or field.startswith(p + ".") or p.startswith(field + ".")), None)
        from_set.append(override is not None)
        where = f" (from --set {override})" if override else ""
        lines.append(f"  {field}{where}: {message}")
    head = "--set" if from_set and all(from_set) else what
    return "\n".join([f"{head} has {error.error_count()} problem(s):", *lines])


def _alias_of(model: type[BaseModel], loc: list[str]) -> str | None:
    """The alias of the field whose Python name ends ``loc`` (``ddl_schema`` -> ``schema``), or None."""
    fields = getattr(_section_model(_section_at(model, loc[:-1])), "model_fields", {})
    field = fields.get(loc[-1])
    return field.alias if field is not None else None


def _field_names(model: type[BaseModel], loc: list[str]) -> list[str]:
    """The field names (aliases where set) of the section of ``model`` at ``loc``, or []."""
    current = _section_model(_section_at(model, loc))
    return [f.alias or name for name, f in getattr(current, "model_fields", {}).items()]


def _section_at(model: type[BaseModel], loc: list[str]) -> Any:
    """The annotation of the section of ``model`` at ``loc``, or None when ``loc`` leaves the models.

    List indexes are stepped over; in a discriminated union (``model.preprocess``: a list of
    ``kind: scale | encode | image`` steps) the tag pydantic puts in ``loc`` picks the member.
    """
    annotation: Any = model
    for part in loc:
        if part.isdigit():
            continue
        current = _section_model(annotation)
        fields = getattr(current, "model_fields", {})
        field = fields.get(part) or next((f for f in fields.values() if f.alias == part), None)
        if field is not None:
            annotation = field.annotation
            continue
        tagged = [m for m in _section_models(annotation)
                  if getattr(m.model_fields.get("kind"), "default", None) == part]
        if not tagged:
            return None
        annotation = tagged[0]
    return annotation


def _section_models(annotation: Any) -> list[type[BaseModel]]:
    """Every pydantic model inside an annotation (the members of ``A | B``, ``list[A | B]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found = []
    for arg in getattr(annotation, "__args__", ()) or ():
        found += _section_models(arg)
    return found


def _section_model(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation (``X``, ``X | None``, ``list[X]``), or None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _section_model(arg)
        if found is not None:
            return found
    return None
