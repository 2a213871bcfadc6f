"""Score models on Spark: ship their files once, load each once per Python worker, Arrow batches.

Each model folder (already downloaded on the driver) is zipped and added with
``SparkContext.addArchive`` under a name derived from its content hash; each executor fetches
and unpacks it once, and each Python worker loads it once through
:mod:`~batch_scoring.udfs.models.model_cache` and reuses it for every Arrow batch of every task.
Executors never contact the tracking server.

Scoring is an iterator scalar pandas UDF over only the columns the models read, passed as
separate arguments: a struct argument costs pyspark a slower struct-to-DataFrame conversion
(2M rows of 8 doubles, best of three: an identity UDF took 1.67 s over a struct, 1.30 s over
columns, the plain read and write 1.47 s). The passthrough columns never leave the JVM, and
the model's URI, version and run id are added as Spark literals (by model index for routed
jobs), so Arrow carries features in and predictions out, nothing more. No shuffle: rows are
scored where they were read, sorted by routing key within each partition when there are
several models.

With ``isolate_failures`` a ``predict`` call that raises is bisected down to the rows that
raise alone (:func:`~batch_scoring.udfs.models.model_scoring.predict_isolating`); those rows come
back with ``_model_error`` set and, in ``_source``, their original values, so
:func:`split_scored` can send them to the rejects while every other row is scored.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from pyspark import Accumulator
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from batch_scoring.udfs.models import model_cache
from batch_scoring.udfs.models.model_scoring import (
    ModelStamp,
    ScoringSpec,
    predict_rows,
    predict_rows_isolating,
)

MODEL_INDEX = "_model"
ERROR_COLUMN = "_model_error"
SOURCE_COLUMN = "_source"


@dataclass(frozen=True)
class ShippedModel:
    """A model folder registered with Spark: its SparkFiles name, content hash and identity."""

    files_name: str
    sha256: str
    stamp: ModelStamp


def ship_model(spark: SparkSession, local_path: str, sha256: str, stamp: ModelStamp) -> ShippedModel:
    """Register the model folder with Spark so every executor gets a copy (once per hash).

    The folder is zipped under a name unique to its content hash and added with
    ``SparkContext.addArchive``, which every executor downloads and unpacks once (``addFile``
    refuses local folders on a cluster). Two models whose folders share a base name never
    collide, and shipping the same model twice is a no-op.
    """
    name = f"model-{sha256[:20]}.zip"
    archive = Path(tempfile.gettempdir()) / "batch-scoring-models" / name
    if not archive.exists():
        archive.parent.mkdir(parents=True, exist_ok=True)
        partial = shutil.make_archive(str(archive.with_suffix(f".{os.getpid()}.partial")), "zip", root_dir=local_path)
        os.replace(partial, archive)
    context = spark.sparkContext
    if not any(Path(p).name == name for p in context.listArchives):
        context.addArchive(str(archive))
    return ShippedModel(name, sha256, stamp)


def load_shipped(files_name: str):
    """Load a shipped model from this executor's SparkFiles folder, where its archive was unpacked."""
    import mlflow.pyfunc
    from pyspark import SparkFiles

    return mlflow.pyfunc.load_model(SparkFiles.get(files_name))


def score_spark(
    df: DataFrame,
    routes: Mapping[tuple, ShippedModel],
    specs: Mapping[str, ScoringSpec],
    by: Sequence[str],
    batch_size: int,
    max_models: int = 1,
    isolate_failures: bool = False,
    batches: Accumulator | None = None,
) -> DataFrame:
    """Score each row with its model: the only model (``by`` empty, key ``()``) or its key's.

    Args:
        df: rows that passed quarantine, with input, passthrough and ``by`` columns; every
            key present has a route.
        routes: key tuple -> shipped model (``{(): model}`` for one model).
        specs: model content hash -> scoring spec; all specs have the same output columns.
        by: the routing key columns, or empty.
        batch_size: rows per ``predict`` call at most.
        max_models: models each Python worker keeps loaded.
        isolate_failures: bisect a raising ``predict`` call and mark the rows that raise
            alone instead of failing the task.
        batches: an integer accumulator that counts the Arrow batches scored, or None.

    Returns:
        passthrough columns (source types), prediction columns, ``model_uri``,
        ``model_version``, ``model_run_id`` (string) and ``scored_at`` (timestamp, the query's
        start), one row per input row. With ``isolate_failures`` also ``_model_error``
        (string: null when scored, ``"Type: message"`` when ``predict`` raised on the row
        alone, its predictions then null) and ``_source`` (a struct of ``df``'s other
        columns); split it with :func:`split_scored`.

    Raises:
        pyspark.errors.PythonException: (when an action runs) wrapping the model's error
            without ``isolate_failures``, or a ``ModelOutputError`` either way.
    """
    models = list({shipped.sha256: shipped for shipped in routes.values()}.values())
    spec = specs[models[0].sha256]
    read = _columns_read(specs, by)
    predict = _predict_udf(routes, models, specs, list(by), read, batch_size, max_models,
                           isolate_failures, batches)
    rows = df.sortWithinPartitions(*by) if by else df
    others = [c for c in df.columns if c not in spec.passthrough]
    kept = [SOURCE_COLUMN] if isolate_failures and others else []
    originals = [F.struct(*others).alias(SOURCE_COLUMN)] if kept else []
    scored = rows.select(*spec.passthrough, *originals, predict(*read).alias("_scored"))
    error = [F.col(f"_scored.{ERROR_COLUMN}").alias(ERROR_COLUMN)] if isolate_failures else []
    return scored.select(
        *spec.passthrough,
        *(F.col(f"_scored.{name}").alias(name) for name in spec.output_columns),
        *_stamp_columns(models, F.col(f"_scored.{MODEL_INDEX}") if len(models) > 1 else None),
        F.current_timestamp().alias("scored_at"),
        *error,
        *kept,
    )


def split_scored(
    raw: DataFrame, columns: Sequence[str], passthrough: Sequence[str]
) -> tuple[DataFrame, DataFrame]:
    """Split :func:`score_spark` output (``isolate_failures``) into scored and raising rows.

    Args:
        raw: the isolating output; persist it first, both results are filters over it.
        columns: the columns of the ``df`` that was scored, in order.
        passthrough: the spec's passthrough columns.

    Returns:
        ``(scored, raised)``: the scored rows as :func:`score_spark` returns them without
        isolation, and the rows on which ``predict`` raised alone: ``columns`` with their
        original values, then ``_model_error`` (string).
    """
    ok = F.col(ERROR_COLUMN).isNull()
    scored = raw.where(ok).drop(ERROR_COLUMN, SOURCE_COLUMN)
    original = [
        F.col(c) if c in passthrough else F.col(f"{SOURCE_COLUMN}.{c}").alias(c) for c in columns
    ]
    return scored, raw.where(~ok).select(*original, ERROR_COLUMN)


def _columns_read(specs: Mapping[str, ScoringSpec], by: Sequence[str]) -> list[str]:
    names = [*by]
    for spec in specs.values():
        names += [i.name for i in spec.source_inputs] + spec.consumed_columns
    return list(dict.fromkeys(names))


def _stamp_columns(models: list[ShippedModel], index: Column | None) -> list[Column]:
    """The model's URI, version and run id: literals, or looked up by ``index`` (several models)."""
    def lookup(values: list[str | None]) -> Column:
        if len(set(values)) == 1:
            return F.lit(values[0]).cast("string")
        pairs = [item for i, value in enumerate(values) for item in (F.lit(i), F.lit(value))]
        return F.element_at(F.create_map(*pairs), index).cast("string")

    return [
        lookup([m.stamp.uri for m in models]).alias("model_uri"),
        lookup([m.stamp.version for m in models]).alias("model_version"),
        lookup([m.stamp.run_id for m in models]).alias("model_run_id"),
    ]


def _predict_udf(routes, models, specs, by, names, batch_size, max_models, isolate, batch_counter=None):
    index = {shipped.sha256: i for i, shipped in enumerate(models)}
    key_to_model = {key: index[shipped.sha256] for key, shipped in routes.items()}
    outputs = specs[models[0].sha256].output_columns
    ddl = ", ".join([
        *(f"`{n}` {t}" for n, t in outputs.items()),
        *([f"`{MODEL_INDEX}` int"] if len(models) > 1 else []),
        *([f"`{ERROR_COLUMN}` string"] if isolate else []),
    ])
    settings = (models, specs, batch_size, max_models, isolate)

    def predict(batches: Iterator[tuple[pd.Series, ...]]) -> Iterator[pd.DataFrame]:
        for columns in batches:
            columns = (columns,) if len(names) == 1 else columns  # one column comes bare
            batch = pd.DataFrame(dict(zip(names, columns)), copy=False)
            if batch_counter is not None:
                batch_counter.add(1)
            yield _predict_batch(batch, by, key_to_model, settings)

    return F.pandas_udf(predict, ddl)


def _predict_batch(batch, by, key_to_model, settings) -> pd.DataFrame:
    if not by:
        return _predict_rows_of(batch, 0, *settings)
    parts = []
    for key, positions in batch.groupby(by, sort=False).indices.items():
        chosen = key_to_model[key if isinstance(key, tuple) else (key,)]
        predicted = _predict_rows_of(batch.iloc[positions], chosen, *settings)
        predicted.index = positions
        parts.append(predicted)
    return pd.concat(parts).sort_index().reset_index(drop=True)


def _predict_rows_of(rows, chosen, models, specs, batch_size, max_models, isolate) -> pd.DataFrame:
    """Predictions of model ``chosen`` for ``rows``, in ``predict`` calls of ``batch_size`` rows.

    With ``isolate``, a raising call is bisected and ``_model_error`` names the rows that raise.
    """
    shipped = models[chosen]
    model = model_cache.get_model(shipped.sha256, lambda: load_shipped(shipped.files_name), max_models)
    spec, uri = specs[shipped.sha256], shipped.stamp.uri
    chunks = []
    for start in range(0, len(rows), batch_size):
        piece = rows.iloc[start:start + batch_size]
        if not isolate:
            chunks.append(predict_rows(model, piece, spec, uri))
            continue
        predicted, errors = predict_rows_isolating(model, piece, spec, uri)
        chunks.append(predicted.assign(**{ERROR_COLUMN: errors}))
    predicted = chunks[0] if len(chunks) == 1 else pd.concat(chunks, ignore_index=True)
    if len(models) > 1:
        predicted[MODEL_INDEX] = chosen
    return predicted
