"""Which paths never trigger a restart, and how tree globs match.

A pattern without a slash matches any single path component (``node_modules`` skips that
directory anywhere, ``*.pyc`` any such file). A pattern with a slash matches the end of the
path, with ``*`` inside one component and ``**`` across components (``migrations/*.py`` and
``*/migrations/*.py`` both ignore every migration; ``/srv/app/local.py`` one file). Our own
matching, because watchdog's pattern semantics changed between major versions.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import re
from collections.abc import Iterable

DEFAULT_IGNORES: tuple[str, ...] = (
    # Caches and version control.
    "__pycache__",
    "*.pyc",
    "*.pyo",
    ".git",
    ".hg",
    ".svn",
    ".bzr",
    ".tox",
    ".nox",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    "node_modules",
    # Editors' swap, backup, lock and temporary files.
    ".*.sw?",
    ".*.sw??",
    "*~",
    ".#*",
    "#*#",
    "4913",
    "*___jb_tmp___",
    "*___jb_old___",
    ".goutputstream-*",
    "*.kate-swp",
    ".DS_Store",
)


@functools.lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str]:
    """A glob to a regex: ``**/`` spans directories, ``*`` and ``?`` stay inside one."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                out.append(re.escape("["))
                i += 1
            else:
                out.append(fnmatch.translate(pattern[i : end + 1])[4:-3])
                i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def glob_match(relative_path: str, pattern: str) -> bool:
    """Whether a path relative to a tree's root matches a tree glob such as ``**/*.mo``."""
    return _compile(pattern).match(relative_path.replace(os.sep, "/")) is not None


class IgnoreRules:
    """Decide whether a path is ignored."""

    def __init__(self, extra: Iterable[str] = (), defaults: bool = True) -> None:
        patterns = [*(DEFAULT_IGNORES if defaults else ()), *extra]
        self._names = tuple(p for p in patterns if "/" not in p)
        self._paths = tuple(p for p in patterns if "/" in p)

    def name_ignored(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, p) for p in self._names)

    def __call__(self, path: str, root: str | None = None) -> bool:
        """Whether ``path`` is ignored: its name, or with ``root`` any component below ``root``,
        or the whole path for the patterns that hold a slash."""
        if root is not None and path.startswith(root.rstrip(os.sep) + os.sep):
            parts = path[len(root.rstrip(os.sep)) + 1 :].split(os.sep)
        else:
            parts = [os.path.basename(path)]
        if any(self.name_ignored(part) for part in parts if part):
            return True
        if not self._paths:
            return False
        components = path.split(os.sep)
        suffixes = [os.sep.join(components[i:]) for i in range(len(components))]
        return any(glob_match(s, p) for p in self._paths for s in suffixes)
