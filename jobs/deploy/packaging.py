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
source files, its pinned requirements, the extra requirements, the Python version and the
platform. An archive with that name already in the output folder is reused.

It imports neither Spark nor boto3, so it also runs in a bare container of the cluster's OS::

    pip install --no-deps -e . && pip install venv-pack==0.2.0
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
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path

from batch_scoring.jobs.errors import ConfigError, DeployError

DISTRIBUTION = "batch-scoring"
PROVIDED_BY_CLUSTER = ("pyspark", "delta-spark")

# Python minor versions the release's Spark runs (AWS EMR release guides), and its Spark line.
RELEASE_LINES = (
    (re.compile(r"emr-(spark-)?8\.\d+\.\d+"), "4.0", ("3.11",)),
    (re.compile(r"emr-7\.\d+\.\d+"), "3.5", ("3.9", "3.11")),
    (re.compile(r"emr-6\.\d+\.\d+"), "3.x", ("3.7", "3.9")),
)


@dataclasses.dataclass(frozen=True)
class BuiltPackage:
    """The project wheel, the environment archive and the archive's Python (``"3.11"``)."""

    wheel: Path
    archive: Path
    python_version: str


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

    Args:
        out_dir: folder for ``batch_scoring-*.whl`` and ``batch-scoring-env-py<X.Y>-<hash>.tar.gz``.
        python: interpreter the environment is made from (the cluster's Python version).
        extra_requirements: pip requirements the job's function or model needs (e.g.
            ``scikit-learn==1.7.2`` for a scikit-learn model).
        python_prefix: where the interpreter lives on the cluster (e.g. ``/usr``); default: the
            path of ``python`` here.

    Raises:
        DeployError: when pip or venv-pack fails (the message holds the tail of their output).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    version = python_version_of(python)
    wheel = build_wheel(out_dir)
    requirements = runtime_requirements() + list(extra_requirements)
    archive = out_dir / f"batch-scoring-env-py{version}-{content_hash(requirements, version)}.tar.gz"
    if not archive.is_file():
        build_archive(archive, python, requirements, wheel, python_prefix)
    return BuiltPackage(wheel=wheel, archive=archive, python_version=version)


def runtime_requirements() -> list[str]:
    """The package's pinned runtime requirements, minus what the cluster provides (pyspark, delta-spark)."""
    requires = importlib.metadata.requires(DISTRIBUTION) or []
    runtime = [r for r in requires if "extra ==" not in r]
    return [r for r in runtime if _requirement_name(r) not in PROVIDED_BY_CLUSTER]


def content_hash(requirements: Sequence[str], version: str) -> str:
    """12 hex digits of SHA-256 over the source files, setup.py, requirements, Python and platform."""
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
                  python_prefix: str | None) -> None:
    """Make a venv from ``python``, install ``requirements`` and ``wheel``, pack it to ``archive``.

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


def archive_python_version(archive: Path) -> str:
    """The Python minor version (``"3.11"``) an environment archive was built for.

    Read from the archive's ``pyvenv.cfg``.

    Raises:
        DeployError: when the file is not a venv-pack archive.
    """
    try:
        with tarfile.open(archive) as tar:
            member = tar.extractfile("pyvenv.cfg")
            text = member.read().decode() if member else ""
    except (OSError, KeyError, tarfile.TarError) as error:
        raise DeployError(f"{archive} is not a venv-pack environment archive: {error}") from None
    found = re.search(r"^version(?:_info)?\s*=\s*(\d+)\.(\d+)", text, re.M)
    if not found:
        raise DeployError(f"{archive}: pyvenv.cfg names no Python version")
    return f"{found.group(1)}.{found.group(2)}"


def check_release(release_label: str, python_version: str, spark_version: str) -> None:
    """Fail unless an EMR release runs this package's Spark line and the archive's Python.

    Args:
        release_label: the cluster's or application's release, e.g. ``emr-spark-8.0.0``.
        python_version: the archive's Python, e.g. ``"3.11"``.
        spark_version: the pinned pyspark version, e.g. ``"4.0.2"``.

    Raises:
        DeployError: when the release is unknown, ships another Spark line, or does not run
            ``python_version``; the message says which release fits.
    """
    for pattern, spark_line, pythons in RELEASE_LINES:
        if pattern.fullmatch(release_label):
            break
    else:
        raise DeployError(f"unknown EMR release {release_label!r}; this package runs on EMR 8 (emr-spark-8.x)")
    if not spark_version.startswith(spark_line + "."):
        raise DeployError(
            f"release {release_label} ships Spark {spark_line}, but this package is pinned to "
            f"pyspark {spark_version}: use an EMR 8 release (emr-spark-8.x, Spark 4.0)"
        )
    if python_version not in pythons:
        raise DeployError(
            f"the environment archive was built with Python {python_version}, but {release_label} "
            f"runs Python {' or '.join(pythons)}: rebuild it with that Python on the release's OS "
            "(see the README, 'Build the environment archive')"
        )


def _source_files(root: Path) -> list[Path]:
    files = [root / "setup.py"]
    for folder in ("jobs", "udfs"):
        files += [p for p in (root / folder).rglob("*.py") if "__pycache__" not in p.parts]
    return files


def _requirement_name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def _run(command: Sequence[str], what: str) -> None:
    result = subprocess.run(list(command), capture_output=True, text=True)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip()[-2000:]
        raise DeployError(f"{what} failed ({command[0]} exited {result.returncode}):\n{tail}")


def main(argv: Sequence[str] | None = None) -> int:
    """``batch-score package``: build the wheel and environment archive; print their paths."""
    parser = argparse.ArgumentParser(prog="batch-score package",
                                     description="Build the wheel and the environment archive for clusters.")
    add_build_arguments(parser)
    parser.add_argument("-r", "--requirement", action="append", default=[],
                        help="extra pip requirement to pack (repeatable)")
    args = parser.parse_args(argv)
    try:
        built = build(Path(args.out), args.python, args.requirement, args.python_prefix)
    except (ConfigError, DeployError) as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    print(f"wheel:   {built.wheel}\narchive: {built.archive} (Python {built.python_version})")
    return 0


def add_build_arguments(parser: argparse.ArgumentParser) -> None:
    """The build options shared by ``package``, ``submit`` and ``schedule``."""
    parser.add_argument("--out", default=str(Path.cwd() / "dist"), help="folder for the wheel and archive")
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter to build the environment from: the cluster's Python version")
    parser.add_argument("--python-prefix", help="the interpreter's prefix on the cluster, e.g. /usr")


if __name__ == "__main__":
    sys.exit(main())
