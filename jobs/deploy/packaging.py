"""Build what a cluster needs to run the package: the project wheel and a venv-pack archive.

The archive is a virtual environment holding the package and its runtime dependencies
*without* pyspark and delta-spark (the cluster provides Spark, and on EMR Delta's jars), packed
with venv-pack so Spark can unpack it next to every driver and executor
(``spark.archives=<archive>#environment``, Python at ``./environment/bin/python``); see
https://spark.apache.org/docs/latest/api/python/user_guide/python_packaging.html.

A venv holds compiled wheels for one OS, CPU and Python minor version, and its ``bin/python``
links to the interpreter it was made from: build it on the cluster's OS with the cluster's
Python (the README shows a container build for Amazon Linux 2023). The archive's name carries
its Python (``py3.11``) and a hash of everything that decides its content: the package's
source files, its pinned requirements, the extra requirements, the Python version, the
platform, and the pyspark and delta-spark versions it is built against. An archive with that
name already in the output folder is reused.

The archive records that Spark line in ``batch_scoring_runtime.json``
(:mod:`~batch_scoring.jobs.deploy.archive_record`), taken from the pyspark and delta-spark
installed where it is built: build it in an environment of the cluster's line (EMR 8:
``pip install -e .``; EMR 7: ``pip install -e . -c constraints/emr7.txt``).
:func:`check_release` refuses a release of another line (or one that does not run the
archive's Python) before anything is uploaded.

It imports neither Spark nor boto3 (it reads the installed pyspark's version from its
metadata), so it also runs in a bare container of the cluster's OS::

    pip install -e .                       # EMR 8; for EMR 7: pip install -e . -c constraints/emr7.txt
    python -m batch_scoring.jobs.deploy.packaging --out dist --python /usr/bin/python3.11
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib.metadata
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from batch_scoring.jobs import runtime_lines
from batch_scoring.jobs.deploy import archive_record
from batch_scoring.jobs.deploy.archive_record import RuntimeRecord
from batch_scoring.jobs.errors import ConfigError, DeployError

DISTRIBUTION = "batch-scoring"
PROVIDED_BY_CLUSTER = ("pyspark", "delta-spark")
PYVENV_CFG = "pyvenv.cfg"


@dataclasses.dataclass(frozen=True)
class BuiltPackage:
    """The project wheel, the environment archive, its Python (``"3.11"``) and its Spark line."""

    wheel: Path
    archive: Path
    python_version: str
    runtime: RuntimeRecord


def project_root() -> Path:
    """The source checkout the package is installed from (the folder holding setup.py).

    Raises:
        DeployError: when the package was installed from a wheel, not from a checkout.
    """
    root = Path(__file__).resolve().parents[2]
    if not (root / "setup.py").is_file():
        raise DeployError(
            f"no setup.py above {Path(__file__).parent}: build the archive from a source checkout "
            "of the project (pip install -e .)"
        )
    return root


def build(out_dir: Path, python: str = sys.executable, extra_requirements: Sequence[str] = (),
          python_prefix: str | None = None) -> BuiltPackage:
    """Build the wheel and the environment archive into ``out_dir`` (reusing an identical archive).

    The archive records the pyspark and delta-spark installed here, ``python``'s version and
    their line (:func:`~batch_scoring.jobs.deploy.archive_record.building_record`).

    Args:
        out_dir: folder for ``batch_scoring-*.whl`` and ``batch-scoring-env-py<X.Y>-<hash>.tar.gz``.
        python: interpreter the environment is made from (the cluster's Python version).
        extra_requirements: pip requirements the job's function or model needs (e.g.
            ``scikit-learn==1.7.2`` for a scikit-learn model).
        python_prefix: where the interpreter lives on the cluster (e.g. ``/usr``); default: the
            path of ``python`` here.

    Raises:
        ConfigError: when ``python`` cannot be run, or pyspark or delta-spark is not installed
            here or of no supported line.
        DeployError: when pip or venv-pack fails (the message holds the tail of their output).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    version = python_version_of(python)
    record = archive_record.building_record(version)
    wheel = build_wheel(out_dir)
    requirements = runtime_requirements() + list(extra_requirements)
    digest = content_hash([*requirements, *record.pins()], version)
    archive = out_dir / f"batch-scoring-env-py{version}-{digest}.tar.gz"
    if not archive.is_file():
        build_archive(archive, python, requirements, wheel, python_prefix, record)
    return BuiltPackage(wheel=wheel, archive=archive, python_version=version, runtime=record)


def runtime_requirements() -> list[str]:
    """The package's runtime requirements, minus what the cluster provides (pyspark, delta-spark),
    each pinned to the version installed here.

    setup.py gives a requirement the two lines share but install at different versions as a
    range (numpy: 2 on the Spark 4 line, 1 under ``constraints/emr7.txt``); the archive gets
    the version of the environment that builds it, so it holds what that line's tests ran with.
    A ranged requirement that is not installed here stays a range.
    """
    requires = importlib.metadata.requires(DISTRIBUTION) or []
    runtime = [r for r in requires if "extra ==" not in r]
    return [_pinned(r) for r in runtime if _requirement_name(r) not in PROVIDED_BY_CLUSTER]


def content_hash(requirements: Sequence[str], version: str) -> str:
    """12 hex digits of SHA-256 over the source files, setup.py, requirements, Python and platform.

    ``requirements`` holds what is installed into the archive and the pins it is built against
    but leaves to the cluster (:meth:`RuntimeRecord.pins`), so archives of two lines differ.
    """
    root = project_root()
    digest = hashlib.sha256()
    for file in sorted(_source_files(root)):
        digest.update(str(file.relative_to(root)).encode())
        digest.update(file.read_bytes())
    for item in (*sorted(requirements), version, platform.machine(), sys.platform):
        digest.update(item.encode())
    return digest.hexdigest()[:12]


def build_wheel(out_dir: Path) -> Path:
    """Build the project wheel (no dependencies) into ``out_dir``; return its path.

    Raises:
        DeployError: when the build fails.
    """
    root = project_root()
    for old in out_dir.glob("batch_scoring-*.whl"):
        old.unlink()
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
          "--wheel-dir", str(out_dir), str(root)], "building the wheel")
    return next(out_dir.glob("batch_scoring-*.whl"))


def build_archive(archive: Path, python: str, requirements: Sequence[str], wheel: Path,
                  python_prefix: str | None, record: RuntimeRecord) -> None:
    """Make a venv from ``python``, install ``requirements`` and ``wheel``, write ``record``
    into it, and pack it to ``archive``.

    Raises:
        DeployError: when venv creation, pip or venv-pack fails.
    """
    import venv_pack

    with tempfile.TemporaryDirectory(prefix="batch-scoring-env-") as tmp:
        env = Path(tmp) / "env"
        _run([python, "-m", "venv", str(env)], f"creating a venv with {python}")
        pip = [str(env / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        _run([*pip, *requirements], "installing the runtime requirements")
        _run([*pip, "--no-deps", str(wheel)], "installing the project wheel")
        archive_record.write_record(env, record)
        partial = Path(tmp) / archive.name  # packed beside the venv, moved in whole
        try:
            venv_pack.pack(prefix=str(env), output=str(partial), python_prefix=python_prefix)
        except venv_pack.VenvPackException as error:
            raise DeployError(f"venv-pack could not pack {env}: {error}") from None
        shutil.move(partial, archive)


def python_version_of(python: str) -> str:
    """``"3.11"`` for the interpreter ``python``.

    Raises:
        ConfigError: when ``python`` cannot be run.
    """
    try:
        out = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as error:
        raise ConfigError(f"--python {python!r} cannot be run: {error}") from None
    return out.stdout.strip()


def inspect_archive(archive: Path) -> RuntimeRecord:
    """What a prebuilt environment archive was built for: its record, checked against ``pyvenv.cfg``.

    Both files are read in one pass over the archive.

    Raises:
        DeployError: when the file is not a venv-pack archive, holds no record (built by an
            older version of this package: rebuild it with ``./spark-submit.sh package``) or a
            malformed one, or its record and ``pyvenv.cfg`` name different Pythons.
    """
    members = archive_record.read_members(archive, (PYVENV_CFG, archive_record.RECORD_NAME))
    python = _pyvenv_python(archive, members.get(PYVENV_CFG))
    record = archive_record.parse_record(archive, members.get(archive_record.RECORD_NAME))
    if record.python != python:
        raise DeployError(
            f"{archive}: {archive_record.RECORD_NAME} records Python {record.python} but its "
            f"{PYVENV_CFG} names Python {python}; rebuild it with `{archive_record.REBUILD}`"
        )
    return record


def check_release(release_label: str, runtime: RuntimeRecord, prebuilt: Path | None = None) -> None:
    """Fail unless an EMR release runs the archive's Spark line and its Python.

    EMR 8 releases (``emr-spark-8.x``, ``emr-8.x``) run the Spark 4 line and Python 3.11;
    EMR 7 releases (``emr-7.x``) the Spark 3.5 line and Python 3.9 or 3.11
    (:mod:`batch_scoring.jobs.runtime_lines`).

    Args:
        release_label: the cluster's or application's release, e.g. ``emr-spark-8.1.0``.
        runtime: what the archive is built for: a prebuilt archive's record
            (:func:`inspect_archive`), or the one an archive built here will have
            (:func:`~batch_scoring.jobs.deploy.archive_record.building_record`).
        prebuilt: the prebuilt archive (``--archive``), or None when the archive is built
            here; decides which fix the message gives.

    Raises:
        DeployError: when the release is empty, unknown or of EMR 6 and older; when it runs
            another Spark line than ``runtime`` (the message names the release, its Spark line,
            the archive's pyspark and line, and the commands that fix it); or when it does
            not run ``runtime.python``.
    """
    line = runtime_lines.line_of_release(release_label)
    if line is None:
        raise DeployError(_unsupported_release(release_label))
    if line is not runtime.line:
        raise DeployError(_line_mismatch(release_label, line, runtime, prebuilt))
    if runtime.python not in line.pythons:
        raise DeployError(
            f"the environment archive was built with Python {runtime.python}, but {release_label} "
            f"runs Python {' or '.join(line.pythons)}: rebuild it with that Python on the release's OS "
            "(see the README, 'Build the environment archive')"
        )


def _unsupported_release(release_label: str) -> str:
    supported = f"this package runs on {runtime_lines.supported_releases()}"
    if not release_label:
        return f"the cluster or application reports no EMR release label; {supported}"
    if runtime_lines.RETIRED_RELEASES.fullmatch(release_label):
        return f"EMR release {release_label} runs Spark 3.4 or older, which this package does not support; {supported}"
    return f"unknown EMR release {release_label!r}; {supported}"


def _line_mismatch(release_label: str, line: runtime_lines.RuntimeLine, runtime: RuntimeRecord,
                   prebuilt: Path | None) -> str:
    if prebuilt is None:
        origin = "the environment archive would be built from this environment"
        fix = f"run this command from an {line.emr} environment (`{line.install}`)"
    else:
        origin = f"the environment archive {prebuilt} was built"
        fix = (f"build the archive in an {line.emr} environment (`{line.install}`, then "
               f"`{archive_record.REBUILD}`) and pass the new one with --archive")
    return (
        f"EMR release {release_label} runs Spark {line.spark_series} ({line.emr}), but {origin} "
        f"for Spark {runtime.line.spark_series} ({runtime.describe()}): {fix}; or use an "
        f"{runtime.line.release_names} release"
    )


def _pyvenv_python(archive: Path, data: bytes | None) -> str:
    if data is None:
        raise DeployError(f"{archive} is not a venv-pack environment archive: it has no {PYVENV_CFG}")
    found = re.search(r"^version(?:_info)?\s*=\s*(\d+)\.(\d+)", data.decode(errors="replace"), re.M)
    if not found:
        raise DeployError(f"{archive}: {PYVENV_CFG} names no Python version")
    return f"{found.group(1)}.{found.group(2)}"


def _source_files(root: Path) -> list[Path]:
    files = [root / "setup.py"]
    for folder in ("jobs", "udfs"):
        files += [p for p in (root / folder).rglob("*.py") if "__pycache__" not in p.parts]
    return files


def _pinned(requirement: str) -> str:
    spec, _, marker = requirement.partition(";")
    if "==" in spec:
        return requirement
    name = re.split(r"[<>=!~\[ ]", spec, maxsplit=1)[0].strip()
    try:
        version = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return requirement
    return f"{name}=={version}" + (f";{marker}" if marker else "")


def _requirement_name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def _run(command: Sequence[str], what: str) -> None:
    result = subprocess.run(list(command), capture_output=True, text=True)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip()[-2000:]
        raise DeployError(f"{what} failed ({command[0]} exited {result.returncode}):\n{tail}")


def main(argv: Sequence[str] | None = None) -> int:
    """``batch-score package``: build the wheel and environment archive; print their paths,
    the archive's Spark line and the releases that take it. Returns the exit code: 0, or 2
    (:class:`ConfigError`) / 5 (:class:`DeployError`) as :func:`build` raises them."""
    parser = argparse.ArgumentParser(prog="batch-score package",
                                     description="Build the wheel and the environment archive for clusters.",
                                     epilog="example: batch-score package --out dist --python python3.11")
    add_build_arguments(parser)
    parser.add_argument("-r", "--requirement", action="append", default=[],
                        help="extra pip requirement to pack (repeatable)")
    args = parser.parse_args(argv)
    try:
        built = build(Path(args.out), args.python, args.requirement, args.python_prefix)
    except (ConfigError, DeployError) as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    print(f"wheel:   {built.wheel}\narchive: {built.archive} ({built.runtime.describe()})\n"
          f"         for releases {built.runtime.line.release_names}")
    return 0


def add_build_arguments(parser: argparse.ArgumentParser) -> None:
    """The build options shared by ``package``, ``submit`` and ``schedule``."""
    parser.add_argument("--out", default=str(Path.cwd() / "dist"), help="folder for the wheel and archive")
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter to build the environment from: the cluster's Python version")
    parser.add_argument("--python-prefix", help="the interpreter's prefix on the cluster, e.g. /usr")


if __name__ == "__main__":
    sys.exit(main())
