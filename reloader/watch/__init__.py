"""File watching behind one small interface, one module per backend.

A watcher is told which files matter (it watches their directories, not recursively, so an
atomic save by rename is seen) and which trees to watch recursively. It reports the paths of
entries that were created, written, had their metadata changed, were moved or deleted, from its
own thread, through ``on_change``. The supervisor decides what a path means.
"""

from __future__ import annotations

import os
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable

from ..config import Backend
from ..ignore import IgnoreRules

OnChange = Callable[[list[str]], None]

# Reported instead of a path when events were lost (inotify queue overflow: restart to be safe)
# and when a new directory could not be watched (the supervisor moves to polling).
OVERFLOW = "<events lost>"
LIMIT = "<watch limit reached>"


class WatchLimitReached(OSError):
    """The operating system refused more watches (inotify: fs.inotify.max_user_watches)."""


class Watcher(ABC):
    name: str = ""

    def __init__(self, on_change: OnChange, ignore: IgnoreRules) -> None:
        self._on_change = on_change
        self._ignore = ignore

    @abstractmethod
    def watch(self, files: Iterable[str] = (), trees: Iterable[str] = ()) -> None:
        """Add files (their directories are watched) and recursive trees; idempotent.

        Raises ``WatchLimitReached`` when the system refuses more watches."""

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def stop(self) -> None:
        """Stop and join the watcher's threads."""


def skip_dir(path: str, ignore: IgnoreRules) -> bool:
    """Directories a recursive walk never enters: ignored names and virtualenvs."""
    return ignore.name_ignored(os.path.basename(path)) or os.path.exists(
        os.path.join(path, "pyvenv.cfg")
    )


def walk_tree(root: str, ignore: IgnoreRules) -> Iterable[tuple[str, list[str]]]:
    """Yield (directory, file names) under ``root``, pruning what ``skip_dir`` says."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not skip_dir(os.path.join(dirpath, d), ignore)]
        yield dirpath, [f for f in filenames if not ignore.name_ignored(f)]


def resolve_backend(backend: Backend) -> Backend:
    if backend == "auto":
        return "inotify" if sys.platform.startswith("linux") else "observer"
    return backend


def backend_name(backend: Backend, poll_interval: float = 0.5) -> str:
    """How a backend is named (its watcher's ``name``), known without importing it."""
    resolved = resolve_backend(backend)
    if resolved == "poll":
        return f"polling every {poll_interval:g}s"
    return "inotify" if resolved == "inotify" else "watchdog"


def make_watcher(
    backend: Backend, on_change: OnChange, ignore: IgnoreRules, poll_interval: float = 0.5
) -> Watcher:
    """The watcher for a backend name; ``auto`` is inotify on Linux, the native observer else.

    Raises ``WatchLimitReached`` when the system refuses an inotify instance."""
    backend = resolve_backend(backend)
    if backend == "inotify":
        from .inotify import InotifyWatcher

        return InotifyWatcher(on_change, ignore)
    if backend == "observer":
        from .observer import ObserverWatcher

        return ObserverWatcher(on_change, ignore)
    from .polling import PollingWatcher

    return PollingWatcher(on_change, ignore, poll_interval)
