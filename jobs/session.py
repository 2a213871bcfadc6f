"""Spark settings of a run: built from the platform profile and the job, in one place.

The same settings reach Spark two ways: :func:`submit_arguments` renders them as spark-submit
flags (``spark-submit.sh`` uses it, because jars and static SQL settings must be known before
the JVM starts), and :func:`build_session` applies them to a builder when Python starts Spark
itself (``python -m batch_scoring.jobs.run_job``, tests, notebooks).
"""

from __future__ import annotations

import os
import re
import sys
from importlib import metadata
from pathlib import Path

from pyspark.sql import SparkSession

from batch_scoring.jobs.config import JobConfig, PlatformProfile
from batch_scoring.jobs.text_records import CSV_PRUNING

SCALA_BINARY_VERSION = "2.13"
DELTA_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}
SECRET_KEY = re.compile(r"secret|password|token|credential|access\.key|session\.key", re.I)


def delta_package() -> str:
    """Maven coordinate of the Delta jar matching the installed delta-spark wheel."""
    return f"io.delta:delta-spark_{SCALA_BINARY_VERSION}:{metadata.version('delta-spark')}"


def spark_jars() -> Path:
    """The ``jars`` folder of the Spark the JVM runs: ``$SPARK_HOME/jars``, else pip's pyspark.

    Under spark-submit the driver imports pyspark from ``$SPARK_HOME/python/lib/pyspark.zip``,
    so ``pyspark.__file__`` points into that zip; spark-submit always sets ``SPARK_HOME``.
    """
    import pyspark

    home = os.environ.get("SPARK_HOME")
    return Path(home) / "jars" if home else Path(pyspark.__file__).parent / "jars"


def hadoop_aws_package() -> str:
    """Maven coordinate of hadoop-aws matching the Hadoop inside the Spark that runs the job."""
    jars = spark_jars()
    found = sorted(jars.glob("hadoop-client-api-*.jar"))
    if not found:
        raise RuntimeError(f"no hadoop-client-api jar in {jars}; is pyspark installed whole?")
    version = found[0].name.removeprefix("hadoop-client-api-").removesuffix(".jar")
    return f"org.apache.hadoop:hadoop-aws:{version}"


def uses_s3a(profile: PlatformProfile, job: JobConfig) -> bool:
    """True when a job path will be read through the s3a connector on this profile."""
    return any(
        p.startswith("s3a://") or (p.startswith("s3://") and profile.s3_scheme == "s3a")
        for p in job.paths()
    )


def spark_packages(profile: PlatformProfile, job: JobConfig) -> list[str]:
    """Maven packages the run needs: the profile's, Delta's and hadoop-aws when used."""
    packages = list(profile.packages)
    if job.uses_delta and not delta_on_cluster(profile) and not any(
        p.startswith("io.delta:") for p in packages
    ):
        packages.append(delta_package())
    if uses_s3a(profile, job) and not any("hadoop-aws" in p for p in packages):
        packages.append(hadoop_aws_package())
    return packages


def delta_on_cluster(profile: PlatformProfile) -> bool:
    """True when the profile names the cluster's own Delta jars (EMR ships them)."""
    return any("delta-spark" in jar.rsplit("/", 1)[-1] for jar in profile.jars)


def spark_settings(profile: PlatformProfile, job: JobConfig) -> dict[str, str]:
    """All Spark settings of the run: profile, then job, then Delta's when used, and CSV
    column pruning off for a CSV source (malformed lines are then found whatever a query
    reads)."""
    settings = {k: _as_text(v) for k, v in profile.spark_conf.items()}
    settings.update({k: _as_text(v) for k, v in job.spark_conf.items()})
    if job.uses_delta:
        settings.update(DELTA_CONF)
    if job.source.format == "csv":
        settings[CSV_PRUNING] = "false"  # see batch_scoring.jobs.text_records
    return settings


def submit_arguments(profile: PlatformProfile, job: JobConfig) -> list[str]:
    """spark-submit flags for the run: --master, --deploy-mode, --packages, --jars, --conf k=v."""
    args = []
    if profile.master:
        args += ["--master", profile.master]
    args += ["--deploy-mode", profile.deploy_mode, "--name", job.job]
    packages = spark_packages(profile, job)
    if packages:
        args += ["--packages", ",".join(packages)]
    if profile.jars:
        args += ["--jars", ",".join(profile.jars)]
    for key, value in spark_settings(profile, job).items():
        args += ["--conf", f"{key}={value}"]
    return args


def set_worker_python(master: str | None, environ: dict[str, str] | None = None) -> str | None:
    """Make a local master's Python workers run this interpreter, unless one is chosen already.

    Spark starts its Python workers with ``$PYSPARK_PYTHON`` (default: the ``python3`` on
    ``PATH``), which may not be the interpreter that has this package installed. For a local
    master (``local``, ``local[2]``, ``local[2,3]``, ``local-cluster[...]``) without
    ``PYSPARK_PYTHON`` set, this sets ``PYSPARK_PYTHON`` to :data:`sys.executable`. Another master's workers run on other machines: left alone.

    Args:
        master: the profile's ``master`` (or the ``spark.master`` already set), or None.
        environ: the environment to change (default :data:`os.environ`).

    Returns:
        The interpreter set, or None when nothing was changed.
    """
    environ = os.environ if environ is None else environ
    master = master or environ.get("MASTER") or ""
    if not master.startswith("local") or environ.get("PYSPARK_PYTHON"):
        return None
    environ["PYSPARK_PYTHON"] = sys.executable
    return sys.executable


def build_session(profile: PlatformProfile, job: JobConfig) -> SparkSession:
    """Return the SparkSession for a run, creating it from the settings if none is running.

    Under spark-submit the JVM already holds these settings (from :func:`submit_arguments`);
    applying them again here changes nothing. Started from plain Python, the builder gets them
    all, including ``spark.jars.packages``.
    """
    builder = SparkSession.builder.appName(job.job)
    if profile.master:
        builder = builder.master(profile.master)
    packages = spark_packages(profile, job)
    if packages:
        builder = builder.config("spark.jars.packages", ",".join(packages))
    if profile.jars:
        builder = builder.config("spark.jars", ",".join(profile.jars))
    for key, value in spark_settings(profile, job).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def redact(settings: dict[str, str]) -> dict[str, str]:
    """Copy of ``settings`` with values of secret-looking keys replaced by ``***``."""
    return {k: ("***" if SECRET_KEY.search(k) else v) for k, v in settings.items()}


def _as_text(value: str | int | float | bool) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
