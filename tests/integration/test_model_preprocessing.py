"""Preprocessing before the model, the same in the Spark job and in `batch-score predict`."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
from mlflow.models import infer_signature
from PIL import Image
from sklearn.datasets import load_digits, load_iris
from sklearn.linear_model import LogisticRegression

from batch_scoring.jobs import predict
from batch_scoring.jobs.config import load_job
from batch_scoring.jobs.errors import ConfigError
from batch_scoring.jobs.pipeline import run
from batch_scoring.udfs.models.preprocessing import fit_categories, fit_scaling, write_stats

ROOT = Path(__file__).resolve().parents[2]
DAY = dt.date(2026, 11, 22)
IRIS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def model_job(tmp_path, source, model_dir, *overrides):
    return load_job(ROOT / "conf/jobs/model_scoring.yaml", [
        f"source.path={source}", "source.filter=null", f"model.uri={model_dir}",
        f"model.allowed_uris=[{model_dir}]", "model.output_schema=null", "model.tracking_uri=null",
        f"output.path={tmp_path / 'out'}", "output.format=parquet", "output.partition_by=[]",
        *overrides,
    ])


@pytest.fixture(scope="module")
def scaled_iris(tmp_path_factory):
    """A classifier trained on standardised iris features and a species-group category.

    Its scaling statistics and categories are written into the model folder.
    """
    folder = tmp_path_factory.mktemp("scaled_iris")
    iris = load_iris(as_frame=True)
    raw = iris.data.set_axis(IRIS, axis=1).assign(
        garden=np.array(["north", "south", "east"])[np.arange(150) % 3], flower_id=np.arange(150))
    stats = fit_scaling(raw, IRIS)
    scaled = raw[IRIS].copy()
    for column in IRIS:
        scaled[column] = (raw[column] - stats[column]["mean"]) / stats[column]["std"]
    for garden in fit_categories(raw, "garden"):
        scaled[f"garden__{garden}"] = (raw["garden"] == garden).astype(float)
    estimator = LogisticRegression(max_iter=1000).fit(scaled, iris.target)
    model_dir = folder / "model"
    mlflow.sklearn.save_model(estimator, str(model_dir),
                              signature=infer_signature(scaled, estimator.predict(scaled)))
    write_stats(model_dir, scaling=stats, categories={"garden": fit_categories(raw, "garden")})
    source = folder / "iris.parquet"
    raw.to_parquet(source)
    return model_dir, source, estimator.predict(scaled), raw


PREPROCESS = ("model.preprocess=[{kind: encode, column: garden}, "
              "{kind: scale, columns: [sepal_length, sepal_width, petal_length, petal_width]}]")


def test_scaling_and_encoding_with_statistics_stored_beside_the_model(spark, tmp_path, scaled_iris):
    model_dir, source, expected, _ = scaled_iris
    job = model_job(tmp_path, source, model_dir, PREPROCESS, "model.passthrough=[flower_id]")
    summary = run(spark, job, DAY, "scaled")
    out = spark.read.parquet(job.output.path).toPandas().sort_values("flower_id")
    assert summary.rows_out == 150
    assert out["prediction"].tolist() == expected.tolist()


def test_predict_applies_the_same_preprocessing_to_one_record(tmp_path, scaled_iris, capsys):
    model_dir, _, expected, raw = scaled_iris
    job_file = tmp_path / "job.yaml"
    job = model_job(tmp_path, "unused", model_dir, PREPROCESS, "model.passthrough=[flower_id]")
    job_file.write_text(json.dumps(job.model_dump(by_alias=True, exclude_none=True)))
    for row in (0, 77, 149):
        record = raw.iloc[row][[*IRIS, "garden", "flower_id"]].to_dict()
        capsys.readouterr()
        assert predict.main(["--job", str(job_file), "--record", json.dumps(record, default=int)]) == 0
        assert json.loads(capsys.readouterr().out)["prediction"] == expected[row]


def test_missing_statistics_stop_the_job_naming_the_file(spark, tmp_path, scaled_iris):
    model_dir, source, _, _ = scaled_iris
    job = model_job(tmp_path, source, model_dir, "model.passthrough=[flower_id]",
                    "model.preprocess=[{kind: scale, columns: [sepal_length], stats_file: nowhere.json}]")
    with pytest.raises(ConfigError, match="nowhere.json"):
        run(spark, job, DAY, "no-stats")


def test_images_read_with_binary_file_are_decoded_resized_and_scored(spark, tmp_path):
    digits = load_digits()
    features = pd.DataFrame(digits.data / 16.0, columns=[f"px_{i}" for i in range(64)])
    estimator = LogisticRegression(max_iter=2000).fit(features, digits.target)
    model_dir = tmp_path / "digits_model"
    mlflow.sklearn.save_model(estimator, str(model_dir),
                              signature=infer_signature(features, estimator.predict(features)))
    images = tmp_path / "images"
    images.mkdir()
    chosen = list(range(0, 400, 10))
    for index in chosen:
        pixels = np.round(digits.images[index] * 255 / 16).astype("uint8")
        big = Image.fromarray(pixels, mode="L").resize((32, 32), Image.Resampling.NEAREST)
        big.convert("RGB").save(images / f"digit_{index:04d}.png")
    job = model_job(
        tmp_path, images, model_dir, "source.format=binaryFile",
        "source.options={pathGlobFilter: '*.png'}", "model.passthrough=[path]",
        "model.preprocess=[{kind: image, column: content, width: 8, height: 8, grey: true}]",
    )
    summary = run(spark, job, DAY, "digits")
    out = spark.read.parquet(job.output.path).toPandas()
    out["index"] = out["path"].str.extract(r"digit_(\d+)\.png").astype(int)
    out = out.sort_values("index")
    expected = estimator.predict(features.iloc[chosen])
    assert summary.rows_out == len(chosen)
    agreement = (out["prediction"].to_numpy() == expected).mean()
    assert agreement >= 0.95  # resizing 32 -> 8 and 8-bit rounding move a few pixels slightly
    assert out["prediction"].nunique() > 5
