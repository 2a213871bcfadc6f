"""The Redshift UNLOAD read without Spark (batch_scoring.jobs.unload, source.jdbc.unload config).

The statement is compared as exact text: the inner query's quotes doubled, the pushed filter in
its WHERE, the run's own folder, the role, PARQUET, ALLOWOVERWRITE, MANIFEST and MAXFILESIZE.
No Redshift exists here: what Redshift makes of the statement is not tested.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import yaml

from batch_scoring.jobs.commit import check_paths
from batch_scoring.jobs.config import JdbcSourceConfig, JdbcUnloadConfig, load_job
from batch_scoring.jobs.errors import ConfigError, InputError
from batch_scoring.jobs.unload import (
    manifest_files,
    run_folder,
    split_filter,
    sql_literal,
    unload_error,
    unload_select,
    unload_statement,
    unloaded_columns,
)

ROOT = Path(__file__).resolve().parents[2]
REDSHIFT = "jdbc:redshift://analytics.abc123.eu-west-1.redshift.amazonaws.com:5439/sales"
ROLE = "arn:aws:iam::123456789012:role/redshift-unload"
DAY = dt.date(2026, 11, 22)
RUN = "20261122-041502-9f1c2ab0"


def source_config(**unload) -> JdbcSourceConfig:
    settings = {"s3_uri": "s3://scoring-unload/sales", "iam_role": ROLE, **unload}
    return JdbcSourceConfig(url=REDSHIFT, user="scorer", password_env="SALES_DB_PASSWORD",
                            table="public.daily_sales", unload=settings)


def jdbc_job(tmp_path: Path, jdbc: dict, output_path: str | None = None) -> Path:
    job = yaml.safe_load((ROOT / "conf" / "jobs" / "data_pricing.yaml").read_text())
    job["source"] = {"format": "jdbc", "jdbc": jdbc}
    job["output"]["path"] = output_path or str(tmp_path / "out")
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(job, sort_keys=False))
    return path


def unload_jdbc(**changes) -> dict:
    return {"url": REDSHIFT, "user": "scorer", "password_env": "SALES_DB_PASSWORD",
            "table": "public.daily_sales",
            "unload": {"s3_uri": "s3://scoring-unload/sales/", "iam_role": ROLE}, **changes}


def refused(tmp_path: Path, jdbc: dict) -> str:
    with pytest.raises(ConfigError) as info:
        load_job(jdbc_job(tmp_path, jdbc))
    return str(info.value)


# --------------------------------------------------------------------------- the statement

def test_the_statement_quotes_the_query_pushes_the_filter_and_names_the_run_folder():
    cfg = source_config(max_file_size_mb=256)
    pushed = split_filter("sale_date >= DATE'2026-06-01' AND segment IN ('consumer', \"small's\")")
    assert pushed.whole and pushed.columns == ("sale_date", "segment")
    folder = run_folder(cfg.unload, DAY, RUN)
    columns = unloaded_columns(["segment", "price"], pushed)  # + sale_date: Spark filters again
    statement = unload_statement(unload_select(cfg, columns, pushed.sql), folder, cfg.unload)
    assert statement == (
        "UNLOAD ('SELECT \"segment\", \"price\", \"sale_date\" FROM \"public\".\"daily_sales\" WHERE \"sale_date\" "
        ">= DATE ''2026-06-01'' AND \"segment\" IN (''consumer'', ''small''''s'')') "
        "TO 's3://scoring-unload/sales/2026-11-22/20261122-041502-9f1c2ab0/' "
        "IAM_ROLE 'arn:aws:iam::123456789012:role/redshift-unload' "
        "FORMAT AS PARQUET ALLOWOVERWRITE MANIFEST MAXFILESIZE 256 MB"
    )


def test_a_query_source_is_wrapped_and_its_quotes_doubled_and_a_default_role_is_a_keyword():
    cfg = JdbcSourceConfig(url=REDSHIFT, user="scorer", password_env="P",
                           query="SELECT * FROM sales WHERE channel = 'web';",
                           unload={"s3_uri": "s3://bkt/u/", "iam_role": "default"})
    statement = unload_statement(unload_select(cfg, None, None), "s3://bkt/u/2026-11-22/r1/", cfg.unload)
    assert statement == (
        "UNLOAD ('SELECT * FROM (SELECT * FROM sales WHERE channel = ''web'') AS src') "
        "TO 's3://bkt/u/2026-11-22/r1/' IAM_ROLE default FORMAT AS PARQUET ALLOWOVERWRITE MANIFEST"
    )


def test_a_filter_pushed_only_in_part_unloads_every_column_for_spark_to_finish():
    cfg = source_config()
    pushed = split_filter("price > 0 AND lower(segment) = 'consumer'")
    assert (pushed.sql, pushed.whole) == ('"price" > 0', False)
    assert unload_select(cfg, unloaded_columns(["segment"], pushed), pushed.sql) == (
        'SELECT * FROM "public"."daily_sales" WHERE "price" > 0')
    assert unloaded_columns(["Price", "segment"], split_filter("price > 0")) == ["Price", "segment"]


@pytest.mark.parametrize(("spark_filter", "pushed", "whole"), [
    (None, None, True),
    ("a == 1 OR b != 'x'", "\"a\" = 1 OR \"b\" <> 'x'", True),
    ("(a BETWEEN 1 AND 3) AND (b = 1 OR c IS NOT NULL)", "(\"a\" BETWEEN 1 AND 3) AND (\"b\" = 1 OR \"c\" IS NOT NULL)", True),
    ("NOT (a = 1) AND `odd col` NOT IN (1, 2)", "NOT (\"a\" = 1) AND \"odd col\" NOT IN (1, 2)", True),
    ("ts < TIMESTAMP '2026-11-22 00:00:00' AND 5 <= n", "\"ts\" < TIMESTAMP '2026-11-22 00:00:00' AND 5 <= \"n\"", True),
    ("date = DATE'2026-01-01'", "\"date\" = DATE '2026-01-01'", True),
    ("flag IS TRUE", "\"flag\" IS TRUE", True),
    # left to Spark: functions, column-to-name comparisons, arithmetic, LIKE, escapes, bad dates
    ("day = current_date", None, False),
    ("a = b + 1", None, False),
    ("name LIKE 'a%'", None, False),
    ("name = 'it\\'s'", None, False),
    ("name = 'it''s'", None, False),
    ("d = DATE'yesterday'", None, False),
    ("a = -1", None, False),
    ("a = 1 AND (b = 2", None, False),
])
def test_which_filters_are_pushed(spark_filter, pushed, whole):
    split = split_filter(spark_filter)
    assert (split.sql, split.whole) == (pushed, whole)


def test_a_run_id_that_is_no_plain_name_becomes_a_safe_folder():
    unload = JdbcUnloadConfig(s3_uri="s3://bkt/u", iam_role=ROLE)
    folder = run_folder(unload, DAY, "manual__2026-11-22T02:00:00+00:00 it's/../x")
    assert folder.startswith("s3://bkt/u/2026-11-22/manual__2026-11-22T02_00_00_00_00_it_s_.._x~")
    assert folder.endswith("/") and folder.count("/") == 6 and "'" not in folder
    assert sql_literal("it's") == "'it''s'"


# --------------------------------------------------------------------------- the manifest

def test_the_manifest_lists_the_files_and_a_file_outside_the_folder_is_refused():
    folder = "s3://bkt/u/2026-11-22/r1/"
    text = json.dumps({"entries": [{"url": f"{folder}0000_part_00.parquet", "meta": {"content_length": 10}},
                                   {"url": f"{folder}0001_part_00.parquet"}]})
    files = manifest_files(text, folder)
    assert [(f.url, f.bytes) for f in files] == [(f"{folder}0000_part_00.parquet", 10),
                                                 (f"{folder}0001_part_00.parquet", None)]
    assert manifest_files('{"entries": []}', folder) == []
    with pytest.raises(InputError, match="outside the run's folder"):
        manifest_files(json.dumps({"entries": [{"url": "s3://bkt/u/2026-11-22/r10/x.parquet"}]}), folder)
    with pytest.raises(InputError, match="is not an UNLOAD manifest"):
        manifest_files("<html>", folder)


# --------------------------------------------------------------------------- errors

FOLDER = "s3://scoring-unload/sales/2026-11-22/r1/"


@pytest.mark.parametrize(("state", "message", "kind", "parts"), [
    ("XX000", "User arn:aws:redshift:eu-west-1:123456789012:dbuser:c/scorer is not authorized to "
              f"assume IAM Role {ROLE}", ConfigError, ["source.jdbc.unload.iam_role", "cannot assume", FOLDER]),
    ("XX000", "S3ServiceException:Access Denied,Status 403,Error AccessDenied", ConfigError,
     ["source.jdbc.unload.iam_role", "may not write to", FOLDER, "s3:PutObject"]),
    ("XX000", "S3ServiceException:The S3 bucket addressed by the query is in a different region from "
              "this cluster.,Status 301,Error PermanentRedirect", ConfigError,
     ["source.jdbc.unload.s3_uri folder", FOLDER, "region"]),
    ("XX000", "S3ServiceException:The specified bucket does not exist,Status 404,Error NoSuchBucket",
     InputError, ["source.jdbc.unload.s3_uri folder", FOLDER, "does not exist"]),
    ("42703", 'column "pricee" does not exist in daily_sales', InputError,
     ["source.jdbc.table public.daily_sales", FOLDER, "pushed source.filter", "42703"]),
])
def test_a_refused_unload_is_one_line_naming_the_field_and_the_folder(state, message, kind, parts):
    error = unload_error(state, message, source_config(), FOLDER, '"price" > 0')
    assert type(error) is kind
    text = str(error)
    assert "\n" not in text and all(p in text for p in parts), text


# --------------------------------------------------------------------------- config

def test_an_unload_job_loads_normalised_and_its_folder_is_a_path_of_the_job(tmp_path):
    job = load_job(jdbc_job(tmp_path, unload_jdbc(unload={
        "s3_uri": "s3://scoring-unload/sales", "iam_role": ROLE, "max_file_size_mb": 512, "keep": True})))
    unload = job.source.jdbc.unload
    assert (unload.s3_uri, unload.iam_role, unload.max_file_size_mb, unload.keep) == (
        "s3://scoring-unload/sales/", ROLE, 512, True)
    assert "s3://scoring-unload/sales/" in job.paths()  # the session gets hadoop-aws for it
    defaults = load_job(jdbc_job(tmp_path, unload_jdbc())).source.jdbc.unload
    assert (defaults.max_file_size_mb, defaults.keep) == (None, False)


def test_unload_with_a_postgresql_url_is_refused_saying_why(tmp_path):
    message = refused(tmp_path, unload_jdbc(url="jdbc:postgresql://db.example.com:5432/sales"))
    assert "source.jdbc" in message and "unload needs a jdbc:redshift: URL" in message
    assert "PostgreSQL has no UNLOAD" in message


@pytest.mark.parametrize("field", [
    {"partition_column": "sale_id"}, {"predicates": ["a < 5", "a >= 5"]}, {"num_partitions": 8},
])
def test_unload_with_a_jdbc_split_is_refused(tmp_path, field):
    message = refused(tmp_path, unload_jdbc(**field))
    assert f"{next(iter(field))} split a JDBC read" in message


@pytest.mark.parametrize(("unload", "field", "part"), [
    ({"s3_uri": "s3a://bkt/u/"}, "source.jdbc.unload.s3_uri", "s3://bucket/prefix/"),
    ({"s3_uri": "s3://bkt/it's/"}, "source.jdbc.unload.s3_uri", "no quotes"),
    ({"s3_uri": "s3://bucket/a/../b/"}, "source.jdbc.unload.s3_uri", "'..'"),
    ({"iam_role": "AKIAIOSFODNN7EXAMPLE"}, "source.jdbc.unload.iam_role", "IAM role ARN"),
    ({"iam_role": f"{ROLE}' ACCESS_KEY_ID 'x"}, "source.jdbc.unload.iam_role", "IAM role ARN"),
    ({"max_file_size_mb": 4}, "source.jdbc.unload.max_file_size_mb", "5"),
    ({"max_file_size_mb": 7000}, "source.jdbc.unload.max_file_size_mb", "6200"),
    ({"access_key_id": "AKIAIOSFODNN7EXAMPLE"}, "access_key_id", "unknown field"),
])
def test_bad_unload_fields_are_refused_naming_them(tmp_path, unload, field, part):
    settings = {"s3_uri": "s3://scoring-unload/sales/", "iam_role": ROLE, **unload}
    message = refused(tmp_path, unload_jdbc(unload=settings))
    assert field in message and part in message, message


def test_an_output_inside_the_unload_prefix_is_refused(tmp_path):
    job = load_job(jdbc_job(tmp_path, unload_jdbc(), output_path="s3://scoring-unload/sales/prices"))
    with pytest.raises(ConfigError, match="overlaps source.jdbc.unload.s3_uri"):
        check_paths(job)
