"""Create-if-absent as the storage guarantees it: of concurrent local creators exactly one wins
(O_EXCL), and on S3 a second creator is refused (a conditional PutObject, against moto)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from batch_scoring.jobs.filesystem import create_exclusive


def race(spark, path: str, creators: int = 8) -> list[bool]:
    with ThreadPoolExecutor(creators) as pool:
        return list(pool.map(lambda i: create_exclusive(spark, path, f"creator {i}"), range(creators)))


def test_one_local_creator_wins_and_the_file_is_never_overwritten(spark, tmp_path):
    path = tmp_path / "_manifests" / "run_date=2026-11-22" / "_run_date_claim"
    results = race(spark, str(path))
    assert results.count(True) == 1
    winner = results.index(True)
    assert path.read_text() == f"creator {winner}"
    assert create_exclusive(spark, f"file://{path}", "late") is False
    assert path.read_text() == f"creator {winner}"


def test_the_second_s3_creator_is_refused_by_if_none_match(spark, aws):
    # Sequential on purpose: S3 makes the conditional put atomic; moto's check is not the
    # thing under test, the request is (If-None-Match: *, 412 read as "exists").
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="claims", CreateBucketConfiguration={"LocationConstraint": aws.region})
    key = "prices/_manifests/run_date=2026-11-22/_run_date_claim"
    assert create_exclusive(spark, f"s3a://claims/{key}", "first") is True
    assert create_exclusive(spark, f"s3://claims/{key}", "second") is False
    assert s3.get_object(Bucket="claims", Key=key)["Body"].read().decode() == "first"


def test_a_missing_bucket_is_an_error_not_a_lost_race(spark, aws):
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError, match="NoSuchBucket"):
        create_exclusive(spark, "s3://no-such-bucket/x/_run_date_claim", "claim")
