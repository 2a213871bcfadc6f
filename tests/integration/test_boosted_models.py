"""Real LightGBM and XGBoost models: refused clearly without their library, scored exactly with it.

The libraries are not in the project's environment (tests/boosting_libs.py installs them into
a folder of their own under the pytest cache, once). Models are trained and saved in a child
process that sees that folder; the jobs and ``batch-score predict`` run in child processes,
with the folder on ``PYTHONPATH`` or without it. In local mode Spark's Python workers get the
driver's ``PYTHONPATH`` (the JVM inherits it and adds it to each worker's), so a job with the
libraries scores on the workers without further settings.

Runs on both lines: whether the workers see ``PYTHONPATH`` is Spark's business.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

import boosting_libs
from boosting_libs import NULL_ID, REQUIREMENT
from job_inputs import NO_REPORT

pytestmark = [pytest.mark.spark, pytest.mark.one_line]  # library checks and exact scores of LightGBM/XGBoost: the scorer runs on both lines in tests/spark/test_arrow_scoring.py

ROOT = Path(__file__).resolve().parents[2]
LIBRARIES = ["lightgbm", "xgboost"]
PIP = Path(os.path.abspath(sys.executable)).parent / "pip"  # as the child Python names itself
BATCH_SCORE = Path(sys.executable).parent / "batch-score"


@pytest.fixture(scope="session")
def libs(request) -> Path:
    """The folder holding lightgbm and xgboost-cpu (installed once, kept in the pytest cache)."""
    return boosting_libs.install(Path(request.config.cache.mkdir("boosting-libs")))


@pytest.fixture(scope="module")
def boosted(tmp_path_factory, libs) -> Path:
    """The trained models, their sources and the estimators' own predictions (see boosting_libs)."""
    folder = tmp_path_factory.mktemp("boosted")
    subprocess.run([sys.executable, boosting_libs.__file__, "train", str(folder)],
                   env=environment(libs), check=True, capture_output=True, text=True, timeout=300)
    return folder


def environment(libs: Path | None, **extra: str) -> dict[str, str]:
    """This process's environment with ``PYTHONPATH`` = ``libs`` (or without ``PYTHONPATH``)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("PYSPARK_")}
    return {**env, **({"PYTHONPATH": str(libs)} if libs else {}), **extra}


def write_job(folder: Path, library: str, output_root: Path) -> Path:
    """A job scoring ``sources/<library>.parquet`` into ``<output_root>/<library>`` (Parquet)."""
    job = output_root.parent / f"{library}.yaml"
    job.write_text(textwrap.dedent(f"""
        job: {library}_scores
        source: {{path: {folder / 'sources' / f'{library}.parquet'}, format: parquet}}
        model:
          uri: {folder / 'models' / library}
          allowed_uris: [{folder / 'models'}/]
          passthrough: [id]
        output: {{path: {output_root / library}, format: parquet}}
    """))
    return job


def run_job(folder: Path, library: str, output_root: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """``python -m batch_scoring.jobs.run_job`` on :func:`write_job`'s job with ``conf/local.yaml``."""
    return subprocess.run(
        [sys.executable, "-m", "batch_scoring.jobs.run_job",
         "--job", str(write_job(folder, library, output_root)),
         "--profile", str(ROOT / "conf/local.yaml"), "--run-date", "2026-11-22", *NO_REPORT],
        cwd=folder, env=env, capture_output=True, text=True, timeout=600,
    )


def predict(folder: Path, library: str, env: dict[str, str], output: Path) -> subprocess.CompletedProcess:
    """``batch-score predict --input sources/<library>.parquet --output <output>``."""
    return subprocess.run(
        [str(BATCH_SCORE), "predict", "--model", str(folder / "models" / library),
         "--input", str(folder / "sources" / f"{library}.parquet"), "--output", str(output),
         "--passthrough", "id"],
        cwd=folder, env=env, capture_output=True, text=True, timeout=300,
    )


@pytest.mark.parametrize("library", LIBRARIES)
def test_without_its_library_the_job_and_predict_exit_2_naming_it_before_spark(boosted, tmp_path, library):
    # No JVM can start in these children: a refusal after Spark started would fail otherwise.
    env = environment(None, JAVA_HOME=str(tmp_path / "no-java"))
    output_root = tmp_path / "output"
    requirement = REQUIREMENT[library]

    job = run_job(boosted, library, output_root, env)
    scored = predict(boosted, library, env, tmp_path / "scored.parquet")

    for result in (job, scored):
        assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
        assert (f"error: model {boosted / 'models' / library} needs package(s) "
                f"'{requirement.split('==')[0]}' ({requirement}), not installed") in result.stderr
        assert f"For this checkout: {PIP} install '{requirement}';" in result.stderr
        assert "Traceback" not in result.stderr
    assert not output_root.exists()
    assert not (tmp_path / "scored.parquet").exists()


def scored_rows(path: Path) -> pd.DataFrame:
    """The Parquet file or folder at ``path``, sorted by ``id``."""
    return pd.read_parquet(path).sort_values("id").reset_index(drop=True)


@pytest.mark.parametrize("library", LIBRARIES)
def test_with_its_library_the_job_scores_exactly_what_the_estimator_predicts(boosted, libs, tmp_path, library):
    expected = scored_rows(boosted / "expected" / f"{library}.parquet")
    output_root = tmp_path / "output"

    job = run_job(boosted, library, output_root, environment(libs))

    assert job.returncode == 0, job.stdout[-3000:] + job.stderr[-3000:]
    assert re.search(r"│ rows rejected +│ +1 │", job.stdout), job.stdout
    out = scored_rows(output_root / library)
    assert out["id"].tolist() == expected["id"].tolist()
    assert out["prediction"].dtype == expected["prediction"].dtype
    assert (out["prediction"] != expected["prediction"]).sum() == 0
    rejects = pd.read_parquet(output_root / f"{library}_rejects")
    assert rejects[["id", "reject_reason"]].values.tolist() == [[NULL_ID, "null_value"]]

    file = predict(boosted, library, environment(libs), tmp_path / "scored.parquet")
    assert file.returncode == 0, file.stdout[-2000:] + file.stderr[-2000:]
    by_pandas = scored_rows(tmp_path / "scored.parquet")
    assert by_pandas[["id", "prediction"]].equals(expected[["id", "prediction"]])
