"""`batch-score predict` bad input: clear errors and exit codes before any model is loaded."""

from __future__ import annotations

import pytest

from batch_scoring.jobs import predict


@pytest.mark.parametrize("record, message", [
    ("{tenure: 3", "--record is not valid JSON"),
    ("[1, 2]", "--record must be a JSON object"),
    ("[]", "--record must be a JSON object"),
])
def test_a_record_that_is_not_a_json_object_exits_2(record, message, tmp_path, capsys):
    assert predict.main(["--model", str(tmp_path / "model"), "--record", record]) == 2
    assert message in capsys.readouterr().err


def test_a_missing_model_folder_exits_2_naming_it(tmp_path, capsys):
    code = predict.main(["--model", str(tmp_path / "nowhere"), "--record", '{"x": 1}'])
    assert code == 2
    assert "nowhere" in capsys.readouterr().err


def test_an_input_file_needs_an_output_and_must_exist(tmp_path, capsys):
    assert predict.main(["--model", "m", "--input", str(tmp_path / "rows.parquet")]) == 2
    assert "--input needs --output" in capsys.readouterr().err
    assert predict.main(["--model", "m", "--input", str(tmp_path / "rows.parquet"),
                         "--output", str(tmp_path / "o.parquet")]) == 3
    assert "does not exist" in capsys.readouterr().err
