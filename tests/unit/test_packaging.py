"""Environment-archive facts checked before anything is uploaded: requirements, hash, release fit."""

from __future__ import annotations

import io
import tarfile

import pytest

from batch_scoring.jobs.deploy import packaging
from batch_scoring.jobs.errors import DeployError


def make_archive(path, pyvenv_cfg: str | None):
    """A tar.gz laid out like a venv-pack archive (pyvenv.cfg at its root)."""
    with tarfile.open(path, "w:gz") as tar:
        if pyvenv_cfg is not None:
            data = pyvenv_cfg.encode()
            info = tarfile.TarInfo("pyvenv.cfg")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        data = b"#!/bin/sh\n"
        info = tarfile.TarInfo("bin/activate")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


def test_runtime_requirements_leave_spark_and_delta_to_the_cluster():
    requirements = packaging.runtime_requirements()
    names = {r.split("==")[0].lower() for r in requirements}
    assert "pyspark" not in names and "delta-spark" not in names
    assert {"pandas", "pyarrow", "mlflow-skinny", "boto3", "pydantic"} <= names
    assert all("==" in r for r in requirements), requirements  # pinned, so the archive is reproducible
    assert not any("pytest" in r or "moto" in r for r in requirements)  # no dev extras


def test_content_hash_follows_requirements_and_python():
    base = packaging.content_hash(["pandas==2.3.3"], "3.11")
    assert base == packaging.content_hash(["pandas==2.3.3"], "3.11")
    assert len(base) == 12
    assert base != packaging.content_hash(["pandas==2.3.3", "scikit-learn==1.7.2"], "3.11")
    assert base != packaging.content_hash(["pandas==2.3.3"], "3.12")


@pytest.mark.parametrize("cfg, version", [
    ("home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.11.9\n", "3.11"),
    ("home = /usr/bin\nversion_info = 3.9.18.final.0\n", "3.9"),
])
def test_archive_python_version_comes_from_pyvenv_cfg(tmp_path, cfg, version):
    archive = make_archive(tmp_path / "env.tar.gz", cfg)
    assert packaging.archive_python_version(archive) == version


def test_a_file_that_is_not_an_environment_archive_is_named(tmp_path):
    no_cfg = make_archive(tmp_path / "plain.tar.gz", None)
    with pytest.raises(DeployError, match="plain.tar.gz is not a venv-pack environment archive"):
        packaging.archive_python_version(no_cfg)
    text = tmp_path / "notes.tar.gz"
    text.write_text("hello")
    with pytest.raises(DeployError, match="notes.tar.gz is not a venv-pack"):
        packaging.archive_python_version(text)


@pytest.mark.parametrize("release", ["emr-spark-8.0.0", "emr-8.1.0"])
def test_emr_8_with_python_3_11_fits(release):
    packaging.check_release(release, "3.11", "4.0.2")


def test_emr_7_is_refused_for_its_spark_line():
    with pytest.raises(DeployError, match=r"emr-7.5.0 ships Spark 3.5.*pyspark 4.0.2.*emr-spark-8"):
        packaging.check_release("emr-7.5.0", "3.11", "4.0.2")


def test_an_archive_built_for_another_python_is_refused_with_the_fix():
    with pytest.raises(DeployError, match=r"built with Python 3.12, but emr-spark-8.0.0 runs Python 3.11.*rebuild"):
        packaging.check_release("emr-spark-8.0.0", "3.12", "4.0.2")


def test_an_unknown_release_is_refused():
    with pytest.raises(DeployError, match="unknown EMR release 'spark-4.0'"):
        packaging.check_release("spark-4.0", "3.11", "4.0.2")
