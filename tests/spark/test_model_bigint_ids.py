"""A model job's bigint passthrough ids come back unchanged, above 2^53 too (local Spark).

A double holds integers exactly only up to 2^53: a cast of an id through double anywhere on
the way (the scorer, the rejects) turns 2^53 + 1 into 2^53 and 2^63 - 1 into an overflow.
The ids here are scored, quarantined (a null input) and rejected by the model (it raises on
their row); each must come back as written, in the output and in the rejects, and in
``batch-score predict``'s file output.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import cloudpickle
import mlflow.pyfunc
import pandas as pd
import pytest

from batch_scoring.jobs import predict
from batch_scoring.jobs.config import load_job
from batch_scoring.jobs.pipeline import run

ROOT = Path(__file__).resolve().parents[2]
DAY = dt.date(2026, 11, 22)
SCORED_IDS = [2**53 + 1, 2**53 + 3, 2**62 + 7, 2**63 - 1, -(2**63) + 1, -(2**53) - 1, 5]
NULL_ID = 2**62 + 9  # its input is null: quarantined before the model (null_value)
RAISING_ID = -(2**62) - 3  # its input is 13.13: the model raises on it (model_raised)


class DoublingModel(mlflow.pyfunc.PythonModel):
    """Predicts 2 a; raises on any call holding a row with a == 13.13."""

    def predict(self, context, model_input, params=None):
        if (model_input["a"] == 13.13).any():
            raise ValueError("cannot score a=13.13")
        return (2 * model_input["a"]).to_numpy()


@pytest.fixture(scope="module")
def doubling_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models") / "doubling"
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    mlflow.pyfunc.save_model(str(folder), python_model=DoublingModel(),
                             input_example=pd.DataFrame({"a": [1.0]}))
    return folder


@pytest.fixture(scope="module")
def id_rows(tmp_path_factory) -> Path:
    """``id`` int64 (the ids above), ``a`` float64: i + 0.5 for the i-th scored id."""
    ids = [*SCORED_IDS, NULL_ID, RAISING_ID]
    a = [i + 0.5 for i in range(len(SCORED_IDS))] + [None, 13.13]
    path = tmp_path_factory.mktemp("ids") / "ids.parquet"
    pd.DataFrame({"id": pd.array(ids, dtype="int64"), "a": pd.array(a, dtype="float64")}).to_parquet(path)
    return path


@pytest.mark.parametrize("fmt", ["delta", "parquet"])
def test_ids_above_2_pow_53_come_back_unchanged_in_the_output_and_the_rejects(spark, tmp_path, id_rows, doubling_model, fmt):
    job = load_job(ROOT / "conf/jobs/model_scoring.yaml", [
        f"source.path={id_rows}", "source.filter=null", f"model.uri={doubling_model}",
        f"model.allowed_uris=[{doubling_model.parent}/]", "model.passthrough=[id]",
        "model.output_schema=prediction double", "model.max_failed_rows=1",
        f"output.path={tmp_path / 'scored'}", f"output.format={fmt}", "output.partition_by=[]",
    ])

    summary = run(spark, job, DAY, "big-ids")

    assert (summary.rows_out, summary.rows_rejected) == (len(SCORED_IDS), 2)
    out = spark.read.format(fmt).load(job.output.path)
    assert dict(out.dtypes)["id"] == "bigint"
    scored = {row["id"]: row["prediction"] for row in out.collect()}
    assert scored == {i: 2 * (n + 0.5) for n, i in enumerate(SCORED_IDS)}
    rejects = spark.read.format(fmt).load(job.output.rejects)
    assert dict(rejects.dtypes)["id"] == "bigint"
    assert sorted((row["id"], row["reject_reason"]) for row in rejects.collect()) == [
        (RAISING_ID, "model_raised"), (NULL_ID, "null_value"),
    ]


def test_predict_keeps_the_same_ids_in_its_file_output_and_rejects(tmp_path, id_rows, doubling_model):
    output = tmp_path / "scored.parquet"

    code = predict.main(["--model", str(doubling_model), "--input", str(id_rows),
                         "--output", str(output), "--passthrough", "id"])

    assert code == 0
    scored = pd.read_parquet(output)
    assert scored["id"].dtype == "int64"
    assert dict(zip(scored["id"].tolist(), scored["prediction"].tolist())) == {
        i: 2 * (n + 0.5) for n, i in enumerate(SCORED_IDS)
    }
    rejects = pd.read_parquet(f"{output}.rejects.parquet")
    assert sorted(zip(rejects["id"].tolist(), rejects["reject_reason"])) == [
        (RAISING_ID, "model_raised"), (NULL_ID, "null_value"),
    ]
