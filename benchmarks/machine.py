"""What a benchmark ran on: CPU, cores, RAM, OS, and the Python, Spark and Java versions."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path

import psutil

LIBRARIES = ("pyspark", "pandas", "pyarrow", "numpy", "mlflow-skinny", "scikit-learn")


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else ``platform.processor()``."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages (other work on a shared machine shows up here)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def describe(spark) -> dict:
    """The machine and software a run measured, as a JSON-ready dict.

    Java's version is the one the session's JVM reports (``java.version`` system property),
    so it is the Java that ran the stages, whatever ``java`` is first on the PATH.
    """
    system = spark.sparkContext._jvm.java.lang.System
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpu": cpu_model(),
        "architecture": platform.machine(),
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "ram_gib": round(psutil.virtual_memory().total / 1024**3, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "spark": spark.version,
        "java": f"{system.getProperty('java.vm.name')} {system.getProperty('java.version')}",
        "libraries": versions,
    }
