"""Packaging for the batch-scoring job package.

Every version pin of the project lives here, except the second runtime line's, which live in
``constraints/emr7.txt``.

Default runtime line: Amazon EMR 8.1 LTS (emr-spark-8.1.0: Spark 4.1.1, Delta 4.2.0, Python
3.11). The Hadoop inside the pyspark 4.1.1 wheel is 3.4.2; hadoop-aws is resolved at the version
of the Hadoop jars Spark runs (``batch_scoring.jobs.session.hadoop_aws_package``).

Second line: Amazon EMR 7 (emr-7.14.0: Spark 3.5.8, Delta 3.3.2, Python 3.11), installed with
``pip install -e '.[dev]' -c constraints/emr7.txt``. pyspark and delta-spark are therefore
ranges whose upper ends are the default line's exact versions, and so is numpy (Spark 3.5's
pyspark.pandas and pyspark.testing fail to import under NumPy 2): pip picks the upper ends
unless the constraints file pins the EMR 7 ones. Every other pin is shared by both lines.

Extra ``compiled``: treelite and tl2cgen for ``model.backend: compiled | auto`` (both need only
numpy, scipy and packaging, so they install on both lines); tl2cgen compiles with gcc, which
the driver needs, while executors only load the compiled library.
"""

from setuptools import setup

SPARK_VERSION = "4.1.1"  # emr-spark-8.1.0
DELTA_VERSION = "4.2.0"  # emr-spark-8.1.0; requires pyspark >=4.0.1,<=4.1.1

RUNTIME = [
    f"pyspark>=3.5,<={SPARK_VERSION}",
    f"delta-spark>=3.3,<={DELTA_VERSION}",
    "pandas==2.3.3",  # pyspark 4.1 and 3.5 do not support pandas 3
    "pyarrow==20.0.0",  # mlflow 3.17 caps pyarrow < 26
    "numpy>=1.26.4,<=2.3.5",  # 2.3.5 on the default line; Spark 3.5 (EMR 7) needs numpy 1 (constraints/emr7.txt)
    "mlflow-skinny==3.17.2",  # loads and scores pyfunc models; no server pieces
    "boto3==1.44.5",
    "pydantic==2.14.3",
    "PyYAML==6.0.3",
    "rich==15.0.0",
    "javaproperties==0.8.2",  # the run's properties file, and spark-defaults.conf on Spark 3.5 (jobs/session.py)
    "Pillow==13.0.0",  # image preprocessing before a model
    "matplotlib==3.11.2",  # the run report's charts (jobs/report_charts.py)
    "Jinja2==3.1.6",  # the run report's HTML page, autoescaped (jobs/report_html.py)
    "venv-pack==0.2.0",  # packs the environment archive shipped to clusters
]

COMPILED = [  # model.backend: compiled (jobs/model_backend.py); gcc is needed on the driver only
    "treelite==4.8.1",  # converts tree ensembles (scikit-learn, XGBoost, LightGBM)
    "tl2cgen==1.0.0",  # generates C and compiles it (driver); executors load the library with it
]

DEV = [
    "pytest==9.2.0",
    "pytest-timeout==2.4.0",
    "pytest-xdist==3.8.0",  # two test processes (tests/pytest.ini): a job in a child process uses about one core
    "chispa==0.12.0",
    "mlflow==3.17.2",  # the tracking server used by the integration tests
    "scikit-learn==1.7.2",
    "moto[server]==5.2.5",
    "psutil==7.2.2",  # benchmarks: peak RSS of the driver, the JVM and the Python workers
    *COMPILED,  # the compiled tree backend's tests
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
    # udfs/ holds what runs on the executors: the engine, the built-in pricing, model scoring.
    packages=[
        "batch_scoring.jobs", "batch_scoring.jobs.deploy", "batch_scoring.udfs",
        "batch_scoring.udfs.engine", "batch_scoring.udfs.pricing", "batch_scoring.udfs.models",
    ],
    package_dir={
        "batch_scoring.jobs": "jobs",
        "batch_scoring.jobs.deploy": "jobs/deploy",
        "batch_scoring.udfs": "udfs",
        "batch_scoring.udfs.engine": "udfs/engine",
        "batch_scoring.udfs.pricing": "udfs/pricing",
        "batch_scoring.udfs.models": "udfs/models",
    },
    install_requires=RUNTIME,
    extras_require={"dev": DEV, "compiled": COMPILED},
    entry_points={"console_scripts": ["batch-score=batch_scoring.jobs.cli:main"]},
)
