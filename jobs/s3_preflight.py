"""The pre-flight's view of an ``s3://`` / ``s3a://`` source, before Spark starts (boto3, pyarrow).

With boto3's own credential chain and endpoint (``AWS_ENDPOINT_URL``, the instance profile,
SSO...), the pre-flight lists the source prefix and, for Parquet, reads the footers through
pyarrow's S3 file system. What S3 answers for sure is acted on: no object under the path, or
no such bucket, is an :class:`InputError` (exit 3) before any Spark start. What it cannot
answer (no credentials here, access denied, an endpoint out of reach: the job may reach S3
through ``spark.hadoop.fs.s3a.*`` settings that boto3 does not see) is logged at debug level
and left to Spark, as before.
"""

from __future__ import annotations

import logging
import urllib.parse

import pyarrow as pa

from batch_scoring.jobs.errors import InputError

log = logging.getLogger("batch_scoring")

S3_SCHEMES = ("s3://", "s3a://")
TIMEOUT_SECONDS = 10  # per call: an endpoint out of reach costs seconds, not minutes of retries
_MISSING_BUCKET = ("NoSuchBucket",)


def is_s3(path: str) -> bool:
    """True for an ``s3://`` or ``s3a://`` path."""
    return path.startswith(S3_SCHEMES)


def split(path: str) -> tuple[str, str]:
    """``(bucket, key prefix)`` of an S3 path (no trailing slash on the prefix)."""
    parsed = urllib.parse.urlparse(path)
    return parsed.netloc, parsed.path.lstrip("/").rstrip("/")


def check_exists(path: str) -> None:
    """Refuse an S3 source path under which S3 says there is nothing.

    Raises:
        InputError: the bucket does not exist, or no object has the path as key or prefix.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = split(path)
    try:
        listed = _client().list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in _MISSING_BUCKET:
            raise InputError(f"source.path {path}: bucket {bucket!r} does not exist; check the path") from None
        log.debug("pre-flight could not list %s: %s", path, error)
        return
    except BotoCoreError as error:  # no credentials here, endpoint out of reach: Spark decides
        log.debug("pre-flight could not list %s: %s", path, error)
        return
    if not listed.get("KeyCount"):
        raise InputError(f"source.path {path} does not exist (no object under it); check the path or run date")


def _client(session=None):
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=TIMEOUT_SECONDS, read_timeout=TIMEOUT_SECONDS,
                    retries={"max_attempts": 2, "mode": "standard"})
    return (session or boto3.Session()).client("s3", config=config)


def parquet_schema(path: str) -> pa.Schema | None:
    """The Arrow schema of an S3 Parquet dataset from its footers (Hive partition folders as
    columns), or None when pyarrow cannot reach or read it (Spark then reports it).

    Cost: one listing of the prefix and one footer read; no data is read.
    """
    import boto3
    import pyarrow.dataset as ds
    from pyarrow import fs

    session = boto3.Session()
    credentials = session.get_credentials()
    if credentials is None:
        return None
    frozen = credentials.get_frozen_credentials()
    endpoint = _client(session).meta.endpoint_url
    filesystem = fs.S3FileSystem(
        access_key=frozen.access_key, secret_key=frozen.secret_key, session_token=frozen.token,
        region=session.region_name or "us-east-1",
        endpoint_override=None if endpoint.endswith("amazonaws.com") else endpoint,
        connect_timeout=TIMEOUT_SECONDS, request_timeout=TIMEOUT_SECONDS,
    )
    bucket, prefix = split(path)
    try:
        return ds.dataset(f"{bucket}/{prefix}", filesystem=filesystem, format="parquet", partitioning="hive").schema
    except Exception as error:  # noqa: BLE001 - unreachable or unreadable: Spark reports it
        log.debug("pre-flight could not read the footers of %s: %s", path, error)
        return None
