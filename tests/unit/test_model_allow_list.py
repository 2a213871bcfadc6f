"""The model allow-list holds on the resolved location: real folders, real symbolic links.

Issue 15, reproduction 1: with ``model.allowed_uris: [<models>/]`` and
``<models>/linkdir -> <elsewhere>``, ``<models>/linkdir/m`` loaded a model from outside the
allowed folder. Loading a model runs its code, so it must be refused (exit 2) before any copy.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import mlflow.sklearn
import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

from batch_scoring.jobs import run_job
from batch_scoring.jobs.model_resolution import (
    ModelResolutionError,
    check_allowed,
    check_model_folder,
    resolve_model,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory) -> Path:
    """A real (tiny) MLflow scikit-learn model, saved once (saving takes seconds)."""
    folder = tmp_path_factory.mktemp("saved") / "model"
    estimator = LinearRegression().fit(np.arange(6.0).reshape(3, 2), np.array([1.0, 2.0, 3.0]))
    mlflow.sklearn.save_model(estimator, str(folder))
    return folder


@pytest.fixture
def tree(tmp_path, saved_model):
    """``models/`` (allowed) with a real model, ``elsewhere/`` (not allowed) with another, and
    ``models/linkdir -> elsewhere``."""
    models, elsewhere = tmp_path / "models", tmp_path / "elsewhere"
    models.mkdir()
    elsewhere.mkdir()
    shutil.copytree(saved_model, models / "good")
    shutil.copytree(saved_model, elsewhere / "m")
    (models / "linkdir").symlink_to(elsewhere, target_is_directory=True)
    return tmp_path


def test_symlinked_folder_inside_allowed_folder_is_refused(tree):
    allowed = [f"{tree}/models/"]
    uri = f"{tree}/models/linkdir/m"
    with pytest.raises(ModelResolutionError) as error:
        check_allowed(uri, allowed)
    message = str(error.value)
    assert f"{tree}/elsewhere/m" in message and "symbolic links followed" in message
    assert "model.allowed_uris" in message
    with pytest.raises(ModelResolutionError, match="symbolic links followed"):
        check_allowed(f"file://{uri}", [f"file://{tree}/models/"])


def test_resolve_model_refuses_it_before_copying_anything(tree):
    dst = tree / "dst"
    with pytest.raises(ModelResolutionError, match="symbolic links followed"):
        resolve_model(f"{tree}/models/linkdir/m", dst, allowed_prefixes=[f"{tree}/models/"])
    assert not dst.exists() or not any(dst.iterdir())


def test_the_model_job_exits_2_before_spark_starts(tree, capsys):
    code = run_job.main([
        "--job", str(ROOT / "conf/jobs/model_scoring.yaml"), "--run-date", "2026-11-22",
        "--set", f"model.uri={tree}/models/linkdir/m",
        "--set", f"model.allowed_uris=[{tree}/models/]",
        "--set", f"source.path={tree}/source", "--set", f"output.path={tree}/out",
    ])
    assert code == 2
    err = capsys.readouterr().err
    assert "symbolic links followed" in err and f"{tree}/elsewhere/m" in err
    assert not (tree / "out").exists()


def test_a_link_inside_the_model_folder_leading_outside_is_refused_naming_it(tree):
    model = tree / "models" / "good"
    (tree / "elsewhere" / "payload.py").write_text("print('ran')\n")
    link = model / "code" / "helper.py"
    link.parent.mkdir()
    link.symlink_to(tree / "elsewhere" / "payload.py")
    with pytest.raises(ModelResolutionError) as error:
        check_allowed(str(model), [f"{tree}/models/"])
    assert str(link) in str(error.value) and f"{tree}/elsewhere/payload.py" in str(error.value)
    dst = tree / "dst"
    with pytest.raises(ModelResolutionError, match="symbolic link"):
        resolve_model(str(model), dst, allowed_prefixes=[f"{tree}/models/"])
    assert not dst.exists() or not any(dst.iterdir())


def test_a_chain_of_links_through_an_allowed_folder_is_followed(tree):
    model = tree / "models" / "good"
    shared = tree / "models" / "shared"
    shared.mkdir()
    (shared / "escape").symlink_to(tree / "elsewhere", target_is_directory=True)
    (model / "shared").symlink_to(shared, target_is_directory=True)
    with pytest.raises(ModelResolutionError, match="escape"):
        check_model_folder(model, [f"{tree}/models/"], str(model))


def test_links_inside_the_folder_or_the_allow_list_are_fine_and_the_model_resolves(tree):
    model = tree / "models" / "good"
    (model / "MLmodel.link").symlink_to(model / "MLmodel")  # inside the folder
    (tree / "models" / "notes.txt").write_text("approved\n")
    (model / "notes.txt").symlink_to(tree / "models" / "notes.txt")  # inside the allow-list
    resolved = resolve_model(str(model), tree / "dst", allowed_prefixes=[f"{tree}/models/"])
    assert Path(resolved.local_path).is_relative_to(tree / "dst")
    assert not any(p.is_symlink() for p in Path(resolved.local_path).rglob("*"))


def test_an_allowed_prefix_that_is_itself_a_link_allows_what_it_leads_to(tree):
    (tree / "approved").symlink_to(tree / "models", target_is_directory=True)
    check_allowed(f"{tree}/approved/good", [f"{tree}/approved/"])


@pytest.mark.parametrize("uri_of, allowed_of", [
    (lambda t: f"{t}/models/../elsewhere/m", lambda t: [f"{t}/models/"]),
    (lambda t: f"file://{t}/models/%2e%2e/elsewhere/m", lambda t: [f"file://{t}/models/"]),
    (lambda t: f"file://{t}/models/%2E%2E/elsewhere/m", lambda t: [f"file://{t}/models/"]),
    (lambda t: f"{t}/Models/good", lambda t: [f"{t}/models/"]),
    (lambda t: f"{t}/models_evil/m", lambda t: [f"{t}/models/"]),
    (lambda t: "s3://bucket/models/%2e%2e/other/m", lambda t: ["s3://bucket/models/"]),
    (lambda t: "s3://bucket/models/../other/m", lambda t: ["s3://bucket/models/"]),
    (lambda t: "models:/churn_v2/1", lambda t: ["models:/churn/"]),
    (lambda t: "S3://bucket/models/m", lambda t: ["s3://bucket/models/"]),
], ids=["dot-dot", "encoded-dot-dot", "encoded-dot-dot-upper", "case", "sibling-prefix",
        "s3-encoded-dot-dot", "s3-dot-dot", "registry-sibling", "scheme-case"])
def test_old_tricks_stay_refused(tree, uri_of, allowed_of):
    shutil.copytree(tree / "models" / "good", tree / "models_evil" / "m")
    with pytest.raises(ModelResolutionError):
        check_allowed(uri_of(tree), allowed_of(tree))


def test_remote_and_plain_local_uris_still_pass(tree):
    check_allowed("models:/churn@champion", ["models:/churn@"])
    check_allowed("s3://bucket/models/churn/v3", ["s3://bucket/models/"])
    check_allowed(f"{tree}/models/good", [f"{tree}/models/"])
    check_allowed(f"file://{tree}/models/good", [f"file://{tree}/models/"])
    check_allowed(f"file://{tree}/models/good", ["file://"])
    check_allowed(f"{tree}/models/good", ["/"])
