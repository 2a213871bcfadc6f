"""The README's tutorials run as written (issue 18, finding 9).

The code blocks of a tutorial are taken from README.md in order: ```<lang> file=PATH blocks are
written to PATH, ```bash tutorial=NAME blocks run line by line in bash, ```python tutorial=NAME
blocks run with this interpreter; all in a fresh folder holding the checkout's ``conf/`` and a
``.venv`` link to this environment, as a user runs them from the checkout.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytestmark = [pytest.mark.spark, pytest.mark.one_line]  # jobs in child processes; the README tutorial

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```$", re.S | re.M)


def tutorial_blocks(title: str) -> list[tuple[str, dict[str, str], str]]:
    """``(language, attributes, code)`` of each block in the README section ``## <title>``."""
    text = (ROOT / "README.md").read_text()
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    section = text[start:end if end != -1 else None]
    blocks = []
    for match in FENCE.finditer(section):
        attributes = dict(part.split("=", 1) for part in match.group(2).split() if "=" in part)
        blocks.append((match.group(1), attributes, match.group(3)))
    return blocks


def run_tutorial(title: str, folder: Path) -> list[subprocess.CompletedProcess]:
    """Write and run the tutorial's blocks in ``folder``; return every command's result."""
    shutil.copytree(ROOT / "conf", folder / "conf")
    (folder / ".venv").symlink_to(Path(sys.executable).parent.parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYSPARK_")}
    results = []
    for language, attributes, code in tutorial_blocks(title):
        if "file" in attributes:
            path = folder / attributes["file"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(code)
            continue
        if "tutorial" not in attributes:
            continue
        command = ["bash", "-euo", "pipefail", "-c", code] if language == "bash" else [sys.executable, "-c", code]
        result = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"{code}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        results.append(result)
    return results


def test_price_your_own_data(tmp_path):
    blocks = tutorial_blocks("Tutorial: price your own data")
    assert [a.get("file") for _, a, _ in blocks if "file" in a] == ["my_markup.py", "conf/jobs/my_markup.yaml"]

    generate, job, read = run_tutorial("Tutorial: price your own data", tmp_path)

    assert re.search(r"│ units priced +│ +50 │", job.stdout), job.stdout
    assert re.search(r"│ units failed +│ +0 │", job.stdout), job.stdout
    assert read.stdout.startswith("50 units")
    prices = pd.read_parquet(tmp_path / "output/my_markup")
    sales = pd.read_parquet(tmp_path / "data/my_sales").sort_values("sale_date")
    last = sales.groupby(["segment", "location", "product"])["price"].last()
    got = prices.set_index(["segment", "location", "product"]).sort_index()
    assert got["last_price"].tolist() == last.sort_index().tolist()
    assert got["new_price"].tolist() == pytest.approx((last.sort_index() * 1.08).round(2).tolist())
