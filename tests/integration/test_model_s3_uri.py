"""``s3://`` model URIs: resolved and scored from a bucket on the real moto server.

A small iris classifier is trained here, saved with ``mlflow.sklearn.save_model`` (with a
signature) and its files uploaded with boto3 under a prefix of a moto bucket. The model URI is
then resolved by ``resolve_model`` (through ``mlflow.artifacts.download_artifacts`` and MLflow's
S3 artifact repository) and scored by the model-scoring job. Nothing sets
``MLFLOW_S3_ENDPOINT_URL``: the ``aws`` fixture only sets ``AWS_ENDPOINT_URL`` and credentials,
as a user would, and the bucket exists only on moto, so every download proves the endpoint is
honoured.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import mlflow.pyfunc
import mlflow.sklearn
import numpy as np
import pytest
import sklearn
from mlflow.models import infer_signature
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from batch_scoring.jobs.config import load_job
from batch_scoring.jobs.model_resolution import (
    ModelNotFoundError,
    ModelResolutionError,
    content_hash,
    resolve_model,
)
from batch_scoring.jobs.pipeline import run

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "batch-scoring-models"
PREFIX = "iris/v1"
URI = f"s3://{BUCKET}/{PREFIX}"
ALLOWED = [f"s3://{BUCKET}/"]
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
DAY = dt.date(2026, 11, 22)


@pytest.fixture(scope="module")
def iris():
    """The iris features (snake-case columns, float64) and species."""
    data = load_iris(as_frame=True)
    return data.data.set_axis(FEATURES, axis=1), data.target


@pytest.fixture(scope="module")
def estimator(iris):
    """A logistic regression fitted on iris."""
    features, target = iris
    return LogisticRegression(C=0.7, max_iter=1000).fit(features, target)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, iris, estimator):
    """The estimator saved as an MLflow model folder, with a signature."""
    features, _ = iris
    path = tmp_path_factory.mktemp("s3_model") / "model"
    mlflow.sklearn.save_model(
        estimator, str(path), signature=infer_signature(features, estimator.predict(features)),
        # Given explicitly: MLflow's requirement inference runs a subprocess (~4 s).
        pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
    )
    return path


@pytest.fixture
def bucket(aws, model_dir):
    """``s3://BUCKET`` on moto holding the model folder's files under ``PREFIX/``."""
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": aws.region})
    for file in sorted(model_dir.rglob("*")):
        if file.is_file():
            s3.upload_file(str(file), BUCKET, f"{PREFIX}/{file.relative_to(model_dir).as_posix()}")
    return s3


def test_an_s3_model_downloads_and_predicts_like_the_estimator(bucket, tmp_path, iris, estimator, model_dir):
    features, _ = iris
    keys = [o["Key"] for o in bucket.list_objects_v2(Bucket=BUCKET)["Contents"]]
    resolved = resolve_model(URI, tmp_path / "dst", allowed_prefixes=ALLOWED)

    assert f"{PREFIX}/MLmodel" in keys
    assert resolved.uri == URI
    assert resolved.sha256 == content_hash(model_dir)
    assert len(resolved.sha256) == 64
    assert (resolved.version, resolved.run_id) == (None, None)  # no registry, no run
    assert set(resolved.flavors) == {"python_function", "sklearn"}
    assert resolved.input_names() == FEATURES
    assert Path(resolved.local_path).is_relative_to((tmp_path / "dst").resolve())
    assert sorted(p.name for p in Path(resolved.local_path).iterdir()) == sorted(
        p.name for p in model_dir.iterdir()
    )
    assert resolved.describe() == {
        "uri": URI, "version": None, "run_id": None, "sha256": content_hash(model_dir),
        "flavors": list(resolved.flavors),
    }
    loaded = mlflow.pyfunc.load_model(resolved.local_path)
    np.testing.assert_array_equal(np.asarray(loaded.predict(features)), estimator.predict(features))


@pytest.mark.parametrize("uri, missing", [
    (f"s3://{BUCKET}/nope", "nope: An error occurred (404) when calling the HeadObject operation: Not Found"),
    ("s3://no-such-bucket/iris", "bucket does not exist"),
])
def test_a_missing_s3_model_is_not_found_and_named(bucket, tmp_path, uri, missing):
    with pytest.raises(ModelNotFoundError) as error:
        resolve_model(uri, tmp_path / "dst", allowed_prefixes=["s3://"])
    message = str(error.value)
    assert f"cannot resolve model {uri!r}" in message
    assert missing in message
    assert f"check that {uri!r} holds the model" in message
    assert list((tmp_path / "dst").iterdir()) == []  # the failed download left nothing


@pytest.mark.parametrize("uri", [
    "s3://other-models/iris/v1",
    f"s3://{BUCKET}-copy/{PREFIX}",  # a sibling bucket whose name starts like the allowed one
    f"s3://{BUCKET}/../other-models/iris/v1",
])
def test_an_s3_uri_outside_the_allow_list_is_refused_before_any_request(bucket, tmp_path, uri):
    dst = tmp_path / "dst"
    with pytest.raises(ModelResolutionError) as error:
        resolve_model(uri, dst, allowed_prefixes=ALLOWED)
    message = str(error.value)
    assert not isinstance(error.value, ModelNotFoundError)
    assert message.startswith(f"model URI '{uri}")
    assert "is not allowed" in message and "model.allowed_uris" in message
    assert repr(ALLOWED[0]) in message
    assert not dst.exists()  # checked before the destination was even created


def test_the_scoring_job_scores_an_s3_model_like_the_estimator(spark, bucket, tmp_path, iris, estimator, model_dir):
    features, _ = iris
    source = tmp_path / "iris.parquet"
    features.assign(flower_id=np.arange(len(features), dtype="int64")).to_parquet(source)
    job = load_job(ROOT / "conf/jobs/model_scoring.yaml", [
        f"source.path={source}", "source.filter=null", f"model.uri={URI}",
        f"model.allowed_uris=[{ALLOWED[0]}]", "model.tracking_uri=null",
        "model.passthrough=[flower_id]", "model.output_schema=null",
        f"output.path={tmp_path / 'scored'}", "output.format=parquet", "output.partition_by=[]",
    ])
    summary = run(spark, job, DAY, "s3-model")
    out = spark.read.parquet(job.output.path).toPandas().sort_values("flower_id")

    assert (summary.rows_in, summary.rows_out, summary.rows_rejected) == (150, 150, 0)
    assert out["prediction"].tolist() == estimator.predict(features).tolist()
    assert out["flower_id"].tolist() == list(range(150))
    assert set(out["model_uri"]) == {URI}
    assert (summary.model_uri, summary.model_version) == (URI, None)
    assert summary.model_sha256 == content_hash(model_dir)
