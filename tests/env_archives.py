"""Small tarballs laid out like the environment archives ``packaging.build`` writes.

A real venv-pack archive takes a minute to build (tests/integration/test_deploy_package.py
builds one); the deploy tests only need what the submit commands read from a prebuilt
``--archive``: ``pyvenv.cfg`` (its Python) and ``batch_scoring_runtime.json`` (its Spark line).
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from batch_scoring.jobs.deploy.archive_record import RECORD_NAME

# The pins each line's environment installs (setup.py; constraints/emr7.txt).
LINE_VERSIONS = {
    "spark4": {"spark": "4.1.1", "delta": "4.2.0"},
    "spark35": {"spark": "3.5.8", "delta": "3.3.2"},
}


def record_json(line: str, python: str = "3.11") -> bytes:
    """The record file an archive of ``line`` built with ``python`` holds."""
    return json.dumps({**LINE_VERSIONS[line], "python": python, "line": line}).encode()


def pyvenv_cfg(python: str) -> bytes:
    """A venv's ``pyvenv.cfg`` naming Python ``python`` (``"3.11"``)."""
    return f"home = /usr/bin\ninclude-system-site-packages = false\nversion = {python}.4\n".encode()


def env_archive(path: Path, files: dict[str, bytes]) -> Path:
    """A tar.gz holding ``files`` at its root and a ``bin/activate`` script, as venv-pack writes."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in {"bin/activate": b"#!/bin/sh\n", **files}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def venv_archive(path: Path, python: str = "3.11", line: str = "spark4") -> Path:
    """An environment archive of ``line`` (``"spark4"``, ``"spark35"``) for Python ``python``."""
    return env_archive(path, {"pyvenv.cfg": pyvenv_cfg(python), RECORD_NAME: record_json(line, python)})
