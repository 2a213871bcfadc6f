"""The ``batch-score`` command line's conventions: help with an example, --version, exit codes."""

from __future__ import annotations

import pytest

from batch_scoring.jobs import cli
from batch_scoring.jobs.manifest import package_version

WITH_HELP = ["run", "sample-data", "submit-args", "predict", "show", "report", "fetch-jars", "sample-model", "package",
             "submit", "schedule", "unschedule"]


@pytest.mark.parametrize("command", WITH_HELP)
def test_every_command_has_help_with_an_example(command, capsys):
    with pytest.raises(SystemExit) as done:
        cli.main([command, "--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert f"usage: batch-score {command}" in text
    assert f"example: batch-score {command} " in text or f"examples: batch-score {command} " in text


def test_version_and_top_level_help(capsys):
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out == f"batch-score {package_version()}\n"
    assert cli.main(["--help"]) == 0
    assert "batch-score show OUTPUT" in capsys.readouterr().out


def test_an_unknown_command_is_exit_2_on_stderr_with_the_nearest(capsys):
    assert cli.main(["predcit"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "error: unknown command 'predcit' (did you mean 'predict'?)" in captured.err
