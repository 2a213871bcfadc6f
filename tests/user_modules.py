"""User function modules written by a test and made importable on the driver, as a user's are."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def importable_module(folder: Path, name: str, source: str) -> Iterator[str]:
    """Write ``source`` (dedented) as ``folder/<name>.py`` and put ``folder`` on ``sys.path``.

    Yields ``name``; afterwards the folder leaves ``sys.path`` and the module ``sys.modules``.
    """
    (folder / f"{name}.py").write_text(textwrap.dedent(source))
    sys.path.insert(0, str(folder))
    try:
        yield name
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop(name, None)
