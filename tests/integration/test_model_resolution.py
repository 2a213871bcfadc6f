"""Model URI resolution against a real MLflow tracking server (fixtures in tests/conftest.py)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import mlflow.pyfunc
import mlflow.sklearn
import numpy as np
import pytest

from batch_scoring.jobs.model_resolution import (
    ModelResolutionError,
    ResolvedModel,
    check_allowed,
    content_hash,
    resolve_model,
)
from ports import free_port

pytestmark = pytest.mark.one_line  # MLflow resolution on the driver: no Spark-line behaviour

ALLOW_ALL = ["models:/", "runs:/", "/", "file://"]
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def resolve(uri: str, dst: Path, models, **kwargs) -> ResolvedModel:
    kwargs.setdefault("allowed_prefixes", ALLOW_ALL)
    return resolve_model(uri, dst, tracking_uri=models.tracking_uri, **kwargs)


def assert_predicts_like(resolved: ResolvedModel, estimator, features) -> None:
    loaded = mlflow.pyfunc.load_model(resolved.local_path)
    np.testing.assert_array_equal(
        np.asarray(loaded.predict(features)), estimator.predict(features)
    )


def test_runs_uri(registered_models, tmp_path):
    models = registered_models
    resolved = resolve(models.uri_v1_run, tmp_path, models)

    assert resolved.uri == models.uri_v1_run
    assert resolved.version is None
    assert resolved.run_id == models.run_id_v1
    assert set(resolved.flavors) == {"python_function", "sklearn"}
    assert Path(resolved.local_path, "MLmodel").is_file()
    assert Path(resolved.local_path).is_relative_to(tmp_path.resolve())
    assert resolved.input_names() == FEATURES
    assert_predicts_like(resolved, models.classifier_v1, models.features)


def test_registered_version(registered_models, tmp_path):
    models = registered_models
    resolved = resolve(models.uri_v1, tmp_path, models)

    assert (resolved.version, resolved.run_id) == ("1", models.run_id_v1)
    assert resolved.input_names() == FEATURES
    assert_predicts_like(resolved, models.classifier_v1, models.features)


def test_alias_resolves_to_its_version(registered_models, tmp_path):
    models = registered_models
    resolved = resolve(models.uri_champion, tmp_path, models)

    assert (resolved.version, resolved.run_id) == ("1", models.run_id_v1)
    assert resolved.sha256 == resolve(models.uri_v1, tmp_path / "v1", models).sha256
    described = resolved.describe()
    assert json.loads(json.dumps(described)) == {
        "uri": models.uri_champion, "version": "1", "run_id": models.run_id_v1,
        "sha256": resolved.sha256, "flavors": list(resolved.flavors),
    }
    assert_predicts_like(resolved, models.classifier_v1, models.features)


def test_latest_is_the_highest_version(registered_models, tmp_path):
    models = registered_models
    resolved = resolve(models.uri_latest, tmp_path, models)

    assert (resolved.version, resolved.run_id) == ("2", models.run_id_v2)
    assert_predicts_like(resolved, models.classifier_v2, models.features)
    assert not np.array_equal(
        models.classifier_v1.predict_proba(models.features),
        models.classifier_v2.predict_proba(models.features),
    )


def test_local_folder_and_file_uri(registered_models, tmp_path):
    models = registered_models
    downloaded = resolve(models.uri_v1, tmp_path / "download", models)

    local = resolve_model(downloaded.local_path, tmp_path / "local", allowed_prefixes=["/"])
    as_file_uri = Path(downloaded.local_path).as_uri()
    from_uri = resolve_model(as_file_uri, tmp_path / "file", allowed_prefixes=["file://"])

    assert local.sha256 == from_uri.sha256 == downloaded.sha256
    assert local.local_path != downloaded.local_path  # copied into the destination
    assert Path(local.local_path).is_relative_to((tmp_path / "local").resolve())
    assert (local.version, local.run_id) == (None, models.run_id_v1)  # run id from MLmodel
    assert_predicts_like(local, models.classifier_v1, models.features)


def test_relative_local_path(registered_models, tmp_path, monkeypatch):
    models = registered_models
    downloaded = resolve(models.uri_v1, tmp_path / "download", models)
    monkeypatch.chdir(Path(downloaded.local_path).parent)
    relative = Path(downloaded.local_path).name

    resolved = resolve_model(relative, tmp_path / "local", allowed_prefixes=[relative])

    assert resolved.sha256 == downloaded.sha256


def test_content_hash_is_stable_and_tells_versions_apart(registered_models, tmp_path):
    models = registered_models
    first = resolve(models.uri_v1, tmp_path / "a", models)
    second = resolve(models.uri_v1, tmp_path / "b", models)
    other = resolve(models.uri_v2, tmp_path / "c", models)

    assert first.local_path != second.local_path
    assert first.sha256 == second.sha256 == content_hash(first.local_path)
    assert len(first.sha256) == 64
    assert other.sha256 != first.sha256


def test_resolving_twice_into_one_folder_keeps_models_apart(registered_models, tmp_path):
    models = registered_models
    first = resolve(models.uri_v1, tmp_path, models)
    second = resolve(models.uri_v2, tmp_path, models)

    assert first.local_path != second.local_path
    assert content_hash(first.local_path) == first.sha256


def test_model_without_signature(registered_models, tmp_path):
    models = registered_models
    resolved = resolve(models.uri_unsigned, tmp_path, models)

    assert resolved.signature is None
    assert resolved.input_names() is None
    assert resolved.run_id == models.run_id_unsigned
    assert_predicts_like(resolved, models.unsigned, models.features)


def test_model_stored_as_plain_run_artifacts(registered_models, tmp_path):
    """The MLflow 2 layout: the model folder logged as ordinary artifacts of a run."""
    models = registered_models
    client = mlflow.MlflowClient(tracking_uri=models.tracking_uri)
    saved = tmp_path / "saved"
    mlflow.sklearn.save_model(models.classifier_v2, saved, pip_requirements=["scikit-learn"])
    experiment_id = client.get_experiment_by_name("iris").experiment_id
    run_id = client.create_run(experiment_id).info.run_id
    client.log_artifacts(run_id, str(saved), "legacy/model")
    client.set_terminated(run_id)

    resolved = resolve(f"runs:/{run_id}/legacy/model", tmp_path / "dst", models)

    assert resolved.sha256 == content_hash(saved)
    assert resolved.run_id == run_id  # MLmodel has none: saved outside a run
    assert_predicts_like(resolved, models.classifier_v2, models.features)


@pytest.mark.parametrize("allowed", [[], ["models:/other_model/", "runs:/"]])
def test_uri_outside_allow_list_is_refused_before_any_download(
    registered_models, tmp_path, allowed
):
    models = registered_models
    dst = tmp_path / "dst"

    with pytest.raises(ModelResolutionError) as error:
        resolve(models.uri_v1, dst, models, allowed_prefixes=allowed)

    message = str(error.value)
    assert models.uri_v1 in message and "model.allowed_uris" in message
    for prefix in allowed:
        assert repr(prefix) in message
    assert not dst.exists() or not any(dst.iterdir())


def test_check_allowed():
    check_allowed("models:/churn@champion", ["s3://bucket/", "models:/churn@"])
    with pytest.raises(ModelResolutionError, match="empty"):
        check_allowed("models:/churn@champion", [])
    check_allowed("../models/churn", ["../models/"])
    check_allowed("/models/approved/a/../b", ["/models/approved/"])
    with pytest.raises(ModelResolutionError, match="that is, /tmp/evil"):
        check_allowed("/models/approved/../../tmp/evil", ["/models/approved/"])
    with pytest.raises(ModelResolutionError, match="that is, s3://bucket/other"):
        check_allowed("s3://bucket/models/../other", ["s3://bucket/models/"])


def test_encoded_dot_dot_in_file_uri_is_refused(tmp_path):
    uri = f"file://{tmp_path}/approved/%2e%2e/elsewhere"
    with pytest.raises(ModelResolutionError, match=r"'\.\.'"):
        resolve_model(uri, tmp_path / "dst", allowed_prefixes=[f"file://{tmp_path}/approved/"])
    assert not (tmp_path / "dst").exists()


@pytest.mark.parametrize(
    "uri_of",
    [
        lambda m: f"models:/{m.name}@no_such_alias",
        lambda m: f"models:/{m.name}/99",
        lambda m: "models:/no_such_model/1",
        lambda m: "models:/no_such_model/latest",
        lambda m: "runs:/0123456789abcdef0123456789abcdef/model",
        lambda m: f"runs:/{m.run_id_v1}/no_such_path",
    ],
    ids=["unknown-alias", "unknown-version", "unknown-model", "latest-of-unknown-model",
         "unknown-run", "unknown-artifact-path"],
)
def test_unknown_registry_or_run_entries(registered_models, tmp_path, uri_of):
    models = registered_models
    uri = uri_of(models)

    with pytest.raises(ModelResolutionError) as error:
        resolve(uri, tmp_path, models)

    assert uri in str(error.value)
    assert not any(tmp_path.iterdir())  # a failed download leaves nothing behind


def test_missing_local_path_and_folder_without_mlmodel(tmp_path):
    missing = str(tmp_path / "nowhere")
    with pytest.raises(ModelResolutionError, match="does not exist") as error:
        resolve_model(missing, tmp_path / "dst", allowed_prefixes=["/"])
    assert missing in str(error.value)

    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelResolutionError, match="no MLmodel file"):
        resolve_model(str(tmp_path / "empty"), tmp_path / "dst", allowed_prefixes=["/"])


def test_registry_stage_is_refused(tmp_path):
    with pytest.raises(ModelResolutionError, match="stage"):
        resolve_model("models:/churn/Production", tmp_path, allowed_prefixes=["models:/"])


@pytest.mark.parametrize("uri", ["models:/iris_classifier/1", "runs:/0123abcd/model"])
def test_unreachable_tracking_server(tmp_path, monkeypatch, uri):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    nobody = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()

    with pytest.raises(ModelResolutionError) as error:
        resolve_model(uri, tmp_path, allowed_prefixes=ALLOW_ALL, tracking_uri=nobody)

    assert time.monotonic() - started < 30
    assert nobody in str(error.value) and uri in str(error.value)
    assert "cannot be reached" in str(error.value)


def test_global_mlflow_state_is_untouched(registered_models, tmp_path):
    before = (mlflow.get_tracking_uri(), os.environ.get("MLFLOW_TRACKING_URI"))
    resolve(registered_models.uri_champion, tmp_path, registered_models)
    assert (mlflow.get_tracking_uri(), os.environ.get("MLFLOW_TRACKING_URI")) == before
    assert before[1] != registered_models.tracking_uri


@pytest.fixture(scope="module")
def sqlite_registry(tmp_path_factory):
    """A real MLflow registry in a SQLite file at an absolute path (``sqlite:////...``), holding
    ``demand`` versions 1 and 2 with alias ``champion`` on version 2."""
    import sklearn
    from sklearn.linear_model import LinearRegression

    folder = tmp_path_factory.mktemp("sqlite_registry")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment_id = client.create_experiment("demand", artifact_location=(folder / "artifacts").as_uri())
    client.create_registered_model("demand")
    for version in (1, 2):
        run = client.create_run(experiment_id)
        path = folder / f"model_{version}"
        mlflow.sklearn.save_model(LinearRegression().fit([[0.0], [1.0]], [0.0, float(version)]), path,
                                  pip_requirements=[f"scikit-learn=={sklearn.__version__}"])
        client.create_model_version("demand", path.as_uri(), run_id=run.info.run_id)
    client.set_registered_model_alias("demand", "champion", "2")
    return uri


@pytest.mark.parametrize("uri, listed", [
    ("models:/demand/7", "'demand' has versions 2, 1 and aliases @champion -> 2"),
    ("models:/demand@chamipon", "'demand' has versions 2, 1 and aliases @champion -> 2"),
    ("models:/demnad/1", "the registry has no model named 'demnad'; nearest: demand"),
])
def test_a_registry_miss_shows_the_uri_as_given_and_what_exists(sqlite_registry, tmp_path, uri, listed):
    assert sqlite_registry.startswith("sqlite:////")

    with pytest.raises(ModelResolutionError) as error:
        resolve_model(uri, tmp_path, allowed_prefixes=ALLOW_ALL, tracking_uri=sqlite_registry)

    message = str(error.value)
    assert f"registry at {sqlite_registry}" in message, message
    assert message.endswith(listed), message


def test_a_user_name_password_and_query_are_never_shown(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    port = free_port()

    with pytest.raises(ModelResolutionError) as error:
        resolve_model("models:/demand/1", tmp_path, allowed_prefixes=ALLOW_ALL,
                      tracking_uri=f"http://ana:s3cret@127.0.0.1:{port}/mlflow?token=abc#x")

    message = str(error.value)
    assert f"http://127.0.0.1:{port}/mlflow " in message, message
    assert "s3cret" not in message and "ana:" not in message and "token=abc" not in message
