"""Score pandas DataFrames with a loaded MLflow pyfunc model: the one function every mode uses.

A single record (``batch-score predict --record``), a local file scored with pandas alone, and
the Spark job (one call per Arrow batch on the executors) all call :func:`score_frame`, so the
three give identical predictions. The model's inputs are passed by name in the model's order,
numeric columns cast to the signature's types; the predictions are normalised into the
configured output columns; the model's identity is stamped on every row.

A ``predict`` call that raises is not the end of the batch: :func:`predict_isolating` retries
it on halves until the rows that raise alone are found; those rows are rejected with reason
``model_raised`` and the error, every other row is scored.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from batch_scoring.udfs.contract import ColumnRule, describe_error
from batch_scoring.udfs.models.model_signature import ModelInput, input_rules

STAMP_COLUMNS: dict[str, str] = {
    "model_uri": "string",
    "model_version": "string",
    "model_run_id": "string",
    "scored_at": "timestamp",
}
_NUMPY_TYPES = {"double": "float64", "float": "float32", "long": "int64", "integer": "int32"}
MODEL_RAISED = "model_raised"


class ModelInputError(ValueError):
    """An input column cannot be converted to the type the model's signature declares."""


class ModelOutputError(ValueError):
    """The model's predictions do not fit the configured output columns."""


@dataclass(frozen=True)
class ModelStamp:
    """Identity of the model stamped on every scored row."""

    uri: str
    version: str | None = None
    run_id: str | None = None


@dataclass(frozen=True)
class ScoringSpec:
    """What to feed the model and what to return.

    Attributes:
        inputs: the model's input columns, in the model's order.
        output_columns: prediction column name -> Spark DDL type, in the order the model
            returns them (one per output, or per class probability).
        passthrough: input columns copied to the output before the predictions (ids, keys).
        predict_params: keyword params passed to ``model.predict(..., params=...)``, if any.
        preprocessor: transforms applied to the rows before the model (a fitted
            :class:`~batch_scoring.udfs.models.preprocessing.Preprocessor`), or None.
    """

    inputs: tuple[ModelInput, ...]
    output_columns: Mapping[str, str]
    passthrough: tuple[str, ...] = ()
    predict_params: Mapping[str, Any] = field(default_factory=dict)
    preprocessor: Any = None

    @property
    def produced_columns(self) -> list[str]:
        """Model inputs the preprocessing creates (the source need not have them)."""
        return self.preprocessor.produced_columns if self.preprocessor else []

    @property
    def consumed_columns(self) -> list[str]:
        """Source columns the preprocessing reads."""
        return self.preprocessor.consumed_columns if self.preprocessor else []

    def row_rules(self, numeric_columns: Collection[str] = ()) -> list[ColumnRule]:
        """Rules a row must keep to be scored: the source inputs' rules (see
        :func:`~batch_scoring.udfs.models.model_signature.input_rules`) and non-null preprocessing inputs.
        """
        return [
            *input_rules(self.source_inputs, numeric_columns),
            *(ColumnRule(c) for c in self.consumed_columns),
        ]

    @property
    def source_inputs(self) -> tuple[ModelInput, ...]:
        """Model inputs read straight from the source (not created by preprocessing)."""
        produced = set(self.produced_columns)
        return tuple(i for i in self.inputs if i.name not in produced)

    @property
    def input_names(self) -> list[str]:
        """The model's input column names, in order."""
        return [spec.name for spec in self.inputs]


def features_of(pdf: pd.DataFrame, spec: ScoringSpec) -> pd.DataFrame:
    """The model's input columns of ``pdf``, in order, numeric ones cast to the signature's type.

    Raises:
        KeyError: when an input column is missing (the pre-flight check prevents this in jobs).
        ModelInputError: naming the column when its values cannot be cast (e.g. text for a
            ``double`` input).
    """
    names = spec.input_names
    features = pdf if list(pdf.columns) == names else pdf[names]
    if not isinstance(features.index, pd.RangeIndex) or features.index.start != 0:
        features = features.reset_index(drop=True)
    casts = [
        i for i in spec.inputs
        if i.mlflow_type in _NUMPY_TYPES and features[i.name].dtype != _NUMPY_TYPES[i.mlflow_type]
    ]
    if casts:
        features = features.copy()
    for model_input in casts:
        try:
            features[model_input.name] = features[model_input.name].astype(
                _NUMPY_TYPES[model_input.mlflow_type]
            )
        except (TypeError, ValueError) as error:
            raise ModelInputError(
                f"input column {model_input.name!r} cannot be read as {model_input.mlflow_type} "
                f"({error})"
            ) from None
    return features


def predictions_of(model: Any, features: pd.DataFrame, spec: ScoringSpec, model_uri: str) -> pd.DataFrame:
    """Call ``model.predict`` and shape its result into ``spec.output_columns``.

    Accepts a 1-D array or Series (one output column), a 2-D array or a DataFrame (one column
    per configured output, matched by position).

    Raises:
        ModelOutputError: naming the model and the expected and returned shapes, when the
            number of rows or columns differs from ``spec``.
    """
    params = dict(spec.predict_params) or None
    raw = model.predict(features, params=params) if params else model.predict(features)
    names = list(spec.output_columns)
    values = raw.to_numpy() if isinstance(raw, (pd.DataFrame, pd.Series)) else np.asarray(raw)
    values = values.reshape(-1, 1) if values.ndim == 1 else values
    if values.ndim != 2 or values.shape != (len(features), len(names)):
        raise ModelOutputError(
            f"model {model_uri} returned predictions of shape {np.shape(raw)} for "
            f"{len(features)} rows; the job expects {len(names)} column(s) {names}: set "
            "model.output_schema to match what the model returns"
        )
    return pd.DataFrame({name: values[:, i] for i, name in enumerate(names)})


def predict_rows(model: Any, pdf: pd.DataFrame, spec: ScoringSpec, model_uri: str) -> pd.DataFrame:
    """Preprocess ``pdf``, feed the model its inputs and return only the prediction columns.

    The core every mode shares: :func:`score_frame` (record and file modes) and the Spark UDF.

    Returns:
        ``spec.output_columns``, one row per row of ``pdf``, with a fresh RangeIndex.
    """
    prepared = spec.preprocessor.apply(pdf) if spec.preprocessor else pdf
    return predictions_of(model, features_of(prepared, spec), spec, model_uri)


def predict_isolating(
    model: Any, features: pd.DataFrame, spec: ScoringSpec, model_uri: str
) -> tuple[pd.DataFrame, pd.Series]:
    """Predict ``features``; when ``predict`` raises, bisect until the raising rows stand alone.

    Args:
        features: the model's inputs (:func:`features_of`), RangeIndex from 0.

    Returns:
        ``(predictions, errors)``, both indexed 0..n-1: ``spec.output_columns`` with nulls
        (NaN/None) on rows that raised, and an object Series that is None where the row was
        scored and ``"Type: message"`` where ``predict`` raised on that row alone.

    Raises:
        ModelOutputError: when a result has the wrong shape (a configuration problem, not a
            bad row, so it is not isolated).
        ModelBrokenError: when the whole batch (of more than ``PROBE_ROWS`` rows) raised and
            then each of its first ``PROBE_ROWS`` rows and its last row raised alone.

    Cost: nothing while ``predict`` succeeds. A batch of n rows holding k rows that raise
    costs about ``2 k log2(n)`` extra ``predict`` calls over at most ``log2(n)`` times the
    rows; a model that raises on every row ends in n single-row calls.
    """
    scored, errors = _predict_scored(model, features, spec, model_uri)
    return scored.reindex(range(len(features))), _error_series(errors, len(features))


PROBE_ROWS = 3
"""When a batch of more than this many rows raises, its first ``PROBE_ROWS`` rows and its last
row are each predicted alone first: if all of them raise too, the model is broken (a missing
library, an incompatible version), not the data, and :class:`ModelBrokenError` stops the
splitting instead of n single-row calls."""


class ModelBrokenError(RuntimeError):
    """``predict`` raised on a whole batch and on each probe row alone: the model is broken.

    Raised on an executor (or in ``predict``); the message is one line naming the model, the
    batch size and the error. On the driver it arrives inside a Spark ``PythonException``:
    :func:`model_broken_message` finds it there.
    """


_BROKEN = re.compile(rf"{ModelBrokenError.__name__}: (model .*? is broken, not the data: [^\n]*)")


def model_broken_message(error_text: str) -> str | None:
    """The :class:`ModelBrokenError` message inside a Spark error's text, or None."""
    match = _BROKEN.search(error_text)
    return match.group(1) if match else None


def _probe_broken(model, features, spec, model_uri, first_error: BaseException) -> None:
    """Raise :class:`ModelBrokenError` when the probe rows of a raising batch all raise alone."""
    if len(features) <= PROBE_ROWS:
        return
    for position in [*range(PROBE_ROWS), len(features) - 1]:
        try:
            predictions_of(model, features.iloc[[position]].reset_index(drop=True), spec, model_uri)
        except ModelOutputError:
            raise
        except Exception:  # noqa: BLE001 - the probe row raised too
            continue
        return
    raise ModelBrokenError(
        f"model {model_uri} is broken, not the data: it raised on a batch of {len(features)} "
        f"rows and on each of its first {PROBE_ROWS} rows and its last row alone: "
        f"{describe_error(first_error)}"
    )


def _predict_scored(model, features, spec, model_uri) -> tuple[pd.DataFrame, dict[int, str]]:
    """Predictions of the rows that scored (indexed by position, dtypes kept) and the errors.

    Raises:
        ModelBrokenError: the whole batch and each probe row raised (see ``PROBE_ROWS``).
    """
    pieces: list[pd.DataFrame] = []
    errors: dict[int, str] = {}
    try:
        predicted = predictions_of(model, features, spec, model_uri)
    except ModelOutputError:
        raise
    except Exception as error:  # noqa: BLE001 - any error of the model's code is isolated
        if len(features) == 1:
            errors[0] = describe_error(error)
        else:
            _probe_broken(model, features, spec, model_uri, error)
            _split_rows(model, features, spec, model_uri, 0, pieces, errors)
    else:
        predicted.index = range(len(features))
        pieces.append(predicted)
    scored = pd.concat(pieces) if pieces else pd.DataFrame(columns=list(spec.output_columns))
    return scored, errors


def _error_series(errors: dict[int, str], rows: int) -> pd.Series:
    return pd.Series([errors.get(i) for i in range(rows)], dtype=object)


def _bisect_rows(model, features, spec, model_uri, offset, pieces, errors) -> None:
    try:
        predicted = predictions_of(model, features, spec, model_uri)
    except ModelOutputError:
        raise
    except Exception as error:  # noqa: BLE001 - any error of the model's code is isolated
        if len(features) == 1:
            errors[offset] = describe_error(error)
            return
        _split_rows(model, features, spec, model_uri, offset, pieces, errors)
        return
    predicted.index = range(offset, offset + len(features))
    pieces.append(predicted)


def _split_rows(model, features, spec, model_uri, offset, pieces, errors) -> None:
    """Predict each half of a batch that raised (:func:`_bisect_rows` on both)."""
    middle = len(features) // 2
    _bisect_rows(model, features.iloc[:middle], spec, model_uri, offset, pieces, errors)
    right = features.iloc[middle:].reset_index(drop=True)
    _bisect_rows(model, right, spec, model_uri, offset + middle, pieces, errors)


def predict_rows_isolating(
    model: Any, pdf: pd.DataFrame, spec: ScoringSpec, model_uri: str
) -> tuple[pd.DataFrame, pd.Series]:
    """:func:`predict_rows` where rows on which ``predict`` raises are isolated, not fatal.

    Returns:
        ``(predictions, errors)`` as :func:`predict_isolating`, one row per row of ``pdf``.

    Raises:
        ModelInputError, ModelOutputError, PreprocessingError: as :func:`predict_rows`
            (problems of a whole column or of the configuration are not isolated).
    """
    prepared = spec.preprocessor.apply(pdf) if spec.preprocessor else pdf
    return predict_isolating(model, features_of(prepared, spec), spec, model_uri)


def score_frame_isolating(
    model: Any, pdf: pd.DataFrame, spec: ScoringSpec, stamp: ModelStamp,
    scored_at: dt.datetime | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`score_frame`, but rows on which ``predict`` raises are returned apart.

    Returns:
        ``(scored, raised)``: the scored rows exactly as :func:`score_frame` returns them
        (fresh RangeIndex), and the rows of ``pdf`` that raised (all its columns, its index)
        with ``reject_reason`` = ``model_raised``, ``reject_column`` = None and
        ``reject_rule`` = ``"Type: message"``.
    """
    when = scored_at or dt.datetime.now(dt.timezone.utc)
    if pdf.empty:
        return _empty_result(pdf, spec), _raised(pdf, pd.Series([], dtype=object))
    prepared = spec.preprocessor.apply(pdf) if spec.preprocessor else pdf
    predictions, errors = _predict_scored(model, features_of(prepared, spec), spec, stamp.uri)
    error_series = _error_series(errors, len(pdf))
    ok = error_series.isna().to_numpy()
    scored = _stamped(pdf[ok], predictions.reset_index(drop=True), spec, stamp, when)
    return scored, _raised(pdf[~ok], error_series[~ok])


def _raised(rows: pd.DataFrame, errors: pd.Series) -> pd.DataFrame:
    return rows.assign(reject_reason=MODEL_RAISED, reject_column=None,
                       reject_rule=errors.to_numpy(dtype=object))


def score_frame(
    model: Any, pdf: pd.DataFrame, spec: ScoringSpec, stamp: ModelStamp,
    scored_at: dt.datetime | None = None,
) -> pd.DataFrame:
    """Score every row of ``pdf`` (rows must already satisfy the model's input rules).

    The spec's preprocessing runs first; the passthrough columns come from ``pdf`` as given.

    Args:
        model: a loaded pyfunc model (anything with ``predict(DataFrame)``).
        pdf: the rows: the model's input columns and the passthrough columns.
        spec: inputs, outputs, passthrough.
        stamp: the model's identity.
        scored_at: the scoring time (UTC); now when None.

    Returns:
        One row per input row, same order: passthrough columns, prediction columns, then
        ``model_uri``, ``model_version``, ``model_run_id`` (str) and ``scored_at``
        (datetime64[ns, UTC]).
    """
    when = scored_at or dt.datetime.now(dt.timezone.utc)
    if pdf.empty:
        return _empty_result(pdf, spec)
    return _stamped(pdf, predict_rows(model, pdf, spec, stamp.uri), spec, stamp, when)


def _stamped(pdf, predictions, spec, stamp, when) -> pd.DataFrame:
    """Passthrough of ``pdf``, the predictions (same row order) and the model stamps."""
    result = pdf[list(spec.passthrough)].reset_index(drop=True)
    for name in spec.output_columns:
        result[name] = predictions[name]
    return result.assign(
        model_uri=stamp.uri, model_version=stamp.version, model_run_id=stamp.run_id,
        scored_at=pd.Timestamp(when),
    )


def _empty_result(pdf: pd.DataFrame, spec: ScoringSpec) -> pd.DataFrame:
    columns = {c: pdf[c] for c in spec.passthrough}
    for name in [*spec.output_columns, *STAMP_COLUMNS]:
        columns[name] = pd.Series(dtype=object)
    return pd.DataFrame(columns)


def rebatch(batches: Iterable[pd.DataFrame], rows: int) -> Iterator[pd.DataFrame]:
    """Re-cut a stream of DataFrames into pieces of exactly ``rows`` rows (the last may be short).

    Bounds the rows per ``predict`` call whatever Spark's Arrow batch size is.
    """
    pending: list[pd.DataFrame] = []
    held = 0
    for batch in batches:
        start = 0
        while start < len(batch):
            take = min(rows - held, len(batch) - start)
            pending.append(batch.iloc[start:start + take])
            held, start = held + take, start + take
            if held == rows:
                yield pd.concat(pending, ignore_index=True)
                pending, held = [], 0
    if pending:
        yield pd.concat(pending, ignore_index=True)
