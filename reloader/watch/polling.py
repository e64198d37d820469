"""A stat poller: for file systems where change events never come (Docker bind mounts, network
shares, WSL's /mnt) and as the fallback when the system runs out of inotify watches.

Each sweep stats the watched files and their directories (a directory's mtime moves when an
entry is added, removed or renamed, and only then is it listed) and walks the trees.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable

from ..ignore import IgnoreRules
from . import OnChange, Watcher, backend_name, walk_tree

Stamp = tuple[int, int, int] | None


def _stamp(path: str) -> Stamp:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _listing(directory: str) -> frozenset[str]:
    try:
        return frozenset(os.listdir(directory))
    except OSError:
        return frozenset()


class PollingWatcher(Watcher):
    def __init__(self, on_change: OnChange, ignore: IgnoreRules, interval: float = 0.5) -> None:
        super().__init__(on_change, ignore)
        self.interval = interval
        self.name = backend_name("poll", interval)
        self._lock = threading.Lock()
        self._files: dict[str, Stamp] = {}
        self._dirs: dict[str, tuple[Stamp, frozenset[str]]] = {}
        self._trees: dict[str, dict[str, Stamp]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reloader-poll", daemon=True)

    def watch(self, files: Iterable[str] = (), trees: Iterable[str] = ()) -> None:
        with self._lock:
            for f in files:
                if f not in self._files:
                    self._files[f] = _stamp(f)
                d = os.path.dirname(f)
                if d not in self._dirs:
                    self._dirs[d] = (_stamp(d), _listing(d))
            for root in trees:
                if root not in self._trees:
                    self._trees[root] = self._scan_tree(root)

    def _scan_tree(self, root: str) -> dict[str, Stamp]:
        return {
            os.path.join(d, n): _stamp(os.path.join(d, n))
            for d, names in walk_tree(root, self._ignore)
            for n in names
        }

    def sweep(self) -> list[str]:
        """One pass over everything watched; the paths that changed since the last pass."""
        changed: list[str] = []
        with self._lock:
            files = list(self._files.items())
            dirs = list(self._dirs.items())
            trees = list(self._trees.items())
        new_files = {}
        for path, old in files:
            stamp = _stamp(path)
            if stamp != old:
                changed.append(path)
                new_files[path] = stamp
        new_dirs = {}
        for directory, (old_stamp, old_names) in dirs:
            stamp = _stamp(directory)
            if stamp != old_stamp:
                names = _listing(directory)
                changed += [
                    os.path.join(directory, n)
                    for n in sorted(names ^ old_names)
                    if not self._ignore.name_ignored(n)
                ]
                new_dirs[directory] = (stamp, names)
        new_trees = {}
        for root, old_tree in trees:
            tree = self._scan_tree(root)
            if tree != old_tree:
                changed += sorted(
                    p for p in tree.keys() | old_tree.keys() if tree.get(p) != old_tree.get(p)
                )
                new_trees[root] = tree
        with self._lock:
            self._files.update(new_files)
            self._dirs.update(new_dirs)
            self._trees.update(new_trees)
        return [c for c in dict.fromkeys(changed)]

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            changed = self.sweep()
            if changed:
                self._on_change(changed)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
