"""runserver --https in a worker: TLS on each connection of the held socket, plain HTTP redirected.

The supervisor holds a plain TCP socket (it answers on it over TLS too: ``reloader.tls``), so a
worker does the TLS itself, per connection, after one look at the first byte the client sent: a
handshake gets TLS, anything else the redirect to https (``reloader.tls.redirect``) and one line
in the request log. For werkzeug (``Https``, a mixin of ``devserver.serving``'s servers) this
happens in the connection's own thread; for uvicorn (``sniffing_protocol``) in the event loop,
without blocking it: the peek waits on a duplicate of the connection's fd, the handshake is
asyncio's ``start_tls`` on the connection that uvicorn's protocol then serves.

A connection that has sent nothing yet (a browser's preconnect) counts as idle: a stop closes it
at once instead of waiting for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
from collections.abc import Callable
from typing import Any

from devserver.serving import log_request
from reloader import tls


class Https:
    """Mixin for ``devserver.serving``'s werkzeug servers (before ``_GracefulStop``)."""

    tls: ssl.SSLContext
    _lock: Any
    _connections: dict[socket.socket, bool]

    def finish_request(self, request: socket.socket, client_address: Any) -> None:
        try:
            first = self._first_byte(request)
            if not first:
                return
            request.settimeout(tls.HANDSHAKE_TIMEOUT)  # for the handshake or the redirect
            if not tls.is_handshake(first):
                self._redirect(request)
                return
            conn = self.tls.wrap_socket(request, server_side=True)  # the handshake
        except OSError:  # ssl.SSLError too: a client that does not trust the certificate
            return
        conn.settimeout(None)
        with self._lock:
            self._connections[conn] = self._connections.pop(request, False)
        try:
            super().finish_request(conn, client_address)  # type: ignore[misc]
        finally:
            with self._lock:
                self._connections.pop(conn, None)
            close(conn)

    def _first_byte(self, request: socket.socket) -> bytes:
        # Before the timeout is set: a socket with one waits in poll() whatever the flags say.
        with contextlib.suppress(BlockingIOError):
            return request.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        request.settimeout(tls.HANDSHAKE_TIMEOUT)
        self.mark_idle(request, True)  # type: ignore[attr-defined]
        try:
            return request.recv(1, socket.MSG_PEEK)
        finally:
            self.mark_idle(request, False)  # type: ignore[attr-defined]

    def _redirect(self, request: socket.socket) -> None:
        head = bytearray()
        while b"\r\n\r\n" not in head and len(head) < tls.MAX_HEAD:
            data = request.recv(65536)
            if not data:
                return
            head += data
        host, port = self.server_address[:2]  # type: ignore[attr-defined]
        answer = tls.redirect(bytes(head), tls.display_host(str(host), int(port)))
        request.sendall(answer)
        log_request(tls.request_line(bytes(head)), "307", str(answer_length(answer)), request)


def answer_length(answer: bytes) -> int:
    return len(answer.split(b"\r\n\r\n", 1)[1])


def close(conn: ssl.SSLSocket) -> None:
    """End a TLS connection: our close_notify, not waiting for the client's."""
    with contextlib.suppress(OSError, ValueError):
        conn.setblocking(False)
        conn.unwrap()
    with contextlib.suppress(OSError):
        conn.close()


# ---------------------------------------------------------------------------------- uvicorn
def sniffing_protocol(
    make: Callable[..., asyncio.Protocol], context: ssl.SSLContext, pending: set[Any]
) -> Callable[..., asyncio.Protocol]:
    """A protocol factory for ``loop.create_server`` in place of uvicorn's ``make``: TLS, then
    uvicorn's protocol, on connections that start a handshake; the redirect on the others.
    ``pending`` holds the connections not yet handed over (a stop closes them)."""

    def factory(**kwargs: Any) -> asyncio.Protocol:
        return _Sniffing(lambda: make(**kwargs), context, pending)

    return factory


class _Sniffing(asyncio.Protocol):
    def __init__(
        self, make: Callable[[], asyncio.Protocol], context: ssl.SSLContext, pending: set[Any]
    ) -> None:
        self.make = make
        self.context = context
        self.pending = pending
        self.peek: socket.socket | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.loop = asyncio.get_running_loop()
        self.pending.add(self)
        transport.pause_reading()
        raw = transport.get_extra_info("socket")
        self.peek = socket.socket(fileno=os.dup(raw.fileno()))
        self.peek.setblocking(False)
        self.loop.add_reader(self.peek.fileno(), self._readable)
        self.timer = self.loop.call_later(tls.HANDSHAKE_TIMEOUT, self.close)

    def _stop_peeking(self) -> None:
        self.timer.cancel()
        if self.peek is not None:
            self.loop.remove_reader(self.peek.fileno())
            self.peek.close()
            self.peek = None

    def close(self) -> None:
        self._stop_peeking()
        self.pending.discard(self)
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_peeking()
        self.pending.discard(self)

    def _readable(self) -> None:
        assert self.peek is not None
        try:
            first = self.peek.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            return
        except OSError:
            first = b""
        self._stop_peeking()
        if not first:
            self.close()
        elif tls.is_handshake(first):
            self.loop.create_task(self._start_tls())
        else:
            self.pending.discard(self)
            host, port = self.transport.get_extra_info("sockname")[:2]
            redirect = _Redirect(self.transport, tls.display_host(str(host), int(port)))
            self.transport.set_protocol(redirect)
            self.transport.resume_reading()

    async def _start_tls(self) -> None:
        # The request may arrive with the handshake's end, before start_tls returns: it waits
        # in ``early`` until uvicorn's protocol has its connection.
        early = _Early()
        try:
            secure = await self.loop.start_tls(
                self.transport,
                early,
                self.context,
                server_side=True,
                ssl_handshake_timeout=tls.HANDSHAKE_TIMEOUT,
            )
        except (OSError, ConnectionError, TimeoutError):  # an untrusted certificate, say
            self.close()
            return
        finally:
            self.pending.discard(self)
        if secure is None or early.lost:
            self.transport.close()
            return
        protocol = self.make()
        secure.set_protocol(protocol)
        protocol.connection_made(secure)
        for data in early.data:
            protocol.data_received(data)
        if early.eof:
            protocol.eof_received()  # type: ignore[attr-defined]


class _Early(asyncio.Protocol):
    """What a TLS connection receives before its real protocol is in place."""

    def __init__(self) -> None:
        self.data: list[bytes] = []
        self.eof = False
        self.lost = False

    def data_received(self, data: bytes) -> None:
        self.data.append(data)

    def eof_received(self) -> bool:
        self.eof = True
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True


class _Redirect(asyncio.Protocol):
    def __init__(self, transport: asyncio.Transport, fallback_host: str) -> None:
        self.transport = transport
        self.fallback_host = fallback_host
        self.head = bytearray()
        self.timer = asyncio.get_running_loop().call_later(tls.HANDSHAKE_TIMEOUT, transport.close)

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return
        self.head += data
        if b"\r\n\r\n" in self.head or len(self.head) >= tls.MAX_HEAD:
            answer = tls.redirect(bytes(self.head), self.fallback_host)
            self.transport.write(answer)
            self.transport.close()
            log_request(tls.request_line(bytes(self.head)), "307", str(answer_length(answer)))

    def connection_lost(self, exc: Exception | None) -> None:
        self.timer.cancel()
