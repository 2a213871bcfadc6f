"""Benchmarks of the batch-scoring jobs: not part of the installed package or the test suite.

``python -m benchmarks.run --size S|M|L`` is the harness (see :mod:`benchmarks.run`);
``packed_vs_reference.py`` and ``model_scoring_vs_spark_udf.py`` are the one-off benchmarks
whose stages it reuses. Timings are never asserted in tests.
"""
