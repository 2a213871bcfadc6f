"""MLflow run tracking (jobs/tracking.py): a job started through spark-submit is recorded on the
real tracking server the tests start (``mlflow_server``) and read back with MlflowClient; an
unreachable server is a warning and the run still succeeds. Marked ``one_line``: what is
recorded does not depend on the Spark line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import mlflow
import pytest
from mlflow.entities import ViewType

from batch_scoring.jobs.config import load_job
from batch_scoring.jobs.sample_data import write_sample
from batch_scoring.jobs.tracking import record_run
from job_inputs import NO_REPORT, run_spark_submit
from ports import free_port

pytestmark = [pytest.mark.spark, pytest.mark.one_line]

ROOT = Path(__file__).resolve().parents[2]
JOB_FILE = ROOT / "conf/jobs/data_pricing.yaml"
RUN_DATE = "2026-11-22"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tracking")
    write_sample("bundle_sales", folder / "sales", rows=20 * 20, units=20, seed=7)
    return folder


def submit(workdir: Path, out: str, run_id: str, *extra: str):
    return run_spark_submit(
        "local", str(JOB_FILE), "--run-date", RUN_DATE, "--run-id", run_id,
        "--set", f"source.path={workdir / 'sales'}", "--set", f"output.path={workdir / out}",
        "--set", "output.format=parquet", "--set", "source.filter=null", *extra, cwd=workdir,
    )


def manifest_file(workdir: Path, out: str, run_id: str) -> Path:
    return workdir / out / "_manifests" / f"run_date={RUN_DATE}" / f"{run_id}.json"


def test_a_submitted_run_is_an_mlflow_run_with_its_config_counts_tags_and_files(workdir, mlflow_server, tmp_path):
    result = submit(workdir, "tracked", "tracked-1", "--set", f"tracking.uri={mlflow_server.uri}",
                    "--set", "function.params.max_step=0.12")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    printed = re.search(r"mlflow run: (\S+)/#/experiments/(\w+)/runs/(\w+)", result.stdout)
    assert printed and printed[1] == mlflow_server.uri, result.stdout[-2000:]
    manifest = json.loads(manifest_file(workdir, "tracked", "tracked-1").read_text())

    client = mlflow.MlflowClient(tracking_uri=mlflow_server.uri)
    experiment = client.get_experiment_by_name("data_pricing")
    run = client.get_run(printed[3])
    assert (experiment.experiment_id, run.info.experiment_id) == (printed[2], printed[2])
    assert (run.info.run_name, run.info.status) == ("tracked-1", "FINISHED")
    assert run.data.params["function.params.max_step"] == "0.12"
    assert run.data.params["unit_of_work.keys"] == '["segment", "location", "product"]'
    assert run.data.params["tracking.uri"] == mlflow_server.uri
    assert run.data.metrics["rows_out"] == manifest["rows"]["out"] == 20
    assert run.data.metrics["rows_in"] == manifest["rows"]["in"]
    assert run.data.metrics["phase_seconds.price"] == manifest["phases"]["price"]
    core_seconds = manifest["cost"]["resources"]["allocated_core_seconds"]  # local[2]: the driver's UI answers
    assert run.data.metrics["cost.resources.allocated_core_seconds"] == core_seconds > 0
    assert run.data.tags["batch_scoring.run_id"] == "tracked-1"
    assert run.data.tags["batch_scoring.run_date"] == RUN_DATE
    assert run.data.tags["batch_scoring.manifest"].endswith("/tracked/_manifests/run_date=2026-11-22/tracked-1.json")
    assert sorted(a.path for a in client.list_artifacts(run.info.run_id)) == ["tracked-1.html", "tracked-1.json"]
    logged = client.download_artifacts(run.info.run_id, "tracked-1.json", str(tmp_path))
    assert json.loads(Path(logged).read_text()) == manifest


def test_an_unreachable_tracking_server_is_a_warning_and_the_run_succeeds(workdir):
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = submit(workdir, "untracked", "untracked-1", "--set", f"tracking.uri={uri}", *NO_REPORT)
    output = result.stdout + result.stderr  # spark-submit merges the driver's stderr into stdout
    assert result.returncode == 0, output[-3000:]
    warnings = [line for line in output.splitlines() if "could not be recorded in MLflow" in line]
    assert len(warnings) == 1 and f"at {uri}: " in warnings[0] and "WARNING" in warnings[0]
    assert "Retrying (Retry(" not in output and "mlflow run:" not in output  # urllib3 kept quiet
    assert json.loads(manifest_file(workdir, "untracked", "untracked-1").read_text())["status"] == "succeeded"


def test_recording_the_same_manifest_again_replaces_its_mlflow_run(spark, mlflow_server, tmp_path):
    job = load_job(JOB_FILE, [f"tracking.uri={mlflow_server.uri}", "tracking.experiment=rerun-same-id"])
    folder = tmp_path / "out" / "_manifests" / f"run_date={RUN_DATE}"
    folder.mkdir(parents=True)
    manifest = {"job": job.job, "run_date": RUN_DATE, "run_id": "same-id", "status": "succeeded",
                "started_at": "2026-11-22T02:00:00+00:00", "finished_at": "2026-11-22T02:00:41+00:00",
                "seconds": 41.0, "config": {"source": {"path": "in"}}, "rows": {"in": 5, "out": 4}}
    path = folder / "same-id.json"
    path.write_text(json.dumps(manifest))

    first = record_run(spark, job, manifest, str(path), None)
    second = record_run(spark, job, {**manifest, "rows": {"in": 5, "out": 5}}, str(path), None)

    client = mlflow.MlflowClient(tracking_uri=mlflow_server.uri)
    assert second.replaced == (first.run_id,)
    active = client.search_runs([second.experiment_id])
    assert [(r.info.run_id, r.data.metrics["rows_out"]) for r in active] == [(second.run_id, 5.0)]
    replaced = client.get_run(first.run_id)
    assert replaced.info.lifecycle_stage == "deleted"
    assert replaced.data.tags["batch_scoring.replaced_by"] == second.run_id
    assert len(client.search_runs([second.experiment_id], run_view_type=ViewType.ALL)) == 2
