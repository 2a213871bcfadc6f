"""The environment archive shipped to clusters, built for real with pip and venv-pack."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from importlib import metadata

import pytest

from batch_scoring.jobs.deploy import archive_record, packaging
from batch_scoring.jobs.runtime_lines import installed_line


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The wheel and archive, built once for this module (about a minute with a warm pip cache)."""
    return packaging.build(tmp_path_factory.mktemp("dist"))


def test_archive_holds_the_package_and_its_runtime_but_not_spark(built):
    site = f"lib/python{built.python_version}/site-packages/"
    with tarfile.open(built.archive) as tar:
        names = set(tar.getnames())
    assert site + "batch_scoring/jobs/run_job.py" in names
    assert site + "batch_scoring/udfs/pricing/data_pricing.py" in names
    assert site + "pandas/__init__.py" in names and site + "pyarrow/__init__.py" in names
    assert not any(n.startswith(site + "pyspark/") or n.startswith(site + "delta/") for n in names)


def test_archive_name_and_python_follow_the_interpreter(built):
    expected = "%d.%d" % sys.version_info[:2]
    assert built.python_version == expected == packaging.inspect_archive(built.archive).python
    assert built.archive.name.startswith(f"batch-scoring-env-py{expected}-")
    assert built.wheel.name == "batch_scoring-0.1.0-py3-none-any.whl"


def test_archive_records_the_spark_line_it_was_built_on(built):
    expected = {"spark": metadata.version("pyspark"), "delta": metadata.version("delta-spark"),
                "python": built.python_version, "line": installed_line().name}
    with tarfile.open(built.archive) as tar:
        assert json.loads(tar.extractfile("batch_scoring_runtime.json").read()) == expected
    assert packaging.inspect_archive(built.archive) == built.runtime == archive_record.building_record(built.python_version)


def test_archive_holds_the_numpy_of_the_building_environment(built):
    site = f"lib/python{built.python_version}/site-packages/"
    with tarfile.open(built.archive) as tar:
        names = set(tar.getnames())
    assert f"{site}numpy-{metadata.version('numpy')}.dist-info/METADATA" in names  # numpy 1 on the EMR 7 line


def test_unpacked_archive_imports_the_scoring_code_without_pyspark(built, tmp_path):
    with tarfile.open(built.archive) as tar:
        tar.extractall(tmp_path / "environment", filter="tar")
    probe = (
        "import importlib.util, batch_scoring.udfs.engine.unit_of_work, batch_scoring.udfs.models.model_cache, "
        "pandas, pyarrow, mlflow.pyfunc;"
        "print(importlib.util.find_spec('pyspark') is None, pandas.__version__)"
    )
    result = subprocess.run([str(tmp_path / "environment/bin/python"), "-c", probe],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["True", "2.3.3"]


def test_an_unchanged_build_reuses_the_archive(built):
    before = built.archive.stat().st_mtime_ns
    again = packaging.build(built.archive.parent)
    assert again.archive == built.archive
    assert again.archive.stat().st_mtime_ns == before
