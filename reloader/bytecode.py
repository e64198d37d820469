"""Make sure a restarted worker runs the newest source, never stale bytecode.

CPython trusts a ``.pyc`` whose header matches the source's mtime in whole seconds and its size:
two saves of the same size within one second leave a ``.pyc`` that looks fresh and holds the old
code. The supervisor removes the cached bytecode of every changed source before it starts the
next worker, which then compiles what is on disk.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Iterable


def invalidate(paths: Iterable[str]) -> int:
    """Remove the cached bytecode of each ``.py`` path; return how many files were removed."""
    removed = 0
    for path in paths:
        if not path.endswith(".py"):
            continue
        for optimization in ("", 1, 2):
            try:
                cached = importlib.util.cache_from_source(path, optimization=optimization)
            except (NotImplementedError, ValueError):
                continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(cached)
                removed += 1
    return removed
