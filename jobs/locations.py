"""Path identity: where a configured path really leads, so overlaps are found by location.

Two config strings name the same place more often than they look alike: ``/data/sales``,
``file:///data/sales``, ``file:/data/sales/``, ``/data/./sales`` and a symlink to it are one
folder; ``s3://b/k``, ``s3a://b/k`` and ``s3n://b/k/`` are one prefix. :func:`canonical`
turns each into one comparable form, and :func:`overlaps` says whether one location is the
other or lies inside it.
"""

from __future__ import annotations

import os
import posixpath
import re
from urllib.parse import unquote, urlsplit

S3_SCHEMES = ("s3", "s3a", "s3n")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")


def canonical(path: str) -> str:
    """The location ``path`` names, in one form per place.

    * local paths and ``file:`` URIs (``file:/x``, ``file:///x``, ``file://localhost/x``):
      the absolute path with every symlink resolved (also when the last parts do not exist
      yet: the existing part is resolved, the rest appended), without a trailing slash;
    * ``s3://``, ``s3a://``, ``s3n://``: ``s3://bucket/key`` with ``.`` and ``..`` and
      repeated or trailing slashes collapsed (S3 keys have no symlinks);
    * any other URI (``hdfs://nn/x``): scheme and authority lower-cased, the path collapsed.

    Args:
        path: a path or URI as written in a job config.

    Returns:
        The canonical location, e.g. ``/data/sales`` or ``s3://bucket/sales``.
    """
    match = _SCHEME.match(path)
    scheme = match.group(1).lower() if match else ""
    if not scheme or len(scheme) == 1:  # a Windows drive letter is not a scheme
        return _local(path)
    parts = urlsplit(path)
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            return f"file://{parts.netloc}{_collapse(unquote(parts.path))}".rstrip("/")
        return _local(unquote(parts.path))
    if scheme in S3_SCHEMES:
        return f"s3://{parts.netloc.lower()}{_collapse(parts.path)}".rstrip("/")
    return f"{scheme}://{parts.netloc.lower()}{_collapse(parts.path)}".rstrip("/")


def resolve_path(path: str, s3_scheme: str) -> str:
    """``path`` as Spark reads it on a profile: ``s3://`` rewritten to ``s3a://`` when
    ``s3_scheme`` is ``s3a`` (off EMR, where Hadoop's s3a connector serves S3); unchanged on EMR,
    whose EMRFS serves ``s3://`` itself."""
    if s3_scheme == "s3a" and path.startswith("s3://"):
        return "s3a://" + path.removeprefix("s3://")
    return path


def local_path(path: str) -> str:
    """``path`` as a plain file-system path when it is a local ``file:`` URI: ``file:/x``,
    ``file:///x`` and ``file://localhost/x`` give ``/x`` (as written: no symlink resolved, no
    percent-decoding, which Hadoop's own messages do not apply either). Plain paths, ``file:``
    URIs of another host and URIs of other schemes are returned unchanged."""
    return _LOCAL_FILE_URI.sub("", path)


_LOCAL_FILE_URI = re.compile(r"^file:(?://(?:localhost)?(?=/)|(?=/(?!/)))")


def _local(path: str) -> str:
    return os.path.realpath(os.path.abspath(os.path.expanduser(path)))


def _collapse(path: str) -> str:
    """``path`` with ``.``, ``..`` and repeated slashes collapsed ("" for no path); callers
    strip the trailing slash."""
    return posixpath.normpath("/" + path.lstrip("/")) if path else ""


def overlaps(first: str, second: str) -> bool:
    """True when the two paths name the same location or one lies inside the other.

    Compares :func:`canonical` forms segment by segment, so ``/data/sales`` and
    ``/data/sales_rejects`` do not overlap but ``/data/sales`` and ``file:///data/sales/x`` do.
    """
    a, b = canonical(first), canonical(second)
    return a == b or a.startswith(b.rstrip("/") + "/") or b.startswith(a.rstrip("/") + "/")


def is_inside(path: str, folder: str) -> bool:
    """True when ``path`` is ``folder`` or lies below it (canonical locations)."""
    a, b = canonical(path), canonical(folder)
    return a == b or a.startswith(b.rstrip("/") + "/")
