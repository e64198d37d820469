"""What the supervisor watches, and what a changed path means.

Three kinds of watched paths: the files workers reported (their change restarts the worker), the
extra paths given in the config (a file, or a directory watched recursively: any change under it
restarts), and the trees a worker asked for (a change is sent back to that worker, which may
apply it in place). While no worker can serve, any change in a watched directory restarts: the
module an ImportError missed may just have been created.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable

from .config import SupervisorConfig
from .ignore import IgnoreRules, glob_match
from .watch import OVERFLOW, OnChange, Watcher, WatchLimitReached, backend_name, make_watcher
from .watch.polling import PollingWatcher

logger = logging.getLogger("reloader")

RESTART = "restart"
TREE = "tree"

# A file first reported by a worker but modified after that worker started may have been
# imported in its old version. Kernel file times lag the wall clock by a tick at most.
_STARTUP_SLACK_NS = 5_000_000


def _under(path: str, root: str) -> bool:
    return path.startswith(root.rstrip(os.sep) + os.sep)


class WatchSet:
    """The watched paths and the watcher that watches them (falling back to polling when the
    system refuses more inotify watches)."""

    def __init__(self, config: SupervisorConfig, on_change: OnChange) -> None:
        self.config = config
        self.on_change = on_change
        self.ignore = IgnoreRules(config.ignore)
        self.watcher: Watcher | None = None
        self.files: set[str] = set()
        self.dirs: set[str] = set()
        self.trees: list[tuple[str, str]] = []
        self.dep_files: set[str] = set()
        self.dep_dirs: set[str] = set()
        extra = [os.path.abspath(p) for p in config.watch]
        self.extra_trees = [p for p in extra if os.path.isdir(p)]
        self.extra_files = [p for p in extra if not os.path.isdir(p)]

    @property
    def name(self) -> str:
        if self.watcher is not None:
            return self.watcher.name
        return backend_name(self.config.backend, self.config.poll_interval)

    def has_extra(self) -> bool:
        """Whether paths were given to watch besides what workers report."""
        return bool(self.extra_files or self.extra_trees)

    def start(self) -> None:
        try:
            watcher = make_watcher(
                self.config.backend, self.on_change, self.ignore, self.config.poll_interval
            )
            watcher.watch(self.all_files(), self.all_trees())
        except WatchLimitReached as exc:
            self.watcher = self._polling(str(exc.strerror))
            return
        watcher.start()
        self.watcher = watcher

    def stop(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()

    def limit_reached(self, reason: str) -> None:
        """Move to polling, with a message, unless already there."""
        if isinstance(self.watcher, PollingWatcher):
            return
        self.stop()
        self.watcher = self._polling(reason)

    def _polling(self, reason: str) -> Watcher:
        watcher = PollingWatcher(self.on_change, self.ignore, self.config.poll_interval)
        logger.warning(
            "%s; falling back to %s. Raise the limit with: "
            "sudo sysctl fs.inotify.max_user_watches=524288",
            reason,
            watcher.name,
        )
        watcher.watch(self.all_files(), self.all_trees())
        watcher.start()
        return watcher

    def add(self, files: Iterable[str], trees: Iterable[tuple[str, str]]) -> list[str]:
        """Watch what a worker reported; return the files that are new (as given and resolved,
        so a save through a symlink and a save of its target both count)."""
        new_files = []
        for f in files:
            for variant in {f, os.path.realpath(f)}:
                if variant not in self.files and not self.ignore(variant):
                    self.files.add(variant)
                    new_files.append(variant)
        self.dirs |= {os.path.dirname(f) for f in new_files}
        new_trees = []
        for root, pattern in trees:
            tree = (os.path.abspath(root), pattern)
            if tree not in self.trees:
                self.trees.append(tree)
                new_trees.append(tree)
        if (new_files or new_trees) and self.watcher is not None:
            try:
                self.watcher.watch(new_files, [root for root, _ in new_trees])
            except WatchLimitReached as exc:
                self.limit_reached(str(exc.strerror))
        return new_files

    def add_deps(self, files: Iterable[str], dirs: Iterable[str]) -> None:
        """Watch what a checkpoint read: files (their directories) and listed directories (a
        name created in one matters). Their changes reach the starter; they restart nothing."""
        new_files = [f for f in files if f not in self.dep_files and not self.ignore(f)]
        self.dep_files.update(new_files)
        # A directory is watched as the directory of a name inside it.
        new_dirs = [os.path.join(d, ".") for d in dirs if d not in self.dep_dirs]
        self.dep_dirs.update(dirs)
        if (new_files or new_dirs) and self.watcher is not None:
            try:
                self.watcher.watch([*new_files, *new_dirs], [])
            except WatchLimitReached as exc:
                self.limit_reached(str(exc.strerror))

    def all_files(self) -> list[str]:
        deps = [*self.dep_files, *(os.path.join(d, ".") for d in self.dep_dirs)]
        return [*self.files, *self.extra_files, *deps]

    def all_trees(self) -> list[str]:
        return [*self.extra_trees, *(root for root, _ in self.trees)]

    def classify(self, path: str, broken: bool) -> str | None:
        """``RESTART``, ``TREE`` (tell the worker), or None (not ours)."""
        if path == OVERFLOW or path in self.files:
            return RESTART
        for root in self.extra_trees:
            if _under(path, root) and not self.ignore(path, root):
                return RESTART
        for root, pattern in self.trees:
            if (
                _under(path, root)
                and not self.ignore(path, root)
                and glob_match(os.path.relpath(path, root), pattern)
            ):
                return TREE
        if broken and os.path.dirname(path) in self.dirs and not self.ignore(path):
            return RESTART
        return None


def modified_since(files: Iterable[str], started_ns: int) -> list[str]:
    """The files modified after a worker started (wall clock, nanoseconds)."""
    late = []
    for f in files:
        with contextlib.suppress(OSError):
            if os.stat(f).st_mtime_ns > started_ns - _STARTUP_SLACK_NS:
                late.append(f)
    return late
