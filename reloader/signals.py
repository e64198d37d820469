"""Process plumbing of the supervisor: signals that only enqueue, and a default log handler."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType

logger = logging.getLogger("reloader")

HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGCHLD)


@contextlib.contextmanager
def queued_signals(queue: list[int], wake_fd: int) -> Iterator[None]:
    """While inside: the supervisor's signals are appended to ``queue`` and wake ``wake_fd``
    (``signal.set_wakeup_fd``); nothing else happens in a handler. Outside the main thread
    (an embedder's), signals stay as they are."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in HANDLED}
    previous_wakeup = signal.set_wakeup_fd(wake_fd, warn_on_full_buffer=False)

    def enqueue(signum: int, frame: FrameType | None) -> None:
        queue.append(signum)

    for s in HANDLED:
        signal.signal(s, enqueue)
    try:
        yield
    finally:
        signal.set_wakeup_fd(previous_wakeup)
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextlib.contextmanager
def default_log_handler(verbose: bool = False) -> Iterator[None]:
    """Make sure the supervisor's messages reach stderr when nothing configured logging."""
    if logger.handlers or logging.getLogger().handlers:
        yield
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def describe_exit(status: int) -> str:
    """``exited with status 1`` or ``was killed by SIGKILL``."""
    if status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = f"signal {-status}"
        return f"was killed by {name}"
    return f"exited with status {status}"
