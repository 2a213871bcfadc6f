"""spark-submit flags and properties file on each runtime line, with the installation's defaults.

Spark 4's spark-submit keeps ``conf/spark-defaults.conf`` applied beside ``--properties-file``
when given ``--load-spark-defaults``; Spark 3.5's has no such flag (it fails with its usage
text) and ignores the defaults file once a properties file is given, so on that line the
defaults are copied into the file, below the run's own settings.
"""

from __future__ import annotations

from pathlib import Path

import javaproperties
import pytest

from batch_scoring.jobs.config import load_job, load_profile
from batch_scoring.jobs.runtime_lines import SPARK4, SPARK35
from batch_scoring.jobs.session import installation_defaults, submit_arguments

ROOT = Path(__file__).resolve().parents[2]
DEFAULTS = """\
# cluster-wide settings, as an administrator writes them
spark.eventLog.enabled          true
spark.executor.memory=9g
spark.sql.session.timeZone : Asia/Tokyo
spark.yarn.tags  nightly\\u0020pricing   
not.a.spark.key  ignored
"""


@pytest.fixture
def conf_dir(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "spark-conf"
    folder.mkdir()
    (folder / "spark-defaults.conf").write_text(DEFAULTS)
    monkeypatch.setenv("SPARK_CONF_DIR", str(folder))
    return folder


def flags_and_file(tmp_path: Path, line) -> tuple[list[str], dict[str, str]]:
    profile = load_profile(ROOT / "conf/local.yaml")
    job = load_job(ROOT / "conf/jobs/data_pricing.yaml", [])
    properties = tmp_path / "run.properties"
    flags = submit_arguments(profile, job, properties, line=line)
    with open(properties, encoding="utf-8") as handle:
        return flags, javaproperties.load(handle)


def test_the_defaults_file_is_read_as_spark_submit_reads_it(conf_dir):
    assert installation_defaults() == {
        "spark.eventLog.enabled": "true",
        "spark.executor.memory": "9g",
        "spark.sql.session.timeZone": "Asia/Tokyo",
        "spark.yarn.tags": "nightly pricing",
    }


def test_spark35_copies_the_defaults_below_the_runs_settings(conf_dir, tmp_path):
    flags, written = flags_and_file(tmp_path, SPARK35)

    assert flags == ["--master", "local[2]", "--deploy-mode", "client", "--name", "data_pricing",
                     "--properties-file", str(tmp_path / "run.properties")]
    assert written["spark.eventLog.enabled"] == "true"
    assert written["spark.executor.memory"] == "9g"
    assert written["spark.yarn.tags"] == "nightly pricing"
    assert written["spark.sql.session.timeZone"] == "UTC"  # conf/local.yaml's, over the default
    assert "not.a.spark.key" not in written


def test_spark4_leaves_the_defaults_to_load_spark_defaults(conf_dir, tmp_path):
    flags, written = flags_and_file(tmp_path, SPARK4)

    assert flags[-3:] == ["--properties-file", str(tmp_path / "run.properties"), "--load-spark-defaults"]
    assert "spark.eventLog.enabled" not in written and "spark.executor.memory" not in written
    assert written["spark.sql.session.timeZone"] == "UTC"


def test_without_a_defaults_file_spark35_writes_only_the_runs_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("SPARK_CONF_DIR", str(tmp_path / "no-such-conf"))
    _, on_35 = flags_and_file(tmp_path, SPARK35)
    _, on_4 = flags_and_file(tmp_path, SPARK4)
    assert on_35 == on_4
    assert on_35["spark.sql.ansi.enabled"] == "true"
