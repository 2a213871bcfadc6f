"""The runtime lines this package supports: which Spark, Delta and Python each EMR release runs.

| line  | EMR releases                    | Spark | Delta | Python    | installed with                         |
|-------|---------------------------------|-------|-------|-----------|----------------------------------------|
| spark4 | ``emr-spark-8.x``, ``emr-8.x`` | 4.x   | 4.x   | 3.11      | ``pip install -e .`` (default: 8.1 LTS) |
| spark35 | ``emr-7.x``                   | 3.5   | 3.3   | 3.9, 3.11 | ``pip install -e . -c constraints/emr7.txt`` |

The exact pins live in ``setup.py`` (default line) and ``constraints/emr7.txt`` (EMR 7 line);
this module knows the lines only by their Spark major/minor, so the pins stay in one place.
The line of *this* environment is read from the installed pyspark
(:func:`installed_line`); an environment archive records the line it was built on
(:mod:`~batch_scoring.jobs.deploy.archive_record`), and the deploy commands refuse a release of
another line (:func:`batch_scoring.jobs.deploy.packaging.check_release`).

Sources: Amazon EMR release guide, "Amazon EMR 8.1.0 LTS" (Spark 4.1.1, Delta 4.2.0) and
"Amazon EMR 7.14.0" (Spark 3.5.8, Delta 3.3.2) application version tables.
"""

from __future__ import annotations

import dataclasses
import re
from importlib import metadata

from batch_scoring.jobs.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class RuntimeLine:
    """One supported Spark line and the EMR releases that run it.

    Attributes:
        name: ``"spark4"`` or ``"spark35"``.
        spark_prefixes: pyspark versions of the line start with one of these (``"4."``).
        releases: release labels of the line (``emr-spark-8.1.0``), as a regular expression.
        release_names: how the releases are named in messages (``"emr-spark-8.x"``).
        pythons: Python versions (``"3.11"``) the line's EMR releases run for PySpark.
        install: the command that installs this line into a virtual environment.
        emr: the EMR major version that runs the line, as messages name it (``"EMR 8"``).
        load_spark_defaults_flag: the line's spark-submit takes ``--load-spark-defaults``
            (SPARK-48392, Spark 4.0), which keeps ``conf/spark-defaults.conf`` applied beside
            ``--properties-file``; Spark 3.5's spark-submit ignores that file once
            ``--properties-file`` is given (``SparkSubmitArguments.mergeDefaultSparkProperties``).
    """

    name: str
    spark_prefixes: tuple[str, ...]
    releases: re.Pattern[str]
    release_names: str
    pythons: tuple[str, ...]
    install: str
    emr: str
    load_spark_defaults_flag: bool

    @property
    def spark_series(self) -> str:
        """The line's Spark as messages name it: ``"4"`` or ``"3.5"``."""
        return self.spark_prefixes[0].rstrip(".")

    def runs_spark(self, spark_version: str) -> bool:
        """True when ``spark_version`` (``"4.1.1"``) belongs to this line."""
        return spark_version.startswith(self.spark_prefixes)

    def runs_release(self, release_label: str) -> bool:
        """True when the EMR release ``release_label`` runs this line."""
        return bool(self.releases.fullmatch(release_label))


SPARK4 = RuntimeLine(
    name="spark4",
    spark_prefixes=("4.",),
    releases=re.compile(r"emr-(spark-)?8\.\d+\.\d+"),
    release_names="emr-spark-8.x (EMR 8, default emr-spark-8.1.0 LTS)",
    pythons=("3.11",),
    install="pip install -e .",
    emr="EMR 8",
    load_spark_defaults_flag=True,
)
SPARK35 = RuntimeLine(
    name="spark35",
    spark_prefixes=("3.5.",),
    releases=re.compile(r"emr-7\.\d+\.\d+"),
    release_names="emr-7.x (EMR 7)",
    pythons=("3.9", "3.11"),
    install="pip install -e . -c constraints/emr7.txt",
    emr="EMR 7",
    load_spark_defaults_flag=False,
)
LINES = (SPARK4, SPARK35)
# Releases of EMR 4 to 6 (Spark 3.4 and older): real labels that no line runs.
RETIRED_RELEASES = re.compile(r"emr-[4-6]\.\d+\.\d+")


def line_of_spark(spark_version: str, what: str = "pyspark") -> RuntimeLine:
    """The line a Spark version belongs to.

    Args:
        spark_version: for example ``"3.5.8"``.
        what: names the version's origin in the message (``"the installed pyspark"``).

    Raises:
        ConfigError: when no supported line runs ``spark_version``.
    """
    for line in LINES:
        if line.runs_spark(spark_version):
            return line
    raise ConfigError(
        f"{what} {spark_version} is not a supported Spark line: this package runs on Spark 4 "
        f"(EMR 8, `{SPARK4.install}`) and Spark 3.5 (EMR 7, `{SPARK35.install}`)"
    )


def line_of_release(release_label: str) -> RuntimeLine | None:
    """The line an EMR release runs, or None for a release no line supports (EMR 6, typos)."""
    return next((line for line in LINES if line.runs_release(release_label)), None)


def line_named(name: str) -> RuntimeLine | None:
    """The line called ``name`` (``"spark35"``), or None when no line has that name."""
    return next((line for line in LINES if line.name == name), None)


def supported_releases() -> str:
    """The releases this package runs on, as messages name them."""
    return " or ".join(line.release_names for line in LINES)


def installed_line() -> RuntimeLine:
    """The line of the pyspark installed here.

    Raises:
        ConfigError: when pyspark is missing or of an unsupported line.
    """
    try:
        version = metadata.version("pyspark")
    except metadata.PackageNotFoundError:
        raise ConfigError(f"pyspark is not installed here: run `{SPARK4.install}`") from None
    return line_of_spark(version, "the installed pyspark")
