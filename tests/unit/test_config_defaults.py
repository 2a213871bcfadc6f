"""Unit tests for batch_scoring.jobs.config: the defaults the README documents, bounds, the
validators and the ``--set`` naming that the mutation run of ``jobs/config.py`` found untested
(README, "Mutation testing"). No Spark."""

from __future__ import annotations

import re
from pathlib import Path

import pydantic
import pytest
import yaml

from batch_scoring.jobs.config import (
    FunctionConfig,
    JobConfig,
    OutputConfig,
    PricesConfig,
    load_job,
    load_profile,
)
from batch_scoring.jobs.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
JOB_FILE = ROOT / "conf" / "jobs" / "data_pricing.yaml"
MODEL_JOB_FILE = ROOT / "conf" / "jobs" / "model_scoring.yaml"
ROLE_ARN = "arn:aws:iam::123456789012:role/batch-scoring-job"


def config_error(call, *args, **kwargs) -> str:
    with pytest.raises(ConfigError) as info:
        call(*args, **kwargs)
    return str(info.value)


def documented(field: str) -> str:
    """The "type, default" cell of the README config table row whose first cell is ``field``."""
    cells = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in README.read_text().splitlines()
        if line.startswith(f"| `{field}` |")
    ]
    assert len(cells) == 1, f"README has {len(cells)} rows for {field}"
    return cells[0][1]


def minimal_job(tmp_path: Path) -> Path:
    """A job naming only required fields (no unit_of_work or model tuning)."""
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump({
        "job": "minimal",
        "source": {"path": "in"},
        "unit_of_work": {"keys": ["k"]},
        "function": {"name": "data_pricing"},
        "output": {"path": "out"},
    }))
    return path


def minimal_serverless_profile(tmp_path: Path, **aws) -> Path:
    """An emr-serverless profile without aws.poll or emr_serverless.execution_timeout_minutes."""
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump({
        "name": "p",
        "target": "emr-serverless",
        "aws": {"region": "eu-west-1", "artifacts_uri": "s3://bucket/p", **aws},
        "emr_serverless": {"application_id": "00f", "execution_role_arn": ROLE_ARN,
                           "log_uri": "s3://b/logs"},
    }))
    return path


# --------------------------------------------------------------------------- documented defaults


def test_unit_of_work_defaults_are_the_documented_ones(tmp_path):
    unit = load_job(minimal_job(tmp_path)).unit_of_work

    assert unit.max_unit_rows == 5_000_000
    assert documented("unit_of_work.max_unit_rows") == "int > 0, `5000000`"
    assert unit.rows_per_call == 100_000
    assert documented("unit_of_work.rows_per_call") == "int > 0, `100000`"
    assert unit.target_bucket_mb == 64
    assert documented("unit_of_work.target_bucket_mb") == "int, `64`"
    assert unit.buckets == "auto"
    assert unit.engine == "packed"


def test_model_defaults_are_the_documented_ones(tmp_path):
    data = yaml.safe_load(MODEL_JOB_FILE.read_text())
    del data["model"]["batch_size"]
    data["model"]["tracking_uri"] = None
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(data))

    model = load_job(path).model

    assert model.batch_size == 10_000
    assert documented("model.batch_size") == "int, 10000"
    assert model.allow_version_mismatch is False
    assert model.max_failed_rows == 0
    assert model.preprocess == []
    assert model.backend == "native"
    assert "| `model.backend` | `auto` \\| `native` \\| `compiled`, `native` |" in README.read_text()


def test_model_backend_takes_only_its_three_values():
    assert load_job(MODEL_JOB_FILE, ["model.backend=compiled"]).model.backend == "compiled"
    assert "model.backend" in config_error(load_job, MODEL_JOB_FILE, ["model.backend=fast"])


def test_route_default_models_per_worker_is_the_documented_one():
    route = load_job(MODEL_JOB_FILE, [
        "model.uri=null", "model.route={by: [segment], uri_template: 'models:/m_{segment}/1'}",
    ]).model.route

    assert route.max_models_per_worker == 4
    assert documented("model.route.max_models_per_worker") == "int, 4"
    assert route.fallback_uri is None


def test_poll_and_execution_timeout_defaults_are_the_documented_ones(tmp_path):
    profile = load_profile(minimal_serverless_profile(tmp_path))

    poll = profile.aws.poll
    assert (poll.interval_seconds, poll.max_interval_seconds, poll.timeout_minutes) == (10.0, 120.0, 240.0)
    assert documented("aws.poll.interval_seconds`, `.max_interval_seconds`, `.timeout_minutes") == (
        "numbers, `10`, `120`, `240`")
    assert profile.emr_serverless.execution_timeout_minutes == 240
    assert documented("emr_serverless.execution_timeout_minutes") == "int, `240`"
    assert profile.emr_serverless.scheduler is None


# --------------------------------------------------------------------------- bounds


@pytest.mark.parametrize("field", ["interval_seconds", "max_interval_seconds", "timeout_minutes"])
def test_poll_times_must_be_positive_and_may_be_fractions(tmp_path, field):
    assert load_profile(minimal_serverless_profile(tmp_path, poll={field: 0.5})).aws.poll == (
        load_profile(minimal_serverless_profile(tmp_path)).aws.poll.model_copy(update={field: 0.5}))

    message = config_error(load_profile, minimal_serverless_profile(tmp_path, poll={field: 0}))

    assert message.splitlines()[1:] == [f"  aws.poll.{field}: Input should be greater than 0"]


def test_execution_timeout_must_be_positive(tmp_path):
    path = minimal_serverless_profile(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["emr_serverless"]["execution_timeout_minutes"] = 0
    path.write_text(yaml.safe_dump(data))

    assert config_error(load_profile, path).splitlines()[1:] == [
        "  emr_serverless.execution_timeout_minutes: Input should be greater than 0"]


def test_empty_partition_value_takes_a_one_character_token_but_not_an_empty_one():
    output = load_job(JOB_FILE, ["output.empty_partition_value=_"]).output
    assert output.empty_partition_value == "_"
    assert output.empty_token == "_"

    assert config_error(load_job, JOB_FILE, ["output.empty_partition_value=''"]).splitlines() == [
        "--set has 1 problem(s):",
        "  output.empty_partition_value (from --set output.empty_partition_value=''): "
        "String should have at least 1 character",
    ]


@pytest.mark.parametrize(("value", "token"), [("reject", None), ("__empty__", "__empty__"), ("rejected", "rejected")])
def test_empty_token(value, token):
    output = OutputConfig(path="out", empty_partition_value=value)

    assert output.empty_token == token
    assert isinstance(OutputConfig.empty_token, property)


def test_empty_token_of_a_reject_read_from_yaml_is_none():
    # a YAML string is equal to "reject" but is not the same object as the code's constant
    assert load_job(JOB_FILE, ["output.empty_partition_value=reject"]).output.empty_token is None
    assert OutputConfig(path="out", empty_partition_value="".join(["rej", "ect"])).empty_token is None


def test_rejects_is_a_property():
    output = OutputConfig(path="s3://b/out/")

    assert output.rejects == "s3://b/out_rejects"
    assert isinstance(OutputConfig.rejects, property)


# --------------------------------------------------------------------------- validators


def test_unit_budget_is_checked_when_the_job_loads():
    message = config_error(load_job, JOB_FILE, ["function.max_failed_units=lots"])

    assert message.splitlines()[0] == "--set has 1 problem(s):"
    assert message.splitlines()[1].startswith(
        "  function.max_failed_units (from --set function.max_failed_units=lots): Value error, ")
    assert load_job(JOB_FILE, ["function.max_failed_units=2%"]).function.max_failed_units == "2%"
    assert load_job(JOB_FILE, ["function.max_failed_units=3"]).function.max_failed_units == 3


def test_row_budget_is_checked_when_the_job_loads():
    message = config_error(load_job, MODEL_JOB_FILE, ["model.max_failed_rows=lots"])

    assert message.splitlines()[1].startswith(
        "  model.max_failed_rows (from --set model.max_failed_rows=lots): Value error, ")
    assert load_job(MODEL_JOB_FILE, ["model.max_failed_rows=1.5%"]).model.max_failed_rows == "1.5%"


def test_function_budget_validator_runs_on_direct_construction():
    with pytest.raises(pydantic.ValidationError, match="max_failed_units"):
        FunctionConfig(name="data_pricing", max_failed_units="-1")


# --------------------------------------------------------------------------- route templates


@pytest.mark.parametrize(("template", "by", "unknown"), [
    ("models:/m_{region}/1", "[segment]", "['region']"),
    ("models:/m_{segment}_{region}_{area}/1", "[segment]", "['area', 'region']"),
    ("models:/m_{segment}_{region}/1", "[region]", "['segment']"),
])
def test_uri_template_placeholders_outside_by_are_named(template, by, unknown):
    message = config_error(load_job, MODEL_JOB_FILE, [
        "model.uri=null", f"model.route={{by: {by}, uri_template: '{template}'}}",
    ])

    assert f"Value error, uri_template uses {unknown}, which are not in 'by' " in message


@pytest.mark.parametrize(("template", "by"), [
    ("models:/m_{segment}/1", ["segment"]),
    ("models:/m_{segment}/1", ["segment", "location"]),
    ("models:/m_{segment}_{location}/1", ["location", "segment"]),
])
def test_uri_template_with_placeholders_in_by_loads(template, by):
    route = load_job(MODEL_JOB_FILE, [
        "model.uri=null", f"model.route={{by: [{', '.join(by)}], uri_template: '{template}'}}",
    ]).model.route

    assert (route.uri_template, route.by) == (template, by)


def test_uri_template_without_placeholder_is_refused():
    message = config_error(load_job, MODEL_JOB_FILE, [
        "model.uri=null", "model.route={by: [segment], uri_template: 'models:/m/1'}",
    ])

    assert "uri_template has no {column} placeholder; use model.uri for one model" in message


# --------------------------------------------------------------------------- uses_delta


@pytest.mark.parametrize(("source_format", "output_format", "expected"), [
    ("json", "parquet", False),
    ("binaryFile", "parquet", False),
    ("json", "delta", True),
    ("binaryFile", "delta", True),
    ("delta", "parquet", True),
])
def test_uses_delta_of_every_source_format(source_format, output_format, expected):
    job = load_job(JOB_FILE, [f"source.format={source_format}", f"output.format={output_format}",
                              "source.schema=segment string"])

    assert job.uses_delta is expected


# --------------------------------------------------------------------------- --set spark_conf


def test_set_spark_conf_without_a_key_replaces_the_whole_mapping():
    job = load_job(JOB_FILE, ["spark_conf={spark.a: 1, spark.b: x}"])

    assert job.spark_conf == {"spark.a": 1, "spark.b": "x"}


def test_set_spark_conf_key_is_one_field_with_dots():
    job = load_job(JOB_FILE, ["spark_conf.spark.sql.x=2", "spark_conf.y=z"])

    assert job.spark_conf == {"spark.sql.x": 2, "y": "z"}


# --------------------------------------------------------------------------- --set in error lines


def test_an_error_below_a_section_set_whole_names_that_set():
    override = "output={path: out, format: orc}"

    assert config_error(load_job, JOB_FILE, [override]).splitlines() == [
        "--set has 1 problem(s):",
        f"  output.format (from --set {override}): Input should be 'delta', 'parquet' or 'jdbc'",
    ]


def test_an_error_of_the_section_holding_a_set_field_names_that_set():
    override = "function.name=os:system"

    lines = config_error(load_job, JOB_FILE, [override]).splitlines()

    assert lines[0] == "--set has 1 problem(s):"
    assert lines[1].startswith(f"  function (from --set {override}): Value error, function.name 'os:system'")


def test_a_set_of_a_sibling_with_a_common_prefix_is_not_named(tmp_path):
    data = yaml.safe_load(JOB_FILE.read_text())
    data["output"]["format"] = "orc"
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(data))

    lines = config_error(load_job, path, ["output.form=x", "output.formats=y"]).splitlines()

    assert lines[0] == f"config file {path} has 3 problem(s):"
    assert "  output.format: Input should be 'delta', 'parquet' or 'jdbc'" in lines
    assert any(line.startswith("  output.form (from --set output.form=x): unknown field") for line in lines)
    assert any(line.startswith("  output.formats (from --set output.formats=y): unknown field") for line in lines)


# --------------------------------------------------------------------------- preprocess steps


@pytest.mark.parametrize(("step", "typo", "fields"), [
    ("{kind: scale, colums: [price]}", "scale.colums", "kind, columns, stats_file"),
    ("{kind: encode, column: c, methd: ordinal}", "encode.methd", "kind, column, method, categories_file, drop_source"),
    ("{kind: image, width: 8, height: 8, gery: true}", "image.gery", None),
])
def test_an_unknown_preprocess_field_lists_the_fields_of_its_own_kind(step, typo, fields):
    from batch_scoring.udfs.models.preprocessing import EncodeStep, ImageStep, ScaleStep

    kind = typo.split(".")[0]
    model = {"scale": ScaleStep, "encode": EncodeStep, "image": ImageStep}[kind]
    expected = ", ".join(f.alias or name for name, f in model.model_fields.items())
    if fields is not None:
        assert expected == fields

    message = config_error(load_job, MODEL_JOB_FILE, [f"model.preprocess=[{step}]"])

    line = next(line for line in message.splitlines() if line.startswith(f"  model.preprocess.0.{typo} "))
    assert line.endswith(f"(fields here: {expected})")


# --------------------------------------------------------------------------- failure budgets, model source


def test_failure_budgets_default_to_none_as_documented(tmp_path):
    assert load_job(minimal_job(tmp_path)).function.max_failed_units == 0
    assert documented("function.max_failed_units") == 'count or `"N%"`, `0`'
    assert load_job(MODEL_JOB_FILE).model.max_failed_rows == 0
    assert documented("model.max_failed_rows") == 'count or `"N%"`, `0`'


@pytest.mark.parametrize("overrides", [
    ["model.route={by: [segment], uri_template: 'models:/m_{segment}/1'}"],
    ["model.uri=null"],
])
def test_a_model_needs_exactly_one_of_uri_and_route(overrides):
    lines = config_error(load_job, MODEL_JOB_FILE, overrides).splitlines()

    assert lines[0] == "--set has 1 problem(s):"
    assert lines[1].startswith("  model (from --set ")
    assert lines[1].endswith(
        "Value error, give exactly one of model.uri (one model) or model.route (one per key)")


def test_report_defaults_are_the_documented_ones(tmp_path):
    report = load_job(minimal_job(tmp_path)).report

    assert (report.enabled, report.unit_sizes, report.columns, report.group_by) == (True, True, None, None)
    assert documented("report.enabled") == "bool, `true`"
    assert documented("report.unit_sizes") == "bool, `true`"


def test_tracking_defaults_are_the_documented_ones(tmp_path):
    tracking = load_job(minimal_job(tmp_path)).tracking

    assert (tracking.uri, tracking.experiment, tracking.enabled, tracking.timeout_seconds) == (None, None, True, 10)
    assert documented("tracking.uri") == "string, `$MLFLOW_TRACKING_URI`"
    assert documented("tracking.experiment") == "string, the job name"
    assert documented("tracking.enabled") == "bool, `true`"
    assert documented("tracking.timeout_seconds") == "int > 0, `10`"


@pytest.mark.parametrize(("override", "problem"), [
    ("tracking.timeout_seconds=0", "Input should be greater than 0"),
    ("tracking.experiment=", None),
    ("tracking.experiment=''", "String should have at least 1 character"),
    ("tracking.enable=false", "unknown field (did you mean 'enabled'?)"),
])
def test_tracking_fields_are_checked(override, problem):
    if problem is None:
        assert load_job(JOB_FILE, [override]).tracking.experiment is None
    else:
        assert problem in config_error(load_job, JOB_FILE, [override])


@pytest.mark.parametrize(("value", "problem"), [
    (0, None), (0.25, None), (1, None),
    (-0.01, "Input should be greater than or equal to 0"), (1.01, "Input should be less than or equal to 1"),
])
def test_max_reject_fraction_is_a_share_from_0_to_1(value, problem):
    override = f"output.max_reject_fraction={value}"
    if problem is None:
        assert load_job(JOB_FILE, [override]).output.max_reject_fraction == value
    else:
        assert config_error(load_job, JOB_FILE, [override]).splitlines()[1:] == [
            f"  output.max_reject_fraction (from --set {override}): {problem}"]


def test_a_route_needs_a_by_column():
    lines = config_error(load_job, MODEL_JOB_FILE, [
        "model.uri=null", "model.route={by: [], uri_template: 'models:/m_{segment}/1'}",
    ]).splitlines()

    assert any(line.startswith("  model.route.by (from --set model.route=") and
               line.endswith(": List should have at least 1 item after validation, not 0") for line in lines)


def test_an_unreadable_s3_config_is_a_config_error(monkeypatch):
    import boto3
    from botocore.exceptions import ClientError

    class Client:
        def get_object(self, Bucket, Key):
            assert (Bucket, Key) == ("bucket", "conf/job.yaml")
            raise ClientError({"Error": {"Code": "NoSuchKey", "Message": "gone"}}, "GetObject")

    monkeypatch.setattr(boto3, "client", lambda service: Client())

    message = config_error(load_job, "s3://bucket/conf/job.yaml")

    assert message.startswith("config file s3://bucket/conf/job.yaml cannot be read: ")
    assert "NoSuchKey" in message


@pytest.mark.parametrize("value", ["true", "TRUE", " True "])
def test_enforce_schema_true_is_refused_in_any_case(value):
    lines = config_error(load_job, JOB_FILE, [f"source.options.enforceSchema='{value}'"]).splitlines()

    assert lines[1].startswith(f"  source.options (from --set source.options.enforceSchema='{value}'): "
                               "Value error, enforceSchema true binds CSV columns by position")


@pytest.mark.parametrize(("overrides", "message"), [
    (["function=null"], "Value error, give 'function' (a unit-of-work function), 'model', or both"),
    (["unit_of_work=null"], "Value error, 'unit_of_work' is required with 'function': set unit_of_work.keys"),
])
def test_a_job_needs_a_function_or_a_model_and_a_function_its_unit_of_work(overrides, message):
    lines = config_error(load_job, JOB_FILE, overrides).splitlines()

    assert lines[0] == f"config file {JOB_FILE} has 1 problem(s):"
    assert lines[1].startswith(f"  (top level): {message}")


def test_prices_default_to_the_documented_emr_serverless_prices_and_are_never_negative():
    prices = PricesConfig()
    assert (prices.currency, prices.vcpu_hour, prices.memory_gb_hour, prices.storage_gb_hour,
            prices.core_hour, prices.as_of) == ("USD", 0.052624, 0.005786, 0.000111, None, "2026-12")
    readme = README.read_text()
    assert "numbers >= 0, `0.052624`, `0.005786`, `0.000111`" in readme and "strings, `USD`, `2026-12`" in readme
    for field in ("vcpu_hour", "memory_gb_hour", "storage_gb_hour", "core_hour"):
        with pytest.raises(pydantic.ValidationError, match="greater than or equal to 0"):
            PricesConfig(**{field: -0.01})
        assert getattr(PricesConfig(**{field: 0}), field) == 0


def test_a_wrong_value_is_named_by_its_own_error_not_as_an_unknown_field():
    message = config_error(load_job, JOB_FILE, ["report.enabled=maybe"])
    assert "report.enabled" in message and "valid boolean" in message
    assert "unknown field" not in message


def test_an_empty_model_allow_list_is_refused():
    message = config_error(load_job, MODEL_JOB_FILE, ["model.allowed_uris=[]"])
    assert "model.allowed_uris" in message and "at least 1 item" in message


@pytest.mark.parametrize(("options", "start"), [
    ("{mode: DropMalformed}", "mode DROPMALFORMED drops malformed records without a trace; remove it"),
    ("{MODE: ' dropmalformed '}", "mode DROPMALFORMED drops malformed records without a trace; remove it"),
    ("{enforceSchema: 'TRUE'}", "enforceSchema true binds CSV columns by position and ignores the header"),
])
def test_reader_options_that_lose_or_misplace_values_are_refused_in_any_case(options, start):
    lines = config_error(load_job, JOB_FILE, [f"source.options={options}"]).splitlines()

    assert lines[1].startswith(f"  source.options (from --set source.options={options}): Value error, {start}")


def test_reader_options_that_keep_every_record_are_accepted():
    options = load_job(JOB_FILE, ["source.options={mode: PERMISSIVE, enforceSchema: 'false'}"]).source.options
    assert options == {"mode": "PERMISSIVE", "enforceSchema": "false"}


def test_max_cost_must_be_above_zero():
    assert load_job(JOB_FILE).output.max_cost is None
    assert load_job(JOB_FILE, ["output.max_cost=0.01"]).output.max_cost == 0.01
    assert config_error(load_job, JOB_FILE, ["output.max_cost=0"]).splitlines()[1] == (
        "  output.max_cost (from --set output.max_cost=0): Input should be greater than 0")


def test_tracking_experiment_takes_up_to_500_characters():
    assert load_job(JOB_FILE, ["tracking.experiment=" + "e" * 500]).tracking.experiment == "e" * 500
    assert config_error(load_job, JOB_FILE, ["tracking.experiment=" + "e" * 501]).splitlines()[1].endswith(
        ": String should have at most 500 characters")
