"""boto3 clients for the deploy commands, and the checks made before anything is uploaded.

Credentials and endpoints come from boto3's own chain (instance profile, SSO, environment,
``AWS_ENDPOINT_URL``); nothing here reads or prints a secret.
"""

from __future__ import annotations

import boto3
from boto3.exceptions import S3UploadFailedError
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from batch_scoring.jobs.config import AwsConfig
from batch_scoring.jobs.errors import ConfigError, DeployError

# Few, quick retries: a wrong endpoint must fail in seconds, not after minutes of backoff.
CLIENT_CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=60)


def client(service: str, aws: AwsConfig):
    """A boto3 client of ``service`` ("s3", "emr", "emr-serverless", "scheduler") in the profile's region."""
    return boto3.session.Session().client(service, region_name=aws.region, config=CLIENT_CONFIG)


def split_s3_uri(uri: str) -> tuple[str, str]:
    """Split ``s3://bucket/key/part`` into ``("bucket", "key/part")``.

    Raises:
        ConfigError: when ``uri`` is not an ``s3://`` URI with a bucket.
    """
    if not uri.startswith("s3://") or len(uri) <= len("s3://"):
        raise ConfigError(f"{uri!r} is not an s3://bucket/key URI")
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def check_bucket(s3, uri: str, field: str) -> None:
    """Fail with a clear message unless the bucket of ``uri`` exists and is reachable.

    Raises:
        DeployError: when the endpoint cannot be reached, or the bucket is missing or not ours;
            the message names ``field`` (the profile field that holds ``uri``).
    """
    bucket, _ = split_s3_uri(uri)
    call(lambda: s3.head_bucket(Bucket=bucket), f"bucket {bucket!r} of {field}")


def read_object(s3, uri: str) -> bytes | None:
    """The content of the S3 object ``uri``, or None when there is no such object.

    Raises:
        ConfigError: when ``uri`` is not an ``s3://`` URI.
        DeployError: when S3 refuses the read (access denied, no such bucket) or cannot be reached.
    """
    bucket, key = split_s3_uri(uri)

    def get() -> bytes | None:
        try:
            return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise

    return call(get, f"reading {uri}")


def write_object(s3, uri: str, content: bytes, content_type: str) -> None:
    """Write ``content`` to the S3 object ``uri`` (replacing it), with ``content_type``.

    Raises:
        ConfigError: when ``uri`` is not an ``s3://`` URI.
        DeployError: when S3 refuses the write or cannot be reached.
    """
    bucket, key = split_s3_uri(uri)
    call(lambda: s3.put_object(Bucket=bucket, Key=key, Body=content, ContentType=content_type),
         f"writing {uri}")


def call(request, what: str):
    """Run one AWS ``request`` (a no-argument callable), turning failures into :class:`DeployError`.

    Raises:
        DeployError: naming ``what`` and the endpoint, with AWS's error code and message.
    """
    try:
        return request()
    except EndpointConnectionError as error:
        raise DeployError(
            f"cannot reach the AWS endpoint for {what}: {error}. Check AWS_REGION / the profile's "
            "aws.region, AWS_ENDPOINT_URL and the network."
        ) from None
    except ClientError as error:
        info = error.response.get("Error", {})
        raise DeployError(
            f"{what}: AWS answered {info.get('Code', '?')}: {info.get('Message', '') or error}"
        ) from None
    except (BotoCoreError, S3UploadFailedError) as error:
        raise DeployError(f"{what}: {error}") from None
