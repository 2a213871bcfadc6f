"""Packaging for the batch-scoring job package.

Every version pin of the project lives here and nowhere else.

The runtime pins are the Spark 4.0 / Delta 4.0 line that Amazon EMR 8 (emr-spark-8.0.0:
Spark 4.0.2, Delta 4.0.0, Python 3.11) ships, so what runs locally is what runs on EMR.
The Hadoop inside the pyspark 4.0.2 wheel is 3.4.1; hadoop-aws must use the same version.
"""

from setuptools import setup

SPARK_VERSION = "4.0.2"
DELTA_VERSION = "4.0.1"

RUNTIME = [
    f"pyspark=={SPARK_VERSION}",
    f"delta-spark=={DELTA_VERSION}",
    "pandas==2.3.3",  # pyspark 4.0 does not support pandas 3
    "pyarrow==20.0.0",  # mlflow 3.17 caps pyarrow < 26
    "numpy==2.3.5",
    "mlflow-skinny==3.17.2",  # loads and scores pyfunc models; no server pieces
    "boto3==1.44.5",
    "pydantic==2.14.3",
    "PyYAML==6.0.3",
    "rich==15.0.0",
    "Pillow==13.0.0",  # image preprocessing before a model
    "venv-pack==0.2.0",  # packs the environment archive shipped to clusters
]

DEV = [
    "pytest==9.2.0",
    "pytest-timeout==2.4.0",
    "chispa==0.12.0",
    "mlflow==3.17.2",  # the tracking server used by the integration tests
    "scikit-learn==1.7.2",
    "moto[server]==5.2.5",
    "psutil==7.2.2",  # benchmarks: peak RSS of the driver, the JVM and the Python workers
]

setup(
    name="batch-scoring",
    version="0.1.0",
    description=(
        "Spark batch-scoring jobs: pricing functions and ML models applied per unit of work "
        "as pandas UDFs, written idempotently to partitioned Parquet or Delta."
    ),
    python_requires=">=3.11",
    # The fixed top-level folders jobs/ and udfs/ install as batch_scoring.jobs and
    # batch_scoring.udfs (batch_scoring is a namespace package), so the package never puts
    # generic top-level names such as `jobs` into a user's environment.
    packages=["batch_scoring.jobs", "batch_scoring.jobs.deploy", "batch_scoring.udfs"],
    package_dir={
        "batch_scoring.jobs": "jobs",
        "batch_scoring.jobs.deploy": "jobs/deploy",
        "batch_scoring.udfs": "udfs",
    },
    install_requires=RUNTIME,
    extras_require={"dev": DEV},
    entry_points={"console_scripts": ["batch-score=batch_scoring.jobs.cli:main"]},
)
