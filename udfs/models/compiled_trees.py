"""Compiled tree ensembles: convert with treelite, compile with tl2cgen, load once per worker.

The optional ``compiled`` model backend (``model.backend``) replaces a tree ensemble's
``predict`` by a shared library that tl2cgen generated as C code and gcc compiled, once, on the
driver. Executors only load the library (``tl2cgen.Predictor``); they need the ``tl2cgen``
Python package but no C compiler. Supported models (all saved with ``mlflow.sklearn``, so that
they already take the one float64 array of
:func:`~batch_scoring.udfs.models.arrow_scoring.array_predictor`):

* scikit-learn ``HistGradientBoostingRegressor`` / ``Classifier`` (without categorical
  features: treelite routes categorical splits differently, 0.85 max abs diff measured here),
  ``GradientBoosting*``, ``RandomForest*``, ``ExtraTrees*``
  (``treelite.sklearn.import_model``);
* XGBoost's and LightGBM's scikit-learn estimators, when those libraries are installed
  (``treelite.frontend.from_xgboost`` on ``get_booster()``, ``from_lightgbm`` on ``booster_``).

A classifier is compiled only when its predict function is ``predict_proba`` (the model was
logged with ``pyfunc_predict_fn="predict_proba"``): the library computes probabilities, and a
class label taken from them by ``argmax`` could differ from scikit-learn's at a tie.

Inputs: scikit-learn's ``DecisionTree``-based ensembles (RandomForest, ExtraTrees,
GradientBoosting) and XGBoost compare float32 features with their thresholds, so their features
are rounded to float32 first (:attr:`CompiledLibrary.float32_inputs`) and then compare exactly
as the estimator does; HistGradientBoosting and LightGBM compare float64. NaN is routed by the
model's own missing-value direction (treelite keeps it). XGBoost also sums its trees in float32:
its predictions differ from the library's float64 sums by about 1e-6, which the driver's
check (:mod:`~batch_scoring.jobs.model_backend`, tolerance 1e-9) refuses.

Output: tl2cgen returns ``(rows, targets, classes)`` (``(n, 1, 1)`` for a regressor); it is
reshaped to ``(rows,)`` for one column, else ``(rows, k)``; a binary classifier's one
probability column ``p`` becomes ``[1 - p, p]`` as scikit-learn's ``predict_proba``.

Sources: treelite 4.8 docs (``treelite.sklearn.import_model``, ``treelite.frontend``), tl2cgen
1.0 docs (``tl2cgen.export_lib``, ``tl2cgen.Predictor``, ``tl2cgen.DMatrix``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

EXTRA_HINT = "pip install 'batch-scoring[compiled]'"
SKLEARN_TREES = (
    "HistGradientBoostingRegressor", "HistGradientBoostingClassifier",
    "GradientBoostingRegressor", "GradientBoostingClassifier",
    "RandomForestRegressor", "RandomForestClassifier",
    "ExtraTreesRegressor", "ExtraTreesClassifier",
)
_FLOAT32_SKLEARN = frozenset(n for n in SKLEARN_TREES if not n.startswith("HistGradient"))

_predictors: dict[str, Any] = {}
_lock = threading.Lock()


class NotCompilableError(ValueError):
    """The model cannot use the compiled backend; the message says why (no config path)."""


@dataclass(frozen=True)
class CompiledLibrary:
    """A compiled model library and how to feed and read it.

    Attributes:
        path: the ``.so`` file on this machine (driver: where it was compiled).
        sha256: SHA-256 (hex) of the library's bytes.
        files_name: its name among the SparkFiles once shipped (``compiled-<hash>.so``).
        float32_inputs: round features to float32 before predicting (the estimator does).
        binary_proba: the library gives one probability column that stands for two classes.
    """

    path: str
    sha256: str
    files_name: str
    float32_inputs: bool
    binary_proba: bool


def missing_tools() -> str | None:
    """Why the compiled backend cannot be built here, or None when it can.

    Checks that the ``treelite`` and ``tl2cgen`` packages are importable and that ``gcc`` is on
    ``PATH`` (only the driver compiles). Never raises.
    """
    for package in ("treelite", "tl2cgen"):
        if importlib.util.find_spec(package) is None:
            return f"{package} not installed: {EXTRA_HINT}"
    if shutil.which("gcc") is None:
        return "no C compiler: gcc is not on the driver's PATH (tl2cgen compiles with it)"
    return None


def refusal(raw: Any, predict_fn: str) -> str | None:
    """Why the estimator ``raw`` (with its pyfunc predict function name) cannot be compiled,
    or None when it can: a short phrase such as ``"a non-tree model (Ridge)"``. Never raises."""
    name = type(raw).__name__
    if _family(raw) is None:
        return f"a non-tree model ({name})"
    if getattr(raw, "is_categorical_", None) is not None and np.any(raw.is_categorical_):
        return (f"a {name} with categorical features (treelite routes categorical splits "
                "unlike scikit-learn)")
    classifier = hasattr(raw, "classes_")
    if predict_fn not in ("predict", "predict_proba") or (predict_fn == "predict_proba" and not classifier):
        return f"predict function {predict_fn!r} of a {name}"
    if classifier and predict_fn == "predict":
        return (f"a classifier ({name}) whose predict returns class labels; the compiled library "
                "returns probabilities: log the model with pyfunc_predict_fn='predict_proba' to "
                "compile it")
    if getattr(raw, "n_outputs_", 1) != 1:
        return f"a multi-output {name}"
    return None


def _family(raw: Any) -> str | None:
    """``sklearn``, ``xgboost`` or ``lightgbm`` for a supported estimator, else None."""
    module, name = type(raw).__module__, type(raw).__name__
    if module.startswith("sklearn.ensemble") and name in SKLEARN_TREES:
        return "sklearn"
    if module.startswith("xgboost") and hasattr(raw, "get_booster"):
        return "xgboost"
    if module.startswith("lightgbm") and hasattr(raw, "booster_"):
        return "lightgbm"
    return None


def treelite_model(raw: Any) -> Any:
    """The estimator as a ``treelite.Model``.

    Raises:
        NotCompilableError: when :func:`refusal` names a reason, or treelite cannot import it
            (its message included).
    """
    import treelite

    family = _family(raw)
    try:
        if family == "sklearn":
            return treelite.sklearn.import_model(raw)
        if family == "xgboost":
            return treelite.frontend.from_xgboost(raw.get_booster())
        if family == "lightgbm":
            return treelite.frontend.from_lightgbm(raw.booster_)
    except Exception as error:  # noqa: BLE001 - treelite raises its own TreeliteError and others
        raise NotCompilableError(f"treelite cannot import the {type(raw).__name__}: {error}") from error
    raise NotCompilableError(f"a non-tree model ({type(raw).__name__})")


def compile_library(raw: Any, predict_fn: str, folder: str | os.PathLike) -> CompiledLibrary:
    """Convert ``raw`` with treelite and compile it with tl2cgen and gcc into ``folder``.

    The library is written as ``folder/compiled-<first 20 hex of its SHA-256>.so`` (a name
    that changes with its bytes, so two libraries never share a SparkFiles name).

    Raises:
        NotCompilableError: the model is refused (:func:`refusal`) or treelite cannot import it.
        tl2cgen.core.TL2cgenError: when code generation or the compiler fails.
    """
    reason = refusal(raw, predict_fn)
    if reason:
        raise NotCompilableError(reason)
    import tl2cgen

    model = treelite_model(raw)
    Path(folder).mkdir(parents=True, exist_ok=True)
    built = Path(folder) / "model-build.so"
    tl2cgen.export_lib(model, toolchain="gcc", libpath=str(built),
                       params={"parallel_comp": max(1, os.cpu_count() or 1)})
    sha256 = hashlib.sha256(built.read_bytes()).hexdigest()
    library = built.with_name(f"compiled-{sha256[:20]}.so")
    os.replace(built, library)
    classes = getattr(raw, "classes_", None)
    binary = predict_fn == "predict_proba" and classes is not None and len(classes) == 2
    float32 = _family(raw) == "xgboost" or type(raw).__name__ in _FLOAT32_SKLEARN
    return CompiledLibrary(str(library), sha256, library.name, float32, binary)


class CompiledPredictor:
    """A loaded library with the interface of
    :class:`~batch_scoring.udfs.models.arrow_scoring.ArrayModel`.

    Args:
        library: what :func:`compile_library` returned (its input and output handling).
        path: where the library is on this machine (defaults to ``library.path``).
    """

    def __init__(self, library: CompiledLibrary, path: str | None = None):
        import tl2cgen

        self.library = library
        self._predictor = tl2cgen.Predictor(path or library.path, nthread=1)

    def predict(self, features: np.ndarray, params=None) -> np.ndarray:
        """Predict ``features`` (rows x inputs, float64, NaN = missing).

        Returns:
            float64 ``(rows,)`` for one output column, else ``(rows, k)`` (class probabilities).
        """
        import tl2cgen

        matrix = features.astype(np.float32) if self.library.float32_inputs else features
        raw = self._predictor.predict(tl2cgen.DMatrix(np.ascontiguousarray(matrix, dtype=np.float64),
                                                      dtype="float64"))
        values = np.asarray(raw, dtype=np.float64).reshape(len(features), -1)
        if self.library.binary_proba and values.shape[1] == 1:
            return np.column_stack([1.0 - values[:, 0], values[:, 0]])
        return values[:, 0] if values.shape[1] == 1 else values


def load_shipped(library: CompiledLibrary) -> CompiledPredictor:
    """The library's predictor in this Python worker, loaded once per process (by SHA-256).

    Looks the file up with ``SparkFiles.get(library.files_name)`` (it was added with
    ``SparkContext.addFile``), falling back to ``library.path`` outside Spark. Kept here at module
    level, as :mod:`~batch_scoring.udfs.models.model_cache` keeps models, so every task of a
    reused worker shares one loaded library.

    Raises:
        tl2cgen.core.TL2cgenError: when the library cannot be loaded (e.g. another platform).
    """
    with _lock:
        if library.sha256 in _predictors:
            return _predictors[library.sha256]
    predictor = CompiledPredictor(library, _local_path(library))
    with _lock:
        return _predictors.setdefault(library.sha256, predictor)


def _local_path(library: CompiledLibrary) -> str:
    try:
        from pyspark import SparkFiles

        path = SparkFiles.get(library.files_name)
        if os.path.exists(path):
            return path
    except Exception:  # noqa: BLE001 - no SparkContext on this process: use the driver's path
        pass
    return library.path
