"""Score models on Spark: ship their files once, load each once per Python worker, Arrow batches.

Each model folder (already downloaded on the driver) is zipped and added with
``SparkContext.addArchive`` under a name derived from its content hash; each executor fetches
and unpacks it once, and each Python worker loads it once through
:mod:`~batch_scoring.udfs.models.model_cache` and reuses it for every Arrow batch of every task.
Executors never contact the tracking server. A model the driver compiled
(``model.backend``, :mod:`~batch_scoring.udfs.models.compiled_trees`) also has its library
added with ``SparkContext.addFile`` (:func:`ship_library`); workers then load the library, not
the model.

Scoring runs over ``DataFrame.mapInArrow`` on the projected columns (passthrough, routing keys,
model inputs): each Arrow record batch goes to the Python worker as it is, the passthrough
columns come back as the same Arrow arrays, the predictions are appended
(:mod:`~batch_scoring.udfs.models.arrow_scoring`), and the model's URI, version and run id are
added afterwards as Spark literals (by model index for routed jobs). It replaced an iterator
scalar pandas UDF over the input columns, which kept the passthrough columns in the JVM but
paid Spark's row copy and pandas conversion: 500k rows, HGB, best of three alternating rounds,
15.9 s against 20.6 s (``benchmarks/results/model_scoring_vs_spark_udf_r500000_arrow.json``).
No shuffle: rows are scored where they were read, sorted by routing key within each partition
when there are several models.

With ``isolate_failures`` a ``predict`` call that raises is bisected down to the rows that
raise alone (:func:`~batch_scoring.udfs.models.model_scoring.predict_isolating`); those rows come
back with ``_model_error`` set and, in ``_source``, their original values, so
:func:`split_scored` can send them to the rejects while every other row is scored.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from pyspark import Accumulator
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from batch_scoring.udfs.models.arrow_scoring import (
    ERROR_COLUMN,
    MODEL_INDEX,
    SOURCE_COLUMN,
    ArrowScorer,
)
from batch_scoring.udfs.models.compiled_trees import CompiledLibrary
from batch_scoring.udfs.models.model_scoring import ModelStamp, ScoringSpec


@dataclass(frozen=True)
class ShippedModel:
    """A model folder registered with Spark: its SparkFiles name, content hash and identity,
    and the compiled library that predicts in its place (``model.backend``), or None."""

    files_name: str
    sha256: str
    stamp: ModelStamp
    compiled: CompiledLibrary | None = None


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


def ship_library(spark: SparkSession, shipped: ShippedModel, library: CompiledLibrary) -> ShippedModel:
    """Register a compiled model library with Spark (``SparkContext.addFile``, once per name)
    and return ``shipped`` with it: executors then load the library instead of the model.

    The library's file name carries its SHA-256, so adding it again, even from another
    folder, names the same bytes. The file must stay where it is until the job ends (an
    executor that starts later fetches it from the driver).
    """
    context = spark.sparkContext
    if not any(Path(p).name == library.files_name for p in context.listFiles):
        context.addFile(library.path)
    return replace(shipped, compiled=library)


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

    Runs :class:`~batch_scoring.udfs.models.arrow_scoring.ArrowScorer` over
    ``DataFrame.mapInArrow`` (Spark 3.3+): each Arrow record batch goes to the Python worker
    as it is, the passthrough columns come back as the same Arrow arrays, the predictions are
    appended as Arrow arrays, and the model stamps are added afterwards as Spark literals.

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
        columns, null on the rows that scored); split it with :func:`split_scored`.

    Raises:
        pyspark.errors.PythonException: (when an action runs) wrapping the model's error
            without ``isolate_failures``, or a ``ModelOutputError`` either way.
    """
    from pyspark.sql.pandas.types import to_arrow_type

    models = list({shipped.sha256: shipped for shipped in routes.values()}.values())
    spec = specs[models[0].sha256]
    passthrough = tuple(spec.passthrough)
    others = tuple(c for c in df.columns if c not in passthrough) if isolate_failures else ()
    read = [*passthrough, *_columns_read(specs, by), *others]
    outputs = df.sparkSession.createDataFrame(
        [], ", ".join(f"`{n}` {t}" for n, t in spec.output_columns.items())
    ).schema
    index = {shipped.sha256: i for i, shipped in enumerate(models)}
    scorer = ArrowScorer(
        models=models, specs=dict(specs),
        key_to_model={key: index[shipped.sha256] for key, shipped in routes.items()},
        by=tuple(by), passthrough=passthrough, others=others,
        output_types={f.name: to_arrow_type(f.dataType) for f in outputs.fields},
        batch_size=batch_size, max_models=max_models, isolate=isolate_failures,
        timezone=df.sparkSession.conf.get("spark.sql.session.timeZone"),
        load=load_shipped, counter=batches,
    )
    schema = T.StructType([
        *(df.schema[c] for c in passthrough),
        *outputs.fields,
        *([T.StructField(MODEL_INDEX, T.IntegerType())] if len(models) > 1 else []),
        *([T.StructField(ERROR_COLUMN, T.StringType())] if isolate_failures else []),
        *([T.StructField(SOURCE_COLUMN, T.StructType([df.schema[c] for c in others]))]
          if others else []),
    ])
    rows = df.select(*dict.fromkeys(read))
    rows = rows.sortWithinPartitions(*by) if by else rows
    scored = rows.mapInArrow(scorer, schema)
    return scored.select(
        *passthrough,
        *spec.output_columns,
        *_stamp_columns(models, F.col(MODEL_INDEX) if len(models) > 1 else None),
        F.current_timestamp().alias("scored_at"),
        *([ERROR_COLUMN] if isolate_failures else []),
        *([SOURCE_COLUMN] if others else []),
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
