"""What an environment archive was built for, recorded inside the archive.

The archive leaves pyspark and delta-spark out (the cluster provides them,
:data:`~batch_scoring.jobs.deploy.packaging.PROVIDED_BY_CLUSTER`), so nothing in its
site-packages tells which Spark line its code was built and tested with. When
:func:`~batch_scoring.jobs.deploy.packaging.build` makes the venv, :func:`write_record` puts
``batch_scoring_runtime.json`` at its root before venv-pack packs it::

    {"spark": "4.1.1", "delta": "4.2.0", "python": "3.11", "line": "spark4"}

and :func:`~batch_scoring.jobs.deploy.packaging.inspect_archive` reads it back from a prebuilt
archive (``--archive``) with ``pyvenv.cfg`` in one pass (:func:`read_members`,
:func:`parse_record`), so a release is checked against the line the archive was built on, never against
the pyspark of the machine that submits it. The lines themselves are defined in
:mod:`batch_scoring.jobs.runtime_lines`.
"""

from __future__ import annotations

import dataclasses
import json
import tarfile
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

from batch_scoring.jobs.errors import ConfigError, DeployError
from batch_scoring.jobs.runtime_lines import LINES, RuntimeLine, line_named, line_of_spark

RECORD_NAME = "batch_scoring_runtime.json"
REBUILD = "./spark-submit.sh package"
_FIELDS = ("spark", "delta", "python", "line")


@dataclasses.dataclass(frozen=True)
class RuntimeRecord:
    """The Spark line an environment archive was built for.

    Attributes:
        spark: the pyspark version of the building environment (``"4.1.1"``).
        delta: the delta-spark version of the building environment (``"4.2.0"``).
        python: the archive's Python minor version (``"3.11"``).
        line: the runtime line ``spark`` belongs to.
    """

    spark: str
    delta: str
    python: str
    line: RuntimeLine

    def pins(self) -> tuple[str, ...]:
        """What the archive was built against but does not hold: ``("pyspark==4.1.1", "delta-spark==4.2.0")``."""
        return (f"pyspark=={self.spark}", f"delta-spark=={self.delta}")

    def describe(self) -> str:
        """``"line spark4: pyspark 4.1.1, delta-spark 4.2.0, Python 3.11"``, for messages."""
        return f"line {self.line.name}: pyspark {self.spark}, delta-spark {self.delta}, Python {self.python}"

    def to_json(self) -> bytes:
        """The record file's content."""
        fields = {"spark": self.spark, "delta": self.delta, "python": self.python, "line": self.line.name}
        return (json.dumps(fields, indent=2) + "\n").encode()


def building_record(python_version: str) -> RuntimeRecord:
    """The record of an archive built in this environment for ``python_version``.

    Args:
        python_version: the Python minor version the archive's venv is made with (``"3.11"``).

    Raises:
        ConfigError: when pyspark or delta-spark is not installed here (the record is taken
            from them), or the installed pyspark belongs to no supported line.
    """
    spark, delta = _installed("pyspark"), _installed("delta-spark")
    return RuntimeRecord(spark=spark, delta=delta, python=python_version,
                         line=line_of_spark(spark, "the installed pyspark"))


def write_record(env: Path, record: RuntimeRecord) -> Path:
    """Write ``record`` to ``<env>/batch_scoring_runtime.json``; return the file's path.

    Raises:
        OSError: when the file cannot be written.
    """
    path = env / RECORD_NAME
    path.write_bytes(record.to_json())
    return path


def read_members(archive: Path, names: Iterable[str]) -> dict[str, bytes]:
    """The files ``names`` at the root of a tar archive, read in one pass.

    Returns:
        The content of each name found (names missing from the archive are missing here).

    Raises:
        DeployError: when ``archive`` cannot be read as a tar archive.
    """
    wanted, found = set(names), {}
    try:
        with tarfile.open(archive) as tar:
            for member in tar:
                name = member.name.removeprefix("./")
                if name in wanted and member.isfile():
                    found[name] = tar.extractfile(member).read()
                if len(found) == len(wanted):
                    break
    except (OSError, tarfile.TarError) as error:
        raise DeployError(f"{archive} is not a venv-pack environment archive: {error}") from None
    return found


def parse_record(archive: Path, data: bytes | None) -> RuntimeRecord:
    """The record of ``archive`` from the content of its record file.

    Args:
        archive: the archive (named in messages).
        data: the file's content, or None when the archive has no record file.

    Raises:
        DeployError: when ``data`` is None (the archive was built by an older version of this
            package), is not a JSON object of four strings, names an unknown line, or a
            pyspark version that is not of its line; the message says to rebuild the archive.
    """
    rebuild = f"rebuild it with `{REBUILD}` in an environment of the release's line"
    if data is None:
        raise DeployError(
            f"{archive} holds no {RECORD_NAME}, so its Spark line is unknown (it was built by an "
            f"older version of this package): {rebuild}"
        )
    fields = _json_fields(archive, data, rebuild)
    line = line_named(fields["line"])
    if line is None or not line.runs_spark(fields["spark"]):
        raise DeployError(
            f"{archive}: {RECORD_NAME} names line {fields['line']!r} with pyspark {fields['spark']}, "
            f"which is no supported line: {rebuild}"
        )
    return RuntimeRecord(spark=fields["spark"], delta=fields["delta"], python=fields["python"], line=line)


def _json_fields(archive: Path, data: bytes, rebuild: str) -> dict[str, str]:
    try:
        fields = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DeployError(f"{archive}: {RECORD_NAME} is not JSON ({error}): {rebuild}") from None
    if not isinstance(fields, dict) or not all(isinstance(fields.get(k), str) for k in _FIELDS):
        raise DeployError(
            f"{archive}: {RECORD_NAME} must hold the strings {', '.join(_FIELDS)}; it holds "
            f"{data.decode(errors='replace')[:200]!r}: {rebuild}"
        )
    return fields


def _installed(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        raise ConfigError(
            f"{distribution} is not installed in this environment; the environment archive "
            "records the Spark line of the environment that builds it, so install the "
            f"package with the line's pins ({_install_commands()})"
        ) from None


def _install_commands() -> str:
    return ", ".join(f"`{line.install}` for {line.emr}" for line in LINES)
