"""No secret in the process list, the driver log or the manifest of a real spark-submit run.

Issue 15, reproductions 2 and 3: ``spark_conf`` values were passed to spark-submit as
``--conf key=value`` (visible to every user in ``ps``), printed in the driver log and stored in
the manifest. Now ``spark-submit.sh`` hands them over in a properties file of mode 0600 that is
removed after the run. The secrets below are FAKE, generated here.
"""

from __future__ import annotations

import json
import os
import random
import stat
import string
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from batch_scoring.jobs.config import load_job
from batch_scoring.jobs.manifest import ManifestRecorder
from batch_scoring.jobs.sample_data import write_sample
from batch_scoring.jobs.session import write_properties_file
from job_inputs import NO_REPORT

pytestmark = pytest.mark.one_line  # the process list: same on both Spark lines

ROOT = Path(__file__).resolve().parents[2]
RNG = random.Random(1515)


def _fake(alphabet: str, length: int) -> str:
    return "".join(RNG.choice(alphabet) for _ in range(length))


FAKE_ACCESS_KEY_ID = "AKIA" + _fake(string.ascii_uppercase + "234567", 16)
FAKE_SECRET = _fake(string.ascii_letters, 20) + _fake(string.digits, 20)
FAKE_AZURE_KEY = _fake(string.ascii_letters + string.digits, 86) + "=="
FAKE_SSE_KEY = _fake(string.ascii_letters + string.digits, 44)
FAKE_GCS_KEY = "gcs-" + _fake(string.ascii_lowercase + string.digits, 32)
SECRETS = {
    "spark.hadoop.fs.s3a.secret.key": FAKE_SECRET,
    "spark.executorEnv.AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY_ID,
    "spark.hadoop.fs.azure.account.key.fakeacct.dfs.core.windows.net": FAKE_AZURE_KEY,
    "spark.hadoop.fs.s3a.encryption.key": FAKE_SSE_KEY,
    "spark.hadoop.fs.gs.auth.service.account.private.key": FAKE_GCS_KEY,
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("secrets")
    write_sample("bundle_sales", folder / "sales", rows=20 * 20, units=20, seed=3)
    job = yaml.safe_load((ROOT / "conf/jobs/data_pricing.yaml").read_text())
    job["spark_conf"] = dict(SECRETS)
    (folder / "job.yaml").write_text(yaml.safe_dump(job))
    return folder


def _cmdlines() -> list[tuple[int, list[str]]]:
    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        cmdline = process.info.get("cmdline") or []
        if cmdline:
            found.append((process.info["pid"], cmdline))
    return found


def _tree(pid: int) -> set[int]:
    """``pid`` and its descendants now (other jobs on the machine are not this run's)."""
    try:
        root = psutil.Process(pid)
        return {pid, *(child.pid for child in root.children(recursive=True))}
    except psutil.NoSuchProcess:
        return set()


@pytest.mark.spark
def test_spark_submit_run_shows_no_secret_in_ps_and_removes_its_properties_file(workdir):
    tmpdir = workdir / "tmp"
    tmpdir.mkdir()
    env = {**os.environ, "BATCH_SCORE_PYTHON": sys.executable, "TMPDIR": str(tmpdir)}
    command = [
        str(ROOT / "spark-submit.sh"), "local", str(workdir / "job.yaml"), "--run-date", "2026-11-22",
        "--run-id", "scheduled__2026-11-22T02:00:00+00:00",
        "--set", f"source.path={workdir / 'sales'}", "--set", f"output.path={workdir / 'out'}",
        "--set", "source.filter=null", *NO_REPORT,
    ]
    process = subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    samples, properties_files, modes, leaks, spark_seen = 0, set(), {}, [], False
    while process.poll() is None:
        ours = _tree(process.pid)
        for pid, cmdline in _cmdlines():
            text = "\0".join(cmdline)
            leaks += [(pid, cmdline) for secret in SECRETS.values() if secret in text]
            if pid in ours and "org.apache.spark.deploy.SparkSubmit" in text:
                spark_seen = True
                if "--properties-file" in cmdline:
                    path = cmdline[cmdline.index("--properties-file") + 1]
                    properties_files.add(path)
                    try:
                        modes[path] = stat.S_IMODE(os.stat(path).st_mode)
                    except FileNotFoundError:
                        pass
        samples += 1
        time.sleep(0.2)
    stdout, stderr = process.communicate()
    assert process.returncode == 0, stderr[-3000:]
    print(f"process list sampled {samples} times while the job ran")

    assert spark_seen and samples >= 5
    assert leaks == []
    assert len(properties_files) == 1
    [path] = properties_files
    assert Path(path).parent == tmpdir and modes[path] == 0o600
    assert not Path(path).exists() and list(tmpdir.iterdir()) == []
    # the Delta jar reached Spark only through the properties file (spark.jars.packages)
    assert (workdir / "out" / "_delta_log").is_dir()
    # and the values appear neither in the driver log nor in the manifest
    for secret in SECRETS.values():
        assert secret not in stdout and secret not in stderr
    [manifest] = (workdir / "out" / "_manifests").rglob("*.json")
    document = json.loads(manifest.read_text())
    assert document["run_id"] == "scheduled__2026-11-22T02:00:00+00:00"
    assert {document["config"]["spark_conf"][k] for k in SECRETS} == {"***"}
    for secret in SECRETS.values():
        assert secret not in manifest.read_text()


def test_the_properties_file_round_trips_through_spark_exactly(spark, tmp_path):
    settings = {
        "spark.a": "plain", "spark.b": "with = and : and # and !", "spark.c": "back\\slash",
        "spark.d": "new\nline\ttab", "spark.e": "ünïcødé 日本", "spark.f=odd:key": "v",
        "spark.g": "  leading blanks", "spark.h": "",
    }
    path = write_properties_file(tmp_path / "run.properties", settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    jvm = spark.sparkContext._jvm
    loaded = jvm.org.apache.spark.util.Utils.getPropertiesFromFile(str(path))
    got = dict(jvm.scala.jdk.javaapi.CollectionConverters.asJava(loaded))
    # Spark trims the white space around values, as it does for --conf
    assert got == {k: v.strip() for k, v in settings.items()}


def test_an_existing_properties_file_gets_mode_0600(tmp_path):
    path = tmp_path / "run.properties"
    path.write_text("old")
    path.chmod(0o644)
    write_properties_file(path, {"spark.x": "1"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and "old" not in path.read_text()


def test_the_manifest_masks_the_issue_settings_and_tracking_uri_userinfo(spark, tmp_path):
    job = load_job(ROOT / "conf/jobs/model_scoring.yaml", [
        f"output.path={tmp_path / 'out'}", f"source.path={tmp_path / 'src'}",
        "model.tracking_uri=https://user:password@mlflow.example.com",
        *(f"spark_conf.{k}={v}" for k, v in SECRETS.items()),
    ])
    recorder = ManifestRecorder(spark, job, __import__("datetime").date(2026, 11, 22), "r-1")
    path = recorder.failed(RuntimeError(f"403 for key {FAKE_ACCESS_KEY_ID} at https://user:password@h"), 1)
    text = Path(path.removeprefix("file:")).read_text()
    document = json.loads(text)
    assert document["config"]["model"]["tracking_uri"] == "https://***@mlflow.example.com"
    assert {document["config"]["spark_conf"][k] for k in SECRETS} == {"***"}
    assert "password" not in text
    for secret in SECRETS.values():
        assert secret not in text
    assert document["error"]["message"] == "403 for key *** at https://***@h"
