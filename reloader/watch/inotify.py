"""inotify through watchdog's ``InotifyFD``: one inotify instance and one thread for all watches.

Directories are watched without recursion, and the kernel is asked only for the events that mean
a change (the mask below), so reading a file, opening it or writing ``__pycache__`` next door
costs nothing. Trees are walked once, pruned by the ignore rules, and new subdirectories are
added as they appear. (watchdog's Observer would run one emitter thread per watched directory.)
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Iterable

from watchdog.observers.inotify_c import CallbackId, InotifyEvent, InotifyFD, Mask
from watchdog.observers.inotify_c import InotifyConstants as C

from ..ignore import IgnoreRules
from . import (
    LIMIT,
    OVERFLOW,
    OnChange,
    Watcher,
    WatchLimitReached,
    backend_name,
    skip_dir,
    walk_tree,
)

MASK = Mask(
    C.IN_CREATE
    | C.IN_CLOSE_WRITE
    | C.IN_ATTRIB
    | C.IN_MOVED_FROM
    | C.IN_MOVED_TO
    | C.IN_DELETE
    | C.IN_DELETE_SELF
    | C.IN_MOVE_SELF
    | C.IN_ONLYDIR
    | C.IN_EXCL_UNLINK
)
_CALLBACK_ID = CallbackId(1)


class InotifyWatcher(Watcher):
    name = backend_name("inotify")

    def __init__(self, on_change: OnChange, ignore: IgnoreRules) -> None:
        super().__init__(on_change, ignore)
        try:
            self._fd = InotifyFD()
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EMFILE):
                raise WatchLimitReached(exc.errno, _limit_message(exc.errno)) from None
            raise
        self._lock = threading.Lock()
        self._dir_for_wd: dict[int, str] = {}
        self._wd_for_dir: dict[str, int] = {}
        self._tree_dirs: set[str] = set()

    # The InotifyFD thread calls these (watchdog's WatchCallback protocol).
    def on_event(self, event: InotifyEvent) -> None:
        with self._lock:
            directory = self._dir_for_wd.get(event.wd)
        if directory is None:
            return
        path = os.path.join(directory, os.fsdecode(event.name)) if event.name else directory
        if event.name and self._ignore.name_ignored(os.fsdecode(event.name)):
            return
        changed = [path]
        if event.is_directory and (event.is_create or event.is_moved_to):
            with self._lock:
                in_tree = directory in self._tree_dirs
            if in_tree and not skip_dir(path, self._ignore):
                try:
                    changed += self._add_tree(path)
                except WatchLimitReached:
                    changed.append(LIMIT)
        self._on_change(changed)

    def on_watch_deleted(self, wd: int) -> None:
        with self._lock:
            directory = self._dir_for_wd.pop(wd, None)
            if directory is not None and self._wd_for_dir.get(directory) == wd:
                del self._wd_for_dir[directory]
                self._tree_dirs.discard(directory)

    def on_queue_overflow(self) -> None:
        self._on_change([OVERFLOW])

    def on_events_lost(self) -> None:
        """watchdog 7.1 calls this after every callback's ``on_queue_overflow``; the overflow
        was reported there already (7.0 never calls this), and the supervisor's debounce makes
        the rescan come after the watches recovered."""

    def watch(self, files: Iterable[str] = (), trees: Iterable[str] = ()) -> None:
        for directory in sorted({os.path.dirname(f) for f in files}):
            self._add_dir(directory, tree=False)
        for root in trees:
            self._add_tree(root)

    def _add_dir(self, directory: str, tree: bool) -> bool:
        with self._lock:
            if directory in self._wd_for_dir:
                if tree:
                    self._tree_dirs.add(directory)
                return True
            try:
                wd = self._fd.add_callback(os.fsencode(directory), MASK, self, _CALLBACK_ID)
            except OSError as exc:
                if exc.errno in (errno.ENOSPC, errno.EMFILE):
                    raise WatchLimitReached(exc.errno, _limit_message(exc.errno)) from None
                if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.EACCES, errno.EPERM):
                    return False
                raise
            if wd < 0:  # watchdog swallows EACCES and hands back -1
                return False
            self._dir_for_wd[wd] = directory
            self._wd_for_dir[directory] = wd
            if tree:
                self._tree_dirs.add(directory)
            return True

    def _add_tree(self, root: str) -> list[str]:
        """Watch every directory under root; return the files found (they may be new)."""
        found = []
        for directory, names in walk_tree(root, self._ignore):
            if self._add_dir(directory, tree=True):
                found += [os.path.join(directory, name) for name in names]
        return found

    def start(self) -> None:
        self._fd.start()

    def stop(self) -> None:
        if self._fd.is_alive():
            self._fd.stop()
            self._fd.join(timeout=5)
        else:
            self._fd.close()


def _limit_message(code: int) -> str:
    if code == errno.ENOSPC:
        limit = _limit("fs/inotify/max_user_watches", "user/max_inotify_watches")
        return f"inotify watch limit reached ({limit} watches, fs.inotify.max_user_watches)"
    limit = _limit("fs/inotify/max_user_instances", "user/max_inotify_instances")
    return f"inotify instance limit reached ({limit} instances, fs.inotify.max_user_instances)"


def _limit(*names: str) -> str:
    """The effective limit: the smallest of the system's and this user namespace's."""
    values = []
    for name in names:
        try:
            with open(f"/proc/sys/{name}") as f:
                values.append(int(f.read()))
        except (OSError, ValueError):
            pass
    return str(min(values)) if values else "?"
