"""The model-scoring job: resolve the models once, check signatures, score row by row.

    allow-list check -> resolve and download the model(s) on the driver (content hashes)
      -> compare the source schema with each model's signature (every problem in one message)
      -> quarantine rows that cannot be scored (nulls, NaN in required inputs, no model)
      -> ship each model folder to the executors once
      -> choose each model's backend (model.backend: native, or compiled trees checked on a
         sample of the scorable rows and shipped as a library) -> mapInArrow, no shuffle;
         a raising ``predict`` is bisected, rows that raise alone are rejected (model_raised)
      -> persist the scored rows -> count rows read, scored and rejected
      -> reconcile, reject budget -> write predictions and rejects
      -> RunSummary with the model's URI, version and hash

Passes over the data of a model job: the model's pass (its output, the projected columns and
the predictions, is persisted: memory, spilling to disk), one count of the source, one pass
computing the rejects (persisted while counted and written); predictions are written from the
cache.

Loading a model runs its code (pickle): only URIs under ``model.allowed_uris`` are loaded.
:func:`scored_source` is also the first half of a chained job (model, then function).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from batch_scoring.jobs.commit import (
    CommitJournal,
    RunSummary,
    check_partition_columns,
    check_paths,
    commit_checked,
    persisted,
    summarise,
)
from batch_scoring.jobs.config import JobConfig, ModelConfig
from batch_scoring.jobs.errors import ConfigError, InputError
from batch_scoring.jobs.failure_budget import check_failed_work
from batch_scoring.jobs.model_backend import BackendChoice, choose_backend
from batch_scoring.jobs.model_environment import check_model_environment
from batch_scoring.jobs.model_resolution import (
    ModelResolutionError,
    ResolvedModel,
    check_allowed,
    resolve_model,
)
from batch_scoring.jobs.model_routing import resolve_routes
from batch_scoring.jobs.partition_values import check_output_values
from batch_scoring.jobs.preflight import check_schema_feeds_model
from batch_scoring.jobs.quarantine import REJECT_COLUMNS, split_rejects, union_rejects
from batch_scoring.jobs.run_context import RunContext
from batch_scoring.jobs.text_records import split_malformed
from batch_scoring.udfs.contract import parse_ddl_columns
from batch_scoring.udfs.models.model_scoring import MODEL_RAISED, ModelStamp, ScoringSpec
from batch_scoring.udfs.models.model_signature import (
    SignatureMismatchError,
    check_signature,
    model_inputs,
    numeric_columns,
    output_columns_from_signature,
)
from batch_scoring.udfs.models.preprocessing import PreprocessingError, Preprocessor
from batch_scoring.udfs.models.spark_scoring import (
    ERROR_COLUMN,
    ShippedModel,
    score_spark,
    ship_library,
    ship_model,
    split_scored,
)

log = logging.getLogger("batch_scoring")
DEFAULT_OUTPUT = {"prediction": "double"}


@dataclass(frozen=True)
class ScoringPlan:
    """The models of a run: specs by content hash, and which key uses which shipped model.

    ``by`` is empty for a one-model job, whose only route key is ``()``; ``unrouted`` lists the
    keys that have no model (their rows are rejected with reason ``no_model``).
    """

    by: tuple[str, ...]
    specs: dict[str, ScoringSpec]
    routes: dict[tuple, ShippedModel]
    models: list[ResolvedModel]
    unrouted: list[tuple] = field(default_factory=list)
    backends: dict[str, BackendChoice] = field(default_factory=dict)

    def columns(self, passthrough: list[str]) -> list[str]:
        """Columns to read: passthrough, route keys, then what every model reads from the source."""
        inputs = [
            name for spec in self.specs.values()
            for name in [*(i.name for i in spec.source_inputs), *spec.consumed_columns]
        ]
        return list(dict.fromkeys([*passthrough, *self.by, *inputs]))


def preflight_model(job: JobConfig) -> None:
    """Checks of a model job that need neither Spark nor the model: allow-list, schema, paths.

    Raises:
        ConfigError: naming ``model.uri``/``model.allowed_uris`` or ``model.output_schema``.
    """
    model = job.model
    try:
        for uri in (model.uri, model.route and model.route.fallback_uri):
            if uri:
                check_allowed(uri, model.allowed_uris)
        if model.output_schema:
            parse_ddl_columns(model.output_schema)
    except ModelResolutionError as error:
        raise ConfigError(str(error)) from None
    except ValueError as error:
        raise ConfigError(f"model.output_schema: {error}") from None
    check_paths(job)


def resolve(model: ModelConfig, uri: str, dst_dir: str) -> ResolvedModel:
    """Download one model into ``dst_dir`` on the driver (allow-list checked first).

    Raises:
        ModelResolutionError: when the model is not allowed, missing or cannot be downloaded.
    """
    return resolve_model(
        uri, dst_dir, allowed_prefixes=model.allowed_uris,
        tracking_uri=model.tracking_uri or None, registry_uri=model.registry_uri,
    )


def scoring_spec(model: ModelConfig, resolved: ResolvedModel, present: list[str]) -> ScoringSpec:
    """The scoring spec from the signature and config, keeping optional inputs the source has.

    The preprocessing statistics are read here, on the driver, from the model's folder.

    Raises:
        ConfigError: when the model has no signature and ``model.input_columns`` is not set,
            its preprocessing statistics are missing or invalid, or ``model.output_schema``
            names another number of columns than the signature's outputs.

    Outputs: ``model.output_schema`` when given, else the signature's outputs
    (``output_columns_from_signature``: a ``predict_proba`` model's ``(-1, 2)`` tensor gives
    ``prediction_0``, ``prediction_1``), else ``prediction double``.
    """
    try:
        inputs = model_inputs(resolved.signature, model.input_columns, resolved.uri)
        preprocessor = Preprocessor.load(model.preprocess, resolved.local_path) if model.preprocess else None
    except (SignatureMismatchError, PreprocessingError) as error:
        raise ConfigError(f"model {resolved.uri}: {error}") from None
    declared = output_columns_from_signature(resolved.signature)
    outputs = parse_ddl_columns(model.output_schema) if model.output_schema else declared or DEFAULT_OUTPUT
    if declared is not None and len(declared) != len(outputs):
        raise ConfigError(
            f"model {resolved.uri}: model.output_schema names {len(outputs)} column(s) "
            f"{list(outputs)}, but the model's signature declares {len(declared)} output(s) "
            f"({', '.join(f'{k} {v}' for k, v in declared.items())}); set model.output_schema to "
            f"{len(declared)} column(s), or leave it out to use the signature's"
        )
    available = {*present, *(preprocessor.produced_columns if preprocessor else [])}
    inputs = [i for i in inputs if i.required or i.name in available]
    return ScoringSpec(
        tuple(inputs), outputs, tuple(model.passthrough), dict(model.predict_params), preprocessor
    )


def plan_scoring(spark: SparkSession, job: JobConfig, source: DataFrame, dst_dir: str) -> ScoringPlan:
    """Resolve, check and ship the job's model(s).

    Raises:
        ConfigError: a model is not allowed, missing, or the models disagree on outputs.
        InputError: the source cannot feed a model (every problem listed).
    """
    model = job.model
    try:
        if model.route is None:
            resolved = resolve(model, model.uri, dst_dir)
            routes, by, unrouted = {(): resolved}, (), []
        else:
            routes, by, unrouted = _resolve_routes(model, source, dst_dir)
    except ModelResolutionError as error:
        raise ConfigError(str(error)) from None
    distinct = list({m.sha256: m for m in routes.values()}.values())
    for resolved in distinct:  # a registry model is first seen here; local ones in the pre-flight
        check_model_environment(resolved.local_path, resolved.uri,
                                allow_version_mismatch=model.allow_version_mismatch)
    specs = {m.sha256: scoring_spec(model, m, source.columns) for m in distinct}
    for resolved in distinct:
        check_source(source, specs[resolved.sha256], job, resolved)
    _same_outputs(specs)
    shipped = {m.sha256: ship_model(spark, m.local_path, m.sha256, _stamp(m)) for m in distinct}
    return ScoringPlan(by, specs, {k: shipped[m.sha256] for k, m in routes.items()}, distinct, unrouted)


def _resolve_routes(model: ModelConfig, source: DataFrame, dst_dir: str):
    route = model.route
    rows = source.select(*route.by).dropna().distinct().collect()
    keys = [tuple(row) for row in rows]
    found = resolve_routes(keys, route.by, route.uri_template, route.fallback_uri,
                           lambda uri: resolve(model, uri, dst_dir))
    for key, chosen in sorted(found.items(), key=lambda item: str(item[0])):
        log.info("route %s -> %s%s", key, chosen.uri if chosen.model else "no model",
                 " (fallback)" if chosen.fallback else "")
    routes = {k: r.model for k, r in found.items() if r.model is not None}
    unrouted = [k for k, r in found.items() if r.model is None]
    if not routes:
        raise ConfigError(
            f"model.route: no key of {route.by} has a model under {route.uri_template!r} and "
            "there is no model.route.fallback_uri"
        )
    return routes, tuple(route.by), unrouted


def _stamp(resolved: ResolvedModel) -> ModelStamp:
    return ModelStamp(resolved.uri, resolved.version, resolved.run_id)


def _same_outputs(specs: dict[str, ScoringSpec]) -> None:
    outputs = {tuple(spec.output_columns.items()) for spec in specs.values()}
    if len(outputs) > 1:
        raise ConfigError(
            f"the routed models return different outputs {sorted(outputs)}; set "
            "model.output_schema to the columns every model returns"
        )


def check_source(source: DataFrame, spec: ScoringSpec, job: JobConfig, resolved: ResolvedModel) -> None:
    """Fail with every problem at once when the source cannot feed the model (the pre-flight's
    check, :func:`~batch_scoring.jobs.preflight.check_schema_feeds_model`, on the schema Spark
    read); notes such as nullable integer inputs are logged.

    Raises:
        InputError: listing missing or incompatible input columns and missing passthrough
            columns, naming the source path and the model URI.
    """
    for note in check_signature(source.schema, spec.source_inputs).notes:
        log.warning("model input: %s", note)
    check_schema_feeds_model(source.schema, spec, f"source {job.source.path}", resolved.uri)


def quarantine(projected: DataFrame, plan: ScoringPlan) -> tuple[DataFrame, DataFrame]:
    """Split rows into scorable ones and rejects (input rules, null keys, keys with no model)."""
    numeric = numeric_columns(projected.schema)
    rules = {rule.name: rule for spec in plan.specs.values() for rule in spec.row_rules(numeric)}
    valid, rejects = split_rejects(projected, list(rules.values()), list(plan.by))
    if not plan.unrouted:
        return valid, rejects
    spark = projected.sparkSession
    unrouted = F.broadcast(spark.createDataFrame(plan.unrouted, projected.select(*plan.by).schema))
    no_model = valid.join(unrouted, on=list(plan.by), how="left_semi").select(
        *projected.columns,
        F.lit("no_model").alias("reject_reason"),
        F.lit(",".join(plan.by)).alias("reject_column"),
        F.lit("a model for this key").alias("reject_rule"),
    )
    scorable = valid.join(unrouted, on=list(plan.by), how="left_anti").select(*projected.columns)
    return scorable, rejects.unionByName(no_model.select(*projected.columns, *REJECT_COLUMNS))


@dataclass(frozen=True)
class ScoredSource:
    """The source scored by the plan's models, split into scored rows and rejects.

    Attributes:
        projected: the source projected on the columns the models read (passthrough, route
            keys, inputs).
        scored: rows the model scored: passthrough, predictions, ``model_uri``,
            ``model_version``, ``model_run_id``, ``scored_at``.
        rejects: ``projected``'s columns plus ``REJECT_COLUMNS``: rows quarantined before
            scoring, and rows on which ``predict`` raised alone (``model_raised``, the error
            in ``reject_rule``).
        plan: the models.
        arrow_batches: the Arrow batches the model scored.
    """

    projected: DataFrame
    scored: DataFrame
    rejects: DataFrame
    plan: ScoringPlan
    arrow_batches: int


@contextmanager
def scored_source(
    spark: SparkSession, job: JobConfig, source: DataFrame, journal: CommitJournal | None = None,
) -> Iterator[ScoredSource]:
    """Plan the models and score the source; the scores stay persisted inside the block.

    Cost: the model runs once, in the first action inside the block; its output (the
    projected columns plus predictions, serialised, spilling to disk) is cached so that the
    scored rows and the ``model_raised`` rejects are both read from it, and unpersisted when
    the block ends.

    Raises:
        ConfigError, InputError: as :func:`plan_scoring`.
        FailedWorkExceeded: (exit 4) more rows raised in ``predict`` than
            ``model.max_failed_rows`` allows (default 0); raised before anything is written.
    """
    journal = journal or CommitJournal()
    with ExitStack() as folders:
        download = folders.enter_context(tempfile.TemporaryDirectory(prefix="batch-scoring-model-"))
        with journal.phase("model"):
            plan = plan_scoring(spark, job, source, download)
        with journal.phase("quarantine"):
            projected = source.select(*plan.columns(job.model.passthrough))
            valid, rejects = quarantine(projected, plan)
        with journal.phase("backend"):  # the library must outlive the scoring: executors fetch it
            compiled = folders.enter_context(tempfile.TemporaryDirectory(prefix="batch-scoring-compiled-"))
            plan = choose_backends(spark, plan, job.model, valid, compiled)
        batches = spark.sparkContext.accumulator(0)
        with persisted(score(valid, plan, job.model, batches)) as raw:
            with journal.phase("score") as phase:
                scored, raised = split_scored(raw, valid.columns, job.model.passthrough)
                failed = check_raised_rows(job.model, scored, raised)
                phase.rows = f"{batches.value:,} Arrow batches, {failed:,} rows raised in the model"
            yield ScoredSource(projected, scored, rejects.unionByName(raised_rejects(raised)), plan,
                               batches.value)


def choose_backends(spark: SparkSession, plan: ScoringPlan, model: ModelConfig, valid: DataFrame,
                    folder: str) -> ScoringPlan:
    """The plan with each model's backend chosen (``model.backend``,
    :func:`~batch_scoring.jobs.model_backend.choose_backend`) and each compiled library shipped.

    Runs while the models' downloaded folders still exist; ``folder`` must outlive the job.
    A routed model is checked on the rows of its own keys.

    Raises:
        ConfigError: ``model.backend: compiled`` on a model that cannot be compiled or whose
            compiled predictions differ on the sample.
    """
    choices, shipped = {}, {}
    for resolved in plan.models:
        rows = valid if not plan.by else valid.join(
            F.broadcast(spark.createDataFrame(
                [k for k, s in plan.routes.items() if s.sha256 == resolved.sha256],
                valid.select(*plan.by).schema)),
            on=list(plan.by), how="left_semi")
        choice = choose_backend(model.backend, resolved, plan.specs[resolved.sha256], rows, folder)
        choices[resolved.sha256] = choice
        if choice.backend == "compiled":
            first = next(s for s in plan.routes.values() if s.sha256 == resolved.sha256)
            shipped[resolved.sha256] = ship_library(spark, first, choice.library)
    routes = {key: shipped.get(s.sha256, s) for key, s in plan.routes.items()}
    return replace(plan, routes=routes, backends=choices)


def check_raised_rows(model: ModelConfig, scored: DataFrame, raised: DataFrame) -> int:
    """Raise unless the rows ``predict`` raised on alone fit ``model.max_failed_rows``;
    return how many raised (they go to the rejects).

    ``raised`` is ``split_scored``'s second frame (the rows, ``ERROR_COLUMN``); the examples
    name each row by its passthrough columns (or its inputs when there are none).

    Raises:
        FailedWorkExceeded: more raising rows than the budget allows (a count, or a share of
            the rows scored plus raised).

    Cost: one count of ``raised`` over the persisted scores (the action that runs the model);
    when some row raised, one count of ``scored`` and a take of three rows.
    """
    failed = raised.count()
    if not failed:
        return 0
    shown = [c for c in (model.passthrough or raised.columns) if c != ERROR_COLUMN][:4]
    examples = [
        f"({', '.join(f'{c}={row[c]!r}' for c in shown)}): {row[ERROR_COLUMN]}"
        for row in raised.limit(3).collect()
    ]
    check_failed_work("model.max_failed_rows", model.max_failed_rows, failed,
                      failed + scored.count(), "rows raised in the model", examples)
    log.warning("%d row(s) raised in the model and go to rejects (model.max_failed_rows = %s)",
                failed, model.max_failed_rows)
    return failed


def raised_rejects(raised: DataFrame) -> DataFrame:
    """Rows on which ``predict`` raised alone as rejects: ``model_raised``, no column, the error."""
    return raised.select(
        *(c for c in raised.columns if c != ERROR_COLUMN),
        F.lit(MODEL_RAISED).alias("reject_reason"),
        F.lit(None).cast("string").alias("reject_column"),
        F.col(ERROR_COLUMN).alias("reject_rule"),
    )


def model_fields(plan: ScoringPlan, model: ModelConfig) -> dict[str, str | None]:
    """The summary's model fields: URI, version and hash of one model, or of the routes, and
    the backend(s) chosen (``model_backend``: one record, or a list for routed jobs)."""
    first = plan.models[0]
    backends = [plan.backends[m.sha256].describe() for m in plan.models if m.sha256 in plan.backends]
    if not plan.by:
        return {"model_uri": first.uri, "model_version": first.version, "model_sha256": first.sha256,
                "model_backend": backends[0] if backends else None}
    return {"model_uri": model.route.uri_template, "model_version": f"{len(plan.models)} models",
            "model_backend": backends or None}


def run_model_job(ctx: RunContext) -> RunSummary:
    """Score the model(s) over the source and, when the counts pass, commit predictions and
    rejects (after the run's checks: :func:`~batch_scoring.jobs.pipeline.run`).

    Raises:
        RejectBudgetExceeded, ReconciliationError: before anything is written (see
            :func:`~batch_scoring.jobs.commit.commit_checked`).
    """
    job = ctx.job
    with ctx.journal.phase("read"):
        source = ctx.source.read(ctx.spark, None)
        parsed, malformed = split_malformed(source, job.source)
    with scored_source(ctx.spark, job, parsed, ctx.journal) as scoring:
        spec = next(iter(scoring.plan.specs.values()))
        check_partition_columns(job, [*spec.passthrough, *spec.output_columns])
        scored = check_output_values(scoring.scored, job.output.partition_by, job.output.empty_token)
        counts = commit_checked(ctx, scored, union_rejects(scoring.rejects, malformed), source,
                                scoring.scored.count())
    return summarise(ctx, counts, [], 0, **model_fields(scoring.plan, job.model),
                     arrow_batches=scoring.arrow_batches)


def score(valid: DataFrame, plan: ScoringPlan, model: ModelConfig, batches=None) -> DataFrame:
    """Score rows that passed quarantine with the plan's model(s), isolating raising rows.

    Returns:
        :func:`~batch_scoring.udfs.models.spark_scoring.score_spark` output with
        ``isolate_failures`` (split it with ``split_scored``).
    """
    for resolved in plan.models:
        log.info("model %s: version %s, run %s, sha256 %s", resolved.uri, resolved.version,
                 resolved.run_id, resolved.sha256)
    max_models = model.route.max_models_per_worker if model.route else 1
    return score_spark(valid, plan.routes, plan.specs, plan.by, model.batch_size, max_models, True, batches)
