"""Run ids: any printable name a scheduler passes is accepted; a file name is derived from it.

A run id is a *name*, stored verbatim in every output and rejects row (column ``run_id``) and in
the run manifest (field ``run_id``). Schedulers pass ids such as Airflow's
``scheduled__2026-11-22T02:00:00+00:00`` or ``manual__2026-11-22T02:00:00.123456+00:00``, Step
Functions' execution ARNs, EventBridge event ids, and people type ids with spaces and accents;
all are accepted as they are.

The run id never becomes a path as written. The manifest's file name comes from
:func:`manifest_file_name`: an id made only of ``A-Z a-z 0-9 . _ -`` that starts with a letter
or digit and is at most :data:`MAX_PLAIN_NAME_LENGTH` characters is used as it is (the
generated ids, ``20261122-041502-9f1c2ab0``, stay readable); any other id becomes a readable
prefix (the allowed characters kept, runs of others replaced by ``_``, at most 60 characters)
followed by ``~`` and the first 16 hex digits of the id's SHA-256, e.g.
``scheduled__2026-11-22T02_00_00_00_00~3f0c9a...json``. ``~`` never occurs in a plain name, so
two different ids never share a file, and no name holds ``/``, ``:`` or starts with ``.``, so
no id can reach outside ``_manifests/run_date=<date>/`` (``../../../victim`` is the file
``victim~<hash>.json`` in that folder).

Ids that cannot be used are refused by :func:`check_run_id` before Spark starts (exit 2): the
empty id, one of only white space, one holding control or format characters (new lines, tabs,
``NUL``, bidirectional overrides, which would forge log lines or hide text), lone surrogates,
and ids longer than :data:`MAX_RUN_ID_LENGTH` characters.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from batch_scoring.jobs.errors import ConfigError

MAX_RUN_ID_LENGTH = 512
"""Longest accepted run id, in characters (Airflow allows 250, a Step Functions execution ARN
is at most about 330; a manifest file name stays at most 82 characters whatever the length)."""

MAX_PLAIN_NAME_LENGTH = 100
PREFIX_LENGTH = 60
HASH_HEX_DIGITS = 16
_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_NOT_PLAIN = re.compile(r"[^A-Za-z0-9._-]+")
_REFUSED_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def check_run_id(run_id: str) -> str:
    """Return ``run_id`` unchanged when it can be used; raise otherwise.

    Raises:
        ConfigError: when ``run_id`` is empty or only white space, is longer than
            :data:`MAX_RUN_ID_LENGTH` characters, or holds a control, format, private-use,
            unassigned or separator character (the message names its position and code point).
    """
    if not run_id or not run_id.strip():
        raise ConfigError("--run-id is empty; give a non-empty id or leave --run-id out to generate one")
    if len(run_id) > MAX_RUN_ID_LENGTH:
        raise ConfigError(
            f"--run-id is {len(run_id)} characters long; at most {MAX_RUN_ID_LENGTH} are accepted"
        )
    for position, char in enumerate(run_id):
        if unicodedata.category(char) in _REFUSED_CATEGORIES:
            raise ConfigError(
                f"--run-id holds the unprintable character U+{ord(char):04X} at position {position}; "
                "a run id must be printable text (letters, digits, punctuation, spaces)"
            )
    return run_id


def manifest_file_name(run_id: str) -> str:
    """The manifest's file name for ``run_id``: ``<run_id>.json`` or ``<prefix>~<sha256[:16]>.json``.

    Safe for every file system and object store the job writes to (only ``A-Z a-z 0-9 . _ - ~``,
    never starting with ``.`` or ``_``, at most 82 characters); different ids give different
    names. See the module docstring.
    """
    if len(run_id) <= MAX_PLAIN_NAME_LENGTH and _PLAIN.fullmatch(run_id):
        return f"{run_id}.json"
    prefix = _NOT_PLAIN.sub("_", run_id).lstrip("._")[:PREFIX_LENGTH] or "run"
    digest = hashlib.sha256(run_id.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_HEX_DIGITS]
    return f"{prefix}~{digest}.json"
