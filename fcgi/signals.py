"""Signals become bytes on a pipe that the server loop selects on.

flup's loops set flags in their handlers and block in ``select()`` without a timeout; since
PEP 475 Python restarts an interrupted ``select()``, so a prefork server ignores SIGTERM while it
is idle (``flup/server/preforkserver.py:164``, defect 3 in the research notes). Here the handlers
do nothing but exist: Python's C handler writes the signal number to the wakeup fd
(``signal.set_wakeup_fd``), which wakes the loop; the loop reads the numbers and decides.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterable
from types import FrameType
from typing import Any


def _ignore(signum: int, frame: FrameType | None) -> None:
    """The Python-level handler; the wakeup fd carries the signal to the loop."""


class SignalPipe:
    """Route ``signums`` to a non-blocking pipe; :meth:`drain` returns what arrived, in order."""

    def __init__(self, signums: Iterable[int]) -> None:
        self.signums = tuple(signums)
        self._read, self._write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._previous: list[tuple[int, Any]] = []
        self._old_wakeup: int | None = None

    def fileno(self) -> int:
        return self._read

    def install(self) -> SignalPipe:
        self._old_wakeup = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        for signum in self.signums:
            self._previous.append((signum, signal.signal(signum, _ignore)))
        return self

    def drain(self) -> list[int]:
        data = b""
        while True:
            try:
                chunk = os.read(self._read, 512)
            except (BlockingIOError, InterruptedError):
                break
            if not chunk:
                break
            data += chunk
        return [b for b in data if b in self.signums]

    def close(self) -> None:
        """Restore the previous handlers and wakeup fd, and close the pipe."""
        for signum, handler in reversed(self._previous):
            with contextlib.suppress(ValueError, OSError):
                signal.signal(signum, handler)
        self._previous.clear()
        if self._old_wakeup is not None:
            with contextlib.suppress(ValueError):
                signal.set_wakeup_fd(self._old_wakeup)
            self._old_wakeup = None
        for fd in (self._read, self._write):
            with contextlib.suppress(OSError):
                os.close(fd)

    def forget(self) -> None:
        """In a forked child: drop the parent's pipe without touching signal handlers."""
        self._previous.clear()
        self._old_wakeup = None
        for fd in (self._read, self._write):
            with contextlib.suppress(OSError):
                os.close(fd)
