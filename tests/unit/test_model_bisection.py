"""A model batch that raises is split in halves until the raising rows stand alone (pandas only)."""

from __future__ import annotations

import datetime as dt
import sys

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest

from batch_scoring.jobs import predict
from batch_scoring.udfs.models.model_scoring import (
    ModelBrokenError,
    ModelOutputError,
    ModelStamp,
    model_broken_message,
    ScoringSpec,
    predict_isolating,
    score_frame_isolating,
)
from batch_scoring.udfs.models.model_signature import ModelInput

STAMP = ModelStamp("models:/demand/3", "3", "abc123")
WHEN = dt.datetime(2026, 11, 22, 4, 0, tzinfo=dt.timezone.utc)
SPEC = ScoringSpec(inputs=(ModelInput("a", "double"), ModelInput("b", "long")),
                   output_columns={"prediction": "long"}, passthrough=("id",))


class PickyModel:
    """Predicts 2 a + b as integers; raises on any call that holds a row with a == 13.13."""

    def __init__(self):
        self.calls = []

    def predict(self, features: pd.DataFrame):
        self.calls.append(len(features))
        if (features["a"] == 13.13).any():
            raise ValueError(f"cannot score a=13.13\n({len(features)} rows)")
        return (2 * features["a"] + features["b"]).round().astype("int64").to_numpy()


def rows(n: int, bad=()) -> pd.DataFrame:
    a = np.arange(n, dtype=float)
    a[list(bad)] = 13.13
    return pd.DataFrame({"a": a, "b": np.arange(n, dtype="int64") * 10, "id": 100 + np.arange(n)})


def test_bisection_isolates_the_raising_rows_and_scores_all_others():
    model = PickyModel()
    predictions, errors = predict_isolating(model, rows(8, bad=[2, 5])[["a", "b"]], SPEC, "m")
    expected = [0.0, 12.0, np.nan, 36.0, 48.0, np.nan, 72.0, 84.0]
    assert predictions["prediction"].tolist()[:2] == expected[:2]
    np.testing.assert_array_equal(predictions["prediction"].to_numpy(dtype=float), expected)
    assert errors.tolist() == [None, None, "ValueError: cannot score a=13.13 (1 rows)", None, None,
                               "ValueError: cannot score a=13.13 (1 rows)", None, None]
    # rows 0-7 fail; probe: row 0 alone scores (the model works); 0-3 fail: 0-1 ok, 2-3 fail:
    # 2 fails, 3 ok; 4-7 fail: 4-5 fail: 4 ok, 5 fails; 6-7 ok
    assert model.calls == [8, 1, 4, 2, 2, 1, 1, 4, 2, 1, 1, 2]


def test_a_batch_that_scores_is_predicted_once_with_its_dtypes():
    model = PickyModel()
    predictions, errors = predict_isolating(model, rows(5)[["a", "b"]], SPEC, "m")
    assert model.calls == [5]
    assert predictions["prediction"].dtype == "int64"
    assert predictions["prediction"].tolist() == [0, 12, 24, 36, 48]
    assert errors.isna().all()


def test_a_model_that_raises_on_every_row_rejects_every_row():
    class Broken:
        def predict(self, features):
            raise RuntimeError("model file is corrupt")

    predictions, errors = predict_isolating(Broken(), rows(3)[["a", "b"]], SPEC, "m")
    assert predictions["prediction"].isna().all()
    assert errors.tolist() == ["RuntimeError: model file is corrupt"] * 3


def test_a_model_raising_on_the_batch_and_on_each_probe_row_is_broken_and_not_split():
    class Broken:
        def __init__(self):
            self.calls = []

        def predict(self, features):
            self.calls.append(len(features))
            raise AttributeError("'LogisticRegression' object has no attribute 'multi_class'")

    model = Broken()
    with pytest.raises(ModelBrokenError) as info:
        predict_isolating(model, rows(1000)[["a", "b"]], SPEC, "models:/m/1")

    assert str(info.value) == (
        "model models:/m/1 is broken, not the data: it raised on a batch of 1000 rows and on each "
        "of its first 3 rows and its last row alone: AttributeError: 'LogisticRegression' object "
        "has no attribute 'multi_class'"
    )
    assert model.calls == [1000, 1, 1, 1, 1]  # not 1,000 single-row calls
    assert model_broken_message(f"PythonException: ...\nModelBrokenError: {info.value}\n  at") == str(info.value)


def test_bad_first_rows_in_a_working_model_are_data_not_a_broken_model():
    model = PickyModel()
    predictions, errors = predict_isolating(model, rows(8, bad=[0, 1, 2])[["a", "b"]], SPEC, "m")

    assert errors.notna().tolist() == [True, True, True, False, False, False, False, False]
    assert predictions["prediction"].tolist()[3:] == [36, 48, 60, 72, 84]


def test_a_prediction_of_the_wrong_shape_is_a_configuration_error_not_a_bad_row():
    class TwoColumns:
        def predict(self, features):
            return np.zeros((len(features), 2))

    with pytest.raises(ModelOutputError, match="returned predictions of shape"):
        predict_isolating(TwoColumns(), rows(4)[["a", "b"]], SPEC, "m")


def test_score_frame_isolating_returns_scored_rows_and_the_raising_rows_original_values():
    pdf = rows(6, bad=[4]).assign(note=list("uvwxyz"))
    pdf.index = [10, 11, 12, 13, 14, 15]
    scored, raised = score_frame_isolating(PickyModel(), pdf, SPEC, STAMP, WHEN)
    assert list(scored.columns) == ["id", "prediction", "model_uri", "model_version",
                                    "model_run_id", "scored_at"]
    assert scored["id"].tolist() == [100, 101, 102, 103, 105]
    assert scored["prediction"].tolist() == [0, 12, 24, 36, 60] and scored["prediction"].dtype == "int64"
    assert set(scored["scored_at"]) == {pd.Timestamp(WHEN)}
    expected = pdf.loc[[14]].assign(reject_reason="model_raised", reject_column=None,
                                    reject_rule="ValueError: cannot score a=13.13 (1 rows)")
    pdt.assert_frame_equal(raised, expected)


def test_score_local_rejects_rule_breakers_and_raising_rows_and_scores_the_rest():
    pdf = rows(7, bad=[1, 6])
    pdf.loc[3, "b"] = None  # breaks the input rules: null_value
    scored, rejects = predict.score_local(PickyModel(), pdf, SPEC, STAMP, batch_size=3)
    assert scored["id"].tolist() == [100, 102, 104, 105]
    assert scored["prediction"].tolist() == [0, 24, 48, 60]
    assert rejects[["id", "reject_reason", "reject_column"]].values.tolist() == [
        [103, "null_value", "b"], [101, "model_raised", None], [106, "model_raised", None],
    ]
    assert rejects.index.tolist() == [3, 1, 6]
    assert rejects.loc[6, "reject_rule"] == "ValueError: cannot score a=13.13 (1 rows)"
    assert rejects.loc[6, "a"] == 13.13


@pytest.fixture
def picky_pyfunc(tmp_path):
    """PickyModel saved as an MLflow pyfunc model folder with a signature (a double, b long)."""
    import cloudpickle
    import mlflow.pyfunc

    class PickyPyfunc(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return PickyModel().predict(model_input).astype("float64")

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    folder = tmp_path / "picky"
    mlflow.pyfunc.save_model(str(folder), python_model=PickyPyfunc(),
                             input_example=pd.DataFrame({"a": [1.0], "b": [2]}))
    return folder


def test_predict_input_file_writes_the_raising_rows_to_its_rejects_file(picky_pyfunc, tmp_path, capsys):
    source, out = tmp_path / "rows.parquet", tmp_path / "scored.parquet"
    rows(5, bad=[3]).to_parquet(source)
    code = predict.main(["--model", str(picky_pyfunc), "--input", str(source), "--output", str(out),
                         "--passthrough", "id"])
    assert code == 0, capsys.readouterr().err
    assert pd.read_parquet(out)["id"].tolist() == [100, 101, 102, 104]
    assert pd.read_parquet(out)["prediction"].tolist() == [0.0, 12.0, 24.0, 48.0]
    rejects = pd.read_parquet(f"{out}.rejects.parquet")
    assert rejects[["id", "a", "reject_reason"]].values.tolist() == [[103, 13.13, "model_raised"]]
    assert "scored 4 rows, rejected 1" in capsys.readouterr().out


def test_predict_record_the_model_raises_on_exits_3_with_the_error(picky_pyfunc, capsys):
    code = predict.main(["--model", str(picky_pyfunc), "--record", '{"a": 13.13, "b": 1}'])
    assert code == 3
    assert ("error: record not scored: the model raised ValueError: cannot score a=13.13 (1 rows)"
            in capsys.readouterr().err)


def test_predict_input_with_a_broken_model_is_exit_4_and_writes_nothing(tmp_path, capsys):
    import cloudpickle
    import mlflow.pyfunc

    class BrokenPyfunc(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            raise ModuleNotFoundError("No module named 'lightgbm'")

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    folder = tmp_path / "broken"
    signature = __import__("mlflow").models.infer_signature(pd.DataFrame({"a": [1.0], "b": [2]}),
                                                            np.array([1.0]))
    mlflow.pyfunc.save_model(str(folder), python_model=BrokenPyfunc(), signature=signature)
    source, out = tmp_path / "rows.parquet", tmp_path / "scored.parquet"
    rows(20).to_parquet(source)

    code = predict.main(["--model", str(folder), "--input", str(source), "--output", str(out)])

    assert code == 4
    assert (f"error: model {folder} is broken, not the data: it raised on a batch of 20 rows and on "
            "each of its first 3 rows and its last row alone: ModuleNotFoundError: No module named "
            "'lightgbm'; nothing was written") in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "scored.parquet.rejects.parquet").exists()
