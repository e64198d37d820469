"""SIGINT, SIGTERM and SIGHUP as an exception in the main thread, held back where it must not land.

testserver creates a database it has to destroy whatever happens. Python turns SIGINT into
KeyboardInterrupt but lets SIGTERM and SIGHUP (the terminal closed) kill the process outright,
so nothing would be cleaned up; and an exception landing between ``CREATE DATABASE`` and the
line that notes the database exists would leave it behind, unknown. ``Interrupts`` turns these
signals into ``Stopped`` and, inside ``shielded()``, keeps a signal until the block ends (the
destroy path ignores it: the process is stopping anyway).

An exception raised by a signal handler is not always delivered: one that lands in a weakref
callback or a ``__del__`` (an import lock's cleanup, say) is printed as "Exception ignored" and
the program goes on. Where that is known to happen the handler does not raise: the signal comes
again a moment later (``reloader.worker.defer_if_unraisable``). Where it is not known, the
signal is noted all the same, and ``check()`` raises ``Stopped`` for it at the steps that must
not be passed after a stop (the database made, the fixtures loaded, just before serving).

While werkzeug serves, ``devserver.serving.serve`` installs its own graceful-stop handlers and
puts these back afterwards.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

from reloader import worker

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stopped(BaseException):
    """SIGINT, SIGTERM or SIGHUP arrived (a BaseException, like KeyboardInterrupt: ``except
    Exception`` in Django's code must not swallow it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


class Interrupts:
    """Install with ``install()`` (main thread only; elsewhere it does nothing), undo with
    ``restore()``."""

    def __init__(self) -> None:
        self._depth = 0
        self.received: int | None = None
        self._retry: threading.Timer | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> Interrupts:
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def restore(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signum
        if self._depth:
            return
        retry = worker.defer_if_unraisable(signum, frame)
        if retry is not None:
            self._retry = retry
            return
        raise Stopped(signum)

    def check(self) -> None:
        """Raise ``Stopped`` if a stop signal came (outside ``shielded()``), even when the
        exception its handler raised was lost."""
        if self.received is not None and not self._depth:
            raise Stopped(self.received)

    @contextlib.contextmanager
    def shielded(self, raise_pending: bool = True) -> Iterator[None]:
        """Hold the stop signals back during the block; then raise ``Stopped`` for one that came,
        unless ``raise_pending`` is false or the block is already leaving with an exception."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if raise_pending:
            self.check()
