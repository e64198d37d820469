"""AJP 1.3 on flup's ``ajp_base``, with its defects fixed by subclassing.

Against ``flup/server/ajp_base.py`` (1.0.3):

- ``Connection.processInput`` ``select()``\\s before every packet (:647): past fd 1023 that raises
  and the connection dies (defect 5). Packets are read with blocking ``recv()`` and a timeout.
- ``Request.write`` slices 8 KB packets off the response (:575-593), quadratic on a big single
  chunk (defect 6); packets are cut from a ``memoryview`` and each app chunk is one ``sendall``.
- The error page was sent with status **200** "Internal Server Error" (:985); it is a 500 here.
- Every request was logged at INFO (:464-466); a client reset escaped as a traceback (defect 7).
- Malformed packets (a bad method code raises ``IndexError``, :661-664) are one log line and a
  closed connection.

AJP connections are persistent (the web server keeps them open between requests), so a graceful
stop ends the idle ones at once (see ``live``).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
from collections.abc import Callable
from typing import Any

from flup.server import ajp_base as _base

from . import errors
from .live import LiveConnections

_MAX_WRITE = 8192 - 4 - 3 - 1  # AJP's packet limit minus headers (flup's Request._maxWrite)
SEND_BATCH = 256 * 1024
_BODY_HEADER = struct.Struct(">2sHcH")


class Request(_base.Request):  # type: ignore[misc]
    """One request: no per-request log line; exceptions and a client gone stay inside."""

    def run(self) -> None:
        try:
            self._conn.server.handler(self)
        except errors.CLIENT_GONE:
            raise
        except Exception:
            errors.app_exception(self.environ)
            if not self._headersSent:
                self._conn.server.error(self)
        pkt = _base.Packet()
        pkt.data = _base.PKTTYPE_END_RESPONSE + b"\x01"
        self._conn.writePacket(pkt)
        self._conn.served += 1

    def write(self, data: bytes) -> None:
        assert self._headersSent, "Headers must be sent first!"
        view = memoryview(data)
        parts: list[bytes | memoryview] = []
        size = 0
        for start in range(0, len(view), _MAX_WRITE):
            chunk = view[start : start + _MAX_WRITE]
            parts.append(
                _BODY_HEADER.pack(
                    _base.CONTAINER_PREFIX, len(chunk) + 4, _base.PKTTYPE_SEND_BODY, len(chunk)
                )
            )
            parts.append(chunk)
            parts.append(b"\0")
            size += len(chunk)
            if size >= SEND_BATCH:
                self._conn.send(b"".join(parts))
                parts.clear()
                size = 0
        if parts:
            self._conn.send(b"".join(parts))


class Connection(_base.Connection):  # type: ignore[misc]
    """One persistent AJP connection; never raises."""

    def __init__(self, sock: socket.socket, addr: Any, server: Any, timeout: Any) -> None:
        super().__init__(sock, addr, server, timeout)
        self._keep_going = True
        self.served = 0

    def stop(self) -> None:
        self._keep_going = False
        if self._request is None and self.served:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)

    def run(self) -> None:
        live: LiveConnections = self.server.live
        live.add(self)
        try:
            while self._keep_going:
                self.processInput()
        except EOFError:
            pass
        except (
            errors.ProtocolError,
            _base.ProtocolError,
            ValueError,
            IndexError,
            struct.error,
        ) as exc:
            errors.protocol_error(errors.peer(self._sock, self._addr), exc)
        except errors.CLIENT_GONE as exc:
            if self._request is not None:
                errors.client_gone(self._request.environ, exc)
        except Exception:
            errors.log.exception("unexpected error on an AJP connection")
        finally:
            live.discard(self)
            self._sock.close()

    def processInput(self) -> None:
        pkt = _base.Packet()
        pkt.read(self._sock)
        if self._request is not None:
            self._processBody(pkt)
            return
        if not pkt.length:
            raise errors.ProtocolError("unexpected empty packet")
        pkttype = pkt.data[0]
        if pkttype == _base.PKTTYPE_FWD_REQ:
            self._forwardRequest(pkt)
        elif pkttype == _base.PKTTYPE_SHUTDOWN:
            self._shutdown(pkt)
        elif pkttype == _base.PKTTYPE_PING:
            self._ping(pkt)
        elif pkttype == _base.PKTTYPE_CPING:
            self._cping(pkt)
        else:
            raise errors.ProtocolError(f"unknown AJP packet type {pkttype}")

    def writePacket(self, pkt: Any) -> None:
        self.send(_base.CONTAINER_PREFIX + struct.pack(">H", len(pkt.data)) + pkt.data)

    def send(self, data: bytes) -> None:
        self._sock.sendall(data)


class AJPServer(_base.BaseAJPServer):  # type: ignore[misc]
    """flup's AJP WSGI glue with our connection and a real 500 page."""

    requestClass = Request

    def __init__(
        self,
        application: Callable[..., Any],
        *,
        threaded: bool,
        debug: bool,
        concurrency: int,
    ) -> None:
        super().__init__(
            application,
            multithreaded=threaded,
            multiprocess=not threaded,
            bindAddress=("(bound by fcgi.sockets)", 0),
            allowedServers=None,
            loggingLevel=logging.WARNING,
            debug=debug,
        )
        self.live = LiveConnections()

    def serve_connection(self, sock: socket.socket, addr: Any) -> None:
        sock.settimeout(errors.IO_TIMEOUT)
        Connection(sock, addr, self, None).run()

    def error(self, request: Any) -> None:
        request.startResponse(
            500, b"Internal Server Error", [(b"Content-Type", b"text/html; charset=utf-8")]
        )
        request.write(errors.error_page(self.debug))
