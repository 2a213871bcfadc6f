"""A real moto server on 127.0.0.1 standing in for AWS (S3, EMR, EMR Serverless, Scheduler).

The server runs in a thread of the test process, so a test can also reach moto's backends
directly to drive state that moto never changes on its own (an EMR step finishing, a job run
failing). The code under test only ever talks HTTP to it through boto3, as it would to AWS.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's default account


@dataclasses.dataclass(frozen=True)
class MotoEndpoint:
    """A running moto server: its URL and the environment that points boto3 (and s3a) at it."""

    url: str
    region: str = REGION

    @property
    def environment(self) -> dict[str, str]:
        """Variables for a process whose boto3 clients must use this endpoint."""
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
        }

    def client(self, service: str):
        """A boto3 client of ``service`` on this endpoint (for test setup and assertions)."""
        import boto3

        return boto3.client(
            service, region_name=self.region, endpoint_url=self.url,
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )


def start() -> tuple[object, MotoEndpoint]:
    """Start a moto server on a free port of 127.0.0.1; return (server, endpoint)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, MotoEndpoint(url=f"http://{host}:{port}")


def reset(endpoint: MotoEndpoint) -> None:
    """Forget every resource the server holds (between tests sharing one server)."""
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{endpoint.url}/moto-api/reset", method="POST"))


def write_profile(folder: Path, endpoint: MotoEndpoint) -> Path:
    """conf/local.yaml plus the s3a settings that point Spark at ``endpoint`` (no keys)."""
    profile = yaml.safe_load((ROOT / "conf/local.yaml").read_text())
    profile["name"] = "local-moto"
    profile["spark_conf"].update({
        "spark.hadoop.fs.s3a.endpoint": endpoint.url,
        "spark.hadoop.fs.s3a.endpoint.region": endpoint.region,
        "spark.hadoop.fs.s3a.path.style.access": True,
        "spark.hadoop.fs.s3a.connection.ssl.enabled": False,
    })
    path = folder / "local-moto.yaml"
    path.write_text(yaml.safe_dump(profile, sort_keys=False))
    return path
