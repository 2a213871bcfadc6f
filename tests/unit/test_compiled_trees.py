"""The compiled tree backend without Spark: treelite/tl2cgen conversion, equality with the
estimators' own predictions, and the refusals and fall-backs of ``model.backend``.

Real estimators, real compiles with gcc, real MLflow model folders; timings are never asserted.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest
from mlflow.models import Model, infer_signature

from batch_scoring.jobs.errors import ConfigError
from batch_scoring.jobs.model_backend import TOLERANCE, choose_backend, max_difference, within_tolerance
from batch_scoring.jobs.model_resolution import ResolvedModel, content_hash
from batch_scoring.udfs.models import compiled_trees
from batch_scoring.udfs.models.arrow_scoring import check_array_model
from batch_scoring.udfs.models.model_scoring import ScoringSpec
from batch_scoring.udfs.models.model_signature import model_inputs

pytest.importorskip("tl2cgen")
pytestmark = pytest.mark.skipif(compiled_trees.missing_tools() is not None,
                                reason=str(compiled_trees.missing_tools()))

FEATURES = ["x0", "x1", "x2", "x3"]


def data(rows: int = 600, nan_share: float = 0.0, seed: int = 3) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, len(FEATURES)))
    y = 2 * x[:, 0] + np.sin(3 * x[:, 1]) + 0.1 * rng.normal(size=rows)
    x[rng.random(x.shape) < nan_share] = np.nan
    return pd.DataFrame(x, columns=FEATURES), y


def saved(estimator, frame: pd.DataFrame, folder, predict_fn: str = "predict") -> tuple[ResolvedModel, ScoringSpec]:
    """``estimator`` saved by mlflow.sklearn with a signature, as the job resolves it."""
    import mlflow.sklearn

    output = getattr(estimator, predict_fn)(frame)
    mlflow.sklearn.save_model(estimator, str(folder), signature=infer_signature(frame, output),
                              pyfunc_predict_fn=predict_fn, serialization_format="cloudpickle")
    meta = Model.load(str(folder))
    resolved = ResolvedModel(str(folder), str(folder), content_hash(folder), None, None,
                             tuple(meta.flavors), meta.signature)
    columns = ({"prediction": "double"} if np.ndim(output) == 1
               else {f"prediction_{i}": "double" for i in range(np.shape(output)[1])})
    return resolved, ScoringSpec(tuple(model_inputs(meta.signature, None, str(folder))), columns, ())


def compiled_and_native(estimator, x: np.ndarray, folder, predict_fn: str = "predict"):
    library = compiled_trees.compile_library(estimator, predict_fn, folder)
    compiled = compiled_trees.CompiledPredictor(library).predict(np.asfortranarray(x))
    return compiled, getattr(estimator, predict_fn)(x), library


def test_hist_gradient_boosting_with_nan_inputs_matches_within_the_tolerance(tmp_path):
    from sklearn.ensemble import HistGradientBoostingRegressor

    frame, y = data(nan_share=0.15)
    estimator = HistGradientBoostingRegressor(max_iter=40, random_state=0).fit(frame.to_numpy(), y)
    x = frame.to_numpy()
    compiled, native, library = compiled_and_native(estimator, x, tmp_path)
    assert np.isnan(x).any() and compiled.shape == native.shape == (len(x),)
    assert within_tolerance(native, compiled), max_difference(native, compiled)
    assert not library.float32_inputs and len(library.sha256) == 64


@pytest.mark.parametrize("name", ["RandomForestRegressor", "ExtraTreesRegressor", "GradientBoostingRegressor"])
def test_decision_tree_ensembles_match_also_next_to_their_thresholds(tmp_path, name):
    """scikit-learn's DecisionTree ensembles compare float32 features: values one float64 step
    away from a threshold must go the way the estimator sends them."""
    import sklearn.ensemble

    frame, y = data()
    estimator = getattr(sklearn.ensemble, name)(n_estimators=15, max_depth=5, random_state=0)
    estimator.fit(frame.to_numpy(), y)
    trees = [t for t in np.ravel(estimator.estimators_)]
    x = np.repeat(frame.to_numpy()[:50], 2, axis=0)
    for i, tree in enumerate(trees[:5]):
        split = np.flatnonzero(tree.tree_.feature >= 0)[0]
        feature, threshold = tree.tree_.feature[split], tree.tree_.threshold[split]
        x[2 * i, feature] = np.nextafter(threshold, np.inf)
        x[2 * i + 1, feature] = np.nextafter(threshold, -np.inf)
    compiled, native, library = compiled_and_native(estimator, x, tmp_path)
    assert library.float32_inputs
    assert within_tolerance(native, compiled), max_difference(native, compiled)


def test_a_binary_classifiers_probabilities_match_as_two_columns(tmp_path):
    from sklearn.ensemble import HistGradientBoostingClassifier

    frame, y = data(nan_share=0.05)
    estimator = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(frame.to_numpy(), y > 0)
    compiled, native, _ = compiled_and_native(estimator, frame.to_numpy(), tmp_path, "predict_proba")
    assert compiled.shape == native.shape == (len(frame), 2)
    assert within_tolerance(native, compiled), max_difference(native, compiled)


def test_compiled_backend_is_chosen_and_checked_on_a_sample(tmp_path):
    from sklearn.ensemble import HistGradientBoostingRegressor

    frame, y = data()
    resolved, spec = saved(HistGradientBoostingRegressor(max_iter=30).fit(frame, y), frame,
                           tmp_path / "model")
    choice = choose_backend("compiled", resolved, spec, None, str(tmp_path / "lib"))
    record = choice.describe()
    assert choice.backend == "compiled" and "predictions match" in choice.reason
    assert record["model_sha256"] == resolved.sha256 and record["library_sha256"] == choice.library.sha256
    assert record["sample"] == "synthetic" and record["sample_rows"] == 2_000
    assert record["native_seconds"] > 0 and record["compiled_seconds"] > 0
    assert record["max_abs_diff"] <= TOLERANCE * 100


def test_auto_records_compiled_or_native_with_the_measured_reason(tmp_path):
    from sklearn.ensemble import RandomForestRegressor

    frame, y = data()
    resolved, spec = saved(RandomForestRegressor(n_estimators=10, max_depth=4).fit(frame, y), frame,
                           tmp_path / "model")
    choice = choose_backend("auto", resolved, spec, None, str(tmp_path / "lib"))
    assert choice.library is not None  # compiled and compared; which is faster is not asserted
    assert choice.reason.startswith("compiled matches and is faster" if choice.backend == "compiled"
                                    else "compiled matches but is not faster")


def test_native_is_never_compiled(tmp_path):
    from sklearn.ensemble import RandomForestRegressor

    frame, y = data()
    resolved, spec = saved(RandomForestRegressor(n_estimators=3).fit(frame, y), frame, tmp_path / "m")
    choice = choose_backend("native", resolved, spec, None, str(tmp_path / "lib"))
    assert (choice.backend, choice.library, choice.reason) == ("native", None, "model.backend is native")


@functools.lru_cache(maxsize=1)
def refused_models():
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame, y = data()
    categorical = frame.assign(x3=np.floor(frame["x3"].abs() * 3))
    return [
        ("a Pipeline", make_pipeline(StandardScaler(), HistGradientBoostingRegressor(max_iter=5)).fit(frame, y), frame),
        (r"a non-tree model \(Ridge\)", Ridge().fit(frame, y), frame),
        ("categorical features", HistGradientBoostingRegressor(
            max_iter=5, categorical_features=["x3"]).fit(categorical, y), categorical),
        ("class labels", HistGradientBoostingClassifier(max_iter=5).fit(frame, y > 0), frame),
    ]


@pytest.mark.parametrize("index", range(4))
def test_compiled_refuses_what_cannot_be_compiled_and_auto_falls_back(tmp_path, index):
    why, estimator, frame = refused_models()[index]
    resolved, spec = saved(estimator, frame, tmp_path / "model")
    with pytest.raises(ConfigError, match=rf"model\.backend: compiled cannot be used .*{why}"):
        choose_backend("compiled", resolved, spec, None, str(tmp_path / "lib"))
    choice = choose_backend("auto", resolved, spec, None, str(tmp_path / "lib"))
    assert choice.backend == "native" and choice.library is None
    assert choice.reason.startswith("cannot compile:") and not list((tmp_path / "lib").glob("*.so"))


def test_without_gcc_auto_means_native_and_compiled_names_the_compiler(tmp_path, monkeypatch):
    from sklearn.ensemble import RandomForestRegressor

    frame, y = data()
    resolved, spec = saved(RandomForestRegressor(n_estimators=3).fit(frame, y), frame, tmp_path / "m")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert choose_backend("auto", resolved, spec, None, str(tmp_path / "lib")).backend == "native"
    with pytest.raises(ConfigError, match="model.backend: compiled .*gcc is not on the driver's PATH"):
        choose_backend("compiled", resolved, spec, None, str(tmp_path / "lib"))


def test_the_array_check_says_why_a_model_takes_a_data_frame(tmp_path):
    import mlflow.pyfunc

    why, estimator, frame = refused_models()[0]
    resolved, spec = saved(estimator, frame, tmp_path / "model")
    assert check_array_model(mlflow.pyfunc.load_model(resolved.local_path), spec).reason == "a Pipeline"


def test_tolerance_is_relative_to_the_prediction_and_nan_must_match():
    assert within_tolerance(np.array([1e6, 0.5]), np.array([1e6 + 1e-4, 0.5 + 5e-10]))
    assert not within_tolerance(np.array([1e6, 0.5]), np.array([1e6 + 1e-2, 0.5]))
    assert not within_tolerance(np.array([np.nan, 1.0]), np.array([0.0, 1.0]))
    assert not within_tolerance(np.array([1.0, 2.0]), np.array([[1.0], [2.0]]))


def test_lightgbm_matches_and_xgboosts_float32_predictions_fail_the_tolerance(tmp_path):
    """LightGBM predicts in float64: its library matches. XGBoost sums in float32, so its own
    predictions are float32-rounded and differ from the library's float64 sums by about 1e-6:
    the driver's check refuses them (``auto`` scores natively). Skipped without the libraries
    (tests/boosting_libs.py installs them into a folder of their own)."""
    lightgbm = pytest.importorskip("lightgbm")
    xgboost = pytest.importorskip("xgboost")
    frame, y = data(nan_share=0.1)
    x = frame.to_numpy()
    light = lightgbm.LGBMRegressor(n_estimators=20, verbose=-1).fit(x, y)
    compiled, native, _ = compiled_and_native(light, x, tmp_path / "lgbm")
    assert within_tolerance(native, compiled), max_difference(native, compiled)
    boosted = xgboost.XGBRegressor(n_estimators=20, max_depth=4).fit(x, y)
    compiled, native, library = compiled_and_native(boosted, x, tmp_path / "xgb")
    assert library.float32_inputs and max_difference(native, compiled) < 1e-5
    assert not within_tolerance(native, compiled)
