"""Watch files in this process, without a supervisor: testserver's templates and fixtures.

testserver serves from the process that holds its test database, so nothing restarts; what it
reloads, it reloads in place. The reloader's watchers (inotify through watchdog on Linux, the
native observer elsewhere, polling when the system runs out of inotify watches) report changes
from their own thread; bursts (an editor's save, a ``git checkout``) become one batch through
the reloader's debouncer, and one thread of ours hands each batch to the handlers in turn, so
a handler never runs twice at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

import reloader

logger = logging.getLogger("devserver")

QUIET = 0.05  # a burst ends after this long without a change...
MAX_WAIT = 2.0  # ...or this long after its first change

Handler = Callable[[list[str]], None]


class Watch:
    """Call each handler with the batches of paths changed under what ``watch()`` was given."""

    def __init__(self, backend: str = "auto") -> None:
        self._cond = threading.Condition()
        self._debouncer = reloader.Debouncer(QUIET, MAX_WAIT)
        self._stopping = False
        self._handlers: list[Handler] = []
        self._files: set[str] = set()
        self._trees: set[str] = set()
        self._ignore = reloader.IgnoreRules()
        try:
            self._watcher = reloader.make_watcher(backend, self._changed, self._ignore)  # type: ignore[arg-type]
        except OSError as exc:  # WatchLimitReached: no inotify instance left
            self._watcher = self._polling(exc)
        self._started = False
        self._thread = threading.Thread(target=self._run, name="devserver-watch", daemon=True)

    @property
    def name(self) -> str:
        return self._watcher.name

    def _polling(self, reason: BaseException) -> reloader.Watcher:
        logger.warning("%s: watching templates and fixtures by polling instead", reason)
        return reloader.make_watcher("poll", self._changed, self._ignore)

    def watch(self, files: Iterable[str] = (), trees: Iterable[str] = ()) -> None:
        """Watch these files (through their directories) and these trees, recursively."""
        files, trees = set(files) - self._files, set(trees) - self._trees
        self._files |= files
        self._trees |= trees
        try:
            self._watcher.watch(sorted(files), sorted(trees))
        except OSError as exc:  # WatchLimitReached
            self._watcher.stop()
            self._watcher = self._polling(exc)
            self._watcher.watch(sorted(self._files), sorted(self._trees))
            if self._started:
                self._watcher.start()

    def on_change(self, handler: Handler) -> None:
        self._handlers.append(handler)

    def start(self) -> None:
        self._watcher.start()
        self._thread.start()
        self._started = True

    def stop(self) -> None:
        """Stop watching; wait for the handler that may be running, and join the threads."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._watcher.stop()
        if self._started:
            self._thread.join()

    def _changed(self, paths: list[str]) -> None:
        with self._cond:
            self._debouncer.add(paths, time.monotonic())
            self._cond.notify_all()

    def _next_batch(self) -> list[str] | None:
        with self._cond:
            while not self._stopping:
                now = time.monotonic()
                batch = self._debouncer.take(now)
                if batch:
                    return batch
                deadline = self._debouncer.deadline()
                self._cond.wait(None if deadline is None else max(0.0, deadline - now))
            return None

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            for handler in self._handlers:
                try:
                    handler(batch)
                except Exception:
                    logger.exception("Error while handling changes to %s", ", ".join(batch))
