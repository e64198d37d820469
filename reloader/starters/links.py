"""The supervisor's end of a control socket to a process of the fork start: the fork template, a
builder, a checkpoint. Messages may carry fds (``SCM_RIGHTS``: a new checkpoint's socket)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from typing import Any

from .. import protocol


class ServerLink:
    """One control socket; ``kind`` is ``template``, ``builder`` or ``checkpoint``."""

    def __init__(self, sock: socket.socket, kind: str, name: str = "") -> None:
        self.sock = sock
        self.kind = kind
        self.name = name
        self.pid: int | None = None
        self.alive = True
        self.reader = protocol.MessageReader()
        self.fds: list[int] = []

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, kind: str, fds: tuple[int, ...] = (), **fields: Any) -> bool:
        """False when the other end is gone."""
        if not self.alive:
            return False
        try:
            if fds:
                socket.send_fds(self.sock, [protocol.encode(kind, **fields)], list(fds))
            else:
                self.sock.sendall(protocol.encode(kind, **fields))
        except OSError:
            return False
        return True

    def receive(self) -> list[dict[str, Any]] | None:
        """The messages that arrived (fds they carried go to ``self.fds``); None at the end."""
        try:
            data, fds, _flags, _addr = socket.recv_fds(self.sock, 1 << 20, 16)
        except OSError:
            data, fds = b"", []
        self.fds += fds
        if not data:
            return None
        return list(self.reader.feed(data))

    def take_fd(self) -> int | None:
        return self.fds.pop(0) if self.fds else None

    def close(self, kill: bool = False) -> None:
        """Close the socket (the process exits when it sees the end); ``kill`` it too."""
        self.alive = False
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds = []
        self.sock.close()
        if kill and self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
