"""The pandas scoring core shared by the record, file and Spark modes."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from mlflow.models import infer_signature
from pyspark.sql import types as T

from batch_scoring.udfs.models import model_cache
from batch_scoring.udfs.models.model_scoring import (
    ModelInputError,
    ModelOutputError,
    ModelStamp,
    ScoringSpec,
    features_of,
    predictions_of,
    rebatch,
    score_frame,
)
from batch_scoring.udfs.models.model_signature import (
    ModelInput,
    SignatureMismatchError,
    check_signature,
    input_rules,
    model_inputs,
    output_columns_from_signature,
)
from batch_scoring.udfs.models.pandas_quarantine import split_rejects_pandas

STAMP = ModelStamp("models:/demand/3", "3", "abc123")
WHEN = dt.datetime(2026, 11, 22, 4, 0, tzinfo=dt.timezone.utc)


class LinearModel:
    """y = 2 a + b, recording the dtypes and sizes it was called with."""

    def __init__(self):
        self.calls = []

    def predict(self, features: pd.DataFrame):
        self.calls.append((dict(features.dtypes.astype(str)), len(features)))
        return 2 * features["a"].to_numpy() + features["b"].to_numpy()


def spec(**kwargs) -> ScoringSpec:
    defaults = dict(
        inputs=(ModelInput("a", "double"), ModelInput("b", "long")),
        output_columns={"prediction": "double"},
        passthrough=("id",),
    )
    return ScoringSpec(**{**defaults, **kwargs})


def test_score_frame_feeds_inputs_by_name_cast_to_the_signature_and_stamps_rows():
    pdf = pd.DataFrame({"b": np.array([1, 2, 3], dtype="int32"), "id": [10, 11, 12], "a": [0.5, 1, 2]})
    model = LinearModel()
    out = score_frame(model, pdf, spec(), STAMP, WHEN)
    assert list(out.columns) == ["id", "prediction", "model_uri", "model_version",
                                 "model_run_id", "scored_at"]
    assert out["prediction"].tolist() == [2.0, 4.0, 7.0]
    assert out["id"].tolist() == [10, 11, 12]
    assert model.calls == [({"a": "float64", "b": "int64"}, 3)]
    assert set(out["model_uri"]) == {"models:/demand/3"} and set(out["model_version"]) == {"3"}
    assert out["scored_at"].iloc[0] == pd.Timestamp(WHEN)


def test_text_in_a_numeric_input_names_the_column():
    pdf = pd.DataFrame({"a": ["x"], "b": [1], "id": [1]})
    with pytest.raises(ModelInputError, match="'a' cannot be read as double"):
        features_of(pdf, spec())


@pytest.mark.parametrize("raw, expected", [
    (np.array([1.0, 2.0]), {"p": [1.0, 2.0]}),
    (pd.Series([3.0, 4.0]), {"p": [3.0, 4.0]}),
])
def test_one_dimensional_predictions_fill_one_column(raw, expected):
    class Fixed:
        def predict(self, features):
            return raw
    out = predictions_of(Fixed(), pd.DataFrame({"a": [1, 2]}), spec(output_columns={"p": "double"}), "m")
    assert out.to_dict("list") == expected


def test_class_probabilities_fill_one_column_per_class_by_position():
    class Proba:
        def predict(self, features):
            return pd.DataFrame({0: [0.2, 0.9], 1: [0.8, 0.1]})
    out = predictions_of(Proba(), pd.DataFrame({"a": [1, 2]}),
                         spec(output_columns={"p_no": "double", "p_yes": "double"}), "m")
    assert out.to_dict("list") == {"p_no": [0.2, 0.9], "p_yes": [0.8, 0.1]}


def test_a_prediction_shape_that_does_not_fit_names_the_model_and_columns():
    class TwoColumns:
        def predict(self, features):
            return np.zeros((len(features), 2))
    with pytest.raises(ModelOutputError, match=r"models:/x/1 returned predictions of shape \(3, 2\)"):
        predictions_of(TwoColumns(), pd.DataFrame({"a": [1, 2, 3]}), spec(), "models:/x/1")


def test_rebatch_cuts_exact_sizes_across_incoming_batches():
    batches = [pd.DataFrame({"x": range(i, i + n)}) for i, n in [(0, 7), (7, 1), (8, 0), (8, 9)]]
    sizes = [len(b) for b in rebatch(batches, 5)]
    assert sizes == [5, 5, 5, 2]
    assert pd.concat(rebatch(batches, 5))["x"].tolist() == list(range(17))


def test_signature_check_lists_every_problem_at_once():
    signature = infer_signature(pd.DataFrame({"tenure": [1], "spend": [1.5], "plan": ["s"]}))
    inputs = model_inputs(signature, None, "m")
    schema = T.StructType([
        T.StructField("tenure", T.DoubleType()),
        T.StructField("plan", T.StringType()),
    ])
    report = check_signature(schema, inputs)
    assert report.problems == [
        "column 'tenure' is double, the model expects long",
        "required input column 'spend' is missing",
    ]


def test_nullable_integer_inputs_are_noted_not_failed():
    signature = infer_signature(pd.DataFrame({"tenure": [1]}))
    schema = T.StructType([T.StructField("tenure", T.IntegerType(), nullable=True)])
    report = check_signature(schema, model_inputs(signature, None, "m"))
    assert report.problems == [] and "quarantined" in report.notes[0]


def test_a_model_without_signature_needs_input_columns():
    with pytest.raises(SignatureMismatchError, match="model.input_columns"):
        model_inputs(None, None, "runs:/x/model")
    assert [i.name for i in model_inputs(None, ["b", "a"], "m")] == ["b", "a"]


def test_output_columns_come_from_a_named_or_single_signature_output():
    single = infer_signature(pd.DataFrame({"x": [1.0]}), np.array([1.5]))
    assert output_columns_from_signature(single) == {"prediction": "double"}
    labels = infer_signature(pd.DataFrame({"x": [1.0]}), np.array([2]))
    assert output_columns_from_signature(labels) == {"prediction": "bigint"}
    # a 2-D tensor of known width (predict_proba): one column per class
    assert output_columns_from_signature(infer_signature(pd.DataFrame({"x": [1.0]}), np.zeros((1, 3)))) == {
        "prediction_0": "double", "prediction_1": "double", "prediction_2": "double"}
    series = infer_signature(pd.DataFrame({"x": [1.0]}), pd.Series([0.5]))
    assert output_columns_from_signature(series) == {"prediction": "double"}
    named = infer_signature(pd.DataFrame({"x": [1.0]}), pd.DataFrame({"low": [1.0], "high": [2.0]}))
    assert output_columns_from_signature(named) == {"low": "double", "high": "double"}
    assert output_columns_from_signature(infer_signature(pd.DataFrame({"x": [1.0]}))) is None


def test_pandas_quarantine_reports_missing_values_as_null_value():
    pdf = pd.DataFrame({"a": [1.0, np.nan, 3.0, 4.0], "b": [1, 2, None, 4], "plan": ["s", "m", "l", None]})
    inputs = (ModelInput("a", "double"), ModelInput("b", "long"), ModelInput("plan", "string"))
    valid, rejects = split_rejects_pandas(pdf, input_rules(inputs))
    assert valid.index.tolist() == [0]
    assert rejects[["reject_reason", "reject_column"]].values.tolist() == [
        ["null_value", "a"], ["null_value", "b"], ["null_value", "plan"],
    ]


def test_model_cache_loads_once_per_hash_and_evicts_least_recently_used():
    model_cache.clear()
    loads = []
    for key in ["h1", "h1", "h2", "h1", "h3", "h2"]:
        model_cache.get_model(key, lambda k=key: loads.append(k) or k, max_models=2)
    assert loads == ["h1", "h2", "h3", "h2"]
    assert model_cache.cache_stats() == {"loads": 4, "hits": 2, "held": 2}
