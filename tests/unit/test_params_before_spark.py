"""Function parameters are bound to the function's signature before Spark starts (issue 18, findings 1-2).

``run_job.main`` runs in this process: a refused config returns exit 2 with the field, the
accepted names and the nearest one, starts no SparkSession and changes no file under the
output and rejects roots.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pandas as pd
import pytest

from batch_scoring.jobs import run_job
from tests.user_modules import importable_module

MODULE = '''
    import pandas as pd

    def price(key, pdf, markup: float, floor: float = 0.0):
        """One row per unit: the mean price marked up."""
        return pd.DataFrame({"price": [max(floor, pdf["price"].mean() * (1 + markup))]})
'''


def listing(root: Path) -> dict[str, int]:
    """Every file under ``root`` with its size in bytes (empty when ``root`` does not exist)."""
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def job_folder(tmp_path, monkeypatch):
    """A job folder: a 4-row Parquet source, a prior output/rejects file, the job YAML."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "src").mkdir()
    pd.DataFrame({"unit": ["a", "a", "b", "b"], "price": [1.0, 2.0, 3.0, 4.0]}).to_parquet(
        tmp_path / "src" / "part-0.parquet"
    )
    for root in ("out", "out_rejects"):
        (tmp_path / root / "run_date=2026-01-01").mkdir(parents=True)
        (tmp_path / root / "run_date=2026-01-01" / "kept.parquet").write_bytes(b"earlier run")
    (tmp_path / "job.yaml").write_text(textwrap.dedent("""
        job: own_markup
        source: {path: src, format: parquet}
        unit_of_work: {keys: [unit]}
        function:
          name: own_markup:price
          allowed_modules: [own_markup]
          shape: unit
          output_schema: price double
          params: {markupp: 0.05}
        output: {path: out, format: parquet}
    """))
    with importable_module(tmp_path, "own_markup", MODULE):
        yield tmp_path


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ([], ["function.params.markupp", "has no parameter 'markupp'", "(did you mean 'markup'?)",
              "Accepted parameters: markup, floor"]),
        (["--set", "function.params={markup: lots}"],
         ["function.params.markup: 'lots' is not a valid float", "own_markup:price"]),
        (["--set", "function.params={floor: 1}"],
         ["needs parameter(s) markup without a default", "set function.params.markup"]),
    ],
)
def test_a_parameter_mistake_is_exit_2_before_spark_and_writes_nothing(job_folder, capsys, spark_starts, overrides, words):
    before = {root: listing(job_folder / root) for root in ("out", "out_rejects")}

    code = run_job.main(["--job", str(job_folder / "job.yaml"), "--run-date", "2026-01-01", *overrides])

    assert code == 2
    error = capsys.readouterr().err
    for word in words:
        assert word in error
    assert spark_starts == []
    assert {root: listing(job_folder / root) for root in ("out", "out_rejects")} == before
