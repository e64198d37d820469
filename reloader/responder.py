"""The small HTTP responder the supervisor runs on the held sockets while no worker can serve.

Driven by the supervisor's selector, never blocking: accept, read the request head (bounded in
size and time), answer 500 with the error page (with the failure, or generic: see
``reloader.audience``), close the writing side, drain what the client still sends, close.

It must outlive anyone who opens connections: at most ``MAX_CONNECTIONS`` at once (a new one
pushes the oldest out), and when the process runs out of file descriptors (EMFILE, ENFILE) or
memory for sockets (ENOBUFS, ENOMEM) it drops its oldest connection and stops accepting for
``ACCEPT_PAUSE`` seconds instead of failing. Each connection is answered with the failure that
was current when it was accepted: one accepted while the code was broken gets that error, never
a page about a restart.

On a socket that speaks HTTPS (``reloader.tls``) each connection is first looked at: a TLS
handshake is carried out without blocking and the page is sent over TLS; plain HTTP gets the
redirect to https instead of the page.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import selectors
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from . import tls
from .audience import Audience
from .errorpage import Failure, response

logger = logging.getLogger("reloader")

READ_TIMEOUT = 5.0
DRAIN_TIMEOUT = 2.0
MAX_HEAD = 64 * 1024
MAX_CONNECTIONS = 128
ACCEPT_PAUSE = 0.1
DROP_WHEN_OUT = 16  # connections dropped (oldest first) when out of file descriptors
_OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


@dataclass
class _Conn:
    sock: socket.socket
    client: str
    failure: Failure
    deadline: float
    context: ssl.SSLContext | None = None  # an HTTPS socket's, until the first byte is seen
    port: int = 0
    stage: str = "head"  # "sniff" (HTTPS: nothing read yet), "handshake", "head"
    redirect: bool = False  # plain HTTP on an HTTPS socket
    head: bytearray = field(default_factory=bytearray)
    out: bytes = b""
    draining: bool = False


def host_header(head: bytes) -> str | None:
    """The value of the one Host header of a request head (None if missing or repeated)."""
    values = []
    for line in head.split(b"\r\n\r\n", 1)[0].split(b"\n")[1:]:
        name, sep, value = line.partition(b":")
        if sep and name.strip().lower() == b"host":
            values.append(value.strip().decode("latin-1"))
    return values[0] if len(values) == 1 else None


class ErrorResponder:
    """Answer every connection accepted on the held sockets with the current failure page."""

    def __init__(
        self,
        selector: selectors.BaseSelector,
        failure: Callable[[], Failure | None],
        audience: Callable[[], Audience],
    ) -> None:
        self._selector = selector
        self._failure = failure
        self._audience = audience
        self._conns: dict[int, _Conn] = {}  # in the order accepted
        self._listeners: list[socket.socket] = []
        self._contexts: dict[socket.socket, ssl.SSLContext] = {}
        self._registered = False
        self._paused_until: float | None = None

    # ---------------------------------------------------------------- accepting
    @property
    def listening(self) -> bool:
        return bool(self._listeners)

    def listen(self, listeners: list[tuple[socket.socket, ssl.SSLContext | None]]) -> None:
        """Answer on these sockets from now on (over TLS on those with a context)."""
        self._listeners = [sock for sock, _ in listeners]
        self._contexts = {sock: context for sock, context in listeners if context is not None}
        self._paused_until = None
        self._register()

    def stop_listening(self) -> None:
        """Leave new connections in the backlog (for the next worker)."""
        self._unregister()
        self._listeners = []
        self._paused_until = None

    def _register(self) -> None:
        if not self._registered:
            for sock in self._listeners:
                self._selector.register(sock, selectors.EVENT_READ, ("listener", sock))
            self._registered = True

    def _unregister(self) -> None:
        if self._registered:
            for sock in self._listeners:
                with contextlib.suppress(KeyError, ValueError):
                    self._selector.unregister(sock)
            self._registered = False

    def accept(self, listener: socket.socket) -> None:
        # An event from the same select() as the one that stopped us: not ours any more.
        if not self._registered or listener not in self._listeners:
            return
        failure = self._failure()
        if failure is None:
            return
        try:
            sock, address = listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        except OSError as exc:
            if exc.errno not in _OUT_OF_RESOURCES:
                raise
            self._out_of_resources(exc)
            return
        if len(self._conns) >= MAX_CONNECTIONS:
            self._close_oldest()
        sock.setblocking(False)
        client = address[0] if isinstance(address, tuple) else ""
        conn = _Conn(sock, client, failure, time.monotonic() + READ_TIMEOUT)
        conn.context = self._contexts.get(listener)
        if conn.context is not None:
            conn.stage = "sniff"
            conn.port = int(listener.getsockname()[1])
        self._conns[sock.fileno()] = conn
        self._selector.register(sock, selectors.EVENT_READ, ("error-conn", conn))

    def _out_of_resources(self, exc: OSError) -> None:
        logger.debug("Cannot accept a connection (%s): pausing for %gs.", exc, ACCEPT_PAUSE)
        for _ in range(DROP_WHEN_OUT):
            self._close_oldest()
        self._unregister()
        self._paused_until = time.monotonic() + ACCEPT_PAUSE

    def _close_oldest(self) -> None:
        if self._conns:
            self._close(next(iter(self._conns.values())))

    # ---------------------------------------------------------------- connections
    def handle(self, conn: _Conn, mask: int) -> None:
        try:
            if conn.stage == "sniff":
                self._sniff(conn)
            elif conn.stage == "handshake":
                self._handshake(conn)
            elif mask & selectors.EVENT_WRITE:
                self._write(conn)
            elif mask & selectors.EVENT_READ:
                self._read(conn)
        except ssl.SSLWantReadError:
            self._wait(conn, selectors.EVENT_READ)
        except ssl.SSLWantWriteError:
            self._wait(conn, selectors.EVENT_WRITE)
        except OSError:  # ssl.SSLError included: a client that does not trust us, say
            self._close(conn)

    def _wait(self, conn: _Conn, events: int) -> None:
        self._selector.modify(conn.sock, events, ("error-conn", conn))

    def _sniff(self, conn: _Conn) -> None:
        first = conn.sock.recv(1, socket.MSG_PEEK)
        if not first:
            self._close(conn)
        elif tls.is_handshake(first) and conn.context is not None:
            # The selector keeps the socket object it was given: the wrapped one replaces it.
            self._selector.unregister(conn.sock)
            conn.sock = conn.context.wrap_socket(
                conn.sock, server_side=True, do_handshake_on_connect=False
            )
            self._selector.register(conn.sock, selectors.EVENT_READ, ("error-conn", conn))
            conn.stage = "handshake"
            self._handshake(conn)
        else:
            conn.stage, conn.redirect = "head", True
            self._read(conn)

    def _handshake(self, conn: _Conn) -> None:
        assert isinstance(conn.sock, ssl.SSLSocket)
        conn.sock.do_handshake()
        conn.stage = "head"
        self._wait(conn, selectors.EVENT_READ)
        self._read(conn)  # the request may have come with the handshake's last flight

    def _read(self, conn: _Conn) -> None:
        while True:
            data = conn.sock.recv(65536)
            if not data:
                self._close(conn)
                return
            if not conn.draining:
                conn.head += data
                if b"\r\n\r\n" in conn.head or len(conn.head) >= MAX_HEAD:
                    self._answer(conn)
                    return
            if not isinstance(conn.sock, ssl.SSLSocket) or not conn.sock.pending():
                return

    def _answer(self, conn: _Conn) -> None:
        head = bytes(conn.head)
        if conn.redirect:
            conn.out = tls.redirect(head, tls.display_host("localhost", conn.port))
        else:
            head_only = head.split(b" ", 1)[0] == b"HEAD"
            detailed = self._audience().allows(host_header(head), conn.client)
            conn.out = response(conn.failure, head_only, detailed)
        self._wait(conn, selectors.EVENT_WRITE)

    def _write(self, conn: _Conn) -> None:
        sent = conn.sock.send(conn.out)
        conn.out = conn.out[sent:]
        if not conn.out:
            if isinstance(conn.sock, ssl.SSLSocket):
                # TLS's end of the response (close_notify); the client's own is not awaited.
                with contextlib.suppress(OSError):
                    conn.sock.unwrap()
            conn.sock.shutdown(socket.SHUT_WR)
            conn.draining = True
            conn.deadline = time.monotonic() + DRAIN_TIMEOUT
            self._wait(conn, selectors.EVENT_READ)

    def next_deadline(self) -> float | None:
        deadlines = [c.deadline for c in self._conns.values()]
        if self._paused_until is not None:
            deadlines.append(self._paused_until)
        return min(deadlines, default=None)

    def expire(self, now: float) -> None:
        for conn in [c for c in self._conns.values() if c.deadline <= now]:
            self._close(conn)
        if self._paused_until is not None and self._paused_until <= now:
            self._paused_until = None
            self._register()

    def _close(self, conn: _Conn) -> None:
        self._conns.pop(conn.sock.fileno(), None)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(conn.sock)
        conn.sock.close()

    def close_all(self) -> None:
        self.stop_listening()
        for conn in list(self._conns.values()):
            self._close(conn)
