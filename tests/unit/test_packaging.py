"""Environment-archive facts checked before anything is uploaded: requirements, hash, the
archive's recorded Spark line, and the fit of line and Python to an EMR release."""

from __future__ import annotations

import json
import tarfile
from importlib import metadata

import pytest

from batch_scoring.jobs.deploy import archive_record, packaging
from batch_scoring.jobs.deploy.archive_record import RECORD_NAME, RuntimeRecord
from batch_scoring.jobs.errors import ConfigError, DeployError
from batch_scoring.jobs.runtime_lines import SPARK4, SPARK35
from env_archives import env_archive, pyvenv_cfg, record_json, venv_archive

SPARK4_ARCHIVE = RuntimeRecord(spark="4.1.1", delta="4.2.0", python="3.11", line=SPARK4)
SPARK35_ARCHIVE = RuntimeRecord(spark="3.5.8", delta="3.3.2", python="3.11", line=SPARK35)


def make_archive(path, pyvenv_cfg: str | None):
    """A tar.gz laid out like a venv-pack archive (pyvenv.cfg at its root), without a record."""
    return env_archive(path, {} if pyvenv_cfg is None else {"pyvenv.cfg": pyvenv_cfg.encode()})


def test_runtime_requirements_leave_spark_and_delta_to_the_cluster():
    requirements = packaging.runtime_requirements()
    names = {r.split("==")[0].lower() for r in requirements}
    assert "pyspark" not in names and "delta-spark" not in names
    assert {"pandas", "pyarrow", "mlflow-skinny", "boto3", "pydantic"} <= names
    assert all("==" in r for r in requirements), requirements  # pinned, so the archive is reproducible
    assert not any("pytest" in r or "moto" in r for r in requirements)  # no dev extras


def test_a_ranged_requirement_is_pinned_to_the_version_of_the_building_environment(monkeypatch):
    requires = ["pyspark<=4.1.1,>=3.5", "numpy<=2.3.5,>=1.26.4", "pandas==2.3.3",
                'tomli>=2; python_version < "3.11"', "absent>=1", 'pytest==9.2.0; extra == "dev"']
    installed = {"numpy": "1.26.4", "tomli": "2.2.1"}

    def version(name):
        if name not in installed:
            raise metadata.PackageNotFoundError(name)
        return installed[name]

    monkeypatch.setattr(metadata, "requires", lambda name: requires)
    monkeypatch.setattr(metadata, "version", version)
    assert packaging.runtime_requirements() == [
        "numpy==1.26.4", "pandas==2.3.3", 'tomli==2.2.1; python_version < "3.11"', "absent>=1"]


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
def test_the_archive_python_comes_from_pyvenv_cfg_and_must_match_the_record(tmp_path, cfg, version):
    matching = env_archive(tmp_path / "env.tar.gz", {"pyvenv.cfg": cfg.encode(),
                                                      RECORD_NAME: record_json("spark35", version)})
    assert packaging.inspect_archive(matching).python == version
    other = "3.12"
    mismatched = env_archive(tmp_path / "other.tar.gz", {"pyvenv.cfg": cfg.encode(),
                                                         RECORD_NAME: record_json("spark35", other)})
    with pytest.raises(DeployError, match=f"records Python {other} but its pyvenv.cfg names Python {version}"):
        packaging.inspect_archive(mismatched)


def test_a_file_that_is_not_an_environment_archive_is_named(tmp_path):
    no_cfg = make_archive(tmp_path / "plain.tar.gz", None)
    with pytest.raises(DeployError, match="plain.tar.gz is not a venv-pack environment archive"):
        packaging.inspect_archive(no_cfg)
    text = tmp_path / "notes.tar.gz"
    text.write_text("hello")
    with pytest.raises(DeployError, match="notes.tar.gz is not a venv-pack"):
        packaging.inspect_archive(text)


def test_the_archive_name_hash_follows_the_spark_line_it_is_built_against():
    requirements = ["pandas==2.3.3"]
    spark4 = packaging.content_hash([*requirements, *SPARK4_ARCHIVE.pins()], "3.11")
    spark35 = packaging.content_hash([*requirements, *SPARK35_ARCHIVE.pins()], "3.11")
    assert SPARK35_ARCHIVE.pins() == ("pyspark==3.5.8", "delta-spark==3.3.2")
    assert spark4 != spark35  # an EMR 8 archive in dist/ is never reused for EMR 7


# The record: written into the venv by build, read back from a prebuilt archive.

def test_the_building_record_is_this_environments_pyspark_delta_and_line(monkeypatch):
    versions = {"pyspark": "3.5.8", "delta-spark": "3.3.2"}
    monkeypatch.setattr(metadata, "version", lambda name: versions[name])
    assert archive_record.building_record("3.11") == SPARK35_ARCHIVE


def test_building_without_pyspark_installed_names_the_install_commands(monkeypatch):
    def version(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", version)
    with pytest.raises(ConfigError) as error:
        archive_record.building_record("3.11")
    assert "pyspark is not installed in this environment" in str(error.value)
    assert "`pip install -e .` for EMR 8, `pip install -e . -c constraints/emr7.txt` for EMR 7" in str(error.value)


def test_a_written_record_is_read_back_from_the_packed_archive(tmp_path):
    env = tmp_path / "env"
    env.mkdir()
    (env / "pyvenv.cfg").write_bytes(pyvenv_cfg("3.11"))
    written = archive_record.write_record(env, SPARK35_ARCHIVE)
    assert written == env / RECORD_NAME
    assert json.loads(written.read_text()) == {"spark": "3.5.8", "delta": "3.3.2", "python": "3.11", "line": "spark35"}
    archive = tmp_path / "env.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for file in env.iterdir():
            tar.add(file, arcname=file.name)
    assert packaging.inspect_archive(archive) == SPARK35_ARCHIVE


def test_an_archive_without_a_record_must_be_rebuilt(tmp_path):
    old = make_archive(tmp_path / "old.tar.gz", "version = 3.11.9\n")
    with pytest.raises(DeployError) as error:
        packaging.inspect_archive(old)
    assert str(error.value) == (
        f"{old} holds no batch_scoring_runtime.json, so its Spark line is unknown (it was built by an "
        "older version of this package): rebuild it with `./spark-submit.sh package` in an "
        "environment of the release's line"
    )


@pytest.mark.parametrize("content, expected", [
    (b"{not json", "batch_scoring_runtime.json is not JSON"),
    (b'{"spark": "4.1.1", "line": "spark4"}', "must hold the strings spark, delta, python, line"),
    (b'{"spark": "3.4.1", "delta": "2.4.0", "python": "3.11", "line": "spark34"}', "names line 'spark34'"),
    (b'{"spark": "3.5.8", "delta": "3.3.2", "python": "3.11", "line": "spark4"}', "line 'spark4' with pyspark 3.5.8"),
])
def test_a_malformed_record_is_refused_with_the_rebuild_command(tmp_path, content, expected):
    archive = env_archive(tmp_path / "env.tar.gz", {"pyvenv.cfg": pyvenv_cfg("3.11"), RECORD_NAME: content})
    with pytest.raises(DeployError) as error:
        packaging.inspect_archive(archive)
    assert expected in str(error.value)
    assert "rebuild it with `./spark-submit.sh package`" in str(error.value)


def test_a_record_and_pyvenv_cfg_naming_different_pythons_are_refused(tmp_path):
    archive = env_archive(tmp_path / "env.tar.gz", {"pyvenv.cfg": pyvenv_cfg("3.9"), RECORD_NAME: record_json("spark35", "3.11")})
    with pytest.raises(DeployError, match="records Python 3.11 but its pyvenv.cfg names Python 3.9"):
        packaging.inspect_archive(archive)


def test_inspect_archive_reads_line_and_python(tmp_path):
    assert packaging.inspect_archive(venv_archive(tmp_path / "a.tar.gz", "3.9", "spark35")) == RuntimeRecord(
        spark="3.5.8", delta="3.3.2", python="3.9", line=SPARK35)


# The release check: the release must run the archive's line and its Python.

@pytest.mark.parametrize("release", ["emr-spark-8.1.0", "emr-spark-8.0.0", "emr-8.1.0"])
def test_emr_8_takes_a_spark_4_archive_with_python_3_11(release):
    packaging.check_release(release, SPARK4_ARCHIVE)


@pytest.mark.parametrize("release", ["emr-7.14.0", "emr-7.0.0"])
@pytest.mark.parametrize("python", ["3.9", "3.11"])
def test_emr_7_takes_a_spark_3_5_archive_with_python_3_9_or_3_11(release, python):
    packaging.check_release(release, RuntimeRecord(spark="3.5.8", delta="3.3.2", python=python, line=SPARK35))


def test_emr_7_refuses_a_spark_4_archive_naming_both_lines_and_the_fix(tmp_path):
    archive = tmp_path / "batch-scoring-env-py3.11-0123456789ab.tar.gz"
    with pytest.raises(DeployError) as error:
        packaging.check_release("emr-7.14.0", SPARK4_ARCHIVE, prebuilt=archive)
    assert str(error.value) == (
        f"EMR release emr-7.14.0 runs Spark 3.5 (EMR 7), but the environment archive {archive} was "
        "built for Spark 4 (line spark4: pyspark 4.1.1, delta-spark 4.2.0, Python 3.11): build the "
        "archive in an EMR 7 environment (`pip install -e . -c constraints/emr7.txt`, then "
        "`./spark-submit.sh package`) and pass the new one with --archive; or use an "
        "emr-spark-8.x (EMR 8, default emr-spark-8.1.0 LTS) release"
    )


@pytest.mark.parametrize("release", ["emr-spark-8.1.0", "emr-8.0.0"])
def test_emr_8_refuses_a_spark_3_5_archive_naming_both_lines_and_the_fix(tmp_path, release):
    archive = tmp_path / "env.tar.gz"
    with pytest.raises(DeployError) as error:
        packaging.check_release(release, SPARK35_ARCHIVE, prebuilt=archive)
    assert str(error.value) == (
        f"EMR release {release} runs Spark 4 (EMR 8), but the environment archive {archive} was "
        "built for Spark 3.5 (line spark35: pyspark 3.5.8, delta-spark 3.3.2, Python 3.11): build "
        "the archive in an EMR 8 environment (`pip install -e .`, then `./spark-submit.sh package`) "
        "and pass the new one with --archive; or use an emr-7.x (EMR 7) release"
    )


def test_an_archive_to_be_built_here_is_refused_with_the_environment_to_use():
    with pytest.raises(DeployError) as error:
        packaging.check_release("emr-7.14.0", SPARK4_ARCHIVE)
    assert str(error.value) == (
        "EMR release emr-7.14.0 runs Spark 3.5 (EMR 7), but the environment archive would be built "
        "from this environment for Spark 4 (line spark4: pyspark 4.1.1, delta-spark 4.2.0, "
        "Python 3.11): run this command from an EMR 7 environment "
        "(`pip install -e . -c constraints/emr7.txt`); or use an emr-spark-8.x (EMR 8, default "
        "emr-spark-8.1.0 LTS) release"
    )


@pytest.mark.parametrize("release, runtime, runs", [
    ("emr-spark-8.1.0", RuntimeRecord(spark="4.1.1", delta="4.2.0", python="3.12", line=SPARK4), "3.11"),
    ("emr-7.14.0", RuntimeRecord(spark="3.5.8", delta="3.3.2", python="3.12", line=SPARK35), "3.9 or 3.11"),
])
def test_an_archive_built_for_another_python_is_refused_with_the_fix(release, runtime, runs):
    with pytest.raises(DeployError) as error:
        packaging.check_release(release, runtime)
    assert str(error.value) == (
        f"the environment archive was built with Python 3.12, but {release} runs Python {runs}: "
        "rebuild it with that Python on the release's OS (see the README, 'Build the environment archive')"
    )


SUPPORTED = "this package runs on emr-spark-8.x (EMR 8, default emr-spark-8.1.0 LTS) or emr-7.x (EMR 7)"


@pytest.mark.parametrize("release, message", [
    ("spark-4.0", f"unknown EMR release 'spark-4.0'; {SUPPORTED}"),
    ("emr-8.1", f"unknown EMR release 'emr-8.1'; {SUPPORTED}"),
    ("emr-6.15.0", f"EMR release emr-6.15.0 runs Spark 3.4 or older, which this package does not support; {SUPPORTED}"),
    ("", f"the cluster or application reports no EMR release label; {SUPPORTED}"),
])
@pytest.mark.parametrize("runtime", [SPARK4_ARCHIVE, SPARK35_ARCHIVE])
def test_emr_6_and_unknown_releases_are_refused_whatever_the_archive(release, message, runtime):
    with pytest.raises(DeployError) as error:
        packaging.check_release(release, runtime)
    assert str(error.value) == message
