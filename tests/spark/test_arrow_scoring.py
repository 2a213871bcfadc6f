"""The Spark scorer over Arrow record batches gives what pandas scoring gives (local Spark).

Each test scores the same rows twice: with :func:`score_spark` (``mapInArrow``) and with
:func:`score_frame` on a pandas DataFrame of the rows and the same loaded model. The outputs
must be equal row for row (``assertDataFrameEqual``), apart from ``scored_at``, which is
checked on its own. Small Arrow batches (``maxRecordsPerBatch`` 16) and ``batch_size`` 5 make
every partition several batches and every batch several ``predict`` calls.
"""

from __future__ import annotations

import datetime as dt
import sys

import cloudpickle
import mlflow.pyfunc
import mlflow.sklearn
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from mlflow.models import Model, infer_signature
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from batch_scoring.jobs.model_resolution import content_hash
from batch_scoring.jobs.sample_model import train_demand_model
from batch_scoring.udfs.models import model_cache
from batch_scoring.udfs.models.arrow_scoring import ArrayModel, ArrowScorer, array_predictor
from batch_scoring.udfs.models.model_scoring import (
    MODEL_RAISED,
    ModelStamp,
    ScoringSpec,
    score_frame,
    score_frame_isolating,
)
from batch_scoring.udfs.models.model_signature import model_inputs
from batch_scoring.udfs.models.spark_scoring import (
    ERROR_COLUMN,
    score_spark,
    ship_model,
    split_scored,
)

FEATURES = ["x0", "x1", "x2", "x3"]
BATCH_SIZE = 5
ARROW_ROWS = 16
STAMPED = ["model_uri", "model_version", "model_run_id"]


class PickyModel(mlflow.pyfunc.PythonModel):
    """Predicts 2 a; raises on any call holding a row with a == 13.13."""

    def predict(self, context, model_input, params=None):
        if (model_input["a"] == 13.13).any():
            raise ValueError("cannot score a=13.13")
        return (2 * model_input["a"]).to_numpy()


@pytest.fixture()
def small_arrow_batches(spark):
    key = "spark.sql.execution.arrow.maxRecordsPerBatch"
    before = spark.conf.get(key)
    spark.conf.set(key, str(ARROW_ROWS))
    yield
    spark.conf.set(key, before)


def numeric_rows(rows: int = 120, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.normal(size=rows) for name in FEATURES})
    frame.insert(0, "id", np.arange(rows, dtype=np.int64) + 2**62)
    frame["segment"] = np.where(np.arange(rows) % 3 == 0, "a", "b")
    frame["seen_at"] = pd.Timestamp("2026-11-22 10:00", tz="UTC") + pd.to_timedelta(np.arange(rows), "min")
    return frame


def save_sklearn(folder, estimator, frame: pd.DataFrame) -> str:
    target = 3 * np.sin(frame["x0"]) + frame["x1"] ** 2 - frame["x2"] * frame["x3"]
    estimator.fit(frame[FEATURES], target)
    signature = infer_signature(frame[FEATURES], estimator.predict(frame[FEATURES].head(5)))
    mlflow.sklearn.save_model(
        estimator, str(folder), signature=signature,
        skops_trusted_types=["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"],
    )
    return str(folder)


@pytest.fixture(scope="module")
def hgb_model(tmp_path_factory) -> str:
    from sklearn.ensemble import HistGradientBoostingRegressor

    folder = tmp_path_factory.mktemp("models") / "hgb"
    return save_sklearn(folder, HistGradientBoostingRegressor(max_iter=20, random_state=0), numeric_rows(400))


@pytest.fixture(scope="module")
def ridge_model(tmp_path_factory) -> str:
    from sklearn.linear_model import Ridge

    return save_sklearn(tmp_path_factory.mktemp("models") / "ridge", Ridge(alpha=0.5), numeric_rows(400, seed=9))


@pytest.fixture(scope="module")
def demand_model(tmp_path_factory) -> str:
    rng = np.random.default_rng(5)
    rows = 600
    sales = pd.DataFrame({
        "segment": rng.choice(["home", "sme", "corp"], rows),
        "product": rng.choice(["p1", "p2"], rows),
        "price": rng.uniform(5, 50, rows),
    })
    sales["volume"] = rng.poisson(200 / sales["price"])
    model, features = train_demand_model(sales)
    folder = tmp_path_factory.mktemp("models") / "demand"
    mlflow.sklearn.save_model(model, str(folder),
                              signature=infer_signature(features, model.predict(features.head(5))))
    return str(folder)


@pytest.fixture(scope="module")
def picky_model(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("models") / "picky"
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    mlflow.pyfunc.save_model(str(folder), python_model=PickyModel(),
                             input_example=pd.DataFrame({"a": [1.0]}))
    return str(folder)


def spec_of(path: str, passthrough: tuple[str, ...]) -> ScoringSpec:
    signature = Model.load(path).signature
    return ScoringSpec(tuple(model_inputs(signature, None, path)), {"prediction": "double"}, passthrough)


def shipped(spark, path: str, version: str):
    return ship_model(spark, path, content_hash(path), ModelStamp(path, version, f"run-{version}"))


def expected_frame(spark, pdf: pd.DataFrame, path: str, spec: ScoringSpec, version: str, schema):
    """``score_frame`` of ``pdf`` with the model loaded in this process, as a Spark DataFrame
    of ``schema`` (the scorer's output without ``scored_at``)."""
    model = mlflow.pyfunc.load_model(path)
    scored = score_frame(model, pdf, spec, ModelStamp(path, version, f"run-{version}"))
    return spark.createDataFrame(scored.drop(columns="scored_at"), schema)


def without_scored_at(scored):
    assert scored.where(F.col("scored_at").isNull()).count() == 0
    return scored.drop("scored_at")


def test_a_numeric_sklearn_model_takes_one_float_array_and_scores_like_pandas(
        spark, small_arrow_batches, hgb_model):
    spec = spec_of(hgb_model, ("id", "seen_at"))
    model = mlflow.pyfunc.load_model(hgb_model)
    assert isinstance(array_predictor(model, spec), ArrayModel)
    pdf = numeric_rows()
    df = spark.createDataFrame(pdf).repartition(3)
    model_cache.clear()
    scored = without_scored_at(score_spark(df, {(): shipped(spark, hgb_model, "1")},
                                           {content_hash(hgb_model): spec}, (), BATCH_SIZE))
    local = df.toPandas()  # the rows in the order Spark holds them, converted as Spark converts
    assertDataFrameEqual(scored, expected_frame(spark, local, hgb_model, spec, "1", scored.schema),
                         rtol=1e-12)
    assert scored.schema["id"].dataType.simpleString() == "bigint"
    assert scored.schema["seen_at"].dataType.simpleString() == "timestamp"


def test_the_array_path_and_the_pandas_path_give_the_same_predictions(hgb_model, ridge_model):
    """Bit for bit: the array is in the order scikit-learn makes of a DataFrame (Fortran);
    one ``predict`` call each, as BLAS may round another split of the rows differently."""
    pdf = numeric_rows(50)
    batch = pa.RecordBatch.from_pandas(pdf, preserve_index=False)
    for path in (hgb_model, ridge_model):
        spec = spec_of(path, ("id",))
        model = mlflow.pyfunc.load_model(path)
        as_array = array_predictor(model, spec)
        assert as_array is not None
        scorer = scorer_of(path, spec)
        with_array = scorer.score_batch(batch).column("prediction").to_numpy()
        with_pandas = score_frame(model, pdf, spec, ModelStamp(path))["prediction"].to_numpy()
        np.testing.assert_array_equal(with_array, with_pandas)


def scorer_of(path: str, spec: ScoringSpec, isolate: bool = False) -> ArrowScorer:
    class Local:
        sha256, files_name, stamp = content_hash(path), path, ModelStamp(path)

    return ArrowScorer(
        models=[Local], specs={Local.sha256: spec}, key_to_model={(): 0}, by=(),
        passthrough=spec.passthrough, others=(), output_types={"prediction": pa.float64()},
        batch_size=1000, max_models=1, isolate=isolate, timezone="UTC",
        load=mlflow.pyfunc.load_model,
    )


def test_a_pipeline_or_a_model_with_string_inputs_takes_a_pandas_frame(hgb_model, demand_model):
    demand = mlflow.pyfunc.load_model(demand_model)
    assert array_predictor(demand, spec_of(demand_model, ())) is None
    hgb = mlflow.pyfunc.load_model(hgb_model)
    spec = spec_of(hgb_model, ())
    assert array_predictor(hgb, ScoringSpec(spec.inputs, spec.output_columns, (), {"k": 1})) is None


def test_a_model_with_a_string_input_scores_like_pandas(spark, small_arrow_batches, demand_model):
    rng = np.random.default_rng(8)
    rows = 90
    pdf = pd.DataFrame({
        "id": np.arange(rows, dtype=np.int64) + (-(2**63) + 1),
        "segment": rng.choice(["home", "sme", "corp", "unseen"], rows),
        "product": rng.choice(["p1", "p2"], rows),
        "price": rng.uniform(5, 50, rows),
    })
    spec = spec_of(demand_model, ("id", "segment"))
    df = spark.createDataFrame(pdf).repartition(2)
    scored = without_scored_at(score_spark(df, {(): shipped(spark, demand_model, "3")},
                                           {content_hash(demand_model): spec}, (), BATCH_SIZE))
    assertDataFrameEqual(scored, expected_frame(spark, df.toPandas(), demand_model, spec, "3",
                                                scored.schema), rtol=1e-12)


def test_routed_models_score_each_key_like_its_model_in_pandas(
        spark, small_arrow_batches, hgb_model, ridge_model):
    pdf = numeric_rows(150)
    df = spark.createDataFrame(pdf).repartition(3)
    spec = spec_of(hgb_model, ("id", "segment"))
    a, b = shipped(spark, hgb_model, "7"), shipped(spark, ridge_model, "8")
    batches = spark.sparkContext.accumulator(0)
    scored = score_spark(df, {("a",): a, ("b",): b}, {a.sha256: spec, b.sha256: spec}, ["segment"],
                         BATCH_SIZE, max_models=2, batches=batches)
    scored = without_scored_at(scored)
    local = df.toPandas()
    expected = [
        expected_frame(spark, local[local["segment"] == key].reset_index(drop=True), path, spec,
                       version, scored.schema)
        for key, path, version in (("a", hgb_model, "7"), ("b", ridge_model, "8"))
    ]
    assertDataFrameEqual(scored, expected[0].unionByName(expected[1]), rtol=1e-12)
    assert batches.value >= len(pdf) // ARROW_ROWS


def test_rows_a_model_raises_on_go_apart_with_their_source_values(spark, small_arrow_batches, picky_model):
    pdf = pd.DataFrame({"id": np.arange(60, dtype=np.int64) + 2**53, "a": np.arange(60) * 0.5,
                        "note": [f"n{i}" for i in range(60)]})
    pdf.loc[[4, 41, 42], "a"] = 13.13
    spec = spec_of(picky_model, ("id",))
    df = spark.createDataFrame(pdf).repartition(2)
    raw = score_spark(df, {(): shipped(spark, picky_model, "2")}, {content_hash(picky_model): spec},
                      (), BATCH_SIZE, isolate_failures=True).cache()
    scored, raised = split_scored(raw, df.columns, spec.passthrough)
    model = mlflow.pyfunc.load_model(picky_model)
    want_scored, want_raised = score_frame_isolating(model, pdf, spec, ModelStamp(picky_model, "2", "run-2"))
    assertDataFrameEqual(without_scored_at(scored),
                         spark.createDataFrame(want_scored.drop(columns="scored_at"),
                                               without_scored_at(scored).schema))
    assert want_raised["reject_reason"].eq(MODEL_RAISED).all()
    expected_raised = want_raised[["id", "a", "note"]].assign(
        **{ERROR_COLUMN: want_raised["reject_rule"]})
    assertDataFrameEqual(raised, spark.createDataFrame(expected_raised, raised.schema))
    raw.unpersist()


def test_empty_partitions_and_an_empty_frame_score_to_nothing(spark, small_arrow_batches, hgb_model):
    spec = spec_of(hgb_model, ("id",))
    pdf = numeric_rows(3)
    model = {(): shipped(spark, hgb_model, "1")}
    specs = {content_hash(hgb_model): spec}
    df = spark.createDataFrame(pdf).repartition(8)  # at least five empty partitions
    scored = without_scored_at(score_spark(df, model, specs, (), BATCH_SIZE, isolate_failures=True))
    expected = expected_frame(spark, df.toPandas(), hgb_model, spec, "1",
                              scored.drop(ERROR_COLUMN, "_source").schema)
    assertDataFrameEqual(scored.drop(ERROR_COLUMN, "_source"), expected, rtol=1e-12)
    empty = score_spark(df.limit(0), model, specs, (), BATCH_SIZE, isolate_failures=True)
    assert empty.count() == 0
    assert empty.columns == ["id", "prediction", *STAMPED, "scored_at", ERROR_COLUMN, "_source"]


def test_the_output_columns_are_the_pandas_udf_scorers(spark, hgb_model):
    """The same schema as the scorer before ``mapInArrow`` declared."""
    spec = spec_of(hgb_model, ("id", "seen_at"))
    df = spark.createDataFrame(numeric_rows(10)).withColumn("day", F.lit(dt.date(2026, 11, 22)))
    scored = score_spark(df, {(): shipped(spark, hgb_model, "1")}, {content_hash(hgb_model): spec},
                         (), BATCH_SIZE, isolate_failures=True)
    assert [(f.name, f.dataType.simpleString()) for f in scored.schema.fields][:7] == [
        ("id", "bigint"), ("seen_at", "timestamp"), ("prediction", "double"),
        ("model_uri", "string"), ("model_version", "string"), ("model_run_id", "string"),
        ("scored_at", "timestamp"),
    ]
    assert scored.schema["_source"].dataType.simpleString() == (
        "struct<x0:double,x1:double,x2:double,x3:double,segment:string,day:date>")
