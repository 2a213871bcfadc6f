"""The one redactor: what the package prints, logs, stores or uploads never shows a secret.

Used for the driver log (:class:`RedactingFilter` and the logged Spark settings), the run
manifest (its ``config`` and ``error``), error messages printed by the entry points, and the
rendered job and profile uploaded to S3 for EMR runs (:mod:`batch_scoring.jobs.deploy.staging`).

Two rules, applied together:

* **By key.** A setting whose key names a credential (:func:`is_secret_key`) has its whole value
  replaced by :data:`MASK`, whatever the value looks like. The key is split into words on
  ``.``, ``_``, ``-``, spaces and camelCase humps (``spark.ssl.keyPassword`` is
  ``spark ssl key password``); it names a credential when a word is one of
  :data:`SECRET_WORDS` (``password``, ``secret``, ``token``, ``credential``, ``private``,
  ``passphrase``, ``signature``, ``encryption``, ``sas``, ...), or the word ``key`` stands
  alone as a word, not followed by ``store``, ``columns``... (``fs.s3a.access.key``, ``fs.azure.account.key.<account>...``,
  ``AWS_ACCESS_KEY_ID``). Plural ``keys`` (``unit_of_work.keys``), ``partition_by``,
  ``keyStore``, and keys whose last word says the value is only a switch or a name
  (:data:`HARMLESS_LAST_WORDS`: ``...credentials.provider``, ``spark.io.encryption.enabled``)
  are left readable.
* **By value**, wherever the text appears (a value, a URI, inside an error message):
  the user name and password of any URI (``https://user:pw@host`` -> ``https://***@host``),
  ``name=value`` pairs whose name is a credential key (``?password=x``, ``sig=...``,
  ``spark.hadoop.fs.s3a.secret.key=x``), AWS access key ids (``AKIA``/``ASIA`` + 16),
  40-character AWS secret access keys, JSON Web Tokens (``eyJ...``.``eyJ...``.``...``) and
  PEM blocks (``-----BEGIN ... PRIVATE KEY-----`` to its ``END`` line, or to the end of a
  truncated text).

Redaction is one way: a redacted config is for people to read, never to run.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

MASK = "***"

SECRET_WORDS = frozenset({
    "password", "passwd", "pwd", "passphrase", "secret", "secrets", "token", "tokens",
    "credential", "credentials", "private", "signature", "sig", "encryption", "sas",
    "apikey", "accesskey", "secretkey", "privatekey", "sessiontoken", "accesstoken",
    "authtoken", "bearer", "cookie", "jwt", "otp",
})
"""Words that mark a key as naming a credential (compared lowercased)."""

HARMLESS_LAST_WORDS = frozenset({
    "provider", "providers", "enabled", "enable", "disabled", "class", "classes", "algorithm",
    "type", "mode", "file", "path", "location", "uri", "url", "expiry", "timeout", "duration",
    "size", "bits", "keysizebits", "length", "version", "format", "name",
})
"""Last words of a key whose value is a switch, a class name or a location, never a secret
(``fs.s3a.aws.credentials.provider``, ``spark.io.encryption.enabled``,
``spark.io.encryption.keySizeBits``, ``spark.kerberos.keytab`` stays by the rule above)."""

REFERENCE_KEYS = frozenset({"password_env", "password_secret", "password_secret_key"})
"""Keys whose value says where a password is kept, never the password: the JDBC config's
environment variable name, Secrets Manager id or ARN, and key inside a JSON secret
(:class:`~batch_scoring.jobs.config.JdbcConnectionConfig`). Their values are still searched for
secret-looking text like any other value."""

_KEY_NOT_SECRET = [["store"], ["stores"], ["tab"], ["column"], ["columns"], ["field"], ["fields"], ["by"]]
"""Words after ``key`` that make it a name, not a secret: ``keyStore``, ``key_columns``."""
_WORD_SPLIT = re.compile(r"[._\-\s/:]+|(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_URI_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^\s/?#@'\"]+)@")
_KEY_VALUE = re.compile(
    r"(?P<key>[A-Za-z_][A-Za-z0-9_.\-]*)(?P<sep>\s*=\s*)"
    r"(?P<value>\"[^\"]*\"|'[^']*'|[^\s&;,'\"}\]]+)"
    r"|(?P<quote>[\"'])(?P<qkey>[A-Za-z_][A-Za-z0-9_.\-]*)(?P=quote)(?P<qsep>\s*:\s*)"
    r"(?P<qvalue>\"[^\"]*\"|'[^']*'|[^\s,}\]]+)"
)
"""``name=value`` anywhere, and ``"name": value`` (a quoted name, as JSON and Python reprs
write it); a bare ``name: text`` is prose (``field x.secret.key: holds ...``) and is left."""
_AWS_ACCESS_KEY_ID = re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA|AROA|AIDA)[A-Z0-9]{16}(?![A-Z0-9])")
_AWS_SECRET = re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_\-]{4,}\.eyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*")
_PEM = re.compile(r"-----BEGIN [A-Z0-9 ]+-----[\s\S]*?(?:-----END [A-Z0-9 ]+-----|\Z)")


def key_words(key: str) -> list[str]:
    """The lowercased words of a setting's key: ``"spark.ssl.keyPassword"`` -> ``[spark, ssl, key, password]``."""
    return [word.lower() for word in _WORD_SPLIT.split(str(key)) if word]


def is_secret_key(key: str) -> bool:
    """True when ``key`` names a credential, so its value is masked whatever it holds.

    See the module docstring for the rule; ``fs.s3a.secret.key``, ``AWS_ACCESS_KEY_ID``,
    ``fs.azure.account.key.acct.dfs.core.windows.net``, ``fs.gs.auth.service.account.private.key``,
    ``fs.s3a.encryption.key`` and ``tracking_password`` are secret keys;
    ``unit_of_work.keys``, ``partition_by``, ``spark.ssl.keyStore``,
    ``fs.s3a.aws.credentials.provider`` and ``spark.io.encryption.enabled`` are not.
    """
    words = key_words(key)
    if not words or words[-1] in HARMLESS_LAST_WORDS or str(key).rsplit(".", 1)[-1] in REFERENCE_KEYS:
        return False
    return any(
        word in SECRET_WORDS or (word == "key" and words[i + 1:i + 2] not in _KEY_NOT_SECRET)
        for i, word in enumerate(words)
    )


def redact_text(text: str) -> str:
    """``text`` with every secret-looking value in it replaced by :data:`MASK`.

    Masks URI userinfo, ``name=value`` / ``"name": "value"`` pairs with a credential name,
    AWS access key ids and secret keys, JWTs and PEM blocks, anywhere in ``text``. Text
    without any of them comes back unchanged.
    """
    if not text:
        return text
    text = _PEM.sub(MASK, text)
    text = _JWT.sub(MASK, text)
    text = _URI_USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    text = _KEY_VALUE.sub(_masked_pair, text)
    text = _AWS_ACCESS_KEY_ID.sub(MASK, text)
    return _AWS_SECRET.sub(_masked_secret, text)


def redact(node: Any) -> Any:
    """A redacted copy of a config tree (dicts, lists, tuples, strings, scalars).

    A value under a key for which :func:`is_secret_key` is true becomes :data:`MASK` (``None``
    and empty values stay as they are, so an unset setting still reads unset); every other
    string goes through :func:`redact_text`; numbers, booleans and ``None`` pass through.
    """
    if isinstance(node, Mapping):
        return {k: (_masked_value(v) if is_secret_key(str(k)) else redact(v)) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return type(node)(redact(v) for v in node)
    if isinstance(node, str):
        return redact_text(node)
    return node


def secret_paths(node: Any, prefix: str = "") -> list[str]:
    """Dotted paths of the values in a config tree that :func:`redact` would change.

    Used to refuse a config that would carry a secret where it must not go (an EMR request, an
    uploaded job file): ``["spark_conf.spark.hadoop.fs.s3a.secret.key", "model.tracking_uri"]``.
    """
    found: list[str] = []
    if isinstance(node, Mapping):
        for k, v in node.items():
            path = f"{prefix}.{k}" if prefix else str(k)
            if is_secret_key(str(k)) and _masked_value(v) != v:
                found.append(path)
            else:
                found += secret_paths(v, path)
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            found += secret_paths(v, f"{prefix}[{i}]")
    elif isinstance(node, str) and redact_text(node) != node:
        found.append(prefix or "(value)")
    return found


class RedactingFilter(logging.Filter):
    """A logging filter that redacts every record's message (and its arguments) in place.

    Attach it to a handler (:func:`install_log_redaction` attaches it to the root logger's
    handlers) so that no log line, from this package or a library, shows a secret value.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Replace ``record.msg`` by its redacted, formatted text; always keep the record."""
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a badly formatted record is logged as it is
            return True
        record.msg, record.args = redact_text(message), None
        return True


def install_log_redaction(logger: logging.Logger | None = None) -> None:
    """Add one :class:`RedactingFilter` to each handler of ``logger`` (default: the root logger)."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


def _masked_value(value: Any) -> Any:
    if value is None or value == "" or isinstance(value, (list, dict)) and not value:
        return value
    return MASK


def _masked_pair(match: re.Match) -> str:
    if match["key"] is not None:
        key, sep, value, head = match["key"], match["sep"], match["value"], match["key"]
    else:
        key, sep, value = match["qkey"], match["qsep"], match["qvalue"]
        head = f"{match['quote']}{key}{match['quote']}"
    if not is_secret_key(key) or value.strip("\"'") in ("", MASK):
        return match[0]
    quote = value[0] if value[:1] in ("'", '"') else ""
    return f"{head}{sep}{quote}{MASK}{quote}"


def _masked_secret(match: re.Match) -> str:
    """Mask a 40-character run of base64 letters only when it looks random, not like a path.

    An AWS secret access key mixes upper case, lower case and digits and holds few ``/``; a
    hex SHA-1 has no upper case and a path starts with ``/`` or holds many.
    """
    value = match[0]
    random_looking = (
        any(c.isupper() for c in value) and any(c.islower() for c in value)
        and any(c.isdigit() for c in value) and not value.startswith("/") and value.count("/") <= 3
    )
    return MASK if random_looking else value
