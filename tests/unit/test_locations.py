"""Path identity: sources, outputs and rejects compared as locations, not as strings."""

from __future__ import annotations

from pathlib import Path

import pytest

from batch_scoring.jobs.commit import check_paths
from batch_scoring.jobs.config import load_job
from batch_scoring.jobs.errors import ConfigError
from batch_scoring.jobs.locations import canonical, is_inside, local_path, overlaps

ROOT = Path(__file__).resolve().parents[2]


def job(source: str, output: str, rejects: str | None = None):
    overrides = [f"source.path={source}", f"output.path={output}"]
    if rejects:
        overrides.append(f"output.rejects_path={rejects}")
    return load_job(ROOT / "conf/jobs/data_pricing.yaml", overrides)


def test_file_uris_dots_and_trailing_slashes_name_the_same_local_folder(tmp_path):
    sales = tmp_path / "data" / "sales"
    sales.mkdir(parents=True)
    forms = [str(sales), f"file://{sales}", f"file:{sales}/", f"file://localhost{sales}",
             f"{tmp_path}/data/./sales/", f"{tmp_path}/data/x/../sales"]
    assert {canonical(form) for form in forms} == {str(sales.resolve())}


def test_s3_schemes_and_slashes_name_one_prefix():
    assert {canonical(p) for p in ("s3://b/sales", "s3a://b/sales/", "s3n://b//sales")} == {"s3://b/sales"}
    assert canonical("hdfs://NN:8020/a/b/") == "hdfs://nn:8020/a/b"
    assert canonical("abfs://Data@acct.dfs.core.windows.net/x/") == "abfs://data@acct.dfs.core.windows.net/x"
    assert canonical("s3a://bucket/") == canonical("s3://bucket") == "s3://bucket"


def test_a_symlink_is_resolved_also_below_a_folder_that_does_not_exist_yet(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    assert canonical(str(tmp_path / "link" / "out" / "new")) == str(real.resolve() / "out" / "new")


@pytest.mark.parametrize("first, second, expected", [
    ("/data/sales", "/data/sales_rejects", False),
    ("/data/sales", "/data/sales/x", True),
    ("s3://b/sales/out", "s3a://b/sales", True),
    ("s3://b/sales", "s3://c/sales", False),
])
def test_overlap_is_by_path_segment(first, second, expected):
    assert overlaps(first, second) is expected
    assert overlaps(second, first) is expected


def test_output_given_as_a_file_uri_of_the_source_is_refused(tmp_path):
    sales = tmp_path / "sales"
    sales.mkdir()
    with pytest.raises(ConfigError) as caught:
        check_paths(job(str(sales), f"file://{sales}"))
    assert str(caught.value).startswith(f"output.path file://{sales} overlaps source.path {sales}")


def test_output_reached_through_a_symlink_to_the_source_is_refused(tmp_path):
    sales = tmp_path / "sales"
    sales.mkdir()
    (tmp_path / "shortcut").symlink_to(sales)
    with pytest.raises(ConfigError, match="output.path .*shortcut/prices overlaps source.path"):
        check_paths(job(str(sales), str(tmp_path / "shortcut" / "prices")))


def test_a_file_uri_source_with_the_output_inside_it_is_refused(tmp_path):
    sales = tmp_path / "sales"
    sales.mkdir()
    with pytest.raises(ConfigError, match="output.path .* overlaps source.path file://"):
        check_paths(job(f"file://{sales}", str(sales / "out")))


def test_rejects_given_as_a_file_uri_inside_the_source_are_refused(tmp_path):
    sales = tmp_path / "sales"
    sales.mkdir()
    with pytest.raises(ConfigError, match="output.rejects_path file://.* overlaps source.path"):
        check_paths(job(str(sales), str(tmp_path / "out"), f"file://{sales}/rejects"))


def test_rejects_inside_the_output_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="output.rejects_path .* overlaps output.path"):
        check_paths(job(str(tmp_path / "sales"), str(tmp_path / "out"), str(tmp_path / "out" / "rej")))


def test_separate_folders_pass(tmp_path):
    check_paths(job(str(tmp_path / "sales"), str(tmp_path / "out")))  # default rejects: out_rejects


@pytest.mark.parametrize("path, folder, expected", [
    ("/data/sales/part-0.parquet", "/data/sales", True),
    ("file:/data/sales/part-0.parquet", "/data/sales/", True),
    ("/data/sales", "/data/sales", True),
    ("/data/sales_2/part-0.parquet", "/data/sales", False),
    ("/data", "/data/sales", False),
])
def test_is_inside_is_one_way_and_by_segment(path, folder, expected):
    assert is_inside(path, folder) is expected


def test_a_file_uri_with_a_host_and_a_windows_drive_stay_distinct_places(tmp_path):
    assert canonical("file://nas01/share/sales/") == "file://nas01/share/sales"
    assert canonical("C:/data/sales").startswith("/") and canonical("C:/data/sales").endswith("C:/data/sales")
    assert not overlaps("file://nas01/share/sales", "/share/sales")


@pytest.mark.parametrize("written, local", [
    ("file:/data/sales/part-0.parquet", "/data/sales/part-0.parquet"),
    ("file:///data/sales", "/data/sales"),
    ("file://localhost/data/sales", "/data/sales"),
    ("/data/./sales", "/data/./sales"),  # as written: nothing resolved
    ("file://fileserver/data/sales", "file://fileserver/data/sales"),  # another host's file
    ("s3a://bucket/sales", "s3a://bucket/sales"),
    ("file:relative/sales", "file:relative/sales"),
])
def test_local_path_strips_only_a_local_file_scheme(written, local):
    assert local_path(written) == local
