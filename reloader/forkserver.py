"""A process that waits to fork: the fork template, and every checkpoint.

It answers the supervisor on its control socket (``fork`` → ``forking``, then ``socket`` with the
new child's control socket → ``forked``; ``cancel``), reaps the children it forked and reports
them (``exited``). ``serve()`` returns only in a forked child, with the fork message and the
child's control socket fd, once the child was reset to a clean state: default signals, the
supervisor's process group, the message's environment and working directory, fresh import
caches, none of the server's own fds. The server itself never returns from ``serve()``: it exits
when its control socket closes (``os._exit``: a checkpoint is paused deep in a program's start-up
and must not unwind it).

It runs no thread and refuses to fork while one runs (some library started it), so a fork never
copies a lock held by another thread.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import selectors
import signal
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import protocol


@dataclass
class Forked:
    """What a forked child got: the fork message (``role``, ``env``, ``cwd``, ``info``...) and
    the fd of its control socket to the supervisor."""

    message: dict[str, Any]
    control_fd: int


def refuse_reason() -> str | None:
    """Why this process must not fork now (a running thread), or None."""
    if threading.active_count() > 1:
        names = ", ".join(
            t.name for t in threading.enumerate() if t is not threading.current_thread()
        )
        return f"a thread runs in it ({names})"
    return None


class ForkServer:
    """Wait on ``control`` for fork requests (see the module docstring).

    worker_pgid   the process group each child joins (the supervisor's: the terminal's).
    keep_fds      fds the children inherit besides their control socket (the listening sockets).
    on_message    messages of other kinds (the template's ``preload``).
    idle_work     called between two looks at the control socket while it returns True (the
                  template's imports, one at a time: it forks between two imports).
    """

    def __init__(
        self,
        control: socket.socket,
        worker_pgid: int = 0,
        on_message: Callable[[dict[str, Any]], None] | None = None,
        idle_work: Callable[[], bool] | None = None,
    ) -> None:
        self.control = control
        self.worker_pgid = worker_pgid
        self.on_message = on_message
        self.idle_work = idle_work
        self.reader = protocol.MessageReader()
        self.fds: list[int] = []
        self.requests: dict[int, dict[str, Any]] = {}  # fork messages waiting for their socket
        self.children: set[int] = set()
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        self._forked: Forked | None = None

    def send(self, kind: str, **fields: Any) -> None:
        # If the supervisor is gone, the next read says so and this process exits.
        with contextlib.suppress(OSError):
            self.control.sendall(protocol.encode(kind, **fields))

    # -------------------------------------------------------------- the loop
    def serve(self) -> Forked:
        """Answer until a fork is granted; return in that child only."""
        # Stop signals are the supervisor's to act on (Ctrl-C and `kill -TERM -PGID` reach the
        # whole group): a fork server ends when its control socket closes.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)
        selector = selectors.DefaultSelector()
        selector.register(self.control, selectors.EVENT_READ, "control")
        selector.register(self.wake_r, selectors.EVENT_READ, "wake")
        busy = False
        while self._forked is None:
            for key, _ in selector.select(0 if busy else None):
                if key.data == "wake":
                    self._drain_wake()
                    self.reap()
                elif not self.read_control():
                    self.exit()
                if self._forked is not None:
                    break
            if self._forked is None and self.idle_work is not None:
                busy = self.idle_work()
        selector.close()  # in the child only: its own copy
        return self._forked

    def exit(self) -> None:
        """The supervisor is gone, or no longer wants this process."""
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(protocol.EXIT_OK)

    def _drain_wake(self) -> None:
        while True:
            try:
                if not os.read(self.wake_r, 4096):
                    return
            except BlockingIOError:
                return

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.children.discard(pid)
            self.send(protocol.EXITED, pid=pid, status=os.waitstatus_to_exitcode(status))

    def read_control(self) -> bool:
        try:
            data, fds, _flags, _addr = socket.recv_fds(self.control, 1 << 20, 16)
        except OSError:  # ECONNRESET: the supervisor closed with our messages unread
            return False
        if not data:
            return False
        self.fds += fds
        for message in self.reader.feed(data):
            kind = message["kind"]
            if kind == protocol.FORK:
                self.asked(message)
            elif kind == protocol.SOCKET and self.fds:
                fd = self.fds.pop(0)
                request = self.requests.pop(int(message.get("generation", -1)), None)
                if request is None:
                    os.close(fd)
                else:
                    self.fork(request, fd)
                    if self._forked is not None:
                        return True  # in the child: the rest of this batch is the server's
            elif kind == protocol.CANCEL:
                self.requests.pop(int(message.get("generation", -1)), None)
            elif self.on_message is not None:
                self.on_message(message)
        return True

    # -------------------------------------------------------------- forking
    def asked(self, message: dict[str, Any]) -> None:
        """A child is wanted: ask for its control socket, or say why it cannot be forked."""
        generation = message.get("generation", 0)
        reason = refuse_reason()
        if reason is not None:
            self.send(protocol.FORKED, generation=generation, error=reason)
            return
        self.requests[generation] = message
        self.send(protocol.FORKING, generation=generation)

    def fork(self, message: dict[str, Any], fd: int) -> None:
        generation = message.get("generation", 0)
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        gc.freeze()  # what this process holds stays out of the child's collections: fewer copies
        pid = os.fork()
        if pid == 0:
            self._forked = self._become_child(message, fd)
            return
        os.close(fd)
        self.children.add(pid)
        self.send(protocol.FORKED, generation=generation, pid=pid)

    def _become_child(self, message: dict[str, Any], fd: int) -> Forked:
        try:
            signal.set_wakeup_fd(-1)
            for signum in (signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP):
                signal.signal(signum, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            if self.worker_pgid:
                # Back in the supervisor's process group: the terminal's (a debugger works), and
                # Ctrl-C reaches the worker as it reaches a spawned one.
                with contextlib.suppress(OSError):
                    os.setpgid(0, self.worker_pgid)
            self.control.close()
            os.close(self.wake_r)
            os.close(self.wake_w)
            for other in self.fds:
                os.close(other)
            self.fds = []
            self.requests.clear()
            self.children.clear()
            os.environ.clear()
            os.environ.update(message["env"])
            os.chdir(message["cwd"])
            # Files may have appeared since this process looked at a directory.
            importlib.invalidate_caches()
        except BaseException:
            import traceback

            traceback.print_exc()
            os._exit(protocol.EXIT_ERROR)
        return Forked(message, fd)
