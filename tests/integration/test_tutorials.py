"""The README's tutorials run as written (issue 18, finding 9).

The code blocks of a tutorial are taken from README.md in order: ```<lang> file=PATH blocks are
written to PATH, ```bash tutorial=NAME blocks run line by line in bash, ```python tutorial=NAME
blocks run with this interpreter; all in a fresh folder holding the checkout's ``conf/`` and a
``.venv`` link to this environment, as a user runs them from the checkout.
"""

from __future__ import annotations

import json
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


def test_score_with_your_own_model(tmp_path):
    blocks = tutorial_blocks("Tutorial: score with your own model")
    assert [a.get("file") for _, a, _ in blocks if "file" in a] == ["conf/jobs/my_model.yaml"]

    generate, train, job, records, read = run_tutorial("Tutorial: score with your own model", tmp_path)

    sales = pd.read_parquet(tmp_path / "data/my_sales")
    rows = len(sales)
    assert re.search(rf"│ rows in +│ +{rows:,} │", job.stdout), job.stdout
    assert re.search(rf"│ rows scored +│ +{rows:,} │", job.stdout), job.stdout
    assert re.search(r"│ rows rejected +│ +0 │", job.stdout), job.stdout
    assert read.stdout.startswith(f"{rows} rows")
    labels, probabilities = registered_estimators(tmp_path)
    keys = ["segment", "location", "product", "sale_date"]
    scores = pd.read_parquet(tmp_path / "output/my_model").sort_values(keys).reset_index(drop=True)
    sales = sales.sort_values(keys).reset_index(drop=True)
    assert scores[keys].astype(str).equals(sales[keys].astype(str))
    expected = probabilities.predict_proba(sales[["price", "unit_cost"]])
    assert scores["p_quiet"].tolist() == expected[:, 0].tolist()
    assert scores["p_busy"].tolist() == expected[:, 1].tolist()
    assert set(scores["model_version"]) == {"2"} and set(scores["model_uri"]) == {"models:/busy_day@champion"}

    printed = [json.loads(line) for line in records.stdout.splitlines()]
    asked = pd.DataFrame({"price": [9.69, 49.13], "unit_cost": [4.05, 15.32]})
    assert [p["prediction"] for p in printed] == labels.predict(asked).tolist() == [1, 0]
    assert {p["model_version"] for p in printed} == {"1"}


def registered_estimators(folder: Path):
    """Versions 1 and 2 of ``busy_day`` from the tutorial's registry, as scikit-learn estimators."""
    import mlflow.sklearn

    from batch_scoring.jobs.model_resolution import resolve_model

    tracking = f"sqlite:///{folder / 'data/mlflow.db'}"
    estimators = []
    for version in ("1", "2"):
        uri = f"models:/busy_day/{version}"
        resolved = resolve_model(uri, str(folder / f"v{version}"), allowed_prefixes=[uri],
                                 tracking_uri=tracking)
        estimators.append(mlflow.sklearn.load_model(resolved.local_path))
    return estimators


def test_a_tree_model_saved_without_its_trusted_type_fails_as_the_tutorial_says(tmp_path):
    import mlflow.sklearn
    from mlflow.exceptions import MlflowException
    from sklearn.tree import DecisionTreeClassifier

    tree = DecisionTreeClassifier(max_depth=2).fit([[0.0], [1.0]], [0, 1])

    with pytest.raises(MlflowException, match=re.escape("Untrusted types found in the file: ['sklearn.tree._tree.Tree']")):
        mlflow.sklearn.save_model(tree, str(tmp_path / "untrusted"))
    mlflow.sklearn.save_model(tree, str(tmp_path / "trusted"), serialization_format="skops",
                              skops_trusted_types=["sklearn.tree._tree.Tree"])
    assert mlflow.sklearn.load_model(str(tmp_path / "trusted")).predict([[1.0]]).tolist() == [1]
