"""Per-Python-worker model cache: each worker loads a model once and reuses it.

This lives in its own module on purpose. Spark pickles the scoring closure and unpickles it in
every task, but a module is imported at most once per Python process, so state kept at module
level survives from task to task in the same worker (``spark.python.worker.reuse``, on by
default). Models are keyed by their content hash, so two URIs naming the same files share one
entry, and a new version never hits a stale one. The cache is a bounded LRU: a job that routes
units to many models keeps at most ``max_models`` of them in memory per worker.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

_models: OrderedDict[str, Any] = OrderedDict()
_lock = threading.Lock()
_stats = {"loads": 0, "hits": 0}


def get_model(key: str, load: Callable[[], Any], max_models: int) -> Any:
    """Return the cached model for ``key``, calling ``load()`` on a miss.

    Args:
        key: the model's content hash (sha256 hex).
        load: loads the model from local files (e.g. ``mlflow.pyfunc.load_model(path)``).
        max_models: models kept per worker; the least recently used one is evicted beyond it.

    Raises:
        whatever ``load`` raises; nothing is cached then.
    """
    with _lock:
        if key in _models:
            _models.move_to_end(key)
            _stats["hits"] += 1
            return _models[key]
    model = load()
    with _lock:
        _models[key] = model
        _models.move_to_end(key)
        _stats["loads"] += 1
        while len(_models) > max_models:
            _models.popitem(last=False)
    return model


def cache_stats() -> dict[str, int]:
    """Loads, hits and models held by this process (for tests and logs)."""
    with _lock:
        return {**_stats, "held": len(_models)}


def clear() -> None:
    """Forget every cached model (for tests)."""
    with _lock:
        _models.clear()
        _stats.update(loads=0, hits=0)
