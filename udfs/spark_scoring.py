"""Score a model on Spark: ship its files once, load it once per Python worker, Arrow batches.

The model folder (already downloaded on the driver) is added with ``SparkContext.addFile``
under a name derived from its content hash; each executor fetches it once, and each Python
worker loads it once through :mod:`~batch_scoring.udfs.model_cache` and reuses it for every
Arrow batch of every task. Executors never contact the tracking server. Rows flow through
``mapInPandas`` without a shuffle, cut into batches of ``batch_size`` rows per ``predict`` call.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from pyspark.sql import DataFrame, SparkSession

from batch_scoring.udfs import model_cache
from batch_scoring.udfs.model_scoring import (
    STAMP_COLUMNS,
    ModelStamp,
    ScoringSpec,
    rebatch,
    score_frame,
)


@dataclass(frozen=True)
class ShippedModel:
    """A model folder registered with Spark: its SparkFiles name, content hash and identity."""

    files_name: str
    sha256: str
    stamp: ModelStamp


def ship_model(spark: SparkSession, local_path: str, sha256: str, stamp: ModelStamp) -> ShippedModel:
    """Register the model folder with Spark so every executor gets a copy (once per hash).

    The folder is copied under a name unique to its content hash, so two models whose folders
    share a base name (``model``) never collide, and shipping the same model twice is a no-op.
    """
    name = f"model-{sha256[:20]}"
    staging = Path(tempfile.gettempdir()) / "batch-scoring-models" / name
    if not staging.exists():
        staging.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(local_path, staging)
    context = spark.sparkContext
    if not any(Path(p).name == name for p in context.listFiles):
        context.addFile(str(staging), recursive=True)
    return ShippedModel(name, sha256, stamp)


def load_shipped(files_name: str):
    """Load a shipped model from this executor's SparkFiles folder (on the executor)."""
    import mlflow.pyfunc
    from pyspark import SparkFiles

    return mlflow.pyfunc.load_model(SparkFiles.get(files_name))


def scored_ddl(df: DataFrame, spec: ScoringSpec) -> str:
    """Spark DDL of the scored output: passthrough (source types), predictions, stamps."""
    types = {f.name: f.dataType.simpleString() for f in df.schema.fields}
    columns = {c: types[c] for c in spec.passthrough}
    columns.update(spec.output_columns)
    columns.update(STAMP_COLUMNS)
    return ", ".join(f"`{name}` {dtype}" for name, dtype in columns.items())


def score_spark(df: DataFrame, shipped: ShippedModel, spec: ScoringSpec, batch_size: int) -> DataFrame:
    """Score every row of ``df`` with the shipped model.

    Args:
        df: rows that satisfy the model's input rules, with the input and passthrough columns.
        shipped: from :func:`ship_model`.
        spec: inputs, outputs, passthrough.
        batch_size: rows per ``predict`` call.

    Returns:
        A DataFrame with :func:`scored_ddl`'s schema, one row per input row.
    """
    files_name, sha256, stamp = shipped.files_name, shipped.sha256, shipped.stamp

    def score_partition(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        model = model_cache.get_model(sha256, lambda: load_shipped(files_name), max_models=1)
        for batch in rebatch(batches, batch_size):
            yield score_frame(model, batch, spec, stamp, dt.datetime.now(dt.timezone.utc))

    return df.mapInPandas(score_partition, scored_ddl(df, spec))


def score_spark_routed(
    df: DataFrame,
    routes: Mapping[tuple, ShippedModel],
    specs: Mapping[str, ScoringSpec],
    by: Sequence[str],
    batch_size: int,
    max_models: int,
) -> DataFrame:
    """Score each row with the model of its key (``by`` columns), loading models lazily.

    Rows are sorted by key within each partition (no shuffle), so a Python worker meets the
    keys one after the other and its bounded cache (``max_models``) rarely evicts a model it
    still needs.

    Args:
        df: rows whose keys all have a route; input, passthrough and ``by`` columns.
        routes: key tuple -> shipped model.
        specs: model content hash -> scoring spec; every spec has the same output columns.
        by: the key columns.
        batch_size: rows per ``predict`` call at most.
        max_models: models each Python worker keeps loaded.

    Returns:
        A DataFrame with :func:`scored_ddl`'s schema (of any spec), one row per input row.
    """
    key_columns = list(by)
    any_spec = next(iter(specs.values()))

    def score_partition(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in rebatch(batches, batch_size):
            for key, rows in batch.groupby(key_columns, sort=False):
                shipped = routes[key if isinstance(key, tuple) else (key,)]
                model = model_cache.get_model(
                    shipped.sha256, lambda s=shipped: load_shipped(s.files_name), max_models
                )
                spec = specs[shipped.sha256]
                yield score_frame(model, rows, spec, shipped.stamp, dt.datetime.now(dt.timezone.utc))

    return df.sortWithinPartitions(*key_columns).mapInPandas(score_partition, scored_ddl(df, any_spec))
