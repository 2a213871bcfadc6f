"""Unit tests for batch_scoring.jobs.config and batch_scoring.jobs.errors (no Spark)."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path

import pydantic
import pytest
import yaml

from batch_scoring.jobs.config import (
    JobConfig,
    OutputConfig,
    PlatformProfile,
    format_validation_error,
    load_job,
    load_profile,
    parse_run_date,
)
from batch_scoring.jobs.errors import ConfigError, InputError, JobError

ROOT = Path(__file__).resolve().parents[2]
JOB_FILE = ROOT / "conf" / "jobs" / "data_pricing.yaml"
PROFILE_FILE = ROOT / "conf" / "local.yaml"


def real_job() -> dict:
    return yaml.safe_load(JOB_FILE.read_text())


def real_profile() -> dict:
    return yaml.safe_load(PROFILE_FILE.read_text())


def write_yaml(directory: Path, data, name: str = "job.yaml") -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def job_file(tmp_path: Path) -> Path:
    """A copy of the real data_pricing job file."""
    return write_yaml(tmp_path, real_job())


def config_error(call, *args, **kwargs) -> str:
    with pytest.raises(ConfigError) as info:
        call(*args, **kwargs)
    return str(info.value)


# --------------------------------------------------------------------------- real files


def test_real_job_file_loads_with_its_values():
    job = load_job(JOB_FILE)

    assert job.job == "data_pricing"
    assert job.description.startswith("Estimate each unit's own-price elasticity")
    assert job.source.path == "data/sample/bundle_sales"
    assert job.source.format == "parquet"
    assert job.source.filter == "sale_month >= '2026-05'"
    assert job.source.options == {}
    assert job.source.ddl_schema is None
    assert job.source.columns is None
    assert job.unit_of_work.keys == ["segment", "location", "product"]
    assert job.unit_of_work.order_by == ["sale_date"]
    assert job.unit_of_work.buckets == "auto"
    assert job.unit_of_work.target_bucket_mb == 64
    assert job.unit_of_work.engine == "packed"
    assert job.function.name == "data_pricing"
    assert job.function.shape is None
    assert job.function.output_schema is None
    assert job.function.params == {
        "date_col": "sale_date",
        "price_col": "price",
        "volume_col": "volume",
        "cost_col": "unit_cost",
        "pool_by": ["segment"],
        "history_days": 120,
        "max_step": 0.15,
        "min_margin": 0.10,
    }
    assert job.output.path == "output/data_pricing"
    assert job.output.format == "delta"
    assert job.output.partition_by == ["segment"]
    assert job.output.mode == "replace_run"
    assert job.output.rejects_path is None
    assert job.output.rejects == "output/data_pricing_rejects"
    assert job.spark_conf == {}
    assert job.uses_delta is True
    assert job.paths() == [
        "data/sample/bundle_sales",
        "output/data_pricing",
        "output/data_pricing_rejects",
    ]


def test_real_profile_loads_with_its_values():
    profile = load_profile(PROFILE_FILE)

    assert isinstance(profile, PlatformProfile)
    assert profile.name == "local"
    assert profile.master == "local[2]"
    assert profile.deploy_mode == "client"
    assert profile.s3_scheme == "s3a"
    assert profile.packages == []
    conf = profile.spark_conf
    assert conf["spark.driver.memory"] == "4g"
    assert conf["spark.sql.session.timeZone"] == "UTC"
    # YAML scalars keep their type through the str | int | float | bool union.
    assert conf["spark.sql.shuffle.partitions"] == 8
    assert type(conf["spark.sql.shuffle.partitions"]) is int
    assert conf["spark.sql.execution.arrow.maxRecordsPerBatch"] == 10000
    assert conf["spark.sql.execution.arrow.pyspark.enabled"] is True
    assert conf["spark.ui.showConsoleProgress"] is False
    assert conf["spark.databricks.delta.snapshotPartitions"] == 2
    assert len(conf) == 10


def test_copy_of_real_job_file_loads_identically(job_file):
    assert load_job(job_file) == load_job(JOB_FILE)


def test_profile_rejects_unknown_field_and_wrong_literal(tmp_path):
    data = real_profile()
    data["deploy_mode"] = "yarn"
    data["sparkconf"] = {}
    path = write_yaml(tmp_path, data, "profile.yaml")

    message = config_error(load_profile, path)

    assert f"config file {path} has 2 problem(s):" in message
    assert "  deploy_mode: Input should be 'client' or 'cluster'" in message
    assert "  sparkconf: unknown field (did you mean 'spark_conf'?); remove it or check its spelling" in message


# --------------------------------------------------------------------------- field errors


@pytest.mark.parametrize(
    ("section", "field", "dotted", "hint", "fields"),
    [
        (None, "colour", "colour", "",
         "job, description, source, unit_of_work, function, model, output, spark_conf, schedule, requirements, "
         "report, tracking"),
        ("output", "formatt", "output.formatt", " (did you mean 'format'?)",
         "path, format, jdbc, partition_by, mode, schema_change, empty_partition_value, "
         "long_partition_value, rejects_path, max_reject_fraction, max_cost"),
        ("output", "partiton_by", "output.partiton_by", " (did you mean 'partition_by'?)",
         "path, format, jdbc, partition_by, mode, schema_change, empty_partition_value, "
         "long_partition_value, rejects_path, max_reject_fraction, max_cost"),
        ("unit_of_work", "bucket", "unit_of_work.bucket", " (did you mean 'buckets'?)",
         "keys, order_by, buckets, target_bucket_mb, engine, max_unit_rows, rows_per_call"),
        ("source", "filters", "source.filters", " (did you mean 'filter'?)",
         "path, format, jdbc, options, schema, columns, filter"),
    ],
)
def test_unknown_field_names_file_dotted_path_and_nearest_field(tmp_path, section, field, dotted, hint, fields):
    data = real_job()
    (data if section is None else data[section])[field] = "x"
    path = write_yaml(tmp_path, data)

    message = config_error(load_job, path)

    assert message.splitlines() == [
        f"config file {path} has 1 problem(s):",
        f"  {dotted}: unknown field{hint}; remove it or check its spelling (fields here: {fields})",
    ]


def test_missing_required_field_is_named(tmp_path):
    data = real_job()
    del data["unit_of_work"]["keys"]
    path = write_yaml(tmp_path, data)

    message = config_error(load_job, path)

    assert str(path) in message
    assert "  unit_of_work.keys: Field required" in message.splitlines()


def test_missing_section_is_named(tmp_path):
    data = real_job()
    del data["output"]
    path = write_yaml(tmp_path, data)

    assert "  output: Field required" in config_error(load_job, path).splitlines()


def test_wrong_literal_is_named(tmp_path):
    data = real_job()
    data["output"]["format"] = "orc"
    path = write_yaml(tmp_path, data)

    message = config_error(load_job, path)

    assert str(path) in message
    assert "  output.format: Input should be 'delta', 'parquet' or 'jdbc'" in message.splitlines()


def test_every_problem_is_listed(tmp_path):
    data = real_job()
    data["output"]["format"] = "orc"
    data["output"]["formatt"] = "delta"
    del data["function"]["name"]
    data["unit_of_work"]["keys"] = []
    path = write_yaml(tmp_path, data)

    lines = config_error(load_job, path).splitlines()

    assert lines[0] == f"config file {path} has 4 problem(s):"
    fields = sorted(line.split(":")[0].strip() for line in lines[1:])
    assert fields == ["function.name", "output.format", "output.formatt", "unit_of_work.keys"]


def test_bad_job_name_is_rejected(tmp_path):
    data = real_job()
    data["job"] = "data pricing!"
    path = write_yaml(tmp_path, data)

    message = config_error(load_job, path)

    assert "  job: Value error, use only letters, digits, '_' and '-'" in message.splitlines()


def test_source_schema_alias_fills_ddl_schema(tmp_path):
    data = real_job()
    data["source"].update(format="csv", schema="segment string, price double")
    job = load_job(write_yaml(tmp_path, data))

    assert job.source.format == "csv"
    assert job.source.ddl_schema == "segment string, price double"


SCHEMA_BY_PYTHON_NAME = (
    "unknown field (did you mean 'source.schema'?); 'ddl_schema' is its name in the code, a config "
    "uses the documented one (fields here: path, format, jdbc, options, schema, columns, filter)"
)


def test_source_ddl_schema_python_name_is_refused_in_the_file(tmp_path):
    data = real_job()
    data["source"].update(format="csv", ddl_schema="segment string, price double")

    message = config_error(load_job, write_yaml(tmp_path, data))

    assert message.splitlines()[1:] == [f"  source.ddl_schema: {SCHEMA_BY_PYTHON_NAME}"]


def test_source_ddl_schema_python_name_is_refused_in_set(job_file):
    message = config_error(load_job, job_file, ["source.ddl_schema=segment string"])

    assert message.splitlines() == [
        "--set has 1 problem(s):",
        f"  source.ddl_schema (from --set source.ddl_schema=segment string): {SCHEMA_BY_PYTHON_NAME}",
    ]
    assert load_job(job_file, ["source.schema=segment string"]).source.ddl_schema == "segment string"


def test_config_models_are_built_by_alias_only():
    from batch_scoring.jobs.config import SourceConfig

    assert SourceConfig(path="in", schema="a string").ddl_schema == "a string"
    assert SourceConfig.model_validate({"path": "in", "schema": "a string"}).ddl_schema == "a string"
    with pytest.raises(pydantic.ValidationError) as info:
        SourceConfig(path="in", ddl_schema="a string")
    assert [(e["type"], e["loc"]) for e in info.value.errors()] == [("extra_forbidden", ("ddl_schema",))]


class _Inner(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    py_name: str | None = pydantic.Field(None, alias="doc-name")


class _Outer(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    top_name: str | None = pydantic.Field(None, alias="top")
    sections: list[_Inner] = []


@pytest.mark.parametrize(("data", "line"), [
    ({"top_name": 1}, "  top_name: unknown field (did you mean 'top'?); 'top_name' is its name in the code"),
    ({"sections": [{}, {"py_name": "x"}]},
     "  sections.1.py_name: unknown field (did you mean 'sections.1.doc-name'?); 'py_name' is its name in the code"),
])
def test_a_python_name_at_any_depth_is_answered_with_its_documented_path(data, line):
    with pytest.raises(pydantic.ValidationError) as info:
        _Outer.model_validate(data)

    lines = format_validation_error(info.value, "x", _Outer).splitlines()

    assert lines[1].startswith(line + ", a config uses the documented one (fields here: ")


def test_an_unknown_field_that_is_no_python_name_gets_no_alias_hint(tmp_path):
    data = real_job()
    data["source"]["path_"] = "x"

    message = config_error(load_job, write_yaml(tmp_path, data))

    assert message.splitlines()[1] == (
        "  source.path_: unknown field (did you mean 'path'?); remove it or check its spelling "
        "(fields here: path, format, jdbc, options, schema, columns, filter)")


def test_config_models_are_frozen():
    job = load_job(JOB_FILE)
    with pytest.raises(pydantic.ValidationError):
        job.output.format = "parquet"
    assert job.output.format == "delta"


# --------------------------------------------------------------------------- --set overrides


def test_override_literal_field(job_file):
    job = load_job(job_file, ["output.format=parquet"])

    assert job.output.format == "parquet"
    assert job.uses_delta is False


def test_override_buckets_parsed_as_int(job_file):
    job = load_job(job_file, ["unit_of_work.buckets=16"])

    assert job.unit_of_work.buckets == 16
    assert type(job.unit_of_work.buckets) is int


def test_override_value_is_parsed_as_yaml_not_left_a_string(job_file):
    # function.params is dict[str, Any]: pydantic keeps whatever type the override produced.
    job = load_job(job_file, ["function.params.history_days=90", "function.params.max_step=0.2"])

    assert job.function.params["history_days"] == 90
    assert type(job.function.params["history_days"]) is int
    assert job.function.params["max_step"] == 0.2
    assert job.function.params["volume_col"] == "volume"  # siblings untouched


def test_override_list_value(job_file):
    job = load_job(job_file, ["unit_of_work.keys=[a, b]"])

    assert job.unit_of_work.keys == ["a", "b"]
    assert job.unit_of_work.order_by == ["sale_date"]


def test_override_creates_new_nested_section(job_file):
    job = load_job(job_file, ["source.options.compression=snappy", "output.rejects_path=out/rej"])

    assert job.source.options == {"compression": "snappy"}
    assert job.output.rejects == "out/rej"


def test_override_value_may_hold_equals_sign(job_file):
    job = load_job(job_file, ["source.filter=sale_month = '2026-06'"])

    assert job.source.filter == "sale_month = '2026-06'"


def test_later_override_wins(job_file):
    job = load_job(job_file, ["output.format=parquet", "output.format=delta"])

    assert job.output.format == "delta"


def test_override_empty_value_is_null(job_file):
    job = load_job(job_file, ["description="])

    assert job.description is None


def test_override_of_a_dotted_spark_setting(job_file):
    job = load_job(job_file, ["spark_conf.spark.sql.shuffle.partitions=64"])
    assert job.spark_conf == {"spark.sql.shuffle.partitions": 64}


def test_override_to_unknown_field_is_named_as_a_set_problem(job_file):
    message = config_error(load_job, job_file, ["output.formatt=parquet"])

    assert message.splitlines()[0] == "--set has 1 problem(s):"
    assert message.splitlines()[1].startswith(
        "  output.formatt (from --set output.formatt=parquet): unknown field (did you mean 'format'?)")
    assert str(job_file) not in message


def test_a_bad_override_value_names_set_and_a_file_problem_the_file(tmp_path, job_file):
    assert config_error(load_job, job_file, ["output.format=csv"]).splitlines() == [
        "--set has 1 problem(s):",
        "  output.format (from --set output.format=csv): Input should be 'delta', 'parquet' or 'jdbc'",
    ]
    data = real_job()
    data["output"]["mode"] = "append"
    path = write_yaml(tmp_path, data)
    both = config_error(load_job, path, ["output.format=csv"]).splitlines()
    assert both[0] == f"config file {path} has 2 problem(s):"
    assert "  output.format (from --set output.format=csv): Input should be 'delta', 'parquet' or 'jdbc'" in both
    assert any(line.startswith("  output.mode: Input should be") for line in both)


def test_override_to_invalid_value_is_named(job_file):
    message = config_error(load_job, job_file, ["unit_of_work.buckets=0"])

    assert message.startswith("--set has 2 problem(s):")  # neither the int nor 'auto'
    assert "unit_of_work.buckets.constrained-int (from --set unit_of_work.buckets=0)" in message
    assert str(job_file) not in message


@pytest.mark.parametrize("override", ["noequals", "a..b=1", "=1", ".output=1", "output.=1"])
def test_malformed_override_is_named(job_file, override):
    message = config_error(load_job, job_file, [override])

    assert message == f"--set {override!r} is not of the form field.path=value"


@pytest.mark.parametrize(
    ("override", "scalar"),
    [
        ("job.name=x", "job"),
        ("output.format.kind=x", "format"),
        ("unit_of_work.keys.first=a", "keys"),
    ],
)
def test_override_below_a_scalar_is_rejected(job_file, override, scalar):
    message = config_error(load_job, job_file, [override])

    assert message == f"--set {override!r}: {scalar!r} is not a section with fields"


def test_override_with_invalid_yaml_value(job_file):
    message = config_error(load_job, job_file, ["unit_of_work.keys=[a, b"])

    assert message.startswith("--set 'unit_of_work.keys=[a, b': the value is not valid YAML")


def test_overrides_do_not_touch_the_file(job_file):
    before = job_file.read_text()
    load_job(job_file, ["output.format=parquet"])

    assert job_file.read_text() == before
    assert load_job(job_file).output.format == "delta"


# --------------------------------------------------------------------------- ${ENV} references


def test_env_reference_is_substituted(tmp_path, monkeypatch):
    monkeypatch.setenv("BS_TEST_OUT_ROOT", "s3://bucket/runs")
    data = real_job()
    data["output"]["path"] = "${BS_TEST_OUT_ROOT}/data_pricing"
    job = load_job(write_yaml(tmp_path, data))

    assert job.output.path == "s3://bucket/runs/data_pricing"
    assert job.output.rejects == "s3://bucket/runs/data_pricing_rejects"


def test_env_default_used_only_when_unset(tmp_path, monkeypatch):
    data = real_job()
    data["source"]["path"] = "${BS_TEST_BUCKET:-local-bucket}/in/${BS_TEST_TABLE:-sales}"
    path = write_yaml(tmp_path, data)

    monkeypatch.delenv("BS_TEST_BUCKET", raising=False)
    monkeypatch.delenv("BS_TEST_TABLE", raising=False)
    assert load_job(path).source.path == "local-bucket/in/sales"

    monkeypatch.setenv("BS_TEST_BUCKET", "s3://prod")
    assert load_job(path).source.path == "s3://prod/in/sales"

    monkeypatch.setenv("BS_TEST_BUCKET", "")  # as in a shell, ${X:-d} also covers an empty X
    assert load_job(path).source.path == "local-bucket/in/sales"


def test_env_reference_in_list_and_override(tmp_path, monkeypatch):
    monkeypatch.setenv("BS_TEST_KEY", "region")
    monkeypatch.setenv("BS_TEST_OUT", "/mnt/out")
    data = real_job()
    data["unit_of_work"]["keys"] = ["${BS_TEST_KEY}", "product"]
    path = write_yaml(tmp_path, data)

    job = load_job(path, ["output.path=${BS_TEST_OUT}/x"])

    assert job.unit_of_work.keys == ["region", "product"]
    assert job.output.path == "/mnt/out/x"


def test_env_reference_in_profile(tmp_path, monkeypatch):
    monkeypatch.setenv("BS_TEST_MASTER", "spark://head:7077")
    data = real_profile()
    data["master"] = "${BS_TEST_MASTER}"
    data["spark_conf"]["spark.driver.memory"] = "${BS_TEST_MEM:-8g}"
    monkeypatch.delenv("BS_TEST_MEM", raising=False)

    profile = load_profile(write_yaml(tmp_path, data, "profile.yaml"))

    assert profile.master == "spark://head:7077"
    assert profile.spark_conf["spark.driver.memory"] == "8g"


def test_unset_env_reference_names_variable_and_field(tmp_path, monkeypatch):
    monkeypatch.delenv("BS_TEST_UNSET", raising=False)
    data = real_job()
    data["output"]["path"] = "${BS_TEST_UNSET}/data_pricing"
    path = write_yaml(tmp_path, data)

    message = config_error(load_job, path)

    assert message.startswith(f"{path}: output.path refers to environment variable ")
    assert "${BS_TEST_UNSET}" in message
    assert "${BS_TEST_UNSET:-default}" in message


def test_unset_env_reference_in_list_names_the_item(tmp_path, monkeypatch):
    monkeypatch.delenv("BS_TEST_UNSET", raising=False)
    data = real_job()
    data["unit_of_work"]["keys"] = ["segment", "${BS_TEST_UNSET}"]
    path = write_yaml(tmp_path, data)

    message = config_error(load_job, path)

    assert "unit_of_work.keys[1] refers to environment variable ${BS_TEST_UNSET}" in message


def test_unset_env_reference_in_profile(tmp_path, monkeypatch):
    monkeypatch.delenv("BS_TEST_UNSET", raising=False)
    data = real_profile()
    data["spark_conf"]["spark.driver.memory"] = "${BS_TEST_UNSET}"
    path = write_yaml(tmp_path, data, "profile.yaml")

    message = config_error(load_profile, path)

    assert "spark_conf.spark.driver.memory refers to environment variable ${BS_TEST_UNSET}" in message


# --------------------------------------------------------------------------- bad files


@pytest.mark.parametrize("loader", [load_job, load_profile])
def test_missing_file(tmp_path, loader):
    path = tmp_path / "nope.yaml"

    assert config_error(loader, path) == f"config file {path} does not exist"


def test_directory_is_not_a_config_file(tmp_path):
    assert config_error(load_job, tmp_path) == f"config file {tmp_path} does not exist"


@pytest.mark.parametrize(
    ("text", "shown"),
    [("- job: a\n- job: b\n", "[{'job': 'a'}"), ("just text\n", "'just text'"), ("", "None")],
)
@pytest.mark.parametrize("loader", [load_job, load_profile])
def test_non_mapping_yaml(tmp_path, loader, text, shown):
    path = tmp_path / "bad.yaml"
    path.write_text(text)

    message = config_error(loader, path)

    assert message.startswith(f"config file {path} must hold a mapping of fields, not {shown}")


def test_invalid_yaml(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("job: data_pricing\nsource: [unclosed\n")

    assert config_error(load_job, path).startswith(f"config file {path} is not valid YAML:")


# --------------------------------------------------------------------------- run date


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2026-05-31", dt.date(2026, 5, 31)), ("2024-02-29", dt.date(2024, 2, 29))],
)
def test_parse_run_date_valid(text, expected):
    assert parse_run_date(text) == expected


@pytest.mark.parametrize(
    "text", ["2026-02-30", "31/05/2026", "2026-13-01", "yesterday", "", "20260115", "2026-W03-1"]
)
def test_parse_run_date_invalid(text):
    message = config_error(parse_run_date, text)

    assert message.startswith(f"--run-date {text!r} is not a date in the form YYYY-MM-DD")


@pytest.mark.parametrize(
    ("text", "zone", "expected"),
    [
        ("2026-11-22T02:00:00Z", "UTC", dt.date(2026, 11, 22)),
        ("2026-11-21T23:30:00Z", "UTC", dt.date(2026, 11, 21)),
        ("2026-11-21T23:30:00Z", "Europe/Paris", dt.date(2026, 11, 22)),
        ("2026-11-22T03:00:00Z", "America/New_York", dt.date(2026, 11, 21)),
        ("2026-11-22T01:00:00+02:00", "UTC", dt.date(2026, 11, 21)),
    ],
)
def test_parse_run_date_of_a_scheduled_time_is_its_date_in_the_schedule_zone(text, zone, expected):
    assert parse_run_date(text, zone) == expected


def test_parse_run_date_refuses_a_timestamp_without_offset():
    assert "ISO timestamp with its offset" in config_error(parse_run_date, "2026-11-22T02:00:00")


def test_schedule_needs_scheduler_syntax_and_a_real_zone(job_file):
    ok = load_job(job_file, ["schedule.expression=cron(0 2 * * ? *)", "schedule.timezone=Europe/Paris"])
    assert (ok.schedule.expression, ok.schedule.timezone, ok.schedule.enabled) == (
        "cron(0 2 * * ? *)", "Europe/Paris", True)
    message = config_error(load_job, job_file, ["schedule.expression=0 2 * * *", "schedule.timezone=Mars/Base"])
    assert ("schedule.expression (from --set schedule.expression=0 2 * * *): Value error, use "
            "EventBridge Scheduler syntax") in message
    assert ("schedule.timezone (from --set schedule.timezone=Mars/Base): Value error, 'Mars/Base' "
            "is not an IANA time zone") in message


def test_parse_run_date_none_is_today_utc():
    before = dt.datetime.now(dt.timezone.utc).date()
    value = parse_run_date(None)
    after = dt.datetime.now(dt.timezone.utc).date()

    assert type(value) is dt.date
    assert value in {before, after}


# --------------------------------------------------------------------------- models


@pytest.mark.parametrize(
    ("path", "rejects_path", "expected"),
    [
        ("output/data_pricing", None, "output/data_pricing_rejects"),
        ("s3://bucket/out/prices/", None, "s3://bucket/out/prices_rejects"),
        ("output/data_pricing", "s3://bucket/quarantine", "s3://bucket/quarantine"),
    ],
)
def test_output_rejects(path, rejects_path, expected):
    output = OutputConfig(path=path, rejects_path=rejects_path)

    assert output.rejects == expected


@pytest.mark.parametrize(
    ("source_format", "output_format", "expected"),
    [
        ("parquet", "delta", True),
        ("delta", "parquet", True),
        ("delta", "delta", True),
        ("parquet", "parquet", False),
        ("csv", "parquet", False),
    ],
)
def test_uses_delta(source_format, output_format, expected):
    data = real_job()
    data["source"]["format"] = source_format
    data["output"]["format"] = output_format

    assert JobConfig.model_validate(data).uses_delta is expected


def test_format_validation_error_lines():
    data = real_job()
    bad = copy.deepcopy(data)
    bad["output"]["mode"] = "append"
    bad["spark_conf"] = {"spark.x": [1]}
    with pytest.raises(pydantic.ValidationError) as info:
        JobConfig.model_validate(bad)

    text = format_validation_error(info.value, "the job")

    lines = text.splitlines()
    assert lines[0] == f"the job has {info.value.error_count()} problem(s):"
    assert "  output.mode: Input should be 'replace_run' or 'fail_if_run_exists'" in lines
    assert any(line.startswith("  spark_conf.spark.x.") for line in lines)


def test_format_validation_error_top_level():
    with pytest.raises(pydantic.ValidationError) as info:
        JobConfig.model_validate(["not", "a", "mapping"])

    assert format_validation_error(info.value, "X").splitlines() == [
        "X has 1 problem(s):",
        "  (top level): Input should be a valid dictionary or instance of JobConfig",
    ]


# --------------------------------------------------------------------------- errors


def test_exit_codes():
    assert JobError.exit_code == 1
    assert ConfigError.exit_code == 2
    assert InputError.exit_code == 3
    assert ConfigError("bad").exit_code == 2
    assert InputError("bad").exit_code == 3


def test_error_hierarchy():
    assert issubclass(ConfigError, JobError)
    assert issubclass(InputError, JobError)
    assert issubclass(JobError, Exception)
    assert not issubclass(ConfigError, InputError)
    assert str(ConfigError("output.format is wrong")) == "output.format is wrong"


# --------------------------------------------------------------------------- deploy targets

DEPLOY_ENV = {
    "SPARK_MASTER_URL": "spark://10.0.0.5:7077", "BATCH_SCORE_BUCKET": "my-bucket",
    "EMR_CLUSTER_ID": "j-2AXXXXXXGAPLF", "EMR_SERVERLESS_APP_ID": "00fabcdexample",
    "EMR_SERVERLESS_ROLE_ARN": "arn:aws:iam::123456789012:role/batch-scoring-job",
}


@pytest.mark.parametrize("name, target", [
    ("local", "local"), ("cluster", "cluster"), ("emr", "emr"), ("emr-serverless", "emr-serverless"),
])
def test_every_shipped_profile_loads_for_its_target(monkeypatch, name, target):
    for key, value in DEPLOY_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_REGION", raising=False)
    profile = load_profile(ROOT / "conf" / f"{name}.yaml")
    assert profile.target == target
    if target in ("emr", "emr-serverless"):
        assert profile.aws.artifacts_uri == "s3://my-bucket/batch-scoring/artifacts"
        assert profile.aws.region == "eu-west-1"
        assert profile.s3_scheme == "s3" and "delta-spark.jar" in profile.jars[0]
    if target == "cluster":
        assert profile.master == "spark://10.0.0.5:7077"


@pytest.mark.parametrize("target, missing", [
    ("cluster", "master"), ("emr", "aws, emr"), ("emr-serverless", "aws, emr_serverless"),
])
def test_a_target_without_its_sections_is_named(tmp_path, target, missing):
    path = write_yaml(tmp_path, {"name": "p", "target": target}, "profile.yaml")
    assert f"target {target!r} needs {missing}" in config_error(load_profile, path)


@pytest.mark.parametrize("section, field, value, message", [
    ("emr", "cluster_id", "cluster-1", "is not an EMR cluster id"),
    ("aws", "artifacts_uri", "my-bucket/prefix", "must be an s3://bucket/prefix URI"),
    ("emr_serverless", "execution_role_arn", "batch-job", "is not an IAM role ARN"),
    ("emr_serverless", "log_uri", "/tmp/logs", "must be an s3:// URI"),
])
def test_bad_deploy_values_are_named_by_field(tmp_path, section, field, value, message):
    data = {
        "name": "p", "target": "emr" if section == "emr" else "emr-serverless",
        "aws": {"region": "eu-west-1", "artifacts_uri": "s3://b/p"},
        "emr": {"cluster_id": "j-ABC"},
        "emr_serverless": {"application_id": "00f", "execution_role_arn": DEPLOY_ENV["EMR_SERVERLESS_ROLE_ARN"],
                           "log_uri": "s3://b/logs"},
    }
    data[section][field] = value
    text = config_error(load_profile, write_yaml(tmp_path, data, "profile.yaml"))
    assert f"{section}.{field}: Value error" in text and message in text


# --------------------------------------------------------------------------- function allow-list


@pytest.mark.parametrize("name, allowed", [
    ("data_pricing", []),
    ("acme.pricing:price", ["acme.pricing"]),
    ("acme.pricing.voice:price", ["other", "acme"]),
])
def test_function_modules_load_when_allowed(job_file, name, allowed):
    job = load_job(job_file, [f"function.name={name}", f"function.allowed_modules={allowed}"])
    assert job.function.name == name


@pytest.mark.parametrize("name, allowed", [
    ("os:system", []),
    ("acme.pricingx:price", ["acme.pricing"]),
    ("acme:price", ["acme.pricing"]),
])
def test_function_modules_outside_the_allow_list_are_refused(job_file, name, allowed):
    module = name.partition(":")[0]
    message = config_error(load_job, job_file, [f"function.name={name}", f"function.allowed_modules={allowed}"])
    assert f"comes from module {module!r}, which is not in function.allowed_modules {allowed}" in message


def test_an_unknown_preprocess_field_gets_the_nearest_field_of_its_step_kind(job_file):
    message = config_error(load_job, ROOT / "conf/jobs/model_scoring.yaml",
                           ["model.preprocess=[{kind: scale, colums: [price]}]"])

    assert message.startswith("--set has 2 problem(s):")
    assert ("model.preprocess.0.scale.colums (from --set model.preprocess=[{kind: scale, colums: "
            "[price]}]): unknown field (did you mean 'columns'?); remove it or check its spelling "
            "(fields here: kind, columns, stats_file)") in message
