"""A model's libraries and outputs are checked before Spark (issue 18, finding 10).

Real scikit-learn models saved with MLflow; their ``requirements.txt`` and ``MLmodel`` are
edited as a model saved elsewhere would have them (``lightgbm``, not installed here; another
scikit-learn version). ``run_job.main`` and ``predict.main`` run in this process.
"""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sklearn
import yaml

from batch_scoring.jobs import predict, run_job
from batch_scoring.jobs.model_environment import install_command

FEATURES = ["mean radius", "mean texture", "mean smoothness"]
PIP = f"{Path(sys.executable).parent / 'pip'} install"


def listing(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A LogisticRegression on breast-cancer features, saved twice: ``predict`` and ``predict_proba``."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    data = load_breast_cancer(as_frame=True)
    x = data.data[FEATURES].rename(columns=lambda c: c.replace(" ", "_"))
    model = LogisticRegression(max_iter=1000).fit(x, data.target)
    root = tmp_path_factory.mktemp("models")
    mlflow.sklearn.save_model(model, str(root / "labels"),
                              signature=infer_signature(x, model.predict(x)))
    mlflow.sklearn.save_model(model, str(root / "proba"), pyfunc_predict_fn="predict_proba",
                              signature=infer_signature(x, model.predict_proba(x)))
    return root, model, x


def edited(saved, tmp_path, name: str, requirement: str | None = None, version: str | None = None) -> Path:
    """A copy of the ``labels`` model with an extra requirement and/or another sklearn version."""
    root = saved[0]
    folder = root / name
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(root / "labels", folder)
    if requirement:
        with open(folder / "requirements.txt", "a") as file:
            file.write(f"\n{requirement}\n")
    if version:
        mlmodel = yaml.safe_load((folder / "MLmodel").read_text())
        mlmodel["flavors"]["sklearn"]["sklearn_version"] = version
        (folder / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    return folder


@pytest.fixture
def job_folder(tmp_path, monkeypatch, saved):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "src").mkdir()
    saved[2].head(40).reset_index(names="id").to_parquet(tmp_path / "src" / "part-0.parquet")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "kept.parquet").write_bytes(b"earlier run")
    return tmp_path


def model_job(folder: Path, model: Path, *extra: str) -> Path:
    job = folder / "job.yaml"
    job.write_text(textwrap.dedent(f"""
        job: cancer
        source: {{path: src, format: parquet}}
        model:
          uri: {model}
          allowed_uris: [{model.parent}/]
          passthrough: [id]
        output: {{path: out, format: parquet}}
    """) + "".join(f"{line}\n" for line in extra))
    return job


def refused(folder: Path, capsys, spark_starts: list[str], job: Path, *args: str) -> tuple[int, str]:
    before = listing(folder / "out")
    code = run_job.main(["--job", str(job), "--run-date", "2026-01-01", *args])
    assert spark_starts == []
    assert listing(folder / "out") == before
    return code, capsys.readouterr().err


def test_a_model_needing_a_missing_library_is_exit_2_with_the_install_commands(job_folder, saved, capsys, spark_starts):
    model = edited(saved, job_folder, "needs_lightgbm", requirement="lightgbm==4.5.0")

    code, error = refused(job_folder, capsys, spark_starts, model_job(job_folder, model))

    assert code == 2
    assert f"model {model} needs package(s) 'lightgbm' (lightgbm==4.5.0), not installed" in error
    assert f"For this checkout: {PIP} 'lightgbm==4.5.0'" in error
    assert "for a cluster: add lightgbm==4.5.0 to the job's requirements" in error


def test_a_model_saved_with_xgboost_cpu_asks_for_one_of_its_two_names(job_folder, saved, capsys, spark_starts):
    # What mlflow.xgboost writes when the model was trained with xgboost-cpu: both names.
    model = edited(saved, job_folder, "needs_xgboost", requirement="xgboost-cpu==3.2.0\nxgboost==3.2.0")

    code, error = refused(job_folder, capsys, spark_starts, model_job(job_folder, model))

    assert code == 2
    assert f"model {model} needs package(s) 'xgboost-cpu' (xgboost-cpu==3.2.0), not installed" in error
    assert f"For this checkout: {PIP} 'xgboost-cpu==3.2.0';" in error
    assert "'xgboost==" not in error


def test_predict_refuses_the_same_model_with_the_same_words(saved, tmp_path, capsys):
    model = edited(saved, tmp_path, "needs_lightgbm_predict", requirement="lightgbm==4.5.0")

    code = predict.main(["--model", str(model), "--record", json.dumps({f: 1.0 for f in saved[2]})])

    assert code == 2
    assert "needs package(s) 'lightgbm'" in capsys.readouterr().err


def test_a_model_saved_with_another_sklearn_minor_is_exit_2_unless_allowed(job_folder, saved, capsys, spark_starts):
    model = edited(saved, job_folder, "sklearn_191", version="1.9.1")

    code, error = refused(job_folder, capsys, spark_starts, model_job(job_folder, model))

    assert code == 2
    assert (f"model {model} was saved with scikit-learn 1.9.1; this environment has "
            f"{sklearn.__version__}") in error
    assert f"{PIP} 'scikit-learn==1.9.1'" in error
    assert "or set model.allow_version_mismatch: true to score anyway" in error


def test_predict_scores_a_version_mismatch_only_when_allowed(saved, tmp_path, capsys):
    model = edited(saved, tmp_path, "sklearn_191_predict", version="1.9.1")
    record = json.dumps(saved[2].iloc[0].to_dict())

    assert predict.main(["--model", str(model), "--record", record]) == 2
    assert "or set --allow-version-mismatch to score anyway" in capsys.readouterr().err

    assert predict.main(["--model", str(model), "--record", record, "--allow-version-mismatch"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["prediction"] == saved[1].predict(saved[2].iloc[[0]])[0]


def test_job_requirements_missing_here_are_exit_2(job_folder, saved, capsys, spark_starts):
    code, error = refused(job_folder, capsys, spark_starts, model_job(job_folder, saved[0] / "labels",
                                                        "requirements: [lightgbm==4.5.0]"))
    assert code == 2
    assert "requirements: lightgbm==4.5.0 not installed in this environment" in error
    assert f"install with {PIP} 'lightgbm==4.5.0'" in error


def test_a_predict_proba_model_gets_its_two_outputs_from_the_signature(saved, capsys):
    root, model, x = saved
    record = json.dumps(x.iloc[0].to_dict())

    assert predict.main(["--model", str(root / "proba"), "--record", record]) == 0
    scored = json.loads(capsys.readouterr().out)
    expected = model.predict_proba(x.iloc[[0]])[0]
    np.testing.assert_allclose([scored["prediction_0"], scored["prediction_1"]], expected, rtol=1e-12)


def test_an_output_schema_that_disagrees_with_the_signature_is_exit_2_naming_the_flag(saved, capsys):
    root, _, x = saved
    code = predict.main(["--model", str(root / "proba"), "--output-schema", "p double",
                         "--record", json.dumps(x.iloc[0].to_dict())])
    assert code == 2
    error = capsys.readouterr().err
    assert "--output-schema names 1 column(s) ['p'], but the model's signature declares 2 output(s)" in error
    assert "model.output_schema" not in error


def test_the_install_command_is_relative_to_the_folder_holding_the_venv(monkeypatch):
    venv = Path(sys.executable).parent.parent
    monkeypatch.chdir(venv.parent)
    assert install_command(["lightgbm==4.5.0"]) == f"{venv.name}/bin/pip install 'lightgbm==4.5.0'"
