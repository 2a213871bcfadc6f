"""Run ids are names: any printable id is accepted, the manifest's file name is derived safely,
and ids that cannot be used are refused before Spark starts (issue 15, reproductions 4 and 5)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from batch_scoring.jobs import run_job
from batch_scoring.jobs.errors import ConfigError
from batch_scoring.jobs.run_ids import MAX_RUN_ID_LENGTH, check_run_id, manifest_file_name

ROOT = Path(__file__).resolve().parents[2]
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~-]*\.json")

SCHEDULER_IDS = [
    "scheduled__2026-11-22T02:00:00+00:00",  # Airflow
    "manual__2026-11-22T02:00:00.123456+00:00",  # Airflow, triggered by hand
    "arn:aws:states:eu-west-1:123456789012:execution:pricing-daily:0f3c2b1a-7e6d-4c5b-9a8f-1e2d3c4b5a69",
    "a1b2c3d4-5e6f-7a8b-9c0d-e1f2a3b4c5d6",  # an EventBridge event id
    "Nachtlauf Zürich 22.11. – Versuch 2",
    "日次バッチ/2026-11-22",
    "../../../victim",
    "..",
    ".hidden",
    "_underscore",
    "a/b\\c:d+e f?g#h%2e%2e",
    "x" * 300,
    "y" * MAX_RUN_ID_LENGTH,
]


@pytest.mark.parametrize("run_id", SCHEDULER_IDS, ids=lambda i: i[:40])
def test_any_printable_id_is_accepted_and_gets_a_safe_bounded_file_name(run_id):
    assert check_run_id(run_id) == run_id
    name = manifest_file_name(run_id)
    assert SAFE_NAME.fullmatch(name), name
    assert len(name) <= 82
    assert "/" not in name and ":" not in name and not name.startswith(".")


def test_plain_ids_keep_their_readable_name():
    assert manifest_file_name("20261122-041502-9f1c2ab0") == "20261122-041502-9f1c2ab0.json"
    assert manifest_file_name("attempt-1") == "attempt-1.json"
    airflow = manifest_file_name("scheduled__2026-11-22T02:00:00+00:00")
    assert airflow.startswith("scheduled__2026-11-22T02_00_00_00_00~")


def test_different_ids_never_share_a_file_name():
    ids = SCHEDULER_IDS + ["a:b", "a/b", "a b", "a_b", "a~b", "victim", "_.._.._victim"]
    names = [manifest_file_name(i) for i in ids]
    assert len(set(names)) == len(ids)


@pytest.mark.parametrize("run_id, reason", [
    ("", "empty"),
    ("   ", "empty"),
    ("line1\nline2", "U\\+000A"),
    ("tab\there", "U\\+0009"),
    ("nul\x00byte", "U\\+0000"),
    ("esc\x1b[31mred", "U\\+001B"),
    ("bidi\u202eevil", "U\\+202E"),
    ("z" * (MAX_RUN_ID_LENGTH + 1), "at most 512"),
])
def test_unusable_ids_are_refused(run_id, reason):
    with pytest.raises(ConfigError, match=reason):
        check_run_id(run_id)


@pytest.mark.parametrize("run_id", ["", "a\nb", "z" * (MAX_RUN_ID_LENGTH + 1)])
def test_the_entry_point_exits_2_before_spark_starts(run_id, tmp_path, capsys, spark_starts):
    
    code = run_job.main([
        "--job", str(ROOT / "conf/jobs/data_pricing.yaml"), "--run-date", "2026-11-22",
        "--run-id", run_id, "--set", f"output.path={tmp_path / 'out'}",
    ])
    assert code == 2
    assert "--run-id" in capsys.readouterr().err
    assert spark_starts == []
    assert not (tmp_path / "out").exists()


def test_a_plain_id_is_its_own_name_up_to_100_characters_and_hashed_beyond():
    assert manifest_file_name("p" * 100) == "p" * 100 + ".json"
    longer = manifest_file_name("p" * 101)
    assert longer == "p" * 60 + "~" + hashlib.sha256(b"p" * 101).hexdigest()[:16] + ".json"


def test_a_derived_name_is_the_readable_prefix_and_16_hex_digits_of_the_ids_sha256():
    assert manifest_file_name("a b") == "a_b~" + hashlib.sha256(b"a b").hexdigest()[:16] + ".json"
    assert manifest_file_name("a b") == "a_b~c8687a08aa5d6ed2.json"
    assert manifest_file_name("日次") == "run~" + hashlib.sha256("日次".encode()).hexdigest()[:16] + ".json"
