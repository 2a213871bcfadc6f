"""``model.backend``: the same model job run compiled and native gives the same predictions
(local Spark), the manifest records the backend, and executors score with the shipped library.

A small HistGradientBoostingRegressor saved by mlflow.sklearn; 240 source rows, three of them
with a null input (quarantined before the model). Never asserts a timing.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
from mlflow.models import infer_signature
from pyspark.testing import assertDataFrameEqual

from batch_scoring.jobs.config import load_job
from batch_scoring.jobs.errors import ConfigError
from batch_scoring.jobs.manifest import ManifestRecorder
from batch_scoring.jobs.model_backend import TOLERANCE
from batch_scoring.jobs.model_resolution import content_hash
from batch_scoring.jobs.pipeline import run
from batch_scoring.udfs.models import compiled_trees
from batch_scoring.udfs.models.model_scoring import ModelStamp, ScoringSpec
from batch_scoring.udfs.models.model_signature import model_inputs
from batch_scoring.udfs.models.spark_scoring import ShippedModel, score_spark, ship_library

pytestmark = pytest.mark.skipif(compiled_trees.missing_tools() is not None,
                                reason=str(compiled_trees.missing_tools()))

ROOT = Path(__file__).resolve().parents[2]
DAY = dt.date(2026, 11, 22)
FEATURES = ["x0", "x1", "x2", "x3"]


def rows(count: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.normal(size=count) for name in FEATURES})
    frame.insert(0, "id", np.arange(count, dtype=np.int64))
    return frame


@pytest.fixture(scope="module")
def hgb_model(tmp_path_factory) -> Path:
    from sklearn.ensemble import HistGradientBoostingRegressor

    train = rows(400, 1)
    target = 3 * np.sin(train["x0"]) + train["x1"] ** 2 - train["x2"] * train["x3"]
    estimator = HistGradientBoostingRegressor(max_iter=25, random_state=0).fit(train[FEATURES], target)
    folder = tmp_path_factory.mktemp("models") / "hgb"
    mlflow.sklearn.save_model(
        estimator, str(folder), signature=infer_signature(train[FEATURES], estimator.predict(train[FEATURES])),
        skops_trusted_types=["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"],
    )
    return folder


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    frame = rows(240, 2)
    frame.loc[[5, 50, 200], "x2"] = np.nan  # null in Parquet: quarantined (null_value)
    path = tmp_path_factory.mktemp("source") / "rows.parquet"
    frame.to_parquet(path)
    return path


def model_job(source: Path, model: Path, out: Path, backend: str):
    return load_job(ROOT / "conf/jobs/model_scoring.yaml", [
        f"source.path={source}", "source.filter=null", f"model.uri={model}",
        f"model.allowed_uris=[{model.parent}/]", "model.passthrough=[id]",
        "model.output_schema=prediction double", f"model.backend={backend}",
        f"output.path={out}", "output.format=parquet", "output.partition_by=[]",
    ])


def test_compiled_and_native_jobs_score_the_same_rows_alike_and_record_the_backend(
        spark, tmp_path, source, hgb_model):
    runs = {}
    for backend in ("compiled", "native"):
        job = model_job(source, hgb_model, tmp_path / backend, backend)
        recorder = ManifestRecorder(spark, job, DAY, f"backend-{backend}")
        summary = run(spark, job, DAY, recorder.run_id, journal=recorder)
        assert (summary.rows_out, summary.rows_rejected) == (237, 3)
        manifest = json.loads(Path(recorder.succeeded(summary)).read_text())
        runs[backend] = (spark.read.parquet(job.output.path).select("id", "prediction"), manifest["model"])

    (compiled, compiled_model), (native, native_model) = runs["compiled"], runs["native"]
    assertDataFrameEqual(compiled, native, rtol=TOLERANCE, atol=TOLERANCE)
    recorded = compiled_model["backend"]
    assert compiled_model["sha256"] == recorded["model_sha256"] == content_hash(hgb_model)
    assert recorded["backend"] == "compiled" and "predictions match" in recorded["reason"]
    assert len(recorded["library_sha256"]) == 64 and recorded["library_sha256"] != recorded["model_sha256"]
    assert recorded["sample"] == "source" and recorded["sample_rows"] == 237
    assert recorded["native_seconds"] > 0 and recorded["compiled_seconds"] > 0
    assert recorded["max_abs_diff"] <= TOLERANCE
    assert native_model["backend"]["backend"] == "native"
    assert native_model["backend"]["library_sha256"] is None
    assert "prediction" in compiled.columns and "backend" not in spark.read.parquet(
        str(tmp_path / "compiled")).columns  # nothing new stamped on the rows


def test_executors_score_with_the_shipped_library_without_loading_the_model(
        spark, tmp_path, source, hgb_model):
    """The shipped model's archive name is one no executor has: only the library can score."""
    from mlflow.models import Model
    from sklearn.ensemble import HistGradientBoostingRegressor  # noqa: F401  (unpickled below)

    estimator = mlflow.sklearn.load_model(str(hgb_model))
    library = compiled_trees.compile_library(estimator, "predict", tmp_path / "lib")
    signature = Model.load(str(hgb_model)).signature
    spec = ScoringSpec(tuple(model_inputs(signature, None, "hgb")), {"prediction": "double"}, ("id",))
    absent = ShippedModel("no-such-model.zip", "f" * 64, ModelStamp("hgb"))
    shipped = ship_library(spark, absent, library)
    frame = spark.read.parquet(str(source)).dropna()

    scored = score_spark(frame, {(): shipped}, {shipped.sha256: spec}, (), 50)

    expected = frame.toPandas()
    expected["prediction"] = estimator.predict(expected[FEATURES])
    assertDataFrameEqual(scored.select("id", "prediction"),
                         spark.createDataFrame(expected[["id", "prediction"]]), rtol=TOLERANCE, atol=TOLERANCE)


def test_compiled_backend_on_a_non_tree_model_stops_before_scoring(spark, tmp_path, source):
    from sklearn.linear_model import Ridge

    train = rows(100, 4)
    folder = tmp_path / "models" / "ridge"
    estimator = Ridge().fit(train[FEATURES], train["x0"])
    mlflow.sklearn.save_model(estimator, str(folder),
                              signature=infer_signature(train[FEATURES], estimator.predict(train[FEATURES])))
    job = model_job(source, folder, tmp_path / "out", "compiled")
    with pytest.raises(ConfigError, match=r"model\.backend: compiled cannot be used .*a non-tree model \(Ridge\)"):
        run(spark, job, DAY, "backend-ridge")


def test_routed_models_are_each_compiled_and_checked_on_their_own_keys_rows(spark, tmp_path):
    from sklearn.ensemble import RandomForestRegressor

    models, expected = tmp_path / "models", []
    frame = rows(120, 6).assign(segment=lambda f: np.where(f["id"] % 2 == 0, "a", "b"))
    for seed, segment in enumerate(("a", "b")):
        train = rows(200, 10 + seed)
        estimator = RandomForestRegressor(n_estimators=8, max_depth=4, random_state=seed).fit(
            train[FEATURES], train["x0"] * (seed + 1) + train["x1"])
        mlflow.sklearn.save_model(estimator, str(models / f"rf_{segment}"), serialization_format="cloudpickle",
                                  signature=infer_signature(train[FEATURES], estimator.predict(train[FEATURES])))
        mine = frame[frame["segment"] == segment]
        expected.append(mine[["id"]].assign(prediction=estimator.predict(mine[FEATURES])))
    path = tmp_path / "routed.parquet"
    frame.to_parquet(path)
    job = load_job(ROOT / "conf/jobs/model_scoring.yaml", [
        f"source.path={path}", "source.filter=null", "model.uri=null",
        f"model.route={{by: [segment], uri_template: '{models}/rf_{{segment}}'}}",
        f"model.allowed_uris=[{models}/]", "model.passthrough=[id]",
        "model.output_schema=prediction double", "model.backend=compiled",
        f"output.path={tmp_path / 'out'}", "output.format=parquet", "output.partition_by=[]",
    ])

    summary = run(spark, job, DAY, "backend-routed")

    assert [b["backend"] for b in summary.model_backend] == ["compiled", "compiled"]
    assert {b["sample_rows"] for b in summary.model_backend} == {60}
    assertDataFrameEqual(spark.read.parquet(job.output.path).select("id", "prediction"),
                         spark.createDataFrame(pd.concat(expected)), rtol=TOLERANCE, atol=TOLERANCE)
