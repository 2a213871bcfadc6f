"""Real LightGBM and XGBoost models for the tests, without the libraries in the project's environment.

Neither library is a dependency of the package. :func:`install` puts them with
``pip install --target`` into a folder of their own (once; later calls reuse it), and the tests
put that folder on ``PYTHONPATH`` of only the child processes that should see them.

Run as a script in a process that sees the libraries, ``python boosting_libs.py train FOLDER``
trains two small models on scikit-learn's bundled data and writes, for each library:

* ``FOLDER/models/<library>``: the model saved with ``mlflow.<library>.save_model`` and a
  signature (``requirements.txt`` as MLflow infers it, so as a user's model would have it);
* ``FOLDER/sources/<library>.parquet``: the rows to score, ``id`` (int64) and the features
  (float64); the row with ``id`` :data:`NULL_ID` has a null first feature (a row the job rejects);
* ``FOLDER/expected/<library>.parquet``: ``id`` and ``prediction``, the estimator's own
  ``predict`` on the other rows, in plain pandas.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

LIBRARIES = ["lightgbm==4.7.0", "narwhals==2.29.0", "xgboost-cpu==3.2.0"]
"""What ``pip install --no-deps`` installs: LightGBM and its one dependency missing here
(numpy and scipy, the others, are the project's); xgboost-cpu, the ``xgboost`` module without
the GPU (NCCL) libraries. xgboost 3.3 and later need Python 3.12."""

REQUIREMENT = {"lightgbm": "lightgbm==4.7.0", "xgboost": "xgboost-cpu==3.2.0"}
"""The requirement each library's model asks for when it is missing."""

NULL_ID = 1_000_003


def install(cache: Path) -> Path:
    """The folder holding :data:`LIBRARIES`, installed under ``cache`` on the first call.

    Needs the package registry on the first call. The folder's name is derived from the
    requirements and this Python's version, so a change of either installs afresh.

    Raises:
        subprocess.CalledProcessError: when pip fails (its output is in the error).
    """
    key = hashlib.sha256(" ".join([sys.version, *LIBRARIES]).encode()).hexdigest()[:16]
    target = cache / f"libs-{key}"
    if target.is_dir():
        return target
    partial = cache / f"libs-{key}.{os.getpid()}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(partial), *LIBRARIES],
        check=True, capture_output=True, text=True,
    )
    os.replace(partial, target)
    return target


def _save(library: str, estimator, x, folder: Path) -> None:
    import mlflow.lightgbm
    import mlflow.xgboost
    import numpy as np
    from mlflow.models import infer_signature

    save = {"lightgbm": mlflow.lightgbm.save_model, "xgboost": mlflow.xgboost.save_model}[library]
    save(estimator, str(folder / "models" / library), signature=infer_signature(x, estimator.predict(x)))
    rows = x.assign(id=np.arange(1_000_000, 1_000_000 + len(x), dtype="int64"))[["id", *x.columns]]
    rows.loc[rows["id"] == NULL_ID, x.columns[0]] = None
    rows.to_parquet(folder / "sources" / f"{library}.parquet", index=False)
    scored = rows[rows["id"] != NULL_ID]
    expected = scored[["id"]].assign(prediction=estimator.predict(scored[list(x.columns)]))
    expected.to_parquet(folder / "expected" / f"{library}.parquet", index=False)


def train(folder: Path) -> None:
    """Train and save a LightGBM regressor (diabetes, 442 rows, 10 features) and an XGBoost
    classifier (breast cancer, 569 rows, 30 features, 0/1 labels) into ``folder``."""
    import lightgbm
    import xgboost
    from sklearn.datasets import load_breast_cancer, load_diabetes

    for name in ("models", "sources", "expected"):
        (folder / name).mkdir(parents=True, exist_ok=True)
    x, y = load_diabetes(return_X_y=True, as_frame=True)
    regressor = lightgbm.LGBMRegressor(n_estimators=20, num_leaves=7, verbose=-1).fit(x, y)
    _save("lightgbm", regressor, x, folder)
    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    x = x.rename(columns=lambda c: c.replace(" ", "_"))
    classifier = xgboost.XGBClassifier(n_estimators=10, max_depth=3, n_jobs=1).fit(x, y)
    _save("xgboost", classifier, x, folder)


if __name__ == "__main__":
    if sys.argv[1:2] != ["train"] or len(sys.argv) != 3:
        sys.exit("usage: python boosting_libs.py train FOLDER")
    train(Path(sys.argv[2]))
