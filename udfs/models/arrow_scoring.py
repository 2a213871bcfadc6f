"""Score Arrow record batches: the Python-worker side of the Spark scorer (``mapInArrow``).

Spark hands each Python worker the scored frame as Arrow record batches. :class:`ArrowScorer`
turns each batch's model input columns into the model's input with as few copies as possible,
predicts in calls of at most ``batch_size`` rows, and returns a record batch of the
passthrough columns (the very Arrow arrays that came in: a 64-bit id, a zoned timestamp or a
null is never converted), the predictions as Arrow arrays, and, for routed or isolating
scorers, the model index, the error and the raising rows' source values.

The model's input, decided per model (:func:`array_predictor`):

* **one contiguous float64 array** (Fortran order: one ``memcpy`` per column) handed straight
  to the estimator's predict function when the model is a scikit-learn model saved by
  ``mlflow.sklearn`` (not a ``Pipeline`` or ``ColumnTransformer``, which may select columns by
  name), every input of its signature is ``double``, the estimator's ``feature_names_in_`` (if
  any) are the signature's inputs in order, and the job has no preprocessing and no
  ``predict_params``. scikit-learn turns a DataFrame of float64 columns into exactly this array
  itself, so the predictions are the same; pyfunc's schema enforcement, a no-op on float64
  columns, is skipped.
* **a pandas DataFrame** otherwise: one pandas Series per input column, built from the Arrow
  array as Spark's pandas UDFs build it (``date_as_object``, timestamps in nanoseconds,
  localized to the session time zone and made naive), then preprocessing and
  ``model.predict`` as on every other path
  (:func:`~batch_scoring.udfs.models.model_scoring.predict_rows`).

With ``isolate`` a raising call is bisected to the rows that raise alone
(:func:`~batch_scoring.udfs.models.model_scoring.predict_isolating`); their ``_source`` struct
holds their original values, and is null on the rows that scored (only the raising rows are
ever read from it).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from batch_scoring.udfs.models import compiled_trees, model_cache
from batch_scoring.udfs.models.model_scoring import (
    ScoringSpec,
    predict_isolating,
    predict_rows,
    predict_rows_isolating,
    predictions_of,
)

MODEL_INDEX = "_model"
ERROR_COLUMN = "_model_error"
SOURCE_COLUMN = "_source"
ARRAY_INPUT_TYPES = frozenset({"double"})
_FEATURE_NAMES_WARNING = "X does not have valid feature names"


class ArrayModel:
    """A scikit-learn predict function that takes the inputs as one 2-D float64 array."""

    def __init__(self, predict: Callable[[np.ndarray], Any]):
        self._predict = predict

    def predict(self, features: np.ndarray, params=None):
        """Predict ``features`` (rows x inputs); ``params`` is never set on this path."""
        with warnings.catch_warnings():  # fitted on a DataFrame, fed the same values as an array
            warnings.filterwarnings("ignore", message=_FEATURE_NAMES_WARNING)
            return self._predict(features)


@dataclass(frozen=True)
class ArrayCheck:
    """Whether a model may take one float64 array (:func:`check_array_model`).

    Attributes:
        reason: why it may not, a short phrase (``"a Pipeline"``), or None when it may.
        raw: the scikit-learn estimator (when ``reason`` is None).
        predict_fn: the estimator's method the pyfunc calls (``predict``, ``predict_proba``).
    """

    reason: str | None
    raw: Any = None
    predict_fn: str = "predict"


def spec_refusal(spec: ScoringSpec) -> str | None:
    """Why the job's settings keep any model off the array path, or None."""
    if spec.preprocessor is not None:
        return "model.preprocess is set"
    if spec.predict_params:
        return "model.predict_params is set"
    if not spec.inputs:
        return "the model has no named inputs"
    other = [f"{i.name} {i.mlflow_type}" for i in spec.inputs if i.mlflow_type not in ARRAY_INPUT_TYPES]
    return f"inputs that are not double ({', '.join(other[:3])})" if other else None


def check_array_model(model: Any, spec: ScoringSpec) -> ArrayCheck:
    """Whether the loaded pyfunc ``model`` may take one float64 array under ``spec`` (the rule in
    the module docstring), and if not why. Never raises."""
    reason = spec_refusal(spec)
    if reason:
        return ArrayCheck(reason)
    metadata = getattr(model, "metadata", None)
    flavor = metadata.flavors.get("python_function", {}) if metadata is not None else {}
    if flavor.get("loader_module") != "mlflow.sklearn":
        return ArrayCheck(f"not a scikit-learn model saved by mlflow.sklearn ({flavor.get('loader_module')})")
    try:
        from sklearn.compose import ColumnTransformer
        from sklearn.pipeline import Pipeline

        raw = model.get_raw_model()
    except (ImportError, NotImplementedError):
        return ArrayCheck("its estimator cannot be read (get_raw_model)")
    if isinstance(raw, (Pipeline, ColumnTransformer)):
        return ArrayCheck(f"a {type(raw).__name__}")
    names = getattr(raw, "feature_names_in_", None)
    if names is not None and list(names) != spec.input_names:
        return ArrayCheck("its feature_names_in_ are not the signature's inputs in order")
    predict_fn = flavor.get("predict_fn", "predict")
    if getattr(raw, predict_fn, None) is None:
        return ArrayCheck(f"the estimator has no {predict_fn}")
    return ArrayCheck(None, raw, predict_fn)


def array_predictor(model: Any, spec: ScoringSpec) -> ArrayModel | None:
    """The model as an :class:`ArrayModel` when it may take one float64 array (the rule in the
    module docstring, :func:`check_array_model`), else None (it takes a pandas DataFrame)."""
    check = check_array_model(model, spec)
    return None if check.reason else ArrayModel(getattr(check.raw, check.predict_fn))


def float_matrix(batch: pa.RecordBatch, names: Sequence[str]) -> np.ndarray:
    """``names``' columns of ``batch`` as one Fortran-ordered float64 array (nulls as NaN).

    A column of another numeric type is cast as ``astype(float64)`` would cast it.
    """
    matrix = np.empty((batch.num_rows, len(names)), dtype=np.float64, order="F")
    for j, name in enumerate(names):
        column = batch.column(name)
        if column.type != pa.float64():
            column = column.cast(pa.float64(), safe=False)
        matrix[:, j] = column.to_numpy(zero_copy_only=False)
    return matrix


def pandas_of(batch: pa.RecordBatch, names: Sequence[str], timezone: str | None) -> pd.DataFrame:
    """``names``' columns of ``batch`` as pandas, converted as Spark's pandas UDFs convert them."""
    columns = {}
    for name in names:
        column = batch.column(name)
        if pa.types.is_timestamp(column.type):
            series = column.to_pandas(coerce_temporal_nanoseconds=True)
            if series.dt.tz is not None:
                series = series.dt.tz_convert(timezone or "UTC").dt.tz_localize(None)
        else:
            series = column.to_pandas(date_as_object=True)
        columns[name] = series
    return pd.DataFrame(columns, copy=False)


def arrow_of(values: pd.Series, arrow_type: pa.DataType) -> pa.Array:
    """A prediction column as Arrow: NaN and None are null, unsafe casts allowed (as Spark's
    pandas UDFs with ``spark.sql.execution.pandas.convertToArrowArraySafely`` off)."""
    return pa.Array.from_pandas(values, mask=values.isna().to_numpy(), type=arrow_type, safe=False)


@dataclass(frozen=True)
class ArrowScorer:
    """The function ``mapInArrow`` runs: record batches in, scored record batches out.

    Attributes:
        models: the shipped models (objects with ``sha256``, ``files_name``, ``stamp.uri`` and
            ``compiled``: a :class:`~batch_scoring.udfs.models.compiled_trees.CompiledLibrary`
            predicting in the model's place, or None).
        specs: model content hash -> scoring spec.
        key_to_model: routing key tuple -> index into ``models`` (``{(): 0}`` for one model).
        by: routing key columns, or empty.
        passthrough: columns returned as they came.
        others: columns whose values ``_source`` holds for raising rows (``isolate`` only).
        output_types: prediction column -> Arrow type.
        batch_size: rows per ``predict`` call at most.
        max_models: models each worker keeps loaded.
        isolate: bisect raising calls instead of failing the task.
        timezone: the session time zone (timestamps given to pandas models are local to it).
        load: ``load(files_name)`` loads a shipped model on this worker.
        counter: an accumulator counting the record batches scored, or None.
    """

    models: Sequence[Any]
    specs: Mapping[str, ScoringSpec]
    key_to_model: Mapping[tuple, int]
    by: tuple[str, ...]
    passthrough: tuple[str, ...]
    others: tuple[str, ...]
    output_types: Mapping[str, pa.DataType]
    batch_size: int
    max_models: int
    isolate: bool
    timezone: str | None
    load: Callable[[str], Any]
    counter: Any = None

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if batch.num_rows == 0:
                continue
            if self.counter is not None:
                self.counter.add(1)
            yield self.score_batch(batch)

    def score_batch(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """One scored record batch for ``batch`` (same rows, same order)."""
        if self.by:
            predicted, errors, chosen = self._routed(batch)
        else:
            predicted, errors = self._predict_rows(batch, 0)
            chosen = None
        names = list(self.passthrough)
        arrays = [batch.column(c) for c in self.passthrough]
        for name, arrow_type in self.output_types.items():
            names.append(name)
            arrays.append(arrow_of(predicted[name], arrow_type))
        if len(self.models) > 1:
            names.append(MODEL_INDEX)
            arrays.append(pa.array(chosen, type=pa.int32()))
        if self.isolate:
            names.append(ERROR_COLUMN)
            arrays.append(pa.array(errors.to_numpy(dtype=object), type=pa.string()))
            if self.others:
                names.append(SOURCE_COLUMN)
                fields = [batch.schema.field(c) for c in self.others]
                arrays.append(pa.StructArray.from_arrays(
                    [batch.column(c) for c in self.others], fields=fields,
                    mask=pa.array(errors.isna().to_numpy()),
                ))
        return pa.RecordBatch.from_arrays(arrays, names=names)

    def _routed(self, batch: pa.RecordBatch) -> tuple[pd.DataFrame, pd.Series | None, np.ndarray]:
        """Predictions of each row by its key's model; rows are sorted by key, so a key's rows
        are usually one slice of the batch."""
        keys = pandas_of(batch, self.by, self.timezone)
        chosen = np.empty(batch.num_rows, dtype=np.int32)
        parts, errors = [], []
        for key, positions in keys.groupby(list(self.by), sort=False).indices.items():
            index = self.key_to_model[key if isinstance(key, tuple) else (key,)]
            chosen[positions] = index
            first, last = int(positions[0]), int(positions[-1])
            if last - first + 1 == len(positions):
                rows = batch.slice(first, len(positions))
            else:
                rows = batch.take(pa.array(positions))
            predicted, error = self._predict_rows(rows, index)
            predicted.index = positions
            parts.append(predicted)
            if error is not None:
                error.index = positions
                errors.append(error)
        predicted = pd.concat(parts).sort_index().reset_index(drop=True)
        if not errors:
            return predicted, None, chosen
        return predicted, pd.concat(errors).sort_index().reset_index(drop=True), chosen

    def _predict_rows(self, rows: pa.RecordBatch, chosen: int) -> tuple[pd.DataFrame, pd.Series | None]:
        """Predictions of model ``chosen`` for ``rows``, in ``predict`` calls of ``batch_size``
        rows, and with ``isolate`` the errors (None where the row scored), else None."""
        shipped = self.models[chosen]
        spec, uri = self.specs[shipped.sha256], shipped.stamp.uri
        library = getattr(shipped, "compiled", None)
        if library is not None:  # the driver chose the compiled backend: the model is not loaded
            model, as_array = None, compiled_trees.load_shipped(library)
        else:
            model = model_cache.get_model(shipped.sha256, lambda: self.load(shipped.files_name),
                                          self.max_models)
            as_array = array_predictor(model, spec)
        read = list(dict.fromkeys([
            *self.by, *(i.name for i in spec.source_inputs), *spec.consumed_columns,
        ]))
        chunks, errors = [], []
        for start in range(0, rows.num_rows, self.batch_size):
            piece = rows.slice(start, self.batch_size)
            if as_array is not None:
                features = float_matrix(piece, spec.input_names)
                if self.isolate:
                    predicted, error = predict_isolating(as_array, features, spec, uri)
                else:
                    predicted, error = predictions_of(as_array, features, spec, uri), None
            else:
                frame = pandas_of(piece, read, self.timezone)
                if self.isolate:
                    predicted, error = predict_rows_isolating(model, frame, spec, uri)
                else:
                    predicted, error = predict_rows(model, frame, spec, uri), None
            chunks.append(predicted)
            errors.append(error)
        if len(chunks) == 1:
            return chunks[0], errors[0]
        predicted = pd.concat(chunks, ignore_index=True)
        return predicted, pd.concat(errors, ignore_index=True) if self.isolate else None
