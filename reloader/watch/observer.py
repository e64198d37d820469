"""watchdog's native Observer (FSEvents on macOS, kqueue on BSD, ReadDirectoryChangesW on
Windows): used where inotify is not, with the same event filter as the inotify backend."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from ..ignore import IgnoreRules
from . import LIMIT, OnChange, Watcher, backend_name

EVENTS: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileClosedEvent,
    FileMovedEvent,
    FileDeletedEvent,
    DirCreatedEvent,
    DirMovedEvent,
    DirDeletedEvent,
]


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: ObserverWatcher) -> None:
        self._watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        paths = [os.fsdecode(event.src_path)]
        if event.dest_path:
            paths.append(os.fsdecode(event.dest_path))
        self._watcher.report(paths)


class ObserverWatcher(Watcher):
    name = backend_name("observer")

    def __init__(self, on_change: OnChange, ignore: IgnoreRules) -> None:
        super().__init__(on_change, ignore)
        self._observer = Observer()
        self._handler = _Handler(self)
        self._lock = threading.Lock()
        self._watched: set[tuple[str, bool]] = set()

    def report(self, paths: list[str]) -> None:
        with self._lock:
            roots = [root for root, recursive in self._watched if recursive]
        kept = [
            p
            for p in paths
            if not self._ignore(p, next((r for r in roots if p.startswith(r + os.sep)), None))
        ]
        if kept:
            self._on_change(kept)

    def watch(self, files: Iterable[str] = (), trees: Iterable[str] = ()) -> None:
        wanted = [(d, False) for d in sorted({os.path.dirname(f) for f in files})]
        wanted += [(t, True) for t in trees]
        for path, recursive in wanted:
            with self._lock:
                if (path, recursive) in self._watched or not os.path.isdir(path):
                    continue
                self._watched.add((path, recursive))
            try:
                self._observer.schedule(
                    self._handler, path, recursive=recursive, event_filter=EVENTS
                )
            except OSError:
                self._on_change([LIMIT])
                return

    def start(self) -> None:
        self._observer.start()

    def stop(self) -> None:
        if self._observer.is_alive():
            self._observer.stop()
            self._observer.join(timeout=5)
