"""Schema changes between runs: found before the first commit, refused or added, never half-done.

A run date is replaced inside a table that holds other run dates. When the rows of this run
have other columns than the table (the function gained, lost or retyped an output column; the
source gained a column), writing them would either fail after another table already
committed, or change how the other run dates read back. So before anything is written the
run's schema is compared with each existing table:

* **output**: ``output.schema_change: refuse`` (default) stops the run (exit 3) naming the
  columns added, dropped and retyped; ``add_columns`` lets new nullable columns in (earlier run
  dates read them as null) and still refuses dropped and retyped ones, which would rewrite or
  hide other run dates' data.
* **rejects**: the rejects table keeps its schema stable on its own: a column the table has and
  this run lacks is written as null, a new source column is added (rejects are evidence: a
  source that gained a column must not fail a run), and only a retyped column stops the run.

Partition columns of a Parquet table are left out of the comparison: Spark infers their types
from the folder names (``product=3`` reads as int), not from what was written.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from batch_scoring.jobs.errors import InputError
from batch_scoring.jobs.sinks import Sink


class SchemaChangeError(InputError):
    """The run's rows do not fit the existing table's schema (exit 3); nothing was committed."""


@dataclass(frozen=True)
class SchemaDiff:
    """Columns of a run compared with the table's: ``(name, type)`` / ``(name, old, new)``."""

    added: list[tuple[str, str]] = field(default_factory=list)
    dropped: list[tuple[str, str]] = field(default_factory=list)
    retyped: list[tuple[str, str, str]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.dropped or self.retyped)

    def describe(self) -> str:
        """``added [a double]; dropped [b string]; retyped [c: double -> string]``."""
        parts = []
        if self.added:
            parts.append("added " + ", ".join(f"{n} {t}" for n, t in self.added))
        if self.dropped:
            parts.append("dropped " + ", ".join(f"{n} {t}" for n, t in self.dropped))
        if self.retyped:
            parts.append("retyped " + ", ".join(f"{n}: {a} -> {b}" for n, a, b in self.retyped))
        return "; ".join(parts)


def compare(existing: T.StructType, new: T.StructType, ignore: set[str]) -> SchemaDiff:
    """The columns ``new`` adds, drops and retypes against ``existing`` (names compared
    case-insensitively, as Spark resolves them; nullability ignored; ``ignore`` skipped)."""
    skip = {c.lower() for c in ignore}
    old = {f.name.lower(): f for f in existing.fields if f.name.lower() not in skip}
    fresh = {f.name.lower(): f for f in new.fields if f.name.lower() not in skip}
    return SchemaDiff(
        added=[(fresh[n].name, fresh[n].dataType.simpleString()) for n in fresh if n not in old],
        dropped=[(old[n].name, old[n].dataType.simpleString()) for n in old if n not in fresh],
        retyped=[
            (old[n].name, old[n].dataType.simpleString(), fresh[n].dataType.simpleString())
            for n in fresh if n in old and _type(old[n].dataType) != _type(fresh[n].dataType)
        ],
    )


def _type(data_type: T.DataType) -> str:
    return data_type.simpleString()


def check_output_schema(
    rows: DataFrame, sink: Sink, partition_columns: list[str], policy: str,
) -> bool:
    """Check the run's output rows against the output table; True when columns are added.

    Args:
        rows: the rows to write (``run_date`` and ``run_id`` are added by the write).
        sink: the output table (:meth:`~batch_scoring.jobs.sinks.Sink.existing_schema`).
        partition_columns: ``run_date`` and ``output.partition_by``, left out of the
            comparison for a sink whose partition values live in folder names.
        policy: ``output.schema_change``, ``refuse`` or ``add_columns``.

    Returns:
        True when the write must add columns to the table (``add_columns`` and new columns).

    Raises:
        SchemaChangeError: for dropped or retyped columns, and for added ones under
            ``refuse``; the message names the columns and how to migrate.
    """
    existing, path = sink.existing_schema(), sink.location
    if existing is None:
        return False
    ignore = set(partition_columns) if sink.folder_partitions else set()
    diff = compare(existing, rows.schema, ignore | {"run_date", "run_id"})
    if not diff:
        return False
    if diff.dropped or diff.retyped:
        raise SchemaChangeError(
            f"the run's output does not fit the table at {sink.field} {path}: {diff.describe()}. "
            "Writing it would change how the table's other run dates read back, so nothing was "
            "committed. Restore the columns in the function's output, or write to a new "
            "output.path (or migrate the table once: read it, change the columns, and rewrite "
            "it whole with overwriteSchema)"
        )
    if policy != "add_columns":
        raise SchemaChangeError(
            f"the run's output adds column(s) to the table at {sink.field} {path}: "
            f"{diff.describe()}; nothing was committed. To add them (earlier run dates read "
            "them as null) rerun with --set output.schema_change=add_columns, or set it in the "
            "job file"
        )
    return True


def align_rejects(rejects: DataFrame, sink: Sink) -> tuple[DataFrame, bool]:
    """The run's rejects in the rejects table's schema, and whether columns are added.

    Columns the table has and the run lacks are added as typed nulls (in the table's order,
    then the run's new columns); new columns are added to the table.

    Raises:
        SchemaChangeError: when a column's type differs from the table's (a source column
            retyped), naming it; nothing was committed.
    """
    existing, path = sink.existing_schema(), sink.location
    if existing is None:
        return rejects, False
    diff = compare(existing, rejects.schema, {"run_date", "run_id"})
    if diff.retyped:
        raise SchemaChangeError(
            f"the run's rejects do not fit the table at {sink.field} {path}: "
            f"{diff.describe()} (a source column changed type). Nothing was committed; point "
            "output.rejects_path at a new folder, or move the old rejects table away"
        )
    present = {c.lower() for c in rejects.columns}
    filled = [
        F.lit(None).cast(f.dataType).alias(f.name) for f in existing.fields
        if f.name.lower() not in present and f.name.lower() not in {"run_date", "run_id"}
    ]
    return rejects.select("*", *filled), bool(diff.added)
