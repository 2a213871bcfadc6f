"""Spark settings of a run: built from the platform profile and the job, in one place.

The same settings reach Spark two ways: :func:`write_properties_file` writes them to a Java
properties file readable only by its owner (mode 0600) and :func:`submit_arguments` returns
the spark-submit flags that point at it (``spark-submit.sh`` uses both, because jars and static
SQL settings must be known before the JVM starts, and removes the file after the run); and
:func:`build_session` applies them to a builder when Python starts Spark itself
(``python -m batch_scoring.jobs.run_job``, tests, notebooks).

No setting *value* is ever put on a command line: every argument of a process is visible to
every user of the machine (``ps``, ``/proc/<pid>/cmdline``), a file with mode 0600 is not.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

import javaproperties
from pyspark.sql import SparkSession

from batch_scoring.jobs.config import JobConfig, PlatformProfile
from batch_scoring.jobs.runtime_lines import RuntimeLine, installed_line
from batch_scoring.jobs.text_records import CSV_PRUNING

# Settings whose defaults differ between the runtime lines, set to Spark 4's (EMR 8) so a job
# computes the same on EMR 7 (Spark 3.5): ANSI SQL (off in 3.5, where an invalid cast, an
# overflow or a division by zero is a silent null), and the datetime parser policy (EXCEPTION
# in 3.5, which fails the run on an impossible date such as 2026-02-30 in a CSV instead of
# reading it as null and rejecting the row). A profile or job may set either.
LINE_DEFAULTS = {"spark.sql.ansi.enabled": "true", "spark.sql.legacy.timeParserPolicy": "CORRECTED"}
DELTA_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}


def delta_package() -> str:
    """Maven coordinate of the Delta jar matching the installed delta-spark wheel and the Scala
    of the Spark that runs the job (``io.delta:delta-spark_2.13:4.2.0`` on Spark 4,
    ``io.delta:delta-spark_2.12:3.3.2`` on pip's Spark 3.5)."""
    return f"io.delta:delta-spark_{scala_binary_version()}:{metadata.version('delta-spark')}"


def scala_binary_version() -> str:
    """The Scala binary version (``"2.13"``) of the Spark jars, from ``spark-core_<scala>-*.jar``.

    Raises:
        RuntimeError: when the jars folder holds no spark-core jar.
    """
    jars = spark_jars()
    found = sorted(jars.glob("spark-core_*.jar"))
    if not found:
        raise RuntimeError(f"no spark-core jar in {jars}; is pyspark installed whole?")
    return found[0].name.removeprefix("spark-core_").split("-", 1)[0]


def spark_home() -> Path:
    """The home folder of the Spark the JVM runs: ``$SPARK_HOME``, else pip's pyspark package.

    Under spark-submit the driver imports pyspark from ``$SPARK_HOME/python/lib/pyspark.zip``,
    so ``pyspark.__file__`` points into that zip; spark-submit always sets ``SPARK_HOME``.
    """
    import pyspark

    home = os.environ.get("SPARK_HOME")
    return Path(home) if home else Path(pyspark.__file__).parent


def spark_jars() -> Path:
    """The ``jars`` folder of :func:`spark_home`."""
    return spark_home() / "jars"


def hadoop_aws_package() -> str:
    """Maven coordinate of hadoop-aws matching the Hadoop inside the Spark that runs the job."""
    jars = spark_jars()
    found = sorted(jars.glob("hadoop-client-api-*.jar"))
    if not found:
        raise RuntimeError(f"no hadoop-client-api jar in {jars}; is pyspark installed whole?")
    version = found[0].name.removeprefix("hadoop-client-api-").removesuffix(".jar")
    return f"org.apache.hadoop:hadoop-aws:{version}"


def uses_s3a(profile: PlatformProfile, paths: Sequence[str]) -> bool:
    """True when one of ``paths`` will be read through the s3a connector on this profile."""
    return any(
        p.startswith("s3a://") or (p.startswith("s3://") and profile.s3_scheme == "s3a")
        for p in paths
    )


def spark_packages(profile: PlatformProfile, job: JobConfig) -> list[str]:
    """Maven packages the run needs: the profile's, Delta's and hadoop-aws when used, and the
    JDBC driver of a database source or output (unless the profile's ``jars`` hold one: EMR's
    preinstalled Redshift driver)."""
    packages = _packages(profile, job.uses_delta, job.paths())
    for url in job.jdbc_urls():
        from batch_scoring.jobs.jdbc import driver_package

        package = driver_package(url)
        if package not in packages and not _driver_in_jars(profile, package):
            packages.append(package)
    return packages


def _driver_in_jars(profile: PlatformProfile, package: str) -> bool:
    """True when one of the profile's jars is the driver ``package`` names (by its artifact id,
    or a Redshift JDBC jar for the Redshift driver)."""
    artifact = package.split(":")[1]
    names = [jar.rsplit("/", 1)[-1].lower() for jar in profile.jars]
    return any(artifact in name or ("redshift" in artifact and "redshift" in name and "jdbc" in name)
               for name in names)


def _packages(profile: PlatformProfile, delta: bool, paths: Sequence[str]) -> list[str]:
    packages = list(profile.packages)
    if delta and not delta_on_cluster(profile) and not any(p.startswith("io.delta:") for p in packages):
        packages.append(delta_package())
    if uses_s3a(profile, paths) and not any("hadoop-aws" in p for p in packages):
        packages.append(hadoop_aws_package())
    return packages


def delta_on_cluster(profile: PlatformProfile) -> bool:
    """True when the profile names the cluster's own Delta jars (EMR ships them)."""
    return any("delta-spark" in jar.rsplit("/", 1)[-1] for jar in profile.jars)


def spark_settings(profile: PlatformProfile, job: JobConfig) -> dict[str, str]:
    """All Spark settings of the run: :data:`LINE_DEFAULTS`, then the profile's,
    then the job's, then Delta's when used, and CSV column pruning off for a CSV source
    (malformed lines are then found whatever a query reads)."""
    settings = dict(LINE_DEFAULTS)
    settings.update({k: _as_text(v) for k, v in profile.spark_conf.items()})
    settings.update({k: _as_text(v) for k, v in job.spark_conf.items()})
    if job.uses_delta:
        settings.update(DELTA_CONF)
    if job.source.format == "csv":
        settings[CSV_PRUNING] = "false"  # see batch_scoring.jobs.text_records
    return settings


def submit_properties(profile: PlatformProfile, job: JobConfig) -> dict[str, str]:
    """Every Spark setting spark-submit needs, as properties: packages, jars and settings.

    ``spark.jars.packages`` and ``spark.jars`` are read by spark-submit from a properties file
    as from ``--packages`` and ``--jars``; the rest is :func:`spark_settings`.
    """
    properties = {}
    packages = spark_packages(profile, job)
    if packages:
        properties["spark.jars.packages"] = ",".join(packages)
    if profile.jars:
        properties["spark.jars"] = ",".join(profile.jars)
    properties.update(spark_settings(profile, job))
    return properties


def write_properties_file(path: str | os.PathLike, properties: dict[str, str]) -> Path:
    """Write ``properties`` to ``path`` as a Java properties file (UTF-8) with mode 0600.

    The file is created (or truncated) readable and writable by its owner only before any byte
    is written; keys and values are escaped (``javaproperties.join_key_value``) so that
    ``java.util.Properties.load`` reads back exactly the given strings (Spark then trims
    surrounding white space off values). Returns the path. The caller removes the file after the run (``spark-submit.sh`` does, on exit).

    Raises:
        OSError: when the file cannot be created or written.
    """
    target = Path(path)
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(descriptor, 0o600)
        lines = [javaproperties.join_key_value(k, v, ensure_ascii=False) + "\n" for k, v in properties.items()]
        os.write(descriptor, ("# Spark settings of one run; removed after the run\n" + "".join(lines)).encode())
    finally:
        os.close(descriptor)
    return target


def submit_arguments(
    profile: PlatformProfile,
    job: JobConfig,
    properties_file: str | os.PathLike | None = None,
    line: RuntimeLine | None = None,
) -> list[str]:
    """spark-submit flags for the run; no setting value is among them.

    With ``properties_file``, the settings (:func:`submit_properties`) are written there with
    :func:`write_properties_file` and the flags are ``--master``, ``--deploy-mode``, ``--name``
    and ``--properties-file <path>``. The Spark installation's ``conf/spark-defaults.conf``
    still applies below the file's settings, as it would without the file: on the Spark 4
    line through ``--load-spark-defaults``; on the Spark 3.5 line, whose spark-submit has no
    such flag and ignores that file once ``--properties-file`` is given, by copying its
    settings into the file (:func:`installation_defaults`). Without ``properties_file``, only
    the settings' *keys* could be passed, so it is required.

    Args:
        line: the runtime line of the spark-submit that runs the flags (default: the line of
            the pyspark installed here, whose spark-submit ``spark-submit.sh`` runs).

    Raises:
        ValueError: when ``properties_file`` is not given.
        ConfigError: when the installed pyspark is of no supported line.
        OSError: when a file cannot be read or written.
    """
    if properties_file is None:
        raise ValueError("submit_arguments needs a properties_file: settings never go on the command line")
    line = line or installed_line()
    args = []
    if profile.master:
        args += ["--master", profile.master]
    args += ["--deploy-mode", profile.deploy_mode, "--name", job.job]
    properties = submit_properties(profile, job)
    args += ["--properties-file", str(properties_file)]
    if line.load_spark_defaults_flag:
        args.append("--load-spark-defaults")
    else:
        properties = {**installation_defaults(), **properties}
    write_properties_file(properties_file, properties)
    return args


def spark_defaults_file() -> Path:
    """Where spark-submit looks for the installation's defaults: ``$SPARK_CONF_DIR/
    spark-defaults.conf``, else ``conf/spark-defaults.conf`` in :func:`spark_home`
    (``Utils.getDefaultPropertiesFile`` in Spark). The file may not exist.
    """
    conf_dir = os.environ.get("SPARK_CONF_DIR")
    return Path(conf_dir) / "spark-defaults.conf" if conf_dir else spark_home() / "conf" / "spark-defaults.conf"


def installation_defaults() -> dict[str, str]:
    """The ``spark.*`` settings of :func:`spark_defaults_file` (none when it does not exist),
    read as Java properties like spark-submit reads them (``key value``, ``key=value``,
    comments, escapes; values trimmed, as ``Utils.getPropertiesFromFile`` does).

    Raises:
        OSError: when the file exists but cannot be read.
    """
    path = spark_defaults_file()
    if not path.is_file():
        return {}
    with open(path, encoding="utf-8") as handle:
        loaded = javaproperties.load(handle)
    return {key: value.strip() for key, value in loaded.items() if key.startswith("spark.")}


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
    return _session(job.job, profile, spark_packages(profile, job), spark_settings(profile, job))


def build_reader_session(profile: PlatformProfile, path: str) -> SparkSession:
    """A session that reads an output at ``path`` (Delta through its log, or Parquet) on this
    profile: :data:`LINE_DEFAULTS`, the profile's settings, Delta, hadoop-aws for s3a."""
    settings = {**LINE_DEFAULTS, **{k: _as_text(v) for k, v in profile.spark_conf.items()}, **DELTA_CONF}
    return _session("batch-score show", profile, _packages(profile, True, [path]), settings)


def fetch_jars() -> list[str]:
    """Resolve the Delta and hadoop-aws jars of the installed runtime line, and the PostgreSQL
    JDBC driver, into Ivy's cache (``~/.ivy2``) by starting and stopping a local session;
    return their Maven coordinates.

    ``spark-submit.sh setup`` runs it once, so later Spark starts, several at a time as in the
    tests' two processes, read the cache instead of resolving together (concurrent Ivy
    resolutions into an empty cache can read each other's half-written files and fail).

    Raises:
        pyspark.errors.PySparkRuntimeError: when the JVM cannot start or Maven Central is not
            reachable and the jars are not cached.
    """
    from batch_scoring.jobs.jdbc import POSTGRESQL_PACKAGE

    packages = [delta_package(), hadoop_aws_package(), POSTGRESQL_PACKAGE]
    spark = _session("batch-score fetch-jars", PlatformProfile(name="fetch-jars", master="local[1]"),
                     packages, {"spark.ui.enabled": "false", "spark.log.level": "WARN"})
    spark.stop()
    return packages


def _session(name: str, profile: PlatformProfile, packages: list[str], settings: dict[str, str]) -> SparkSession:
    builder = SparkSession.builder.appName(name)
    if profile.master:
        builder = builder.master(profile.master)
    if packages:
        builder = builder.config("spark.jars.packages", ",".join(packages))
    if profile.jars:
        builder = builder.config("spark.jars", ",".join(profile.jars))
    for key, value in settings.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def _as_text(value: str | int | float | bool) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
