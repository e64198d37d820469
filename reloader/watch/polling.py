"""A stat poller: for file systems where change events never come (Docker bind mounts, network
shares, WSL's /mnt) and as the fallback when the system runs out of inotify watches.

Each sweep costs one ``stat`` per watched entry and nothing else: the files the workers
reported, the files under the watched trees (a template saved in place changes only its own
mtime), and every directory involved, whose mtime moves when an entry is added, removed or
renamed. Only a directory whose stamp moved is listed again; a new directory in a tree is walked
then, and the ignore rules are matched only against the names that came or went. (The sweep used
to walk every tree and match every name against the ignore patterns twice a second: 5 % of a
core, idle, on NetBox's tree; issue 10, item 8.)

A directory listed within ``_RACY_NS`` of its own mtime is listed again on the next sweeps until
that mtime is older: the kernel stamps directories with a coarse clock, so an entry created in
the same tick, just after the listing, would not move the mtime again.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from ..ignore import IgnoreRules
from . import OnChange, Watcher, backend_name, skip_dir

Stamp = tuple[int, int, int] | None

_RACY_NS = 2_000_000_000


def _stamp(path: str) -> Stamp:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


@dataclass
class _Dir:
    """A watched directory as last listed (ignored names left out). In a tree its ``subdirs``
    are walked and its ``files`` watched; elsewhere only its names are compared."""

    tree: bool
    stamp: Stamp = None
    names: frozenset[str] = frozenset()
    files: frozenset[str] = frozenset()
    subdirs: frozenset[str] = frozenset()
    racy: bool = True  # list it again at the next sweep (see the module docstring)


class PollingWatcher(Watcher):
    def __init__(self, on_change: OnChange, ignore: IgnoreRules, interval: float = 0.5) -> None:
        super().__init__(on_change, ignore)
        self.interval = interval
        self.name = backend_name("poll", interval)
        self._lock = threading.Lock()
        self._files: dict[str, Stamp] = {}  # reported
        self._tree_files: dict[str, Stamp] = {}  # found under the trees
        self._dirs: dict[str, _Dir] = {}
        self._file_dirs: set[str] = set()  # the directories of the reported files
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reloader-poll", daemon=True)

    def watch(self, files: Iterable[str] = (), trees: Iterable[str] = ()) -> None:
        with self._lock:
            for f in files:
                if f not in self._files:
                    self._files[f] = _stamp(f)
                    self._tree_files.pop(f, None)
                d = os.path.dirname(f)
                self._file_dirs.add(d)
                if d not in self._dirs:
                    self._dirs[d] = directory = _Dir(tree=False)
                    self._list(d, directory)
            for root in trees:
                existing = self._dirs.get(root)
                if existing is None or not existing.tree:
                    self._add_tree(root)

    def _list(self, path: str, directory: _Dir) -> None:
        """Stamp and list a directory again."""
        directory.stamp = _stamp(path)
        directory.racy = (
            directory.stamp is not None and time.time_ns() - directory.stamp[0] < _RACY_NS
        )
        names: list[str] = []
        files: list[str] = []
        subdirs: list[str] = []
        try:
            with os.scandir(path) as entries:
                for entry in entries:
                    if self._ignore.name_ignored(entry.name):
                        continue
                    names.append(entry.name)
                    if directory.tree:
                        kind = _kind(entry)
                        if kind == "file":
                            files.append(entry.name)
                        elif kind == "dir":
                            subdirs.append(entry.name)
        except OSError:
            pass
        directory.names = frozenset(names)
        directory.files = frozenset(files)
        directory.subdirs = frozenset(subdirs)

    def _add_tree(self, root: str) -> list[str]:
        """Watch every directory under ``root`` (pruned as ``skip_dir`` says) and the files in
        them; return the files found."""
        found: list[str] = []
        pending = [root]
        while pending:
            path = pending.pop()
            self._dirs[path] = directory = _Dir(tree=True)
            self._list(path, directory)
            for name in sorted(directory.files):
                file_path = os.path.join(path, name)
                found.append(file_path)
                if file_path not in self._files:
                    self._tree_files[file_path] = _stamp(file_path)
            pending += self._walked(path, directory, directory.subdirs)
        return found

    def _walked(self, path: str, directory: _Dir, names: Iterable[str]) -> list[str]:
        """The subdirectories a walk enters; the others are no longer counted as subdirs."""
        walked = []
        for name in sorted(names):
            sub = os.path.join(path, name)
            if skip_dir(sub, self._ignore):
                directory.subdirs -= {name}
            else:
                walked.append(sub)
        return walked

    def _forget(self, path: str) -> list[str]:
        """Stop watching a tree directory that went away and everything under it; return the
        files that were watched there."""
        prefix = path + os.sep
        gone = [p for p in self._tree_files if p.startswith(prefix)]
        for p in gone:
            del self._tree_files[p]
        for d in [d for d in self._dirs if d == path or d.startswith(prefix)]:
            if d in self._file_dirs:
                self._dirs[d] = directory = _Dir(tree=False)
                self._list(d, directory)
            elif self._dirs[d].tree:
                del self._dirs[d]
        return gone

    # ------------------------------------------------------------------ sweeping
    def sweep(self) -> list[str]:
        """One pass over everything watched; the paths that changed since the last pass."""
        changed: list[str] = []
        with self._lock:
            changed += _restamp(self._files)
            changed += _restamp(self._tree_files)
            for path, directory in list(self._dirs.items()):
                if self._dirs.get(path) is not directory:  # replaced during this sweep
                    continue
                if not directory.racy and _stamp(path) == directory.stamp:
                    continue
                changed += self._relist(path, directory)
        return list(dict.fromkeys(changed))

    def _relist(self, path: str, directory: _Dir) -> list[str]:
        """List a directory whose stamp moved; return what appeared or went away."""
        old_names, old_files, old_subdirs = directory.names, directory.files, directory.subdirs
        self._list(path, directory)
        changed = [os.path.join(path, n) for n in sorted(old_names ^ directory.names)]
        if not directory.tree:
            return changed
        for name in sorted(directory.files - old_files):
            file_path = os.path.join(path, name)
            if file_path not in self._files:
                self._tree_files[file_path] = _stamp(file_path)
        for name in sorted(old_files - directory.files):
            self._tree_files.pop(os.path.join(path, name), None)
        for name in sorted(old_subdirs - directory.subdirs):
            changed += self._forget(os.path.join(path, name))
        for sub in self._walked(path, directory, directory.subdirs - old_subdirs):
            changed += self._add_tree(sub)
        return changed

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


def _restamp(stamps: dict[str, Stamp]) -> list[str]:
    """Stat every path; update the stamps that moved and return their paths."""
    moved = []
    stat = os.stat
    for path, old in stamps.items():
        try:
            st = stat(path)
            stamp: Stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            stamp = None
        if stamp != old:
            moved.append((path, stamp))
    stamps.update(moved)
    return [path for path, _ in moved]


def _kind(entry: os.DirEntry[str]) -> str:
    """``dir`` for a directory a walk enters (as ``os.walk``: not through a symlink), ``file``
    for a file to watch, ``other`` for a link to a directory (listed, neither walked nor
    watched, as ``os.walk`` lists it)."""
    try:
        if entry.is_dir(follow_symlinks=False):
            return "dir"
        return "other" if entry.is_dir() else "file"
    except OSError:
        return "file"
