"""Choose each model's backend on the driver (``model.backend: auto | native | compiled``).

``native`` predicts with the model itself. ``compiled`` predicts with the tree ensemble compiled
to a shared library (:mod:`~batch_scoring.udfs.models.compiled_trees`): only a model that
already takes one float64 array (:func:`~batch_scoring.udfs.models.arrow_scoring.check_array_model`)
and is a supported tree ensemble can be compiled. Before the compiled library is used, the
driver predicts a sample of the rows to be scored (up to :data:`SAMPLE_ROWS`, taken with
``limit`` from the rows that passed quarantine; :data:`SYNTHETIC_ROWS` seeded standard-normal
rows, 5 % NaN, when there are none) with both, and requires

    |compiled - native| <= TOLERANCE * max(1, |native|)   for every prediction (TOLERANCE = 1e-9)

and times both ``predict`` calls on the sample (best of :data:`TIMING_ROUNDS`, the native one
on the same float64 array the executors build).

* ``compiled``: a model that cannot be compiled, missing tools (treelite, tl2cgen, gcc) or
  predictions that differ are a :class:`~batch_scoring.jobs.errors.ConfigError` (exit 2)
  naming ``model.backend`` and why.
* ``auto``: compiled when it can be, matches and is faster on the sample; otherwise native,
  with one INFO log line saying why.

The choice, its reason, the model's and library's SHA-256 and the timings are returned as a
:class:`BackendChoice`, recorded in the run manifest's ``model.backend``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from pyspark.sql import DataFrame

from batch_scoring.jobs.errors import ConfigError
from batch_scoring.jobs.model_resolution import ResolvedModel
from batch_scoring.udfs.models import compiled_trees
from batch_scoring.udfs.models.arrow_scoring import ArrayModel, check_array_model, spec_refusal
from batch_scoring.udfs.models.model_scoring import ScoringSpec

log = logging.getLogger("batch_scoring")

FIELD = "model.backend"
TOLERANCE = 1e-9
SAMPLE_ROWS = 2_000
SYNTHETIC_ROWS = 2_000
TIMING_ROUNDS = 3


@dataclass(frozen=True)
class BackendChoice:
    """The backend a model is scored with, and the evidence for it.

    Attributes:
        backend: ``native`` or ``compiled``.
        reason: why, in words (``"compiled matches and is faster on 2,000 rows"``).
        model_sha256: the model folder's content hash.
        library: the compiled library (also when it was not chosen), or None.
        sample: ``source`` (rows that passed quarantine) or ``synthetic``; None when no
            sample was predicted.
        sample_rows: rows in the sample.
        native_seconds, compiled_seconds: best of :data:`TIMING_ROUNDS` ``predict`` calls on
            the sample, in seconds.
        max_abs_diff: the largest ``|compiled - native|`` on the sample.
    """

    backend: str
    reason: str
    model_sha256: str
    library: compiled_trees.CompiledLibrary | None = None
    sample: str | None = None
    sample_rows: int = 0
    native_seconds: float | None = None
    compiled_seconds: float | None = None
    max_abs_diff: float | None = None

    def describe(self) -> dict[str, Any]:
        """A JSON-ready record for the run manifest (``library_sha256`` null without one)."""
        return {
            "backend": self.backend, "reason": self.reason, "model_sha256": self.model_sha256,
            "library_sha256": self.library.sha256 if self.library else None,
            "tolerance": f"|compiled - native| <= {TOLERANCE:g} * max(1, |native|)",
            "sample": self.sample, "sample_rows": self.sample_rows,
            "native_seconds": self.native_seconds, "compiled_seconds": self.compiled_seconds,
            "max_abs_diff": self.max_abs_diff,
        }


def choose_backend(configured: str, resolved: ResolvedModel, spec: ScoringSpec,
                   rows: DataFrame | None, folder: str) -> BackendChoice:
    """The backend for one model (rules in the module docstring).

    Args:
        configured: ``model.backend``: ``auto``, ``native`` or ``compiled``.
        resolved: the model downloaded on the driver (its folder must still exist).
        spec: the model's scoring spec.
        rows: rows that will be scored (the sample is taken from them with ``limit``), or None.
        folder: where the library is compiled; it must outlive the job (executors fetch it).

    Raises:
        ConfigError: with ``compiled``, when the model cannot be compiled or its compiled
            predictions differ from the native ones on the sample.
    """
    if configured == "native":
        return BackendChoice("native", f"{FIELD} is native", resolved.sha256)
    raw, predict_fn = _estimator(configured, resolved, spec)
    if raw is None:
        return BackendChoice("native", predict_fn, resolved.sha256)
    try:
        library = compiled_trees.compile_library(raw, predict_fn, folder)
    except Exception as error:  # noqa: BLE001 - NotCompilableError, treelite or compiler errors
        return _refuse(configured, resolved, f"it cannot be compiled: {str(error)[:300]}")
    features, origin = sample_features(rows, spec)
    return _compare(configured, resolved, ArrayModel(getattr(raw, predict_fn)),
                    compiled_trees.CompiledPredictor(library), features, origin)


def _estimator(configured: str, resolved: ResolvedModel, spec: ScoringSpec) -> tuple[Any, str]:
    """``(estimator, predict_fn)`` of a compilable model, else ``(None, reason)`` for ``auto``.

    Raises:
        ConfigError: with ``compiled``, naming why the model cannot be compiled.
    """
    reason = spec_refusal(spec)
    if reason is None and "sklearn" not in resolved.flavors:
        reason = "not a scikit-learn model saved by mlflow.sklearn"
    reason = reason or compiled_trees.missing_tools()
    if reason is None:
        import mlflow.pyfunc

        check = check_array_model(mlflow.pyfunc.load_model(resolved.local_path), spec)
        reason = check.reason or compiled_trees.refusal(check.raw, check.predict_fn)
    if reason is not None:
        return None, _refuse(configured, resolved, reason).reason
    return check.raw, check.predict_fn


def _refuse(configured: str, resolved: ResolvedModel, reason: str) -> BackendChoice:
    """Native for ``auto`` (logged at INFO); a ConfigError for ``compiled``."""
    if configured == "compiled":
        raise ConfigError(
            f"{FIELD}: compiled cannot be used for model {resolved.uri}: {reason}; set "
            f"{FIELD} to native or auto"
        )
    log.info("%s auto: model %s scores natively: %s", FIELD, resolved.uri, reason)
    return BackendChoice("native", f"cannot compile: {reason}", resolved.sha256)


def sample_features(rows: DataFrame | None, spec: ScoringSpec) -> tuple[np.ndarray, str]:
    """Up to :data:`SAMPLE_ROWS` rows of the model inputs as a Fortran float64 array (nulls as
    NaN), and ``"source"``; or :data:`SYNTHETIC_ROWS` seeded synthetic rows and
    ``"synthetic"`` when ``rows`` is None or empty.

    Cost: one ``limit`` action over ``rows`` (a few partitions are read, never all of it).
    """
    names = spec.input_names
    if rows is not None:
        sample = rows.select(*names).limit(SAMPLE_ROWS).toPandas()
        if len(sample):
            return np.asfortranarray(sample.to_numpy(dtype=np.float64, na_value=np.nan)), "source"
    rng = np.random.default_rng(0)
    synthetic = rng.standard_normal((SYNTHETIC_ROWS, len(names)))
    synthetic[rng.random(synthetic.shape) < 0.05] = np.nan
    return np.asfortranarray(synthetic), "synthetic"


def max_difference(native: np.ndarray, compiled: np.ndarray) -> float | None:
    """``max |compiled - native|``, or None when the shapes differ (NaN only matches NaN)."""
    native, compiled = np.asarray(native, dtype=np.float64), np.asarray(compiled, dtype=np.float64)
    if native.shape != compiled.shape:
        return None
    if not np.array_equal(np.isnan(native), np.isnan(compiled)):
        return float("inf")
    both = ~np.isnan(native)
    return float(np.max(np.abs(compiled[both] - native[both]), initial=0.0))


def within_tolerance(native: np.ndarray, compiled: np.ndarray) -> bool:
    """True when every ``|compiled - native| <= TOLERANCE * max(1, |native|)`` (same shape,
    NaN where the other is NaN)."""
    if max_difference(native, compiled) is None:
        return False
    native, compiled = np.asarray(native, dtype=np.float64), np.asarray(compiled, dtype=np.float64)
    bound = TOLERANCE * np.maximum(1.0, np.abs(np.nan_to_num(native)))
    diff = np.abs(np.nan_to_num(compiled, nan=0.0) - np.nan_to_num(native, nan=0.0))
    return bool(np.array_equal(np.isnan(native), np.isnan(compiled)) and np.all(diff <= bound))


def best_seconds(predict: Callable[[np.ndarray], Any], features: np.ndarray) -> tuple[float, Any]:
    """Best wall-clock seconds of :data:`TIMING_ROUNDS` ``predict(features)`` calls, and the
    last call's predictions."""
    best, result = float("inf"), None
    for _ in range(TIMING_ROUNDS):
        started = time.perf_counter()
        result = predict(features)
        best = min(best, time.perf_counter() - started)
    return best, result


def _compare(configured: str, resolved: ResolvedModel, native: ArrayModel,
             compiled: compiled_trees.CompiledPredictor, features: np.ndarray,
             origin: str) -> BackendChoice:
    native_s, expected = best_seconds(native.predict, features)
    compiled_s, got = best_seconds(compiled.predict, features)
    diff = max_difference(expected, got)
    facts = dict(model_sha256=resolved.sha256, library=compiled.library, sample=origin,
                 sample_rows=len(features), native_seconds=round(native_s, 6),
                 compiled_seconds=round(compiled_s, 6), max_abs_diff=diff)
    on = f"on {len(features):,} {origin} rows (max abs diff {diff}, native {native_s:.4f} s, compiled {compiled_s:.4f} s)"
    if not within_tolerance(expected, got):
        shapes = "" if diff is not None else f" (shapes {np.shape(expected)} vs {np.shape(got)})"
        if configured == "compiled":
            raise ConfigError(
                f"{FIELD}: compiled predictions of model {resolved.uri} differ from the native ones "
                f"{on}{shapes}, above the tolerance {TOLERANCE:g} * max(1, |prediction|); set "
                f"{FIELD} to native or auto"
            )
        return _logged(BackendChoice("native", f"compiled predictions differ {on}{shapes}", **facts))
    if configured == "compiled":
        return _logged(BackendChoice("compiled", f"{FIELD} is compiled; predictions match {on}", **facts))
    if compiled_s < native_s:
        return _logged(BackendChoice("compiled", f"compiled matches and is faster {on}", **facts))
    return _logged(BackendChoice("native", f"compiled matches but is not faster {on}", **facts))


def _logged(choice: BackendChoice) -> BackendChoice:
    log.info("%s: %s (%s)", FIELD, choice.backend, choice.reason)
    return choice
