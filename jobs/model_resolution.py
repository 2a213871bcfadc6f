"""Resolve an MLflow model URI once, on the driver, into a local folder with a content hash.

A scoring job names its model by URI. :func:`resolve_model` checks the URI against the job's
allow-list (loading a model runs its code: pickle), learns the registry version and run id,
downloads the model folder once into a local destination and hashes its files, so executors
receive files and never contact the tracking server, and the run records exactly which bytes
it scored with.

Supported URIs:

* a local folder holding an ``MLmodel`` file: absolute, relative or ``file://`` (copied);
* ``runs:/<run_id>/<artifact_path>``: a model logged in a run (an MLflow 3 logged model of that
  name and run, or else the run's own artifacts at that path);
* ``models:/<name>/<version>``, ``models:/<name>@<alias>``, ``models:/<name>/latest``: a
  registered model version (the alias or ``latest`` is pinned to a version before the download);
* any other artifact URI that ``mlflow.artifacts.download_artifacts`` reads, e.g. ``s3://``.

Registry stages (``models:/<name>/Production``, deprecated in MLflow) and logged-model ids
(``models:/m-...``) are refused. Every tracking and registry call goes through an explicit
``mlflow.MlflowClient(tracking_uri, registry_uri)``; the global MLflow state is never changed.
``models:/`` and ``runs:/`` URIs are translated to the artifact location they point at before
``download_artifacts`` is called, because MLflow 3.17 resolves those two schemes inside
``download_artifacts`` with the *global* registry and tracking URIs, ignoring the ones passed in.

Source: MLflow 3.17 ``mlflow.artifacts``, ``mlflow.store.artifact.runs_artifact_repo`` and
``mlflow.store.artifact.models_artifact_repo``.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import posixpath
import re
import shutil
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import mlflow.artifacts
import requests
from mlflow.exceptions import MlflowException
from mlflow.models import Model, ModelSignature

from batch_scoring.jobs.redaction import redact_text

MLMODEL_FILE = "MLmodel"
ALLOWED_URIS_FIELD = "model.allowed_uris"
_HASH_CHUNK_BYTES = 1 << 20
_S3_NOT_FOUND = re.compile(r"An error occurred \((?:404|NoSuchKey|NoSuchBucket)\)")
LISTED_ENTRIES = 10  # versions, aliases or names listed when a registry entry is not found
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/@]*@")
_FILE_FAILURE = re.compile(r"^##### File (.+?) #####\n(.+)$", re.MULTILINE)


class ModelResolutionError(ValueError):
    """A model URI cannot be resolved or loaded; the message names the URI and what to do."""


class ModelNotFoundError(ModelResolutionError):
    """The URI is well formed and the server answered, but no such model, version or alias."""


@dataclass(frozen=True)
class ResolvedModel:
    """A model folder downloaded on the driver, ready to ship to executors.

    Attributes:
        uri: the URI as configured, e.g. ``"models:/churn@champion"``.
        local_path: absolute local folder holding the ``MLmodel`` file.
        sha256: :func:`content_hash` of ``local_path`` (64 lowercase hex characters).
        run_id: the MLflow run that produced the model, when known (the registry's model
            version, else ``run_id`` in ``MLmodel``, else the run of a ``runs:/`` URI).
        version: the registry version (``"3"``) for ``models:/`` URIs, an alias or ``latest``
            resolved to the version downloaded; ``None`` for other URIs.
        flavors: flavor names from ``MLmodel``, e.g. ``("python_function", "sklearn")``.
        signature: the model signature from ``MLmodel``, or ``None`` when it was logged without.
    """

    uri: str
    local_path: str
    sha256: str
    run_id: str | None
    version: str | None
    flavors: tuple[str, ...]
    signature: ModelSignature | None

    def input_names(self) -> list[str] | None:
        """Return the signature's input column names, or ``None`` without named inputs."""
        if self.signature is None or self.signature.inputs is None:
            return None
        if not self.signature.inputs.has_input_names():
            return None
        return [str(name) for name in self.signature.inputs.input_names()]

    def describe(self) -> dict[str, Any]:
        """Return a JSON-ready record: ``uri``, ``version``, ``run_id``, ``sha256``, ``flavors``."""
        return {
            "uri": self.uri,
            "version": self.version,
            "run_id": self.run_id,
            "sha256": self.sha256,
            "flavors": list(self.flavors),
        }


@dataclass(frozen=True)
class _Location:
    """Where a URI's files are: the URI to download, and what the registry or run told us."""

    download_uri: str
    version: str | None = None
    run_id: str | None = None


def check_allowed(uri: str, allowed_prefixes: Sequence[str]) -> None:
    """Refuse ``uri`` unless it, and for a local model where it really leads, is allowed.

    Three checks, all of which must pass:

    1. *As written*: ``uri`` starts with one of ``allowed_prefixes`` (plain string prefixes),
       also once ``..`` segments are collapsed (``/models/ok/../../tmp/x`` is ``/tmp/x``), and
       it holds no percent-encoded ``.``, ``/`` or ``\\`` (``%2e%2e`` would be a ``..`` to a
       server that decodes it). End a prefix with ``/`` or ``@`` (``models:/churn/``,
       ``models:/churn@``) so it does not also match sibling names such as ``models:/churn_v2``.
       Prefixes compare case-sensitively.
    2. *Resolved*, for a local path or ``file://`` URI: the folder's real location, every
       symbolic link on the way followed (``/models/linkdir/m`` with ``linkdir -> /elsewhere``
       is ``/elsewhere/m``), lies under the real location of a local (``/...``, relative or
       ``file://``) prefix.
    3. *Contents*, for a local folder: every symbolic link inside it (in sub-folders too,
       following links that stay allowed) leads inside the folder or under an allowed local
       prefix.

    Remote URIs (``models:/``, ``runs:/``, ``s3://``...) are checked as written, in their
    normalised form (check 1); what the registry then points at is the registry's to vouch for,
    and the downloaded folder is checked by :func:`check_model_folder`. An empty allow-list
    allows nothing.

    Raises:
        ModelResolutionError: naming the URI (and where it leads, or the offending link), the
            allow-list and the field ``model.allowed_uris``.
    """
    prefixes = [p for p in allowed_prefixes if p]
    listed = ", ".join(repr(p) for p in prefixes) if prefixes else "none (the list is empty)"
    encoded = _ENCODED_SEPARATOR.search(uri)
    if encoded:
        raise ModelResolutionError(
            f"model URI {uri!r} holds the percent-encoded separator {encoded[0]!r} ('%2e%2e' is '..') and is refused: "
            f"give the path with plain '.' and '/' (allowed prefixes in {ALLOWED_URIS_FIELD}: {listed})"
        )
    collapsed = _collapse_dot_dot(uri)
    if not all(any(form.startswith(p) for p in prefixes) for form in (uri, collapsed)):
        shown = uri if collapsed == uri else f"{uri} (that is, {collapsed})"
        raise _not_allowed(shown, listed)
    local = _local_path_of(uri)
    if local is None:
        return
    real = os.path.realpath(local)
    if not _under_local_prefix(real, prefixes):
        raise _not_allowed(f"{uri} (that is, {real}, symbolic links followed)", listed)
    if os.path.isdir(real):
        check_model_folder(real, prefixes, uri)


def check_model_folder(folder: str | os.PathLike, allowed_prefixes: Sequence[str], uri: str) -> None:
    """Refuse a model folder holding a symbolic link that leads outside it and the allow-list.

    Walks ``folder`` without following links; each link found is resolved (all the way) and
    must lead inside ``folder`` or under the real location of a local prefix of
    ``allowed_prefixes``. A link to an allowed folder is walked too (once), so a chain of links
    cannot leave either. Used on the configured folder before it is copied and on every
    downloaded folder before its ``MLmodel`` is read.

    Raises:
        ModelResolutionError: naming ``uri``, the link (as found in the folder), where it
            leads, and ``model.allowed_uris``.
    """
    prefixes = [p for p in allowed_prefixes if p]
    base = os.path.realpath(folder)
    pending, seen = [base], set()
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        try:
            entries = list(os.scandir(current))
        except OSError:
            continue
        for entry in entries:
            if entry.is_symlink():
                target = os.path.realpath(entry.path)
                if not (_within(target, base) or _under_local_prefix(target, prefixes)):
                    raise ModelResolutionError(
                        f"model URI {uri!r}: the model folder holds the symbolic link "
                        f"{entry.path!r}, which leads to {target!r}, outside the model folder and "
                        f"outside the prefixes in {ALLOWED_URIS_FIELD}; loading a model runs its "
                        "code, so replace the link by the files it points at or remove it"
                    )
                if os.path.isdir(target):
                    pending.append(target)
            elif entry.is_dir(follow_symlinks=False):
                pending.append(entry.path)


_ENCODED_SEPARATOR = re.compile(r"%(?:2e|2f|5c)", re.IGNORECASE)


def _not_allowed(shown: str, listed: str) -> ModelResolutionError:
    return ModelResolutionError(
        f"model URI {shown!r} is not allowed: loading a model runs its code, so it must start "
        f"with one of the prefixes in {ALLOWED_URIS_FIELD}: {listed}. Add a prefix covering "
        f"this URI to {ALLOWED_URIS_FIELD} or use an allowed model."
    )


def _local_path_of(uri: str) -> str | None:
    """The local path a plain path or ``file://`` URI (or prefix) names; ``None`` for others."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme == "file":
        return urllib.request.url2pathname(parsed.path) or "/"
    if parsed.scheme == "" and not uri.startswith(("models:", "runs:")):
        return os.path.abspath(os.path.expanduser(uri))
    return None


def _within(path: str, folder: str) -> bool:
    """True when real ``path`` is ``folder`` or below it (by path components, not by text)."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _under_local_prefix(real: str, prefixes: Sequence[str]) -> bool:
    """True when real path ``real`` is allowed by a local prefix, itself resolved.

    A prefix ending in ``/`` allows its folder and everything below it; one without allows what
    starts with its resolved text (as the string check does, siblings included).
    """
    for prefix in prefixes:
        path = _local_path_of(prefix)
        if path is None:
            continue
        resolved = os.path.realpath(path)
        if prefix.endswith(("/", os.sep)) or prefix in ("file://", "file:"):
            if _within(real, resolved):
                return True
        elif real.startswith(resolved):
            return True
    return False


def _collapse_dot_dot(uri: str) -> str:
    """Return ``uri`` with ``..`` segments collapsed after its scheme (``s3://``, ``runs:/``)."""
    if ".." not in uri.split("/"):
        return uri
    head = re.match(r"[A-Za-z][A-Za-z0-9+.-]*:/*", uri)
    start = head.end() if head else 0
    return uri[:start] + posixpath.normpath(uri[start:])


def resolve_model(
    uri: str,
    dst_dir: str | os.PathLike,
    *,
    allowed_prefixes: Sequence[str],
    tracking_uri: str | None = None,
    registry_uri: str | None = None,
) -> ResolvedModel:
    """Check, locate, download and hash the model at ``uri``; return where it is and what it is.

    The allow-list (:func:`check_allowed`, on the resolved location for local models) is checked
    before anything is contacted or written, and again on the downloaded folder
    (:func:`check_model_folder`) before its ``MLmodel`` is read. The model is then
    downloaded (a local folder is copied) into a new folder ``dst_dir/model-XXXXXXXX/`` (created
    as needed), so resolutions into the same ``dst_dir`` never mix files; that folder is removed
    again when the resolution fails. ``tracking_uri`` and ``registry_uri`` default to MLflow's
    own resolution (``MLFLOW_TRACKING_URI``, ``MLFLOW_REGISTRY_URI``); global MLflow state is
    read, never changed. HTTP retries follow ``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` and
    ``MLFLOW_HTTP_REQUEST_TIMEOUT``.

    Raises:
        ModelResolutionError: the URI is not allowed or not a supported form; a local path is
            missing or has no ``MLmodel``; the run, registered model, version or alias does not
            exist; the tracking server cannot be reached (the message names its URI); the
            download fails or the downloaded folder is not an MLflow model.
    """
    check_allowed(uri, allowed_prefixes)
    location = _locate(uri, tracking_uri, registry_uri)
    root = Path(dst_dir)
    root.mkdir(parents=True, exist_ok=True)
    target = Path(tempfile.mkdtemp(prefix="model-", dir=root))
    try:
        local_path = _download(uri, location, target, tracking_uri, registry_uri)
        if _local_path_of(uri) is not None:
            check_allowed(uri, allowed_prefixes)  # again: a link may have changed meanwhile
        if not _within(os.path.realpath(local_path), os.path.realpath(target)):
            raise ModelResolutionError(
                f"model URI {uri!r} was downloaded to {local_path!r}, outside the download "
                f"folder {str(target)!r}; refusing to load it"
            )
        check_model_folder(target, allowed_prefixes, uri)
        model = _read_mlmodel(uri, local_path)
        return ResolvedModel(
            uri=uri,
            local_path=str(Path(local_path).resolve()),
            sha256=content_hash(local_path),
            run_id=_run_id(location, model),
            version=location.version,
            flavors=tuple(model.flavors),
            signature=model.signature,
        )
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise


def _run_id(location: _Location, model: Model) -> str | None:
    """The registry's run id wins for registered versions; otherwise MLmodel's, then the URI's."""
    if location.version is not None:
        return location.run_id or model.run_id
    return model.run_id or location.run_id


def content_hash(folder: str | os.PathLike) -> str:
    """Return the SHA-256 (hex) of every file under ``folder``, independent of where it lies.

    Files are taken in sorted order of their ``/``-separated paths relative to ``folder``; for
    each, the path (UTF-8), a NUL byte, the size as 8 big-endian bytes and the file's bytes are
    hashed. Empty folders do not count; symbolic links are followed.

    Raises:
        ModelResolutionError: when ``folder`` is not a directory.
    """
    base = Path(folder)
    if not base.is_dir():
        raise ModelResolutionError(f"cannot hash {str(base)!r}: it is not a folder")
    files = sorted((p.relative_to(base).as_posix(), p) for p in base.rglob("*") if p.is_file())
    digest = hashlib.sha256()
    for relative, path in files:
        digest.update(relative.encode("utf-8") + b"\0")
        digest.update(path.stat().st_size.to_bytes(8, "big"))
        with open(path, "rb") as handle:
            while chunk := handle.read(_HASH_CHUNK_BYTES):
                digest.update(chunk)
    return digest.hexdigest()


def _locate(uri: str, tracking_uri: str | None, registry_uri: str | None) -> _Location:
    scheme = urllib.parse.urlparse(uri).scheme
    if scheme in ("", "file"):
        return _Location(download_uri=_local_folder(uri))
    if scheme == "models":
        return _locate_registered(uri, tracking_uri, registry_uri)
    if scheme == "runs":
        return _locate_run(uri, tracking_uri)
    return _Location(download_uri=uri)


def _local_folder(uri: str) -> str:
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise ModelResolutionError(
                f"model URI {uri!r} names the remote host {parsed.netloc!r}; use file:///<path> "
                "for a folder on the driver"
            )
        path = Path(urllib.request.url2pathname(parsed.path))
        if ".." in path.parts:  # a percent-encoded '..' is not seen by check_allowed
            raise ModelResolutionError(
                f"model URI {uri!r} holds an encoded '..' segment and is refused; give the "
                "folder's path without '..'"
            )
    else:
        path = Path(uri)
    path = path.expanduser().absolute()
    if not path.exists():
        raise ModelNotFoundError(
            f"model path {uri!r} does not exist (looked at {str(path)!r}); give the folder "
            f"holding the model's {MLMODEL_FILE} file, as seen from the driver"
        )
    if not (path / MLMODEL_FILE).is_file():
        raise ModelResolutionError(
            f"model path {uri!r} has no {MLMODEL_FILE} file at {str(path / MLMODEL_FILE)!r}; "
            f"give the folder that holds the {MLMODEL_FILE} file of an MLflow model"
        )
    return str(path)


def _parse_models_uri(uri: str) -> tuple[str, str, str]:
    """Split ``models:/`` URIs into ``(name, kind, value)``, kind ``version|alias|latest``."""
    usage = "use models:/<name>/<version>, models:/<name>@<alias> or models:/<name>/latest"
    if not uri.startswith("models:/") or uri.startswith("models://"):
        raise ModelResolutionError(f"model URI {uri!r} is not supported; {usage}")
    rest = uri[len("models:/"):].rstrip("/")
    parts = rest.split("/")
    if len(parts) == 1 and "@" in rest:
        name, _, alias = rest.rpartition("@")
        if name and alias:
            return name, "alias", alias
    if len(parts) == 2 and parts[0]:
        name, suffix = parts
        if suffix.isdigit():
            return name, "version", suffix
        if suffix.lower() == "latest":
            return name, "latest", suffix
        raise ModelResolutionError(
            f"model URI {uri!r} names the registry stage {suffix!r}; stages are deprecated in "
            f"MLflow and not supported here: {usage}"
        )
    raise ModelResolutionError(f"model URI {uri!r} is not supported; {usage}")


def _locate_registered(uri: str, tracking_uri: str | None, registry_uri: str | None) -> _Location:
    name, kind, value = _parse_models_uri(uri)
    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)
    registry = _registry_of(client)
    hint = (
        f"check the model name and {'alias' if kind == 'alias' else 'version'} in the model "
        f"registry at {_shown(registry)}"
    )
    try:
        with _mlflow_errors(uri, registry, hint):
            if kind == "alias":
                model_version = client.get_model_version_by_alias(name, value)
            elif kind == "version":
                model_version = client.get_model_version(name, value)
            else:
                model_version = _latest_version(uri, client, name)
    except ModelNotFoundError as exc:
        raise ModelNotFoundError(f"{exc}; {_registry_entries(client, name)}") from exc
    with _mlflow_errors(uri, registry, hint):
        download_uri = client.get_model_version_download_uri(name, model_version.version)
        if download_uri.startswith("models:/"):
            download_uri = client.get_logged_model(download_uri[len("models:/"):]).artifact_location
    return _Location(download_uri, str(model_version.version), model_version.run_id or None)


def _latest_version(uri: str, client: mlflow.MlflowClient, name: str) -> Any:
    quoted = f'"{name}"' if "'" in name else f"'{name}'"
    versions = client.search_model_versions(
        filter_string=f"name = {quoted}", order_by=["version_number DESC"], max_results=1
    )
    if not versions:
        raise ModelNotFoundError(
            f"model URI {uri!r}: the registry at {_shown(_registry_of(client))} has no "
            f"registered model {name!r} or it has no versions; check the name or register a "
            "version first"
        )
    return versions[0]


def _registry_entries(client: mlflow.MlflowClient, name: str) -> str:
    """What the registry holds under ``name``, for a not-found message: up to
    :data:`LISTED_ENTRIES` versions (newest first) and aliases, or the registered model names
    nearest to ``name`` when it has none."""
    try:
        model = client.get_registered_model(name)
        quoted = f'"{name}"' if "'" in name else f"'{name}'"
        versions = client.search_model_versions(
            filter_string=f"name = {quoted}", order_by=["version_number DESC"],
            max_results=LISTED_ENTRIES,
        )
    except MlflowException:
        names = [m.name for m in client.search_registered_models(max_results=1000)]
        near = difflib.get_close_matches(name, names, n=LISTED_ENTRIES, cutoff=0.5)
        return (f"the registry has no model named {name!r}"
                + (f"; nearest: {', '.join(near)}" if near else ""))
    listed = ", ".join(str(v.version) for v in versions) or "none"
    aliases = ", ".join(f"@{a} -> {v}" for a, v in sorted((model.aliases or {}).items())[:LISTED_ENTRIES])
    return f"{name!r} has versions {listed}" + (f" and aliases {aliases}" if aliases else " and no aliases")


def _registry_of(client: mlflow.MlflowClient) -> str:
    """The registry URI ``client`` talks to (MLflow keeps it private), else its tracking URI."""
    return getattr(client, "_registry_uri", None) or client.tracking_uri


def _locate_run(uri: str, tracking_uri: str | None) -> _Location:
    run_id, _, artifact_path = uri.removeprefix("runs:/").strip("/").partition("/")
    if not uri.startswith("runs:/") or uri.startswith("runs://") or not artifact_path:
        raise ModelResolutionError(
            f"model URI {uri!r} is not supported; use runs:/<run_id>/<artifact_path>, e.g. "
            "runs:/<run_id>/model"
        )
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    hint = (
        "check the run id and the model's artifact path in the tracking server at "
        f"{_shown(client.tracking_uri)}"
    )
    with _mlflow_errors(uri, client.tracking_uri, hint):
        run = client.get_run(run_id)
        model_name, _, inner_path = artifact_path.partition("/")
        logged = _logged_model(client, run.info.experiment_id, run_id, model_name)
        if logged is None and not client.list_artifacts(run_id, artifact_path):
            raise ModelResolutionError(
                f"model URI {uri!r}: run {run_id} has no logged model named {model_name!r} "
                f"and no artifacts under {artifact_path!r}; {hint}"
            )
    if logged is not None:
        base = logged.artifact_location.rstrip("/")
        return _Location(f"{base}/{inner_path}" if inner_path else base, run_id=run_id)
    return _Location(f"{run.info.artifact_uri.rstrip('/')}/{artifact_path}", run_id=run_id)


def _logged_model(client: mlflow.MlflowClient, experiment_id: str, run_id: str, name: str) -> Any:
    """Return the MLflow 3 logged model named ``name`` from run ``run_id``, or ``None``."""
    quoted = f'"{name}"' if "'" in name else f"'{name}'"
    page_token = None
    while True:
        page = client.search_logged_models(
            experiment_ids=[experiment_id], filter_string=f"name = {quoted}",
            page_token=page_token,
        )
        for logged in page:
            if logged.source_run_id == run_id:
                return logged
        if not page.token:
            return None
        page_token = page.token


def _download(
    uri: str, location: _Location, target: Path, tracking_uri: str | None,
    registry_uri: str | None,
) -> str:
    effective = tracking_uri or mlflow.get_tracking_uri()
    hint = f"check that {location.download_uri!r} holds the model and is readable from the driver"
    with _mlflow_errors(uri, effective, hint):
        return mlflow.artifacts.download_artifacts(
            artifact_uri=location.download_uri, dst_path=str(target),
            tracking_uri=tracking_uri, registry_uri=registry_uri,
        )


def _read_mlmodel(uri: str, local_path: str) -> Model:
    if not (Path(local_path) / MLMODEL_FILE).is_file():
        raise ModelResolutionError(
            f"model URI {uri!r} downloaded to {local_path!r} without an {MLMODEL_FILE} file; "
            "point the URI at the folder of an MLflow model (the one holding MLmodel)"
        )
    try:
        return Model.load(local_path)
    except (MlflowException, OSError, ValueError) as exc:
        raise ModelResolutionError(
            f"model URI {uri!r}: cannot read {MLMODEL_FILE} in {local_path!r} ({exc}); the model "
            "folder is damaged or was not written by MLflow; log the model again"
        ) from exc


@contextmanager
def _mlflow_errors(uri: str, server_uri: str | None, hint: str) -> Iterator[None]:
    """Turn MLflow, HTTP, S3 and file errors into a :class:`ModelResolutionError`."""
    try:
        yield
    except ModelResolutionError:
        raise
    except (MlflowException, requests.RequestException, OSError, *_boto_errors()) as exc:
        if _is_unreachable(exc):
            raise ModelResolutionError(
                f"cannot resolve model {uri!r}: the MLflow tracking server at "
                f"{_shown(server_uri)} cannot be reached ({_first_line(exc)}); check that it "
                "is running and reachable from the driver, or pass the right tracking URI"
            ) from exc
        error = ModelNotFoundError if _is_not_found(exc) else ModelResolutionError
        raise error(f"cannot resolve model {uri!r}: {_first_line(exc)}; {hint}") from exc


def _is_not_found(exc: BaseException) -> bool:
    """True for an unknown name/version/alias, and for S3's answer to a missing key or bucket.

    The registry and tracking server say so with an MLflow error code. S3 says so with a
    botocore ``ClientError`` whose text reads ``An error occurred (404|NoSuchKey|NoSuchBucket)``;
    MLflow passes a failed file download on only as that text inside its own exception (with
    ``INTERNAL_ERROR``), so the text is what is matched. Model routing needs this distinction to
    fall back from a missing ``s3://`` model.
    """
    code = getattr(exc, "error_code", None)
    if code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
        return True
    return _S3_NOT_FOUND.search(str(exc)) is not None


def _boto_errors() -> tuple[type[BaseException], ...]:
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        return ()
    return (BotoCoreError, ClientError)


def _is_unreachable(exc: BaseException) -> bool:
    """True when ``exc`` or an exception it came from is a connection failure or timeout."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (requests.ConnectionError, requests.Timeout, ConnectionError)):
            return True
        if isinstance(current, MlflowException) and "failed with timeout exception" in str(
            current
        ):
            return True
        current = current.__cause__ or current.__context__
    return False


def _first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message, plus the per-file causes MLflow lists below it.

    A failed ``download_artifacts`` raises "The following failures occurred while downloading
    one or more artifacts from <uri>:" followed by ``##### File <path> #####`` and the error of
    each file on the next lines; without them the message would not say what went wrong.
    Secrets in it (a URL's user name and password, a token in its query) are masked.
    """
    text = redact_text(str(exc).strip() or type(exc).__name__)
    line = text.splitlines()[0].rstrip(".:")
    failures = _FILE_FAILURE.findall(text)
    if failures:
        line += ": " + "; ".join(f"{path}: {error.strip()}" for path, error in failures)
    return line[:500].rstrip(".:")


def _shown(uri: str | None) -> str:
    """Return ``uri`` as given, without user name, password, query string or fragment (they may
    hold secrets): ``sqlite:////abs/mlflow.db`` stays so, ``https://u:p@host/x?token=t`` becomes
    ``https://host/x``."""
    if not uri:
        return "(not set)"
    without_query = re.split(r"[?#]", uri, maxsplit=1)[0]
    return _USERINFO.sub(r"\1", without_query)
