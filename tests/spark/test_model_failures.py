"""Rows on which a model's predict raises go to rejects; every other row is scored (local Spark, Delta)."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import cloudpickle
import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest

from batch_scoring.jobs.config import load_job
from batch_scoring.jobs.errors import RejectBudgetExceeded
from batch_scoring.jobs.failure_budget import FailedWorkExceeded
from batch_scoring.jobs.pipeline import run

ROOT = Path(__file__).resolve().parents[2]
DAY = dt.date(2026, 11, 22)
RAISING_IDS = (7, 30)  # a = 13.13: the model raises on any call holding one of them
NULL_ID = 12  # a is null: quarantined before the model (null_value)
MESSAGE = "ValueError: cannot score a=13.13"


class PickyModel(mlflow.pyfunc.PythonModel):
    """Predicts 2 a + b; raises on any call that holds a row with a == 13.13."""

    def predict(self, context, model_input, params=None):
        if (model_input["a"] == 13.13).any():
            raise ValueError(f"cannot score a=13.13\n(in a call of {len(model_input)} rows)")
        return (2 * model_input["a"] + model_input["b"]).to_numpy()


def make_rows() -> pd.DataFrame:
    ids = np.arange(40)
    a = ids * 0.5
    a[list(RAISING_IDS)] = 13.13
    frame = pd.DataFrame({"id": ids, "a": a, "b": ids * 10, "note": [f"n{i}" for i in ids]})
    frame["a"] = frame["a"].astype("object")
    frame.loc[NULL_ID, "a"] = None
    return frame.astype({"a": "float64"})


@pytest.fixture(scope="module")
def picky_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models") / "picky"
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    mlflow.pyfunc.save_model(str(folder), python_model=PickyModel(),
                             input_example=pd.DataFrame({"a": [1.0], "b": [2]}))
    return folder


@pytest.fixture(scope="module")
def rows_source(tmp_path_factory):
    path = tmp_path_factory.mktemp("rows") / "rows.parquet"
    make_rows().to_parquet(path)
    return path


def model_job(tmp_path, source, model_dir, *overrides):
    """The model job on ``source``; the 2 raising rows allowed unless overridden."""
    return load_job(ROOT / "conf/jobs/model_scoring.yaml", [
        "model.max_failed_rows=2",
        f"source.path={source}", "source.filter=null", f"model.uri={model_dir}",
        f"model.allowed_uris=[{model_dir.parent}/]", "model.passthrough=[id]",
        "model.output_schema=prediction double", "model.batch_size=4",
        f"output.path={tmp_path / 'scored'}", "output.partition_by=[]", *overrides,
    ])


def test_rows_the_model_raises_on_are_rejected_with_their_values_and_the_rest_scored(
    spark, tmp_path, rows_source, picky_model, arrow_batch_rows
):
    arrow_batch_rows(8)  # 5 Arrow batches, 2 predict calls of 4 rows each
    job = model_job(tmp_path, rows_source, picky_model)
    summary = run(spark, job, DAY, "picky")

    rows = make_rows()
    out = spark.read.format("delta").load(job.output.path).toPandas().sort_values("id")
    scored = rows[~rows["id"].isin([*RAISING_IDS, NULL_ID])]
    assert out["id"].tolist() == scored["id"].tolist()
    assert out["prediction"].tolist() == (2 * scored["a"] + scored["b"]).tolist()
    assert set(out["model_uri"]) == {str(picky_model)} and set(out["run_id"]) == {"picky"}

    rejects = spark.read.format("delta").load(job.output.rejects).toPandas().sort_values("id")
    assert list(rejects.columns) == ["id", "a", "b", "reject_reason", "reject_column",
                                     "reject_rule", "reject_raw", "run_date", "run_id"]
    assert rejects["reject_raw"].isna().all()
    got = rejects.drop(columns=["reject_raw", "run_date", "run_id"]).astype({"a": object}).where(rejects.notna(), None)
    assert got.values.tolist() == [
        [7, 13.13, 70, "model_raised", None, f"{MESSAGE} (in a call of 1 rows)"],
        [12, None, 120, "null_value", "a", "not null"],
        [30, 13.13, 300, "model_raised", None, f"{MESSAGE} (in a call of 1 rows)"],
    ]
    assert (summary.rows_in, summary.rows_out, summary.rows_rejected) == (40, 37, 3)


def test_a_model_run_over_its_reject_budget_commits_nothing(spark, tmp_path, rows_source, picky_model):
    run(spark, model_job(tmp_path, rows_source, picky_model), DAY, "kept")
    job = model_job(tmp_path, rows_source, picky_model, "output.max_reject_fraction=0.05")
    before = [spark.read.format("delta").load(p).toPandas() for p in (job.output.path, job.output.rejects)]

    with pytest.raises(RejectBudgetExceeded, match=r"3 of 40 rows read were rejected \(7.50%\), "
                       r"more than output.max_reject_fraction 0.05 allows \(model_raised 2, null_value 1\)"):
        run(spark, job, DAY, "over-budget")

    after = [spark.read.format("delta").load(p).toPandas() for p in (job.output.path, job.output.rejects)]
    for old, new in zip(before, after):
        pd.testing.assert_frame_equal(new.sort_values("id").reset_index(drop=True),
                                      old.sort_values("id").reset_index(drop=True))
    assert set(after[0]["run_id"]) == {"kept"} and len(after[0]) == 37


def listing(root: Path) -> dict[str, int]:
    """Every file under ``root`` with its size (empty when ``root`` does not exist)."""
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}


def test_rows_the_model_raises_on_over_the_default_budget_fail_the_run(
    spark, tmp_path, rows_source, picky_model, arrow_batch_rows
):
    arrow_batch_rows(8)
    job = model_job(tmp_path, rows_source, picky_model, "model.max_failed_rows=0")

    with pytest.raises(FailedWorkExceeded) as error:
        run(spark, job, DAY, "over")

    message = str(error.value)
    assert message.startswith("2 of 39 rows raised in the model (5.13%), more than "
                              "model.max_failed_rows = 0 allows; nothing was committed. First: (id=")
    assert f"{MESSAGE} (in a call of 1 rows)" in message
    assert listing(tmp_path / "scored") == {} and listing(tmp_path / "scored_rejects") == {}


class BrokenModel(mlflow.pyfunc.PythonModel):
    """Raises on every call, as a model whose library is missing or at another version."""

    def predict(self, context, model_input, params=None):
        raise AttributeError("'LogisticRegression' object has no attribute 'multi_class'")


def test_a_model_raising_on_every_row_is_broken_and_the_run_stops_without_splitting(
    spark, tmp_path, rows_source
):
    folder = tmp_path / "models" / "broken"
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    signature = mlflow.models.infer_signature(pd.DataFrame({"a": [1.0], "b": [2]}), np.array([1.0]))
    mlflow.pyfunc.save_model(str(folder), python_model=BrokenModel(), signature=signature)
    job = model_job(tmp_path, rows_source, folder, "model.max_failed_rows='100%'",
                    "model.batch_size=1000")

    with pytest.raises(FailedWorkExceeded) as error:
        run(spark, job, DAY, "broken")

    assert str(error.value).startswith(
        f"model {folder} is broken, not the data: it raised on a batch of 39 rows and on each of "
        "its first 3 rows and its last row alone: AttributeError: 'LogisticRegression' object "
        "has no attribute 'multi_class'. Nothing was committed"
    )
    assert listing(tmp_path / "scored") == {} and listing(tmp_path / "scored_rejects") == {}
