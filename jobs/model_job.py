"""The model-scoring job: resolve the model once, check its signature, score row by row.

    allow-list check -> resolve and download the model on the driver (content hash)
      -> compare the source schema with the model signature (every problem in one message)
      -> quarantine rows the model cannot score (nulls, NaN in required inputs)
      -> ship the model folder to the executors -> mapInPandas scoring, no shuffle
      -> write predictions and rejects -> RunSummary with the model's URI, version and hash

Loading a model runs its code (pickle): only URIs under ``model.allowed_uris`` are loaded.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import tempfile
import time

from pyspark.sql import DataFrame, SparkSession

from batch_scoring.jobs.commit import (
    RunSummary,
    check_partition_columns,
    check_paths,
    commit,
    prepare_targets,
    summarise,
)
from batch_scoring.jobs.config import JobConfig, ModelConfig
from batch_scoring.jobs.errors import ConfigError, InputError
from batch_scoring.jobs.quarantine import split_rejects
from batch_scoring.jobs.sources import read_source
from batch_scoring.udfs.contract import parse_ddl_columns
from batch_scoring.udfs.model_resolution import (
    ModelResolutionError,
    ResolvedModel,
    check_allowed,
    resolve_model,
)
from batch_scoring.udfs.model_scoring import ModelStamp, ScoringSpec
from batch_scoring.udfs.model_signature import (
    SignatureMismatchError,
    check_signature,
    input_rules,
    model_inputs,
    output_columns_from_signature,
)
from batch_scoring.udfs.spark_scoring import ship_model, score_spark

log = logging.getLogger("batch_scoring")
DEFAULT_OUTPUT = {"prediction": "double"}


def preflight_model(job: JobConfig) -> None:
    """Checks of a model job that need neither Spark nor the model: allow-list, schema, paths.

    Raises:
        ConfigError: naming ``model.uri``/``model.allowed_uris`` or ``model.output_schema``.
    """
    model = job.model
    try:
        check_allowed(model.uri, model.allowed_uris)
        if model.output_schema:
            parse_ddl_columns(model.output_schema)
    except ModelResolutionError as error:
        raise ConfigError(str(error)) from None
    except ValueError as error:
        raise ConfigError(f"model.output_schema: {error}") from None
    check_paths(job)


def resolve(model: ModelConfig, dst_dir: str) -> ResolvedModel:
    """Download the configured model into ``dst_dir`` on the driver.

    Raises:
        ConfigError: when the model is not allowed, missing or cannot be downloaded.
    """
    try:
        return resolve_model(
            model.uri, dst_dir, allowed_prefixes=model.allowed_uris,
            tracking_uri=model.tracking_uri, registry_uri=model.registry_uri,
        )
    except ModelResolutionError as error:
        raise ConfigError(str(error)) from None


def scoring_spec(model: ModelConfig, resolved: ResolvedModel, present: list[str]) -> ScoringSpec:
    """The scoring spec from the signature and config, keeping optional inputs the source has.

    Raises:
        ConfigError: when the model has no signature and ``model.input_columns`` is not set.
    """
    try:
        inputs = model_inputs(resolved.signature, model.input_columns, model.uri)
    except SignatureMismatchError as error:
        raise ConfigError(str(error)) from None
    outputs = (
        parse_ddl_columns(model.output_schema) if model.output_schema
        else output_columns_from_signature(resolved.signature) or DEFAULT_OUTPUT
    )
    inputs = [i for i in inputs if i.required or i.name in present]
    return ScoringSpec(tuple(inputs), outputs, tuple(model.passthrough), dict(model.predict_params))


def check_source(source: DataFrame, spec: ScoringSpec, job: JobConfig) -> None:
    """Fail with every problem at once when the source cannot feed the model.

    Raises:
        InputError: listing missing or incompatible input columns and missing passthrough
            columns, naming the source path and the model URI.
    """
    report = check_signature(source.schema, spec.inputs)
    missing = [c for c in spec.passthrough if c not in source.columns]
    problems = [*report.problems, *(f"passthrough column {c!r} is missing" for c in missing)]
    for note in report.notes:
        log.warning("model input: %s", note)
    if problems:
        raise InputError(
            f"source {job.source.path} cannot feed model {job.model.uri}: " + "; ".join(problems)
            + f". The source has {source.columns}."
        )


def run_model_job(
    spark: SparkSession, job: JobConfig, run_date: dt.date, run_id: str, s3_scheme: str
) -> RunSummary:
    """Score the model over the source and commit predictions and rejects (see module doc)."""
    started = time.monotonic()
    preflight_model(job)
    targets = prepare_targets(spark, job, run_date, s3_scheme)
    download = tempfile.mkdtemp(prefix="batch-scoring-model-")
    try:
        resolved = resolve(job.model, download)
        source = read_source(spark, job.source, None, s3_scheme)
        spec = scoring_spec(job.model, resolved, source.columns)
        check_source(source, spec, job)
        check_partition_columns(job, [*spec.passthrough, *spec.output_columns])
        log.info("model %s: version %s, run %s, sha256 %s", resolved.uri, resolved.version,
                 resolved.run_id, resolved.sha256)
        stamp = ModelStamp(resolved.uri, resolved.version, resolved.run_id)
        shipped = ship_model(spark, resolved.local_path, resolved.sha256, stamp)
    finally:
        shutil.rmtree(download, ignore_errors=True)
    projected = source.select(*dict.fromkeys([*spec.passthrough, *spec.input_names]))
    valid, rejects = split_rejects(projected, input_rules(spec.inputs, projected.schema), [])
    scored = score_spark(valid, shipped, spec, job.model.batch_size)
    commit(job, scored, rejects, targets, run_date, run_id)
    return summarise(
        spark, job, projected, targets, run_date, run_id, [], 0, time.monotonic() - started,
        model_uri=resolved.uri, model_version=resolved.version, model_sha256=resolved.sha256,
    )
