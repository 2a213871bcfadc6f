"""One pre-flight everywhere: what the config and the file system can tell is refused before
Spark starts, writes nothing, and ``predict`` runs the job's schema check (issue 18, findings 4-5).

Real components: a scikit-learn model saved with MLflow (signature from its training frame),
Parquet files written by pandas, ``run_job.main`` and ``predict.main`` in this process.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from batch_scoring.jobs import predict, run_job

FEATURES = ["age", "bmi", "bp"]


def listing(root: Path) -> dict[str, int]:
    """Every file under ``root`` with its size (empty when ``root`` does not exist)."""
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def diabetes_model(tmp_path_factory) -> Path:
    """A LinearRegression on three diabetes features, saved with its signature."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import LinearRegression

    data = load_diabetes(as_frame=True)
    x, y = data.data[FEATURES], data.target
    model = LinearRegression().fit(x, y)
    folder = tmp_path_factory.mktemp("models") / "diabetes"
    mlflow.sklearn.save_model(model, str(folder), signature=infer_signature(x, model.predict(x)))
    return folder


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A working folder with a diabetes Parquet source (id + features) and earlier outputs."""
    from sklearn.datasets import load_diabetes

    monkeypatch.chdir(tmp_path)
    rows = load_diabetes(as_frame=True).data[FEATURES].head(50).reset_index(names="id")
    (tmp_path / "src").mkdir()
    rows.to_parquet(tmp_path / "src" / "part-0.parquet")
    for root in ("out", "out_rejects"):
        (tmp_path / root / "run_date=2026-01-01").mkdir(parents=True)
        (tmp_path / root / "run_date=2026-01-01" / "kept.parquet").write_bytes(b"earlier run")
    return tmp_path


def model_job(folder: Path, model: Path, source: str = "src", fmt: str = "parquet") -> Path:
    job = folder / "model_job.yaml"
    job.write_text(textwrap.dedent(f"""
        job: diabetes
        source: {{path: {source}, format: {fmt}}}
        model:
          uri: {model}
          allowed_uris: [{model.parent}/]
          passthrough: [id]
        output: {{path: out, format: parquet}}
    """))
    return job


def function_job(folder: Path, source: str = "src") -> Path:
    job = folder / "function_job.yaml"
    job.write_text(textwrap.dedent(f"""
        job: pricing
        source: {{path: {source}, format: parquet}}
        unit_of_work: {{keys: [segment, location, product], order_by: [sale_date]}}
        function: {{name: data_pricing}}
        output: {{path: out, format: parquet}}
    """))
    return job


def refused(folder: Path, capsys, spark_starts: list[str], *args: str) -> tuple[int, str]:
    """Run the job; check nothing under the output roots changed and Spark never started."""
    before = {root: listing(folder / root) for root in ("out", "out_rejects")}
    code = run_job.main([*args, "--run-date", "2026-01-01"])
    assert spark_starts == []
    assert {root: listing(folder / root) for root in ("out", "out_rejects")} == before
    return code, capsys.readouterr().err


def test_a_missing_local_source_path_is_exit_3_before_spark(folder, diabetes_model, capsys, spark_starts):
    code, error = refused(folder, capsys, spark_starts, "--job", str(model_job(folder, diabetes_model, "nowhere")))
    assert code == 3
    assert "source.path nowhere does not exist; check the path or run date" in error


def test_a_missing_local_model_folder_is_exit_2_before_spark(folder, diabetes_model, capsys, spark_starts):
    code, error = refused(folder, capsys, spark_starts, "--job", str(model_job(folder, diabetes_model.parent / "gone")))
    assert code == 2
    assert f"model.uri: model path '{diabetes_model.parent / 'gone'}' does not exist" in error


def test_a_model_folder_without_mlmodel_is_exit_2(folder, diabetes_model, capsys, spark_starts):
    empty = diabetes_model.parent / "empty"
    empty.mkdir(exist_ok=True)
    code, error = refused(folder, capsys, spark_starts, "--job", str(model_job(folder, empty)))
    assert code == 2
    assert "holds no MLmodel file" in error


def test_csv_without_a_schema_is_exit_2_before_spark(folder, diabetes_model, capsys, spark_starts):
    pd.read_parquet(folder / "src").to_csv(folder / "rows.csv", index=False)
    code, error = refused(folder, capsys, spark_starts, "--job", str(model_job(folder, diabetes_model, "rows.csv", "csv")))
    assert code == 2
    assert "source.schema is required for format csv" in error


def test_a_model_input_missing_from_the_parquet_footer_is_exit_3_naming_it(folder, diabetes_model, capsys, spark_starts):
    pd.read_parquet(folder / "src").drop(columns=["bp"]).to_parquet(folder / "src" / "part-0.parquet")
    code, error = refused(folder, capsys, spark_starts, "--job", str(model_job(folder, diabetes_model)))
    assert code == 3
    assert "source src cannot feed model" in error
    assert "required input column 'bp' is missing" in error


def test_a_misspelt_model_input_column_gets_the_nearest_source_column(folder, diabetes_model, capsys, spark_starts):
    pd.read_parquet(folder / "src").rename(columns={"bmi": "bmi_"}).to_parquet(folder / "src" / "part-0.parquet")
    code, error = refused(folder, capsys, spark_starts, "--job", str(model_job(folder, diabetes_model)))
    assert code == 3
    assert "required input column 'bmi' is missing (did you mean 'bmi_'?)" in error


def test_a_string_model_input_in_the_footer_is_exit_3_naming_it(folder, diabetes_model, capsys, spark_starts):
    rows = pd.read_parquet(folder / "src")
    rows.astype({"bp": str}).to_parquet(folder / "src" / "part-0.parquet")
    code, error = refused(folder, capsys, spark_starts, "--job", str(model_job(folder, diabetes_model)))
    assert code == 3
    assert "column 'bp' is string, the model expects double" in error


def test_a_unit_key_missing_from_the_footer_is_exit_3(folder, capsys, spark_starts):
    code, error = refused(folder, capsys, spark_starts, "--job", str(function_job(folder)))
    assert code == 3
    assert "source src lacks column(s) 'segment', 'location', 'product', 'sale_date'" in error


def test_predict_refuses_a_string_input_column_in_a_file_as_the_job_does(folder, diabetes_model, capsys):
    rows = pd.read_parquet(folder / "src").astype({"bp": str})
    rows.to_parquet(folder / "rows.parquet")

    code = predict.main(["--model", str(diabetes_model), "--input", str(folder / "rows.parquet"),
                         "--output", str(folder / "scored.parquet")])

    assert code == 3
    error = capsys.readouterr().err
    assert f"--input {folder / 'rows.parquet'} cannot feed model" in error
    assert "column 'bp' is string, the model expects double" in error
    assert not (folder / "scored.parquet").exists()


def test_predict_refuses_a_string_value_in_a_record_and_scores_a_number(diabetes_model, capsys):
    record = {"age": 0.03, "bmi": 0.06, "bp": "0.06"}

    assert predict.main(["--model", str(diabetes_model), "--record", json.dumps(record)]) == 3
    assert "column 'bp' is string, the model expects double" in capsys.readouterr().err

    record["bp"] = 0.06
    assert predict.main(["--model", str(diabetes_model), "--record", json.dumps(record)]) == 0
    import mlflow.sklearn

    scored = json.loads(capsys.readouterr().out)
    expected = mlflow.sklearn.load_model(str(diabetes_model)).predict(pd.DataFrame([record]))[0]
    assert scored["prediction"] == pytest.approx(expected, rel=1e-12)


def test_predict_output_refuses_an_existing_file_unless_overwrite(folder, diabetes_model, capsys):
    rows = folder / "src" / "part-0.parquet"
    out = folder / "scored.parquet"
    args = ["--model", str(diabetes_model), "--input", str(rows), "--output", str(out)]
    assert predict.main(args) == 0
    first = out.read_bytes()
    capsys.readouterr()

    assert predict.main(args) == 2
    assert f"--output {out}: {out} already exist(s); give another --output or add --overwrite" in (
        capsys.readouterr().err)
    assert out.read_bytes() == first

    assert predict.main([*args, "--overwrite"]) == 0
    assert len(pd.read_parquet(out)) == 50


@pytest.fixture
def s3_source(aws, folder):
    """Bucket ``data`` on the moto server holding the folder's diabetes source under ``src/``."""
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="data", CreateBucketConfiguration={"LocationConstraint": aws.region})
    s3.upload_file(str(folder / "src" / "part-0.parquet"), "data", "src/part-0.parquet")
    return s3


def test_an_s3_source_with_no_object_under_it_is_exit_3_before_spark(folder, diabetes_model, s3_source, capsys, spark_starts):
    code, error = refused(folder, capsys, spark_starts, "--job", str(model_job(folder, diabetes_model, "s3://data/srcs")))
    assert code == 3
    assert "source.path s3://data/srcs does not exist (no object under it)" in error


def test_an_s3_source_in_a_missing_bucket_is_exit_3_before_spark(folder, diabetes_model, s3_source, capsys, spark_starts):
    code, error = refused(folder, capsys, spark_starts, "--job", str(model_job(folder, diabetes_model, "s3a://nobucket/src")))
    assert code == 3
    assert "bucket 'nobucket' does not exist" in error


def test_an_s3_parquet_footer_is_checked_against_the_signature_before_spark(folder, diabetes_model, s3_source, capsys, spark_starts):
    rows = pd.read_parquet(folder / "src").drop(columns=["bp"])
    rows.to_parquet(folder / "no_bp.parquet")
    s3_source.upload_file(str(folder / "no_bp.parquet"), "data", "no_bp/part-0.parquet")
    code, error = refused(folder, capsys, spark_starts, "--job", str(model_job(folder, diabetes_model, "s3://data/no_bp")))
    assert code == 3
    assert "source s3://data/no_bp cannot feed model" in error and "required input column 'bp' is missing" in error


def test_without_credentials_an_s3_source_is_left_to_spark(monkeypatch, folder):
    from batch_scoring.jobs.config import SourceConfig
    from batch_scoring.jobs.preflight import check_source_config, parquet_schema

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(folder / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(folder / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    source = SourceConfig(path="s3://data/src", format="parquet")
    check_source_config(source)  # boto3 cannot ask S3: nothing is refused here
    assert parquet_schema(source) is None
