"""Shared fixtures: one local SparkSession for the whole test session.

The session is fast and small (local[2], 4 shuffle partitions, UI off, UTC) and has Delta
enabled, so Spark tests and Delta tests share it. Python workers use this interpreter.
"""

from __future__ import annotations

import os
import sys

import pytest

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
os.environ.setdefault("PYARROW_IGNORE_TIMEZONE", "1")
# The JVMs the tests start in child processes (spark-submit runs, standalone-cluster daemons
# and executors) live for seconds: JIT compiling with C1 only takes about 40 % less CPU there
# than C1 and C2, on a 2-core machine that runs two of them at once. The `spark` fixture's
# long-lived JVM keeps the default (it is slower with C1 only).
CHILD_JAVA_OPTIONS = "-XX:TieredStopAtLevel=1"
os.environ.setdefault("JAVA_TOOL_OPTIONS", CHILD_JAVA_OPTIONS)


SPARK_FOLDER = "spark"


def pytest_collection_modifyitems(config, items):
    """Mark every test that starts Spark in this process (the ``spark`` fixture) or lives in
    ``tests/spark`` with ``spark``; tests that start Spark in a child process carry the mark
    themselves (``pytestmark = pytest.mark.spark``)."""
    for item in items:
        if "spark" in item.fixturenames or item.path.parent.name == SPARK_FOLDER:
            item.add_marker(pytest.mark.spark)


@pytest.fixture(scope="session")
def spark():
    """A local SparkSession with Delta and the PostgreSQL JDBC driver, stopped at the end of
    the test session."""
    from delta import configure_spark_with_delta_pip
    from pyspark.sql import SparkSession

    from batch_scoring.jobs.jdbc import POSTGRESQL_PACKAGE  # the JDBC tests' driver

    builder = (
        SparkSession.builder.master("local[2]")
        .appName("batch-scoring-tests")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.default.parallelism", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.adaptive.enabled", "false")
        .config("spark.driver.memory", "2g")
        .config("spark.log.level", "ERROR")
        .config("spark.databricks.delta.snapshotPartitions", "2")
        .config("spark.sql.csv.parser.columnPruning.enabled", "false")
        .config("spark.sql.ansi.enabled", "true")  # as every run (session.LINE_DEFAULTS)
        .config("spark.sql.legacy.timeParserPolicy", "CORRECTED")
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config(
            "spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog"
        )
    )
    ours = os.environ.get("JAVA_TOOL_OPTIONS") == CHILD_JAVA_OPTIONS  # a user's own options stay
    child_options = os.environ.pop("JAVA_TOOL_OPTIONS") if ours else None
    try:
        session = configure_spark_with_delta_pip(builder, extra_packages=[POSTGRESQL_PACKAGE]).getOrCreate()
    finally:
        if child_options is not None:
            os.environ["JAVA_TOOL_OPTIONS"] = child_options
    yield session
    session.stop()


@pytest.fixture
def arrow_batch_rows(spark):
    """Set ``spark.sql.execution.arrow.maxRecordsPerBatch`` for one test, then restore it."""
    key = "spark.sql.execution.arrow.maxRecordsPerBatch"
    previous = spark.conf.get(key)

    def set_rows(rows: int) -> None:
        spark.conf.set(key, str(rows))

    yield set_rows
    spark.conf.set(key, previous)


@pytest.fixture
def spark_starts(monkeypatch) -> list[str]:
    """Record every Spark start by the job entry point (``run_job.build_session``).

    A test that expects a refusal before Spark asserts the list is empty. This works whether or
    not another test's session is already running in this process, which a check of
    ``SparkContext._active_spark_context`` cannot tell apart.
    """
    from batch_scoring.jobs import run_job

    starts: list[str] = []
    real_build = run_job.build_session

    def recording_build(profile, job):
        starts.append(job.job)
        return real_build(profile, job)

    monkeypatch.setattr(run_job, "build_session", recording_build)
    return starts


# MLflow fixtures: a real tracking server and models logged on it (tests/mlflow_server.py).
import dataclasses  # noqa: E402
from typing import Any  # noqa: E402


@dataclasses.dataclass(frozen=True)
class RegisteredModels:
    """What ``registered_models`` logged on the session's MLflow tracking server.

    ``features`` is the iris feature table the models were trained on (150 rows, float64
    columns ``sepal_length``, ``sepal_width``, ``petal_length``, ``petal_width``, cm); the fitted
    estimators are kept so tests can compare a loaded model's predictions with their own.
    """

    tracking_uri: str
    name: str
    features: Any  # pandas.DataFrame
    classifier_v1: Any  # sklearn LogisticRegression, C=1.0, registered as version 1 (champion)
    classifier_v2: Any  # sklearn LogisticRegression, C=0.05, registered as version 2
    unsigned: Any  # sklearn LogisticRegression, C=0.5, logged without signature, not registered
    run_id_v1: str
    run_id_v2: str
    run_id_unsigned: str
    uri_v1: str  # models:/iris_classifier/1
    uri_v2: str  # models:/iris_classifier/2
    uri_champion: str  # models:/iris_classifier@champion
    uri_latest: str  # models:/iris_classifier/latest
    uri_v1_run: str  # runs:/<run_id_v1>/model
    uri_unsigned: str  # runs:/<run_id_unsigned>/model


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real MLflow tracking server (SQLite store, served artifacts), stopped at session end."""
    from mlflow_server import start_tracking_server

    server = start_tracking_server(tmp_path_factory.mktemp("mlflow_server"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def registered_models(mlflow_server) -> RegisteredModels:
    """Train and log three small iris classifiers on ``mlflow_server``.

    ``iris_classifier`` version 1 (alias ``champion``) and version 2 are logged with signatures
    inferred from the features and predictions; a third model is logged without signature in
    its own run and not registered; each run is in the experiment ``iris``.
    ``mlflow.start_run`` only works through the global tracking URI, so it is set while logging
    and restored afterwards (``set_tracking_uri`` mirrors itself into ``MLFLOW_TRACKING_URI``,
    and ``set_tracking_uri(None)`` unsets both, so the environment variable is what is saved).
    """
    import mlflow
    import mlflow.sklearn
    import sklearn
    from mlflow.models import infer_signature
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    iris = load_iris(as_frame=True)
    features = iris.data.set_axis(
        ["sepal_length", "sepal_width", "petal_length", "petal_width"], axis=1
    )
    target = iris.target
    name = "iris_classifier"
    client = mlflow.MlflowClient(tracking_uri=mlflow_server.uri)
    experiment_id = client.create_experiment("iris")
    # Given explicitly: MLflow's requirement inference runs a subprocess (~4 s per model).
    requirements = [f"scikit-learn=={sklearn.__version__}", f"mlflow=={mlflow.__version__}"]

    def log(estimator, *, signed: bool, register: bool) -> str:
        estimator.fit(features, target)
        signature = infer_signature(features, estimator.predict(features)) if signed else None
        with mlflow.start_run(experiment_id=experiment_id) as run:
            mlflow.sklearn.log_model(
                estimator, name="model", signature=signature,
                registered_model_name=name if register else None,
                pip_requirements=requirements,
            )
        return run.info.run_id

    previous = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(mlflow_server.uri)
    try:
        classifier_v1 = LogisticRegression(C=1.0, max_iter=1000)
        run_id_v1 = log(classifier_v1, signed=True, register=True)
        classifier_v2 = LogisticRegression(C=0.05, max_iter=1000)
        run_id_v2 = log(classifier_v2, signed=True, register=True)
        unsigned = LogisticRegression(C=0.5, max_iter=1000)
        run_id_unsigned = log(unsigned, signed=False, register=False)
    finally:
        mlflow.set_tracking_uri(previous)
    client.set_registered_model_alias(name, "champion", "1")
    return RegisteredModels(
        tracking_uri=mlflow_server.uri, name=name, features=features,
        classifier_v1=classifier_v1, classifier_v2=classifier_v2, unsigned=unsigned,
        run_id_v1=run_id_v1, run_id_v2=run_id_v2, run_id_unsigned=run_id_unsigned,
        uri_v1=f"models:/{name}/1", uri_v2=f"models:/{name}/2",
        uri_champion=f"models:/{name}@champion", uri_latest=f"models:/{name}/latest",
        uri_v1_run=f"runs:/{run_id_v1}/model", uri_unsigned=f"runs:/{run_id_unsigned}/model",
    )


# AWS fixtures: a real moto server on 127.0.0.1 (tests/moto_server.py).
@pytest.fixture(scope="session")
def moto_server():
    """A moto server on a free port of 127.0.0.1 for the whole session, stopped at its end."""
    import moto_server as moto

    server, endpoint = moto.start()
    yield endpoint
    server.stop()


@pytest.fixture
def aws(moto_server, monkeypatch):
    """The moto endpoint, emptied, with this process's boto3 pointed at it for one test."""
    import moto_server as moto

    moto.reset(moto_server)
    for key, value in moto_server.environment.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return moto_server


# PostgreSQL fixture: a real server from Debian's packages on 127.0.0.1 (tests/postgres_server.py).
@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL server for the session (skipped when PostgreSQL is not installed),
    stopped and its data folder removed at the end, also after a failure."""
    import postgres_server

    reason = postgres_server.skip_reason()
    if reason:
        pytest.skip(reason)
    server = postgres_server.start()
    try:
        yield server
    finally:
        server.stop()
