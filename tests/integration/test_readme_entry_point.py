"""The README's Spark-free entry point runs exactly as written (issue 18, finding 3).

``.venv/bin/batch-score run --job conf/jobs/data_pricing.yaml --profile conf/local.yaml``, in
its own process, from a folder holding the repository's ``conf/`` and the sample data, with a
``PATH`` whose ``python3`` lacks this package and no ``PYSPARK_PYTHON``: the command sets the
Python workers' interpreter to its own and prices every unit.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from batch_scoring.jobs.sample_data import write_sample

pytestmark = pytest.mark.one_line  # the README entry point: same on both Spark lines

ROOT = Path(__file__).resolve().parents[2]
UNITS = 40


def readme_command() -> list[str]:
    """The command the README's "Running a job" gives for running without spark-submit."""
    text = (ROOT / "README.md").read_text()
    match = re.search(r"runs without\s+spark-submit: `(\.venv/bin/batch-score run [^`]+)`", text)
    assert match, "the README no longer shows the batch-score run command"
    return match.group(1).split()


@pytest.mark.spark
def test_the_readme_batch_score_run_command_runs_with_a_foreign_python3_on_path(tmp_path):
    command = readme_command()
    assert command == [".venv/bin/batch-score", "run", "--job", "conf/jobs/data_pricing.yaml",
                       "--profile", "conf/local.yaml"]
    shutil.copytree(ROOT / "conf", tmp_path / "conf")
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent)
    write_sample("bundle_sales", tmp_path / "data/sample/bundle_sales", units=UNITS, seed=5)
    foreign = tmp_path / "foreign-bin"
    foreign.mkdir()
    (foreign / "python3").symlink_to(Path(sys.base_prefix) / "bin" / "python3")
    lacks = subprocess.run([str(foreign / "python3"), "-c", "import batch_scoring"],
                           capture_output=True, text=True)
    assert "No module named 'batch_scoring'" in lacks.stderr
    java_bin = str(Path(shutil.which("java")).resolve().parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYSPARK_")}
    env["PATH"] = os.pathsep.join([str(foreign), java_bin, "/usr/bin", "/bin"])

    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=600)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Python workers run" in result.stderr
    assert "manifest:" in result.stdout
    assert "No module named" not in result.stdout + result.stderr
    rows = {m.group(1): m.group(2) for m in re.finditer(r"│ ([a-z ]+?)\s+│\s+([\d,.]+) │", result.stdout)}
    assert rows["units priced"] == str(UNITS), result.stdout
    assert rows["units failed"] == "0", result.stdout
    assert rows["rows rejected"] == "0", result.stdout
    assert list((tmp_path / "output/data_pricing/_delta_log").glob("*.json"))


def test_worker_python_is_set_only_for_a_local_master_without_one():
    from batch_scoring.jobs.session import set_worker_python

    env: dict[str, str] = {}
    assert set_worker_python("local[2]", env) == sys.executable
    assert env == {"PYSPARK_PYTHON": sys.executable}
    chosen = {"PYSPARK_PYTHON": "/opt/env/bin/python"}
    assert set_worker_python("local[2]", chosen) is None and chosen == {"PYSPARK_PYTHON": "/opt/env/bin/python"}
    remote: dict[str, str] = {}
    assert set_worker_python("spark://10.0.0.1:7077", remote) is None and remote == {}
    assert set_worker_python("yarn", remote) is None and remote == {}
