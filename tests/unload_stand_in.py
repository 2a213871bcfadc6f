"""A stand-in for Amazon Redshift's one UNLOAD statement, and a job entry point that uses it.

No Redshift exists here, and PostgreSQL has no UNLOAD, so this is the one piece of a Redshift
UNLOAD run that is not real: :class:`FakeRedshift` takes the place of the JDBC connection of
:mod:`batch_scoring.jobs.jdbc_unload`. Its :meth:`~FakeRedshift.execute` accepts only the
UNLOAD statement the job generates, records it, and leaves in S3 what a real UNLOAD with
``FORMAT AS PARQUET MANIFEST`` leaves: Parquet files ``<folder>0000_part_00.parquet``, ... of
the selected columns (one per "slice") and the manifest ``<folder>manifest`` listing them with
their sizes. It writes through boto3 (``AWS_ENDPOINT_URL``: the moto server).

The WHERE clause is not evaluated: every row of the table is unloaded. The job applies the
whole ``source.filter`` again on the files, so its result is the same as if Redshift had
filtered; the test asserts the pushed WHERE in the recorded statement instead.

Run as a script, it is the job's entry point with the stand-in installed::

    UNLOAD_STAND_IN_TABLE=table.parquet UNLOAD_STAND_IN_LOG=statements.txt \\
        python tests/unload_stand_in.py --job ... --profile ... --run-date 2026-11-22

(``python -m batch_scoring.jobs.run_job`` otherwise: the session, the run, the manifest are the
job's own.)
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
from contextlib import contextmanager
from urllib.parse import urlsplit

UNLOAD = re.compile(
    r"UNLOAD \('(?P<select>(?:[^']|'')*)'\) TO '(?P<folder>s3://[^']+/)' IAM_ROLE "
    r"(?:'arn:aws[^']*'|default) FORMAT AS PARQUET ALLOWOVERWRITE MANIFEST(?: MAXFILESIZE \d+ MB)?"
)
SELECT = re.compile(r"SELECT (?P<columns>\*|\"[^\"]+\"(?:, \"[^\"]+\")*) FROM (?P<rest>.+)", re.DOTALL)
SLICES = 2


class FakeRedshift:
    """The JDBC connection's stand-in: runs the UNLOAD statement only.

    Args:
        table: the Parquet file holding the source table's rows.
        log: a file each statement is appended to (one per line).
    """

    def __init__(self, table: str, log: str) -> None:
        self.table, self.log = table, log

    def execute(self, sql: str, parameters: tuple = ()) -> int:
        import boto3
        import pyarrow.parquet as pq

        with open(self.log, "a", encoding="utf-8") as out:
            out.write(sql + "\n")
        statement = UNLOAD.fullmatch(sql)
        if statement is None:
            raise NotImplementedError(f"the stand-in runs the job's UNLOAD statement only, not: {sql}")
        select = SELECT.fullmatch(statement.group("select").replace("''", "'"))
        rows = pq.read_table(self.table)
        if select.group("columns") != "*":
            rows = rows.select([c.strip('"') for c in select.group("columns").split(", ")])
        folder = urlsplit(statement.group("folder"))
        bucket, prefix = folder.netloc, folder.path.lstrip("/")
        s3 = boto3.client("s3")
        entries, size = [], -(-rows.num_rows // SLICES)
        for part in range(SLICES):
            buffer = io.BytesIO()
            pq.write_table(rows.slice(part * size, size), buffer, coerce_timestamps="us")
            key = f"{prefix}{part:04d}_part_00.parquet"
            s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())
            entries.append({"url": f"s3://{bucket}/{key}", "meta": {"content_length": buffer.tell()}})
        manifest = {"entries": entries, "meta": {"content_length": sum(e["meta"]["content_length"] for e in entries)}}
        s3.put_object(Bucket=bucket, Key=f"{prefix}manifest", Body=json.dumps(manifest).encode())
        return 0

    def close(self) -> None:
        pass


def install(table: str, log: str) -> None:
    """Make :mod:`batch_scoring.jobs.jdbc_unload` open a :class:`FakeRedshift` instead of a
    JDBC connection."""
    import batch_scoring.jobs.jdbc_unload as jdbc_unload

    @contextmanager
    def connected(spark, cfg, password, field="jdbc", table_name=None):
        yield FakeRedshift(table, log)

    jdbc_unload.connected = connected


def main(argv: list[str]) -> int:
    install(os.environ["UNLOAD_STAND_IN_TABLE"], os.environ["UNLOAD_STAND_IN_LOG"])
    from batch_scoring.jobs.run_job import main as run_job

    return run_job(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
