"""Checks that need only the config and the file system, run before any SparkSession starts.

``run_job.main`` calls :func:`preflight_sources` after the config and function checks
(``pipeline.preflight_job``) and before ``build_session``, so a refused config costs no Spark
start-up and writes nothing (not even a manifest). ``batch-score predict`` runs
:func:`check_frame` on its records: the same schema and type check the job runs on the source.

What is checked here (local paths, and ``s3://`` sources as far as boto3's credentials reach,
see :mod:`~batch_scoring.jobs.s3_preflight`; registry models are checked after Spark starts):

* ``format: csv`` / ``json`` without ``source.schema`` -> :class:`ConfigError` (exit 2);
* a local ``source.path`` that does not exist, or an S3 one with no object under it (or no
  such bucket) -> :class:`InputError` (exit 3);
* a local ``model.uri`` (or route fallback) folder that does not exist, or holds no
  ``MLmodel`` -> :class:`ConfigError` (exit 2, as the model resolution in the job);
* the job's ``requirements`` and a local model's libraries (requirements.txt, the flavor's
  version in MLmodel) against this environment
  (:mod:`~batch_scoring.jobs.model_environment`) -> :class:`ConfigError` (exit 2);
* for a local or S3 Parquet source, its footers (read with pyarrow, partition folders included):
  columns a function job reads (keys, ``order_by``, declared inputs) and, for a local model,
  the model's inputs against its signature (missing columns, incompatible types) ->
  :class:`InputError` (exit 3), with the same words as the Spark-side checks.
"""

from __future__ import annotations

import glob
import logging
import os
import tempfile

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
from pyspark.sql import types as T
from pyspark.sql.pandas.types import from_arrow_schema

from batch_scoring.jobs import s3_preflight
from batch_scoring.jobs.config import JobConfig, ModelConfig, OutputConfig, SourceConfig
from batch_scoring.jobs.errors import ConfigError, InputError
from batch_scoring.jobs.locations import local_path
from batch_scoring.jobs.model_environment import check_job_requirements, check_model_environment
from batch_scoring.jobs.model_resolution import ModelResolutionError
from batch_scoring.jobs.sources import missing_columns
from batch_scoring.udfs.contract import did_you_mean
from batch_scoring.udfs.models.model_scoring import ScoringSpec
from batch_scoring.udfs.models.model_signature import check_signature

log = logging.getLogger("batch_scoring")


def is_local(path: str) -> bool:
    """True for a plain file-system path or a ``file:`` URI (not ``s3://``, ``models:/``...)."""
    return path.startswith("file:") or ("://" not in path and not path.startswith(("models:", "runs:")))


def _exists(path: str) -> bool:
    path = local_path(path)
    return bool(glob.glob(path)) if any(c in path for c in "*?[") else os.path.exists(path)


def check_source_config(source: SourceConfig) -> None:
    """Refuse a source Spark would refuse, from its config and the file system alone.

    Raises:
        ConfigError: ``format`` csv or json without ``source.schema``; a database source whose
            password cannot be found (``password_env`` unset, ``password_secret`` missing).
        InputError: a local ``source.path`` (or glob) that matches nothing.
    """
    if source.format == "jdbc":
        from batch_scoring.jobs.jdbc_source import JdbcSource

        JdbcSource(source).check_before_spark()
        return
    if source.format in ("csv", "json") and not source.ddl_schema:
        raise ConfigError(
            f"source.schema is required for format {source.format} (e.g. 'cell_id string, "
            "hour int, load double'): inferring a schema reads the data twice and guesses types"
        )
    if is_local(source.path) and not _exists(source.path):
        raise InputError(f"source.path {source.path} does not exist; check the path or run date")
    if s3_preflight.is_s3(source.path) and not _is_pattern(source.path):
        s3_preflight.check_exists(source.path)


def check_output_config(output: OutputConfig) -> None:
    """Refuse a database output whose password cannot be found, before Spark starts.

    Raises:
        ConfigError: as :func:`~batch_scoring.jobs.jdbc.resolve_password`, naming ``output.jdbc``.
    """
    if output.jdbc is not None:
        from batch_scoring.jobs.jdbc import resolve_password

        resolve_password(output.jdbc, field="output.jdbc")


def parquet_schema(source: SourceConfig) -> T.StructType | None:
    """The Spark schema of a local or S3 Parquet source from its footers (pyarrow), or None.

    Hive partition folders (``sale_month=2026-05``) become columns, as in Spark. None when
    the source is not Parquet, is a glob, or pyarrow cannot read it (Spark then reports the
    file). Cost: pyarrow reads the first file's footer and lists the files; no data is read.
    """
    if source.format != "parquet" or _is_pattern(source.path):
        return None
    if s3_preflight.is_s3(source.path):
        schema = s3_preflight.parquet_schema(source.path)
        return arrow_to_spark(schema) if schema is not None else None
    if not is_local(source.path):
        return None
    try:
        schema = ds.dataset(local_path(source.path), format="parquet", partitioning="hive").schema
        return arrow_to_spark(schema)
    except Exception as error:  # noqa: BLE001 - a footer pyarrow cannot read: Spark reports it
        log.debug("pre-flight could not read the footers of %s: %s", source.path, error)
        return None


def _is_pattern(path: str) -> bool:
    return any(c in path for c in "*?[")


def arrow_to_spark(schema: pa.Schema) -> T.StructType:
    """A Spark StructType for an Arrow schema; columns of Arrow type null are left out.

    Raises:
        TypeError: for an Arrow type Spark has no equivalent of.
    """
    fields = [f for f in schema if not pa.types.is_null(f.type)]
    return from_arrow_schema(pa.schema(fields))


def frame_schema(pdf: pd.DataFrame, spec: ScoringSpec | None = None) -> T.StructType:
    """The Spark schema a pandas frame's columns would have (through Arrow), for type checks.

    A column of only nulls is left out (it is quarantined by the row rules instead). Records
    given as JSON or CSV have no 32-bit types, so with ``spec`` an int64 column whose values
    fit 32 bits counts as ``int`` and a float64 column feeding a ``float`` input as ``float``:
    what is refused is a type class the model cannot take (a string for a number).
    """
    schema = arrow_to_spark(pa.Schema.from_pandas(pdf, preserve_index=False))
    if spec is None:
        return schema
    wanted = {i.name: i.mlflow_type for i in spec.source_inputs}
    fields = []
    for field in schema.fields:
        column = pdf[field.name]
        if isinstance(field.dataType, T.LongType) and (
            column.dropna().empty or column.dropna().abs().max() < 2**31
        ):
            field = T.StructField(field.name, T.IntegerType(), field.nullable)
        elif isinstance(field.dataType, T.DoubleType) and wanted.get(field.name) == "float":
            field = T.StructField(field.name, T.FloatType(), field.nullable)
        fields.append(field)
    return T.StructType(fields)


def check_schema_feeds_model(
    schema: T.StructType, spec: ScoringSpec, where: str, model_uri: str,
    fields: dict[str, str] | None = None,
) -> None:
    """Refuse a schema that cannot feed the model: every problem in one message.

    Args:
        schema: the source's (or records') Spark schema.
        spec: the scoring spec (inputs from the signature, passthrough, preprocess columns).
        where: what the rows are, for the message (``source data/x``, ``the records``).
        model_uri: for the message.
        fields: renames of config fields in the message (``predict`` names its flags).

    Raises:
        InputError: listing missing or incompatible input columns and missing passthrough
            or preprocess columns, and the columns there are.
    """
    names = [f.name for f in schema.fields]
    report = check_signature(schema, spec.source_inputs)
    problems = [
        *report.problems,
        *(f"passthrough column {c!r} is missing{did_you_mean(c, names)}"
          for c in spec.passthrough if c not in names),
        *(f"column {c!r} read by model.preprocess is missing{did_you_mean(c, names)}"
          for c in spec.consumed_columns if c not in names),
    ]
    if problems:
        message = f"{where} cannot feed model {model_uri}: " + "; ".join(problems) + f". It has {names}."
        for field, flag in (fields or {}).items():
            message = message.replace(field, flag)
        raise InputError(message)


def check_frame(pdf: pd.DataFrame, spec: ScoringSpec, where: str, model_uri: str) -> None:
    """:func:`check_schema_feeds_model` for a pandas frame (``batch-score predict``'s records)."""
    check_schema_feeds_model(frame_schema(pdf, spec), spec, where, model_uri,
                             {"model.preprocess": "the job's model.preprocess"})


def _check_model_folder(model: ModelConfig) -> list[str]:
    """Local model URIs of the job; refuse a missing folder or one without ``MLmodel``."""
    uris = [u for u in (model.uri, model.route and model.route.fallback_uri) if u and is_local(u)]
    for uri in uris:
        folder = local_path(uri)
        field = "model.uri" if uri == model.uri else "model.route.fallback_uri"
        if not os.path.isdir(folder):
            raise ConfigError(
                f"{field}: model path {uri!r} does not exist (looked at "
                f"{os.path.abspath(folder)!r}); give the folder that holds the MLmodel file"
            )
        if not os.path.isfile(os.path.join(folder, "MLmodel")):
            raise ConfigError(
                f"{field}: {uri!r} holds no MLmodel file; give the folder an MLflow model was "
                "saved to (mlflow.<flavor>.save_model) or a models:/ or runs:/ URI"
            )
    return uris


def needed_source_columns(job: JobConfig) -> list[str]:
    """Columns a function job reads from its source (keys, order_by, declared inputs, columns)."""
    from batch_scoring.jobs.pipeline import needed_columns, prepare_function

    prepared = prepare_function(job)
    return needed_columns(job, prepared.rules) or []


def preflight_sources(job: JobConfig) -> None:
    """Every check of ``job`` that needs the file system but no Spark (see the module doc).

    Raises:
        ConfigError: csv/json without a schema; a missing local model folder or MLmodel; a
            requirement (the job's or a local model's) not installed, or the model's flavor
            library at another major.minor version (unless ``model.allow_version_mismatch``).
        InputError: a missing local source path; columns the job or model needs missing from
            a local Parquet source's footers, or of a type the model cannot take.
    """
    check_source_config(job.source)
    check_output_config(job.output)
    check_job_requirements(job.requirements)
    local_models = _check_model_folder(job.model) if job.model is not None else []
    for uri in local_models:
        check_model_environment(local_path(uri), uri,
                                allow_version_mismatch=job.model.allow_version_mismatch)
    schema = parquet_schema(job.source)
    if schema is None:
        return
    names = [f.name for f in schema.fields]
    if job.model is None:
        missing = [c for c in needed_source_columns(job) if c not in names]
        if missing:
            raise missing_columns(job.source.path, missing, names)
        return
    if job.model.route is None and job.model.uri in local_models:
        _check_local_model(job, schema)


def _check_local_model(job: JobConfig, schema: T.StructType) -> None:
    """The model's signature against the Parquet footer schema (a local model folder)."""
    from batch_scoring.jobs.model_job import resolve, scoring_spec

    with tempfile.TemporaryDirectory(prefix="batch-scoring-preflight-") as download:
        try:
            resolved = resolve(job.model, job.model.uri, download)
        except ModelResolutionError as error:
            raise ConfigError(str(error)) from None
        spec = scoring_spec(job.model, resolved, [f.name for f in schema.fields])
    check_schema_feeds_model(schema, spec, f"source {job.source.path}", resolved.uri)

