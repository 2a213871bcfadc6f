"""Amazon Redshift ``UNLOAD`` to S3 as Parquet: the statement, the run's folder, its files, errors.

A JDBC read pulls every row through Redshift's leader node and one connection per Spark
partition. ``UNLOAD`` instead has every slice of the cluster write its share of the rows to S3
as Parquet, in parallel, and Spark then reads those files in parallel. With
``source.jdbc.unload`` set, :class:`~batch_scoring.jobs.jdbc_source.JdbcSource` runs one
statement over its JDBC connection (:func:`unload_statement`)::

    UNLOAD ('SELECT "segment", "price" FROM "public"."daily_sales" WHERE "sale_date" >= DATE ''2026-06-01''')
    TO 's3://bucket/unload/2026-11-22/20261122-041502-9f1c2ab0/'
    IAM_ROLE 'arn:aws:iam::123456789012:role/redshift-unload'
    FORMAT AS PARQUET ALLOWOVERWRITE MANIFEST

* Each run writes to its own folder, ``<s3_uri><run_date>/<run id>/`` (:func:`run_folder`), so
  runs never share a file. ``ALLOWOVERWRITE`` lets an attempt that reuses its run id write
  again; stale files of that earlier attempt cannot leak in, because the job reads exactly the
  files the ``MANIFEST`` (``<folder>manifest``, rewritten by every UNLOAD) lists
  (:func:`manifest_files`). ``CLEANPATH`` would also delete them but needs ``s3:DeleteObject``
  for Redshift's role and cannot be combined with ``ALLOWOVERWRITE``; it is not used.
* The inner SELECT is a string literal: its single quotes are doubled (:func:`sql_literal`).
* ``source.filter`` (Spark SQL) is pushed into the SELECT's WHERE clause when it is written in
  a small subset both dialects read the same way (:func:`split_filter`): comparisons, ``IN``,
  ``BETWEEN``, ``IS [NOT] NULL`` of columns against numbers, strings, ``DATE '...'`` and
  ``TIMESTAMP '...'`` literals, joined by ``AND``/``OR``/``NOT``. Top-level ``AND`` terms are
  pushed one by one; the rest stays for Spark. Spark applies the whole filter again on the
  files (the columns it names are unloaded too, :func:`unloaded_columns`), so pushing only
  ever narrows what is unloaded, never the result.
* A refused UNLOAD (Redshift cannot assume the role, the role may not write to the bucket, the
  bucket is in another region, a bad query) becomes one :class:`ConfigError` /
  :class:`InputError` line naming the field and the folder (:func:`unload_error`).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from batch_scoring.jobs.config import JdbcSourceConfig, JdbcUnloadConfig
from batch_scoring.jobs.errors import ConfigError, InputError, JobError
from batch_scoring.jobs.jdbc import quote_identifier, relation
from batch_scoring.jobs.run_ids import manifest_file_name

FIELD = "source.jdbc.unload"
MANIFEST_NAME = "manifest"
"""UNLOAD's MANIFEST option writes ``<TO prefix>manifest``: for a folder prefix, ``<folder>manifest``."""


# --------------------------------------------------------------------------- the run's folder

def run_folder(unload: JdbcUnloadConfig, run_date: dt.date, run_id: str) -> str:
    """``<s3_uri><run_date>/<run id>/``, e.g. ``s3://bucket/unload/2026-11-22/20261122-041502-9f1c2ab0/``.

    The run id becomes a safe name as the manifest's file name does
    (:func:`~batch_scoring.jobs.run_ids.manifest_file_name`: plain ids as they are, others a
    readable prefix plus a hash), so no id can reach outside ``s3_uri`` or break the SQL literal.
    """
    name = manifest_file_name(run_id).removesuffix(".json")
    return f"{unload.s3_uri}{run_date.isoformat()}/{name}/"


# --------------------------------------------------------------------------- SQL text

def sql_literal(text: str) -> str:
    """``text`` as a Redshift string literal: in single quotes, each ``'`` doubled."""
    return "'" + text.replace("'", "''") + "'"


def unload_select(cfg: JdbcSourceConfig, columns: Sequence[str] | None, where: str | None) -> str:
    """The SELECT whose rows are unloaded: ``columns`` (quoted; ``*`` when None) of the table
    or the query (as ``(query) AS src``), with ``where`` as its WHERE clause."""
    listed = ", ".join(quote_identifier(c) for c in columns) if columns is not None else "*"
    sql = f"SELECT {listed} FROM {relation(cfg)}"
    return f"{sql} WHERE {where}" if where else sql


def unload_statement(select: str, folder: str, unload: JdbcUnloadConfig) -> str:
    """The one UNLOAD statement of a run: ``select`` to ``folder`` as Parquet, with a manifest.

    Args:
        select: the inner query (:func:`unload_select`), quoted here as a literal.
        folder: the run's folder (:func:`run_folder`), ending in ``/``.
        unload: ``source.jdbc.unload`` (role, ``max_file_size_mb``).
    """
    role = "default" if unload.iam_role == "default" else sql_literal(unload.iam_role)
    size = f" MAXFILESIZE {unload.max_file_size_mb} MB" if unload.max_file_size_mb else ""
    return (f"UNLOAD ({sql_literal(select)}) TO {sql_literal(folder)} IAM_ROLE {role} "
            f"FORMAT AS PARQUET ALLOWOVERWRITE MANIFEST{size}")


# --------------------------------------------------------------------------- pushing source.filter

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>'[^'\\]*'(?!')|"[^"\\]*"(?!"))
  | (?P<number>\d+(?:\.\d+)?(?![\w.]))
  | (?P<quoted>`[^`]+`)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><=|>=|<>|!=|==|=|<|>)
  | (?P<punct>[(),])
""", re.VERBOSE)
_KEYWORDS = {"AND", "OR", "NOT", "IN", "BETWEEN", "IS", "NULL", "TRUE", "FALSE"}
_TYPED = {"DATE", "TIMESTAMP"}
_DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIMESTAMP_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?")


@dataclass(frozen=True)
class PushedFilter:
    """What of ``source.filter`` goes into the UNLOAD's WHERE (:func:`split_filter`).

    Attributes:
        sql: the pushed terms in Redshift SQL, joined by ``AND``; None when none is pushed.
        whole: True when every term was pushed (or there is no filter).
        columns: the columns the pushed terms name, as written, each once.
    """

    sql: str | None
    whole: bool
    columns: tuple[str, ...] = ()


def split_filter(predicate: str | None) -> PushedFilter:
    """The part of ``source.filter`` pushed into the UNLOAD's WHERE.

    The filter is cut into its top-level ``AND`` terms; each term written only with the subset
    in the module docstring is translated to Redshift SQL (strings in single quotes, column
    names in double quotes, ``==`` as ``=``, ``!=`` as ``<>``, ``DATE'x'`` as ``DATE 'x'``).
    Anything else (function calls, arithmetic, ``LIKE``, a string with a backslash or an
    escaped quote, a name where a value belongs, unbalanced parentheses) is left to Spark.
    """
    if not predicate or not predicate.strip():
        return PushedFilter(None, True)
    tokens = _tokens(predicate)
    if tokens is None or _balance(tokens) != 0:
        return PushedFilter(None, False)
    terms = _and_terms(tokens)
    pushed, whole, columns = [], True, {}
    for term in terms:
        condition = _Condition(term)
        translated = condition.parse()
        if translated is None:
            whole = False
            continue
        sql, is_or = translated
        pushed.append(f"({sql})" if is_or and len(terms) > 1 else sql)
        columns.update({c.lower(): c for c in condition.columns if c.lower() not in columns})
    return PushedFilter(" AND ".join(pushed) or None, whole, tuple(columns.values()))


def unloaded_columns(columns: Sequence[str] | None, pushed: PushedFilter) -> list[str] | None:
    """The columns to UNLOAD: the job's ``columns`` and those the filter names, so Spark can
    apply the whole filter again; None (every column) when the job reads all of them or part
    of the filter was not pushed (its columns are then unknown here)."""
    if columns is None or not pushed.whole:
        return None
    known = {c.lower() for c in columns}
    return [*columns, *(c for c in pushed.columns if c.lower() not in known)]


def _tokens(text: str) -> list[tuple[str, str]] | None:
    tokens, position = [], 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            return None
        position = match.end()
        if match.lastgroup != "space":
            tokens.append((match.lastgroup, match.group()))
    return tokens


def _and_terms(tokens: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """``tokens`` cut at top-level ANDs (not the AND of a BETWEEN); parentheses around the
    whole filter are removed first."""
    while _wrapped(tokens):
        tokens = tokens[1:-1]
    terms, current, depth, between = [], [], 0, 0
    for kind, text in tokens:
        upper = text.upper() if kind == "word" else ""
        if kind == "punct":
            depth += (text == "(") - (text == ")")
        if depth == 0 and upper == "BETWEEN":
            between += 1
        if depth == 0 and upper == "AND":
            if between:
                between -= 1
            else:
                terms.append(current)
                current = []
                continue
        current.append((kind, text))
    terms.append(current)
    return terms


def _balance(tokens: list[tuple[str, str]]) -> int:
    """Opened minus closed parentheses; -1 as soon as one closes before it opened."""
    depth = 0
    for kind, text in tokens:
        if kind == "punct":
            depth += (text == "(") - (text == ")")
            if depth < 0:
                return -1
    return depth


def _wrapped(tokens: list[tuple[str, str]]) -> bool:
    if len(tokens) < 2 or tokens[0] != ("punct", "(") or tokens[-1] != ("punct", ")"):
        return False
    depth = 0
    for index, (kind, text) in enumerate(tokens):
        if kind == "punct":
            depth += (text == "(") - (text == ")")
        if depth == 0 and index < len(tokens) - 1:
            return False
    return True


class _Condition:
    """A recursive-descent reader of one term: ``cond := disj; disj := conj (OR conj)*;
    conj := neg (AND neg)*; neg := NOT neg | '(' cond ')' | column test | value op column``,
    where a test is ``op value``, ``[NOT] IN (value, ...)``, ``[NOT] BETWEEN value AND value``
    or ``IS [NOT] NULL|TRUE|FALSE``. :meth:`parse` gives (Redshift SQL, top level is an OR) or
    None when the term is anything else."""

    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens, self.at = tokens, 0
        self.columns: list[str] = []

    def parse(self) -> tuple[str, bool] | None:
        try:
            sql, is_or = self._disjunction()
        except _NotPushable:
            return None
        return (sql, is_or) if self.at == len(self.tokens) else None

    def _peek(self, offset: int = 0) -> tuple[str, str]:
        index = self.at + offset
        return self.tokens[index] if index < len(self.tokens) else ("end", "")

    def _take(self) -> tuple[str, str]:
        token = self._peek()
        if token[0] == "end":
            raise _NotPushable
        self.at += 1
        return token

    def _keyword(self, *words: str) -> bool:
        kind, text = self._peek()
        if kind == "word" and text.upper() in words:
            self.at += 1
            return True
        return False

    def _expect(self, kind: str, text: str | None = None) -> str:
        got_kind, got = self._take()
        if got_kind != kind or (text is not None and got.upper() != text):
            raise _NotPushable
        return got

    def _disjunction(self) -> tuple[str, bool]:
        parts = [self._conjunction()]
        while self._keyword("OR"):
            parts.append(self._conjunction())
        return " OR ".join(parts), len(parts) > 1

    def _conjunction(self) -> str:
        parts = [self._negation()]
        while self._keyword("AND"):
            parts.append(self._negation())
        return " AND ".join(parts)

    def _negation(self) -> str:
        if self._keyword("NOT"):
            return f"NOT {self._negation()}"
        if self._peek() == ("punct", "("):
            self.at += 1
            inner, _ = self._disjunction()
            self._expect("punct", ")")
            return f"({inner})"
        column = self._column()
        if column is None:  # value op column
            value = self._value()
            operator = self._operator()
            column = self._column()
            if column is None:
                raise _NotPushable
            return f"{value} {operator} {column}"
        return f"{column} {self._test()}"

    def _test(self) -> str:
        if self._keyword("IS"):
            negated = "NOT " if self._keyword("NOT") else ""
            kind, text = self._take()
            if kind != "word" or text.upper() not in ("NULL", "TRUE", "FALSE"):
                raise _NotPushable
            return f"IS {negated}{text.upper()}"
        negated = "NOT " if self._keyword("NOT") else ""
        if self._keyword("IN"):
            self._expect("punct", "(")
            values = [self._value()]
            while self._peek() == ("punct", ","):
                self.at += 1
                values.append(self._value())
            self._expect("punct", ")")
            return f"{negated}IN ({', '.join(values)})"
        if self._keyword("BETWEEN"):
            low = self._value()
            self._expect("word", "AND")
            return f"{negated}BETWEEN {low} AND {self._value()}"
        if negated:
            raise _NotPushable
        return f"{self._operator()} {self._value()}"

    def _operator(self) -> str:
        kind, text = self._take()
        if kind != "op":
            raise _NotPushable
        return {"==": "=", "!=": "<>"}.get(text, text)

    def _column(self) -> str | None:
        kind, text = self._peek()
        following = self._peek(1)
        if kind == "quoted":
            name = text[1:-1]
        elif (kind == "word" and text.upper() not in _KEYWORDS and following != ("punct", "(")
                and not (text.upper() in _TYPED and following[0] == "string")):
            name = text
        else:
            return None
        self.at += 1
        self.columns.append(name)
        return quote_identifier(name)

    def _value(self) -> str:
        kind, text = self._take()
        if kind == "number":
            return text
        if kind == "string":
            return sql_literal(text[1:-1])
        if kind == "word" and text.upper() in ("TRUE", "FALSE"):
            return text.upper()
        if kind == "word" and text.upper() in _TYPED:
            literal_kind, literal = self._take()
            pattern = _DATE_TEXT if text.upper() == "DATE" else _TIMESTAMP_TEXT
            if literal_kind != "string" or not pattern.fullmatch(literal[1:-1]):
                raise _NotPushable
            return f"{text.upper()} {sql_literal(literal[1:-1])}"
        raise _NotPushable


class _NotPushable(Exception):
    """A term outside the subset both dialects read alike."""


# --------------------------------------------------------------------------- the files

@dataclass(frozen=True)
class UnloadedFile:
    """One Parquet file an UNLOAD wrote: its ``s3://`` URI and size in bytes (None if unknown)."""

    url: str
    bytes: int | None


def manifest_files(text: str, folder: str) -> list[UnloadedFile]:
    """The data files an UNLOAD manifest lists (``{"entries": [{"url": ..., "meta":
    {"content_length": n}}]}``).

    Raises:
        InputError: the manifest is not such JSON, or lists a file outside ``folder``.
    """
    try:
        entries = json.loads(text)["entries"]
        files = [UnloadedFile(str(e["url"]), (e.get("meta") or {}).get("content_length"))
                 for e in entries]
    except (ValueError, KeyError, TypeError) as error:
        raise InputError(f"{FIELD}: the UNLOAD manifest {folder}{MANIFEST_NAME} is not an UNLOAD "
                         f"manifest ({type(error).__name__}: {error}); rerun the job") from None
    outside = [f.url for f in files if not f.url.startswith(folder)]
    if outside:
        raise InputError(f"{FIELD}: the UNLOAD manifest {folder}{MANIFEST_NAME} lists files outside "
                         f"the run's folder: {outside[:3]}")
    return files


# --------------------------------------------------------------------------- errors

_ASSUME_ROLE = re.compile(r"not authori[sz]ed to assume|assumerole|cannot assume|"
                          r"not authori[sz]ed to get credentials of role", re.IGNORECASE)
_ACCESS_DENIED = re.compile(r"access ?denied|status 403|forbidden", re.IGNORECASE)
_OTHER_REGION = re.compile(r"status 301|permanentredirect|different region|"
                           r"must be addressed using the specified endpoint|region", re.IGNORECASE)
_NO_BUCKET = re.compile(r"nosuchbucket|bucket does not exist|status 404", re.IGNORECASE)
_BAD_QUERY_STATES = ("42",)


def unload_error(state: str, message: str, cfg: JdbcSourceConfig, folder: str,
                 pushed: str | None) -> JobError:
    """One line for an UNLOAD Redshift refused, naming the field and the run's folder.

    Args:
        state, message: the SQLException's SQLState and first line (password already removed,
            see :func:`~batch_scoring.jobs.jdbc.sql_state`).
        cfg: ``source.jdbc``.
        folder: the run's folder the UNLOAD wrote to.
        pushed: the part of ``source.filter`` pushed into the query, if any.

    Returns:
        :class:`ConfigError` when the role or the bucket must change (Redshift cannot assume
        ``iam_role``, the role may not write there, the bucket is in another region);
        :class:`InputError` for a missing bucket, a bad query and anything else.
    """
    unload = cfg.unload
    role = f"{FIELD}.iam_role {unload.iam_role}"
    where = f"{FIELD}.s3_uri folder {folder}"
    if _ASSUME_ROLE.search(message):
        return ConfigError(
            f"{role}: Redshift cannot assume the role to UNLOAD to {where} ({message}); associate "
            "the role with the cluster or namespace and let it trust redshift.amazonaws.com")
    if _NO_BUCKET.search(message):
        return InputError(f"{where}: the bucket does not exist ({message}); create it or fix s3_uri")
    if _ACCESS_DENIED.search(message):
        return ConfigError(
            f"{role} may not write to {where} ({message}); grant the role s3:PutObject on "
            f"{unload.s3_uri}* (and s3:ListBucket on the bucket)")
    if re.search(r"s3", message, re.IGNORECASE) and _OTHER_REGION.search(message):
        return ConfigError(
            f"{where}: the bucket is not in the Redshift cluster's region ({message}); use a "
            "bucket in the cluster's region")
    if state.startswith(_BAD_QUERY_STATES):
        what = f"table {cfg.table}" if cfg.table else "query"
        filtered = f" with the pushed source.filter ({pushed})" if pushed else ""
        return InputError(
            f"source.jdbc.{what}: Redshift refused the UNLOAD's query{filtered} to {where} "
            f"[SQLState {state}]: {message}")
    return InputError(f"{FIELD}: UNLOAD to {where} failed [SQLState {state or '?'}]: {message}")


__all__ = [
    "FIELD", "MANIFEST_NAME", "PushedFilter", "UnloadedFile", "manifest_files", "run_folder",
    "split_filter", "sql_literal", "unload_error", "unload_select", "unload_statement",
    "unloaded_columns",
]
