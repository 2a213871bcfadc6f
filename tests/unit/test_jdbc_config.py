"""JDBC config, passwords and reader options without Spark (batch_scoring.jobs.config / jdbc).

Passwords from Secrets Manager are read from a real moto server on 127.0.0.1 (tests/moto_server.py).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import yaml

from batch_scoring.jobs.config import JdbcSinkConfig, JdbcSourceConfig, load_job
from batch_scoring.jobs.errors import ConfigError
from batch_scoring.jobs.jdbc import (
    POSTGRESQL_PACKAGE,
    REDSHIFT_PACKAGE,
    display_url,
    driver_class,
    driver_package,
    query_digest,
    quote_table,
    reader_options,
    resolve_password,
)

ROOT = Path(__file__).resolve().parents[2]
URL = "jdbc:postgresql://db.example.com:5432/sales"
PASSWORD = "s3cr3t-Pa55word!"


def jdbc_job(tmp_path: Path, source: dict | None = None, output: dict | None = None) -> dict:
    """The real data_pricing job with a jdbc source and sink."""
    job = yaml.safe_load((ROOT / "conf" / "jobs" / "data_pricing.yaml").read_text())
    job["source"] = source if source is not None else {
        "format": "jdbc",
        "jdbc": {"url": URL, "user": "scorer", "password_env": "SALES_DB_PASSWORD",
                 "table": "public.sales", "partition_column": "sale_id", "num_partitions": 8},
    }
    job["output"] = output if output is not None else {
        "path": str(tmp_path / "runs"), "format": "jdbc",
        "jdbc": {"url": URL, "user": "scorer", "password_secret": "prod/sales-db", "table": "public.prices"},
    }
    return job


def load(tmp_path: Path, job: dict):
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(job, sort_keys=False))
    return load_job(path)


def refused(tmp_path: Path, job: dict) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, job)
    return str(info.value)


# --------------------------------------------------------------------------- config

def test_a_jdbc_job_loads_with_its_values_and_defaults(tmp_path):
    job = load(tmp_path, jdbc_job(tmp_path))
    assert job.source.path is None
    assert job.source.jdbc.table == "public.sales"
    assert (job.source.jdbc.num_partitions, job.source.jdbc.fetch_size) == (8, 10_000)
    assert job.output.jdbc.rejects == "public.prices_rejects"
    assert (job.output.jdbc.batch_size, job.output.jdbc.num_partitions) == (10_000, 4)
    assert job.output.jdbc.password_secret_key == "password"
    assert str(tmp_path / "runs") in job.paths()
    assert None not in job.paths()


def test_a_password_in_the_yaml_is_refused_pointing_at_the_two_ways(tmp_path):
    job = jdbc_job(tmp_path)
    job["source"]["jdbc"]["password"] = PASSWORD
    message = refused(tmp_path, job)
    assert "source.jdbc" in message
    assert "password must never be in the config" in message
    assert "password_env" in message and "password_secret" in message
    assert PASSWORD not in message


@pytest.mark.parametrize("url", [
    f"{URL}?user=scorer&password={PASSWORD}",
    f"jdbc:redshift://cluster.example.com:5439/dev;UID=scorer;PWD={PASSWORD}",
    f"jdbc:postgresql://scorer:{PASSWORD}@db.example.com:5432/sales",
])
def test_a_password_in_the_url_is_refused_naming_the_field(tmp_path, url):
    job = jdbc_job(tmp_path)
    job["output"]["jdbc"]["url"] = url
    message = refused(tmp_path, job)
    assert "output.jdbc.url" in message and "holds a password" in message
    assert PASSWORD not in message


@pytest.mark.parametrize("key", ["password", "Password", "user", "PWD"])
def test_a_credential_in_the_options_is_refused(tmp_path, key):
    job = jdbc_job(tmp_path)
    job["source"]["jdbc"]["options"] = {key: PASSWORD}
    message = refused(tmp_path, job)
    assert "source.jdbc.options" in message and "is a credential" in message
    assert PASSWORD not in message


def test_an_option_with_its_own_field_is_refused_naming_the_field(tmp_path):
    job = jdbc_job(tmp_path)
    job["source"]["jdbc"]["options"] = {"numPartitions": "16"}
    assert "set 'num_partitions' instead" in refused(tmp_path, job)


def test_another_database_is_refused(tmp_path):
    job = jdbc_job(tmp_path)
    job["source"]["jdbc"]["url"] = "jdbc:mysql://db.example.com/sales"
    assert "must start with jdbc:postgresql: or jdbc:redshift:" in refused(tmp_path, job)


@pytest.mark.parametrize("change, expected", [
    ({"password_secret": "prod/db"}, "exactly one of password_env"),
    ({"password_env": None}, "exactly one of password_env"),
    ({"query": "SELECT * FROM sales"}, "exactly one of table or query"),
    ({"table": None}, "exactly one of table or query"),
    ({"predicates": ["sale_id < 10"]}, "partition_column (ranges) or predicates"),
    ({"lower_bound": 1}, "give both lower_bound and upper_bound"),
    ({"lower_bound": 10, "upper_bound": 1}, "lower_bound must be below upper_bound"),
    ({"lower_bound": 1, "upper_bound": "2026-01-01"}, "both numbers or both ISO dates"),
    ({"password_env": "my password"}, "name of an environment variable"),
    ({"table": "sales; DROP TABLE x"}, "is not a table name"),
])
def test_source_jdbc_combinations_that_are_refused(tmp_path, change, expected):
    job = jdbc_job(tmp_path)
    job["source"]["jdbc"].update(change)
    job["source"]["jdbc"] = {k: v for k, v in job["source"]["jdbc"].items() if v is not None}
    assert expected in refused(tmp_path, job)


def test_bounds_without_partition_column_are_refused(tmp_path):
    job = jdbc_job(tmp_path)
    del job["source"]["jdbc"]["partition_column"]
    job["source"]["jdbc"].update({"lower_bound": 1, "upper_bound": 9})
    assert "need partition_column" in refused(tmp_path, job)


def test_bounds_may_be_numbers_or_iso_dates(tmp_path):
    job = jdbc_job(tmp_path)
    job["source"]["jdbc"].update({"lower_bound": "2026-01-01", "upper_bound": "2026-03-01T12:00:00"})
    loaded = load(tmp_path, job).source.jdbc
    assert loaded.lower_bound == dt.date(2026, 1, 1)
    assert loaded.upper_bound == dt.datetime(2026, 3, 1, 12)


def test_format_jdbc_without_its_section_and_a_path_format_without_path_are_refused(tmp_path):
    job = jdbc_job(tmp_path)
    del job["source"]["jdbc"]
    assert "format jdbc needs source.jdbc" in refused(tmp_path, job)
    job = jdbc_job(tmp_path, source={"format": "parquet"})
    assert "format parquet needs source.path" in refused(tmp_path, job)
    job = jdbc_job(tmp_path)
    job["source"]["path"] = "data/sales"
    assert "remove source.path" in refused(tmp_path, job)


def test_output_jdbc_is_required_exactly_with_format_jdbc(tmp_path):
    job = jdbc_job(tmp_path)
    del job["output"]["jdbc"]
    assert "output.format jdbc needs output.jdbc" in refused(tmp_path, job)
    job = jdbc_job(tmp_path)
    job["output"]["format"] = "delta"
    assert "output.format jdbc needs output.jdbc" in refused(tmp_path, job)
    job = jdbc_job(tmp_path)
    del job["output"]["path"]
    assert "output.path" in refused(tmp_path, job)


def test_a_path_source_still_needs_no_jdbc_section(tmp_path):
    job = jdbc_job(tmp_path, source={"path": "data/sales", "format": "parquet"},
                   output={"path": str(tmp_path / "out")})
    assert load(tmp_path, job).source.path == "data/sales"


# --------------------------------------------------------------------------- drivers, SQL text

def test_driver_by_url():
    assert driver_package(URL) == POSTGRESQL_PACKAGE == "org.postgresql:postgresql:42.7.14"
    assert driver_class(URL) == "org.postgresql.Driver"
    redshift = "jdbc:redshift://c.abc.eu-west-1.redshift.amazonaws.com:5439/dev"
    assert driver_package(redshift) == REDSHIFT_PACKAGE == "com.amazon.redshift:redshift-jdbc42:2.1.0.33"
    assert driver_class(redshift) == "com.amazon.redshift.jdbc42.Driver"
    with pytest.raises(ConfigError):
        driver_package("jdbc:mysql://h/db")


def test_display_url_drops_credentials():
    assert display_url(URL) == URL
    assert "hunter2" not in display_url("jdbc:postgresql://me:hunter2@h:5432/db?password=hunter2")


def test_quote_table():
    assert quote_table("public.prices") == '"public"."prices"'
    assert quote_table("Prices") == '"Prices"'
    with pytest.raises(ConfigError):
        quote_table('a"; drop table x; --')


# --------------------------------------------------------------------------- reader options

def source(**fields) -> JdbcSourceConfig:
    return JdbcSourceConfig(**{"url": URL, "user": "scorer", "password_env": "PW", **fields})


def test_reader_options_of_a_range_read_over_a_table():
    options = reader_options(source(table="public.sales", partition_column="sale_id", num_partitions=6,
                                    fetch_size=500, options={"sslmode": "require"}),
                             PASSWORD, ("1", "1000"))
    assert options == {
        "sslmode": "require", "url": URL, "driver": "org.postgresql.Driver", "user": "scorer",
        "password": PASSWORD, "fetchsize": "500", "dbtable": '"public"."sales"',
        "partitionColumn": '"sale_id"', "lowerBound": "1", "upperBound": "1000", "numPartitions": "6",
    }


def test_a_range_read_over_a_query_wraps_it_in_dbtable():
    options = reader_options(source(query="SELECT * FROM sales WHERE region = 'eu';",
                                    partition_column="sale_date"), PASSWORD, ("2026-01-01", "2026-06-30"))
    assert "query" not in options
    assert options["dbtable"] == "(SELECT * FROM sales WHERE region = 'eu') AS src"
    assert options["numPartitions"] == "4"


def test_a_plain_query_read_uses_the_query_option():
    options = reader_options(source(query="SELECT 1 AS one"), PASSWORD)
    assert options["query"] == "SELECT 1 AS one" and "dbtable" not in options
    assert "partitionColumn" not in options


def test_a_range_read_of_an_empty_column_is_one_partition():
    options = reader_options(source(table="sales", partition_column="sale_id"), PASSWORD, None)
    assert options["dbtable"] == '"sales"' and "partitionColumn" not in options


def test_a_predicates_read_puts_the_relation_in_dbtable():
    options = reader_options(source(query="SELECT * FROM sales", predicates=["a < 1", "a >= 1"]), PASSWORD)
    assert options["dbtable"] == "(SELECT * FROM sales) AS src"


def test_query_digest():
    assert query_digest("SELECT 1") == "sha256:" + "e004ebd5b5532a4b85984a62f8ad48a81aa3460c1ca07701f386135d72cdecf5"


# --------------------------------------------------------------------------- passwords

def test_the_password_from_the_environment():
    cfg = source(table="sales")
    assert resolve_password(cfg, {"PW": PASSWORD}) == PASSWORD


@pytest.mark.parametrize("environ, state", [({}, "not set"), ({"PW": ""}, "empty")])
def test_a_missing_or_empty_variable_is_named(environ, state):
    with pytest.raises(ConfigError) as info:
        resolve_password(source(table="sales"), environ, field="source.jdbc")
    assert str(info.value).startswith(f"source.jdbc.password_env: environment variable PW is {state}")


def secret_cfg(secret: str, key: str = "password") -> JdbcSinkConfig:
    return JdbcSinkConfig(url=URL, user="scorer", password_secret=secret, password_secret_key=key,
                          table="public.prices")


def test_the_password_from_a_json_secret_and_from_a_plain_secret(aws):
    client = aws.client("secretsmanager")
    client.create_secret(Name="prod/sales-db", SecretString=json.dumps(
        {"username": "scorer", "password": PASSWORD, "engine": "postgres"}))
    arn = client.create_secret(Name="prod/plain", SecretString=PASSWORD)["ARN"]
    assert resolve_password(secret_cfg("prod/sales-db")) == PASSWORD
    assert resolve_password(secret_cfg(arn)) == PASSWORD  # by ARN, in the ARN's region


def test_a_missing_secret_or_key_is_named_without_the_password(aws):
    client = aws.client("secretsmanager")
    client.create_secret(Name="prod/sales-db", SecretString=json.dumps({"pass": PASSWORD}))
    with pytest.raises(ConfigError) as info:
        resolve_password(secret_cfg("prod/nothing"), field="output.jdbc")
    assert str(info.value) == ("output.jdbc.password_secret prod/nothing does not exist "
                               "(check the name or ARN and the region)")
    with pytest.raises(ConfigError) as info:
        resolve_password(secret_cfg("prod/sales-db"), field="output.jdbc")
    message = str(info.value)
    assert "without a string 'password' key" in message and "['pass']" in message
    assert PASSWORD not in message


def test_access_denied_is_named(aws):
    """With moto's IAM simulation on, a user without secretsmanager rights is denied."""
    import boto3
    from moto.core.authorization import enable_iam_authentication

    aws.client("secretsmanager").create_secret(Name="prod/sales-db", SecretString=PASSWORD)
    iam = aws.client("iam")
    iam.create_user(UserName="nobody")
    keys = iam.create_access_key(UserName="nobody")["AccessKey"]
    denied = boto3.client("secretsmanager", region_name=aws.region, endpoint_url=aws.url,
                          aws_access_key_id=keys["AccessKeyId"],
                          aws_secret_access_key=keys["SecretAccessKey"])
    with enable_iam_authentication(), pytest.raises(ConfigError) as info:
        resolve_password(secret_cfg("prod/sales-db"), secrets=denied, field="output.jdbc")
    assert str(info.value) == (
        "output.jdbc.password_secret prod/sales-db cannot be read: access denied (grant "
        "secretsmanager:GetSecretValue to the job's role)"
    )


def test_where_the_password_is_kept_is_no_secret_for_the_redactor():
    """A jdbc job can be submitted to EMR (staging refuses configs with secrets) and its
    manifest keeps the variable name and secret id readable; a secret-looking value is still masked."""
    from batch_scoring.jobs.redaction import redact, secret_paths

    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf"
    jdbc = {"url": URL, "user": "scorer", "password_env": "PW", "password_secret": arn,
            "password_secret_key": "password"}
    assert secret_paths({"source": {"jdbc": jdbc}}) == []
    assert redact(jdbc) == jdbc
    assert redact({"password_env": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc"}) == {"password_env": "***"}
    assert secret_paths({"password": "x", "tracking_password": "y"}) == ["password", "tracking_password"]
