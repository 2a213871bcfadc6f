"""Fixtures of the integration tests: a real Spark standalone cluster (tests/spark_cluster.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def spark_cluster(tmp_path_factory):
    """A Spark standalone cluster on 127.0.0.1 (one master, two workers of 1 core and 2 GiB).

    Started once per test module; yields the running :class:`spark_cluster.SparkCluster`
    (``.master_url`` is the ``spark://127.0.0.1:PORT`` to submit to) and stops all three
    daemons by pid when the module is done.
    """
    from spark_cluster import start_cluster

    cluster = start_cluster(tmp_path_factory.mktemp("spark_cluster"), workers=2, cores=1, memory="2g")
    try:
        yield cluster
    finally:
        cluster.stop()
