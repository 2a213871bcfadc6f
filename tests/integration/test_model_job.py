"""The model-scoring job against a real MLflow tracking server and real Delta/Parquet tables."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest
import cloudpickle  # the one mlflow pickles python models with
from pyspark.sql import functions as F

from batch_scoring.jobs import predict
from batch_scoring.jobs.config import load_job
from batch_scoring.jobs.errors import ConfigError, InputError
from batch_scoring.jobs.pipeline import run

ROOT = Path(__file__).resolve().parents[2]
DAY = dt.date(2026, 11, 22)
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


@pytest.fixture(scope="module")
def iris_source(tmp_path_factory, registered_models):
    """The iris features with an id and a species group, as a Parquet file."""
    path = tmp_path_factory.mktemp("iris") / "iris.parquet"
    features = registered_models.features
    table = features.assign(flower_id=np.arange(len(features), dtype="int64"),
                            batch=np.where(np.arange(len(features)) % 2 == 0, "even", "odd"))
    table.to_parquet(path)
    return path


def scoring_job(tmp_path, source, models, *overrides):
    return load_job(ROOT / "conf/jobs/model_scoring.yaml", [
        f"source.path={source}", "source.filter=null", f"model.uri={models.uri_champion}",
        f"model.tracking_uri={models.tracking_uri}", "model.passthrough=[flower_id, batch]",
        "model.output_schema=null", f"output.path={tmp_path / 'scored'}",
        "output.partition_by=[batch]", *overrides,
    ])


def read(spark, path, fmt="delta"):
    return spark.read.format(fmt).load(str(path)).toPandas().sort_values("flower_id").reset_index(drop=True)


def test_a_registered_model_scores_every_row_like_the_estimator_itself(spark, tmp_path, iris_source, registered_models):
    job = scoring_job(tmp_path, iris_source, registered_models)
    summary = run(spark, job, DAY, "score-1")
    out = read(spark, job.output.path)
    expected = registered_models.classifier_v1.predict(registered_models.features)
    assert (summary.rows_in, summary.rows_out, summary.rows_rejected) == (150, 150, 0)
    assert out["prediction"].tolist() == expected.tolist()
    assert out["flower_id"].tolist() == list(range(150))
    assert set(out["model_uri"]) == {registered_models.uri_champion}
    assert set(out["model_version"]) == {"1"} and set(out["model_run_id"]) == {registered_models.run_id_v1}
    assert out["scored_at"].notna().all()
    assert summary.model_version == "1" and len(summary.model_sha256) == 64


def test_another_version_gives_that_versions_predictions(spark, tmp_path, iris_source, registered_models):
    job = scoring_job(tmp_path, iris_source, registered_models, f"model.uri={registered_models.uri_latest}")
    run(spark, job, DAY, "latest")
    out = read(spark, job.output.path)
    assert set(out["model_version"]) == {"2"}
    assert out["prediction"].tolist() == registered_models.classifier_v2.predict(registered_models.features).tolist()


def test_record_file_and_spark_modes_give_identical_predictions(spark, tmp_path, iris_source, registered_models, capsys, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registered_models.tracking_uri)
    uri = registered_models.uri_v1
    job = scoring_job(tmp_path, iris_source, registered_models, f"model.uri={uri}")
    run(spark, job, DAY, "spark")
    spark_predictions = read(spark, job.output.path)["prediction"].tolist()

    out_file = tmp_path / "scored.parquet"
    assert predict.main(["--model", uri, "--input", str(iris_source), "--output", str(out_file),
                         "--passthrough", "flower_id"]) == 0
    file_predictions = pd.read_parquet(out_file).sort_values("flower_id")["prediction"].tolist()

    record_predictions = []
    for row in pd.read_parquet(iris_source)[FEATURES].head(12).to_dict("records"):
        capsys.readouterr()
        assert predict.main(["--model", uri, "--record", json.dumps(row)]) == 0
        record_predictions.append(json.loads(capsys.readouterr().out)["prediction"])
    assert file_predictions == spark_predictions
    assert record_predictions == spark_predictions[:12]


def test_signature_problems_are_listed_together_before_anything_is_written(spark, tmp_path, registered_models):
    source = tmp_path / "bad.parquet"
    features = registered_models.features.drop(columns=["petal_width"])
    features.assign(sepal_length=features["sepal_length"].astype(str), flower_id=1, batch="x").to_parquet(source)
    job = scoring_job(tmp_path, source, registered_models)
    with pytest.raises(InputError) as error:
        run(spark, job, DAY, "never")
    message = str(error.value)
    assert "column 'sepal_length' is string, the model expects double" in message
    assert "required input column 'petal_width' is missing" in message
    assert not Path(job.output.path).exists()


def test_rows_the_model_cannot_score_are_rejected_with_a_reason(spark, tmp_path, registered_models):
    table = registered_models.features.assign(flower_id=np.arange(150), batch="all")
    table.loc[3, "petal_length"] = np.nan
    table.loc[7, "sepal_width"] = None
    source = tmp_path / "holes.parquet"
    table.to_parquet(source)
    job = scoring_job(tmp_path, source, registered_models)
    summary = run(spark, job, DAY, "holes")
    rejects = spark.read.format("delta").load(job.output.rejects).toPandas().sort_values("flower_id")
    assert (summary.rows_out, summary.rows_rejected) == (148, 2)
    assert rejects[["flower_id", "reject_reason", "reject_column"]].values.tolist() == [
        [3, "null_value", "petal_length"], [7, "null_value", "sepal_width"],
    ]


def test_a_model_without_signature_needs_input_columns(spark, tmp_path, iris_source, registered_models):
    job = scoring_job(tmp_path, iris_source, registered_models, f"model.uri={registered_models.uri_unsigned}")
    with pytest.raises(ConfigError, match="model.input_columns"):
        run(spark, job, DAY, "no-signature")
    listed = scoring_job(tmp_path, iris_source, registered_models, f"model.uri={registered_models.uri_unsigned}",
                         f"model.input_columns=[{', '.join(FEATURES)}]")
    run(spark, listed, DAY, "listed")
    expected = registered_models.unsigned.predict(registered_models.features)
    assert read(spark, listed.output.path)["prediction"].tolist() == expected.astype(float).tolist()


def test_a_uri_outside_the_allow_list_is_refused_before_download(spark, tmp_path, iris_source, registered_models):
    job = scoring_job(tmp_path, iris_source, registered_models, "model.allowed_uris=[s3://trusted-models/]")
    with pytest.raises(ConfigError, match="model.allowed_uris"):
        run(spark, job, DAY, "refused")
    assert not Path(job.output.path).exists()


class CountingModel(mlflow.pyfunc.PythonModel):
    """Appends its process id to a file each time it is loaded; predicts the row sum."""

    def __init__(self, log_file: str):
        self.log_file = log_file

    def load_context(self, context):
        with open(self.log_file, "a") as file:
            file.write(f"{__import__('os').getpid()}\n")

    def predict(self, context, model_input, params=None):
        return model_input.sum(axis=1).to_numpy()


def test_each_python_worker_loads_the_model_once_for_all_its_batches(spark, tmp_path, arrow_batch_rows):
    loads = tmp_path / "loads.txt"
    model_dir = tmp_path / "counting_model"
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    mlflow.pyfunc.save_model(str(model_dir), python_model=CountingModel(str(loads)),
                             input_example=pd.DataFrame({"a": [1.0], "b": [2.0]}))
    source = tmp_path / "rows"
    spark.range(4000).select(F.col("id"), (F.col("id") * 0.5).alias("a"), F.lit(1.0).alias("b"),
                             F.lit("x").alias("batch")).repartition(8).write.parquet(str(source))
    arrow_batch_rows(100)
    job = load_job(ROOT / "conf/jobs/model_scoring.yaml", [
        f"source.path={source}", "source.filter=null", f"model.uri={model_dir}",
        f"model.allowed_uris=[{tmp_path}]", "model.passthrough=[id]", "model.batch_size=250",
        "model.output_schema=total double", f"output.path={tmp_path / 'out'}", "output.format=parquet",
        "output.partition_by=[]",
    ])
    summary = run(spark, job, DAY, "counting")
    out = spark.read.parquet(str(tmp_path / "out")).toPandas()
    assert len(out) == 4000 and np.allclose(out["total"], out["id"] * 0.5 + 1.0)
    assert summary.arrow_batches == 40  # 8 files of 500 rows, in Arrow batches of 100
    pids = loads.read_text().split()
    assert len(set(pids)) == len(pids)  # never loaded twice in one Python worker
    assert len(pids) < 8  # fewer loads than the 8 tasks (and far fewer than the 16 predict calls)


@pytest.fixture(scope="module")
def routed_source(tmp_path_factory, registered_models):
    """Iris rows keyed by the model version that should score them: "1", "2" or "9" (none)."""
    path = tmp_path_factory.mktemp("routed") / "iris.parquet"
    features = registered_models.features
    version = np.array(["1", "2", "9"])[np.arange(len(features)) % 3]
    features.assign(flower_id=np.arange(len(features)), batch="all", version=version).to_parquet(path)
    return path


def routed_job(tmp_path, source, models, *overrides):
    return scoring_job(tmp_path, source, models, "model.uri=null",
                       "model.route={by: [version], uri_template: 'models:/iris_classifier/{version}'}",
                       "model.allowed_uris=['models:/iris_classifier']",
                       "model.passthrough=[flower_id, batch, version]", *overrides)


def test_each_key_is_scored_by_its_own_model_and_missing_ones_by_the_fallback(spark, tmp_path, routed_source, registered_models):
    job = routed_job(tmp_path, routed_source, registered_models,
                     f"model.route.fallback_uri={registered_models.uri_v1}")
    summary = run(spark, job, DAY, "routed")
    out = read(spark, job.output.path)
    features = registered_models.features
    by_version = {"1": registered_models.classifier_v1, "2": registered_models.classifier_v2,
                  "9": registered_models.classifier_v1}
    for version, estimator in by_version.items():
        rows = out[out["version"] == version]
        expected = estimator.predict(features.iloc[rows["flower_id"]])
        assert rows["prediction"].tolist() == expected.tolist()
    stamped = out.groupby("version")["model_version"].unique().map(list).to_dict()
    assert stamped == {"1": ["1"], "2": ["2"], "9": ["1"]}
    assert (summary.rows_out, summary.rows_rejected, summary.model_version) == (150, 0, "2 models")


def test_keys_without_a_model_and_no_fallback_are_rejected(spark, tmp_path, routed_source, registered_models):
    job = routed_job(tmp_path, routed_source, registered_models)
    summary = run(spark, job, DAY, "no-fallback")
    rejects = spark.read.format("delta").load(job.output.rejects).toPandas()
    assert (summary.rows_out, summary.rows_rejected) == (100, 50)
    assert set(rejects["version"]) == {"9"}
    assert set(zip(rejects["reject_reason"], rejects["reject_column"])) == {("no_model", "version")}


def test_a_registered_alias_per_key(spark, tmp_path, registered_models):
    source = tmp_path / "tiers.parquet"
    features = registered_models.features
    tier = np.where(np.arange(len(features)) < 75, "champion", "challenger")
    features.assign(flower_id=np.arange(len(features)), batch="all", tier=tier).to_parquet(source)
    job = scoring_job(tmp_path, source, registered_models, "model.uri=null",
                      "model.route={by: [tier], uri_template: 'models:/iris_classifier@{tier}', "
                      f"fallback_uri: '{registered_models.uri_v2}'}}",
                      "model.allowed_uris=['models:/iris_classifier']",
                      "model.passthrough=[flower_id, batch, tier]")
    run(spark, job, DAY, "aliases")
    out = read(spark, job.output.path)
    assert set(out[out["tier"] == "champion"]["model_version"]) == {"1"}
    assert set(out[out["tier"] == "challenger"]["model_version"]) == {"2"}
