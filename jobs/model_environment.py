"""A model's libraries against the running Python environment, checked on the driver before Spark.

A model saved with MLflow records what it needs: ``requirements.txt`` in its folder (what
``mlflow.pyfunc.get_model_dependencies`` returns) and, in ``MLmodel``, each flavor's library
version (``flavors.sklearn.sklearn_version``, ``flavors.lightgbm.lgb_version``...). Scoring it
without a library fails inside every Spark task (``ModuleNotFoundError``); scoring it with
another major.minor version of its flavor's library can raise on every row (scikit-learn
1.9 pickles loaded by 1.7: ``AttributeError ... 'multi_class'``) or, worse, predict
differently. So before any data is read:

* a requirement that is not installed -> :class:`ConfigError` (exit 2) naming the package, the
  install command for this environment and the job field for the cluster archive;
* the flavor's library at another major.minor than the model was saved with -> exit 2, unless
  ``model.allow_version_mismatch`` (``predict --allow-version-mismatch``), then a warning.

Only names are compared for plain requirements (``pandas==2.2.3`` is satisfied by any
installed pandas); ``mlflow`` is satisfied by ``mlflow-skinny``, and ``xgboost`` and
``xgboost-cpu`` by either (see :data:`EQUIVALENT`).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from batch_scoring.jobs.errors import ConfigError

log = logging.getLogger("batch_scoring")

FLAVOR_LIBRARIES = {
    "sklearn": ("scikit-learn", "sklearn_version"),
    "lightgbm": ("lightgbm", "lgb_version"),
    "xgboost": ("xgboost", "xgb_version"),
    "catboost": ("catboost", "catboost_version"),
    "pytorch": ("torch", "pytorch_version"),
    "tensorflow": ("tensorflow", "tensorflow_version"),
    "keras": ("keras", "keras_version"),
    "statsmodels": ("statsmodels", "statsmodels_version"),
}
"""MLflow flavor -> (its distribution, the ``MLmodel`` key holding the version it was saved with)."""

EQUIVALENT = {
    "mlflow": ("mlflow", "mlflow-skinny"),
    "xgboost": ("xgboost", "xgboost-cpu"),
    "xgboost-cpu": ("xgboost-cpu", "xgboost"),
}
"""A requirement satisfied by any of these distributions.

``xgboost-cpu`` is the ``xgboost`` module without the GPU libraries. A model saved with it
lists both ``xgboost-cpu`` (the distribution of the imported module) and ``xgboost`` (the
flavor's default requirement) in ``requirements.txt``; either satisfies both, and only one
may be installed (both write the one ``xgboost`` module).
"""


@dataclass(frozen=True)
class FlavorLibrary:
    """A flavor's library: distribution name, the version in ``MLmodel``, the installed one."""

    flavor: str
    distribution: str
    saved: str
    installed: str | None


def installed_version(distribution: str) -> str | None:
    """The installed version of ``distribution`` (importlib.metadata), or None."""
    for name in EQUIVALENT.get(canonicalize_name(distribution), (distribution,)):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def same_package(name: str) -> frozenset[str]:
    """The distributions that satisfy a requirement named ``name`` (canonical names)."""
    canonical = canonicalize_name(name)
    return frozenset(EQUIVALENT.get(canonical, (canonical,)))


def _first_of_each(requirements: Iterable[Requirement]) -> list[Requirement]:
    """The requirements without those another one before them already stands for."""
    kept: dict[frozenset[str], Requirement] = {}
    for requirement in requirements:
        kept.setdefault(same_package(requirement.name), requirement)
    return list(kept.values())


def model_requirements(model_dir: str | os.PathLike) -> list[Requirement]:
    """The requirements in the model folder's ``requirements.txt`` (none when it has none).

    Comment lines, options (``-r``, ``--index-url``) and lines pip would not parse are left out.
    """
    path = Path(model_dir) / "requirements.txt"
    if not path.is_file():
        return []
    return list(_parse(path.read_text().splitlines()))


def _parse(lines: Iterable[str]) -> Iterable[Requirement]:
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        try:
            yield Requirement(line)
        except InvalidRequirement:
            log.warning("model requirement %r is not a requirement pip reads; not checked", line)


def flavor_libraries(model_dir: str | os.PathLike) -> list[FlavorLibrary]:
    """The libraries of the model's flavors named in ``MLmodel``, with saved and installed versions."""
    mlmodel = Path(model_dir) / "MLmodel"
    if not mlmodel.is_file():
        return []
    flavors = (yaml.safe_load(mlmodel.read_text()) or {}).get("flavors") or {}
    found = []
    for flavor, conf in flavors.items():
        if flavor not in FLAVOR_LIBRARIES or not isinstance(conf, dict):
            continue
        distribution, key = FLAVOR_LIBRARIES[flavor]
        if conf.get(key):
            found.append(FlavorLibrary(flavor, distribution, str(conf[key]),
                                       installed_version(distribution)))
    return found


def install_command(requirements: Sequence[str]) -> str:
    """``<this interpreter's pip> install '<req>' ...``, relative to the working folder when the
    interpreter lives below it (``.venv/bin/pip install 'lightgbm==4.5.0'``)."""
    pip = Path(sys.executable).parent / "pip"
    try:
        shown = str(pip.relative_to(Path.cwd()))
    except ValueError:
        shown = str(pip)
    return f"{shown} install " + " ".join(f"'{r}'" for r in requirements)


def _major_minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


def check_model_environment(
    model_dir: str | os.PathLike, model_uri: str, *, allow_version_mismatch: bool = False,
    mismatch_field: str = "model.allow_version_mismatch: true",
    requirements_field: str = "the job's requirements",
) -> list[str]:
    """Refuse a model whose libraries are missing here or at another major.minor version.

    Args:
        model_dir: the local model folder (holding ``MLmodel``).
        model_uri: for the messages.
        allow_version_mismatch: when True a version mismatch is a warning, not an error.
        mismatch_field: how the user allows a mismatch, for the message.
        requirements_field: where cluster requirements go, for the message.

    Returns:
        The warnings logged (version mismatches that were allowed).

    Raises:
        ConfigError: (exit 2) naming every missing package with the command that installs
            it, or a flavor library whose installed major.minor differs from the saved one.
    """
    missing = _first_of_each(r for r in model_requirements(model_dir) if installed_version(r.name) is None)
    libraries = flavor_libraries(model_dir)
    known = {same_package(r.name) for r in missing}
    missing += [Requirement(f"{lib.distribution}=={lib.saved}") for lib in libraries
                if lib.installed is None and same_package(lib.distribution) not in known]
    if missing:
        names = ", ".join(repr(r.name) for r in missing)
        wanted = [str(r) for r in missing]
        raise ConfigError(
            f"model {model_uri} needs package(s) {names} ({', '.join(wanted)}), not installed "
            f"in this environment ({sys.executable}). For this checkout: "
            f"{install_command(wanted)}; for a cluster: add {', '.join(wanted)} to "
            f"{requirements_field} so the environment archive holds them"
        )
    warnings = []
    for lib in libraries:
        if _major_minor(lib.saved) == _major_minor(lib.installed):
            continue
        text = (
            f"model {model_uri} was saved with {lib.distribution} {lib.saved}; this environment "
            f"has {lib.installed}: another major.minor version may fail on every row or predict "
            "differently"
        )
        if not allow_version_mismatch:
            raise ConfigError(
                f"{text}. Install {lib.distribution}=={lib.saved} "
                f"({install_command([f'{lib.distribution}=={lib.saved}'])}), re-save the model "
                f"with {lib.installed}, or set {mismatch_field} to score anyway"
            )
        log.warning("%s (allowed by %s)", text, mismatch_field)
        warnings.append(text)
    return warnings


def check_job_requirements(requirements: Sequence[str]) -> None:
    """Refuse job ``requirements`` that are not installed in the environment running the job.

    On a cluster they are packed into the environment archive; locally the same code runs in
    this interpreter, so a requirement missing here would fail in the tasks.

    Raises:
        ConfigError: naming the missing requirements and the install command.
    """
    parsed = list(_parse(requirements))
    missing = [r for r in parsed if installed_version(r.name) is None]
    if missing:
        raise ConfigError(
            f"requirements: {', '.join(map(str, missing))} not installed in this environment "
            f"({sys.executable}); install with {install_command([str(r) for r in missing])}"
        )
