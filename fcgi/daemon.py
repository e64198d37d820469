"""Detach from the terminal, and point stdout/stderr at ``outlog``/``errlog`` (again on SIGHUP).

:func:`detach` is the classic double fork (fork, ``setsid``, fork) with the working directory
changed and stdin on ``/dev/null``, like Django 1.8's ``become_daemon``, with one difference: the
process the user started waits until the daemon says it is serving (or why it failed) and exits
with that status, so ``runfcgi daemonize=true pidfile=... && cat pidfile`` works and a failure is
reported on the terminal instead of in a log nobody reads. The process umask is left alone (the
``umask`` option applies to the unix socket file only).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable

_READY = b"ready\n"


class Stdio:
    """Where fds 1 and 2 go: ``outlog``/``errlog`` if given, ``/dev/null`` for a daemon."""

    def __init__(self, outlog: str | None, errlog: str | None, daemon: bool) -> None:
        self.outlog = outlog or ("/dev/null" if daemon else None)
        self.errlog = errlog or ("/dev/null" if daemon else None)

    def apply(self) -> None:
        """(Re)open the log files in append mode onto fds 1 and 2; log rotation calls this."""
        for fd, path, stream in ((1, self.outlog, sys.stdout), (2, self.errlog, sys.stderr)):
            if path is None:
                continue
            with contextlib.suppress(Exception):
                stream.flush()
            new = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.dup2(new, fd)
            finally:
                os.close(new)


def detach(workdir: str) -> Callable[[str | None], None]:
    """Become a daemon; return ``report(error)`` for the daemon to release the starting process.

    ``report(None)`` makes the process the user started exit 0; ``report("message")`` prints the
    message there and makes it exit 1. Call it exactly once, when serving or when failing.
    """
    read_end, write_end = os.pipe()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    if os.fork() > 0:
        os.close(write_end)
        _wait_and_exit(read_end)
    os.close(read_end)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    os.chdir(workdir)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.close(null)
    reported = False

    def report(error: str | None) -> None:
        nonlocal reported
        if reported:
            return
        reported = True
        with contextlib.suppress(OSError):
            os.write(write_end, _READY if error is None else error.encode("utf-8", "replace"))
        with contextlib.suppress(OSError):
            os.close(write_end)

    return report


def _wait_and_exit(read_end: int) -> None:
    """In the starting process: wait for the daemon's word, echo an error, exit."""
    chunks = []
    while True:
        try:
            chunk = os.read(read_end, 4096)
        except InterruptedError:
            continue
        if not chunk:
            break
        chunks.append(chunk)
    message = b"".join(chunks)
    if message == _READY:
        os._exit(0)
    text = message.decode("utf-8", "replace").strip() or "the daemon exited before it was ready"
    with contextlib.suppress(OSError):
        os.write(2, f"Error: {text}\n".encode("utf-8", "replace"))
    os._exit(1)
