"""The one redactor: secret keys, URI userinfo and secret-looking values, wherever they appear.

Every secret here is FAKE, generated in the test from a seeded random source in the shape of
the real thing (AWS key id and secret, JWT, PEM private key); none was copied from anywhere.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import string

import pytest

from batch_scoring.jobs import redaction
from batch_scoring.jobs.redaction import MASK, is_secret_key, redact, redact_text, secret_paths

RNG = random.Random(15)


def fake_access_key_id(prefix: str = "AKIA") -> str:
    return prefix + "".join(RNG.choice(string.ascii_uppercase + "234567") for _ in range(16))


def fake_secret_access_key() -> str:
    alphabet = string.ascii_letters + string.digits + "+/"
    while True:
        value = "".join(RNG.choice(alphabet) for _ in range(40))
        if any(c.isdigit() for c in value) and any(c.isupper() for c in value) and any(c.islower() for c in value):
            return value


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def fake_jwt() -> str:
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64url(json.dumps({"sub": "svc-batch", "exp": 1893456000}).encode())
    return f"{header}.{payload}.{_b64url(RNG.randbytes(32))}"


def fake_pem() -> str:
    body = base64.b64encode(RNG.randbytes(180)).decode()
    lines = "\n".join(body[i:i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN PRIVATE KEY-----\n{lines}\n-----END PRIVATE KEY-----"


CORPUS = {
    "aws_access_key_id": fake_access_key_id(),
    "aws_session_key_id": fake_access_key_id("ASIA"),
    "aws_secret": fake_secret_access_key(),
    "jwt": fake_jwt(),
    "pem": fake_pem(),
}

# The settings of issue 15, reproduction 2, each with a fake value: masked by key.
ISSUE_SETTINGS = {
    "spark.hadoop.fs.azure.account.key.myacct.dfs.core.windows.net": "bm90LWEtcmVhbC1henVyZS1rZXk=",
    "spark.hadoop.fs.gs.auth.service.account.private.key": "not-a-real-gcs-private-key",
    "spark.hadoop.fs.s3a.encryption.key": "bm90LWEtcmVhbC1zc2Uta2V5",
    "spark.executorEnv.AWS_ACCESS_KEY_ID": "plain-value-1",
    "spark.executorEnv.AWS_SECRET_ACCESS_KEY": "plain-value-2",
    "spark.executorEnv.AWS_SESSION_TOKEN": "plain-value-3",
    "spark.hadoop.fs.s3a.access.key": "plain-value-4",
    "spark.hadoop.fs.s3a.secret.key": "plain-value-5",
    "spark.hadoop.fs.s3a.session.token": "plain-value-6",
    "spark.ssl.keyPassword": "plain-value-7",
    "spark.ssl.keyStorePassword": "plain-value-8",
    "spark.authenticate.secret": "plain-value-9",
    "spark.hadoop.javax.jdo.option.ConnectionPassword": "plain-value-10",
    "spark.hadoop.fs.azure.sas.container.acct.blob.core.windows.net": "sv=2024&sig=abc",
    "spark.hadoop.fs.gs.auth.service.account.private.key.id": "plain-value-11",
    "spark.hadoop.ssl.passphrase": "plain-value-12",
    "spark.hadoop.fs.oci.client.auth.signature": "plain-value-13",
    "MLFLOW_TRACKING_TOKEN": "plain-value-14",
    "api_key": "plain-value-15",
    "spark.hadoop.google.cloud.auth.service.account.json.keyfile.credential": "plain-value-16",
}

HARMLESS = {
    "unit_of_work.keys": ["segment", "location"],
    "output.partition_by": ["run_date"],
    "spark.sql.shuffle.partitions": "64",
    "spark.hadoop.fs.s3a.aws.credentials.provider": "com.amazonaws.auth.InstanceProfileCredentialsProvider",
    "spark.io.encryption.enabled": "true",
    "spark.ssl.keyStore": "/etc/spark/keystore.jks",
    "spark.sql.session.timeZone": "UTC",
    "spark.archives": "s3://bucket/env/batch-scoring-env-py3.11-0123456789ab.tar.gz#environment",
    "model.uri": "models:/churn@champion",
    "source.path": "s3://bucket/tables/bundle_sales",
    "keys": ["a"],
    "sort_keys": "true",
}


@pytest.mark.parametrize("key", sorted(ISSUE_SETTINGS))
def test_credential_keys_are_masked_whatever_the_value(key):
    assert is_secret_key(key)
    assert redact({key: ISSUE_SETTINGS[key]}) == {key: MASK}


@pytest.mark.parametrize("key", sorted(HARMLESS))
def test_harmless_keys_keep_their_values(key):
    assert not is_secret_key(key)
    assert redact({key: HARMLESS[key]}) == {key: HARMLESS[key]}


def test_issue_reproduction_nested_job_config():
    job = {
        "job": "scoring",
        "spark_conf": dict(ISSUE_SETTINGS),
        "model": {"uri": "/models/m", "tracking_uri": "https://user:password@mlflow.example.com:5000/api"},
        "unit_of_work": {"keys": ["cell_id", "hour"]},
        "output": {"partition_by": ["run_date"]},
    }
    shown = redact(job)
    assert set(shown["spark_conf"].values()) == {MASK}
    assert shown["model"]["tracking_uri"] == "https://***@mlflow.example.com:5000/api"
    assert shown["unit_of_work"] == {"keys": ["cell_id", "hour"]}
    assert shown["output"] == {"partition_by": ["run_date"]}
    text = json.dumps(shown)
    for value in ISSUE_SETTINGS.values():
        assert value not in text
    assert "password" not in shown["model"]["tracking_uri"]
    assert job["spark_conf"] == ISSUE_SETTINGS, "the input is not changed"


@pytest.mark.parametrize("uri, shown", [
    ("https://user:password@host", "https://***@host"),
    ("https://user:p%40ss@host/path?q=1", "https://***@host/path?q=1"),
    ("postgresql://admin:hunter2@db.internal:5432/mlflow", "postgresql://***@db.internal:5432/mlflow"),
    ("s3a://AKIDEXAMPLE:xyz@bucket/key", "s3a://***@bucket/key"),
    ("https://token@github.example/repo.git", "https://***@github.example/repo.git"),
    ("https://host/no/userinfo", "https://host/no/userinfo"),
])
def test_userinfo_in_any_uri(uri, shown):
    assert redact_text(uri) == shown


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_secret_looking_values_are_masked_anywhere(name):
    secret = CORPUS[name]
    for text in (
        secret,
        f"failed: could not read s3a://bucket/x with key {secret} (403)",
        f"py4j error:\n  at org.apache.Foo({secret})\n",
        f'{{"note": "{secret}"}}',
    ):
        shown = redact_text(text)
        assert secret not in shown, (name, text)
        assert MASK in shown
    # under a harmless key, in a list, in a nested tree: still masked by value
    tree = {"notes": [f"x {secret} y"], "model": {"description": secret}}
    assert secret not in json.dumps(redact(tree))


def test_truncated_pem_block_is_masked_to_the_end():
    pem = CORPUS["pem"]
    truncated = "error: bad key " + pem[:120]
    assert redact_text(truncated) == f"error: bad key {MASK}"


@pytest.mark.parametrize("text, shown", [
    ("jdbc:postgresql://h/db?user=a&password=s3cr3t&ssl=true", "jdbc:postgresql://h/db?user=a&password=***&ssl=true"),
    ("--conf spark.hadoop.fs.s3a.secret.key=abc123 --conf spark.x=1", "--conf spark.hadoop.fs.s3a.secret.key=*** --conf spark.x=1"),
    ('{"token": "abc", "rows": 3}', '{"token": "***", "rows": 3}'),
    ("https://acct.blob.core.windows.net/c?sv=2024-01-01&sig=AbC%2Bdef&se=2026", "https://acct.blob.core.windows.net/c?sv=2024-01-01&sig=***&se=2026"),
])
def test_secret_name_value_pairs_inside_text(text, shown):
    assert redact_text(text) == shown


@pytest.mark.parametrize("text", [
    "0123456789abcdef0123456789abcdef01234567",  # a SHA-1 in hex
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",  # a SHA-256
    "/work/data/sample/models/bundle_demand/v1/MLmodel",
    "s3://bucket/artifacts/environments/batch-scoring-env-py3.11-0123456789ab.tar.gz",
    "scheduled__2026-11-22T02:00:00+00:00",
    "arn:aws:states:eu-west-1:123456789012:execution:pricing:2f6c1a2e-0c52-4f7b-9c8e-6b1d5c0e7a11",
    "models:/churn@champion",
    "unit (segment=a, location=b) failed: ValueError: x must be positive",
])
def test_ordinary_text_is_unchanged(text):
    assert redact_text(text) == text


def test_secret_paths_lists_what_would_be_masked():
    job = {"spark_conf": {"spark.hadoop.fs.s3a.secret.key": "x", "spark.sql.shuffle.partitions": "8"},
           "model": {"tracking_uri": "https://u:p@host"}, "unit_of_work": {"keys": ["a"]}}
    assert secret_paths(job) == ["spark_conf.spark.hadoop.fs.s3a.secret.key", "model.tracking_uri"]
    assert secret_paths(redact(job)) == []


def test_log_records_are_redacted(caplog):
    logger = logging.getLogger("batch_scoring.test_redaction")
    handler = logging.StreamHandler()
    handler.addFilter(redaction.RedactingFilter())
    caplog.handler.addFilter(redaction.RedactingFilter())
    logger.addHandler(handler)
    try:
        with caplog.at_level(logging.INFO, logger=logger.name):
            logger.info("settings: %s, uri %s", {"k": CORPUS["aws_access_key_id"]}, "https://u:pw@h")
    finally:
        logger.removeHandler(handler)
    assert CORPUS["aws_access_key_id"] not in caplog.text
    assert "https://***@h" in caplog.text


def test_there_is_one_redactor():
    from batch_scoring.jobs import manifest, session

    assert not hasattr(session, "redact") and not hasattr(session, "SECRET_KEY")
    assert not hasattr(manifest, "redact_secrets")


@pytest.mark.parametrize("text", [
    "job field spark_conf.spark.hadoop.fs.s3a.secret.key: holds a credential",
    "model.tracking_token: is required",
])
def test_prose_naming_a_secret_field_stays_readable(text):
    assert redact_text(text) == text


def test_python_repr_of_a_settings_dict_is_masked():
    settings = {"spark.hadoop.fs.s3a.secret.key": "plain-value", "spark.x": "1"}
    assert redact_text(str(settings)) == "{'spark.hadoop.fs.s3a.secret.key': '***', 'spark.x': '1'}"
