"""SCGI on flup's ``scgi_base``, with its defects fixed by subclassing.

Against ``flup/server/scgi_base.py`` (1.0.3):

- ``wsgi.input`` was ``sock.makefile('rb')`` (:232-235): ``read()`` without a size reads to EOF,
  and nginx never half-closes, so it blocks forever (defect 8). Here the input stops at
  CONTENT_LENGTH.
- The netstring header was read one ``recv(1)`` per length digit and without a bound (:91-101);
  here it is read through one buffered reader, at most :data:`errors.MAX_HEADER_BYTES`.
- Every request was logged at INFO with a timestamp (:166-169, defect 8) and the handler's
  exceptions went through ``logger.exception``; here nothing is logged for a good request, a
  client gone is one line, an app exception one traceback.
- A client reset is caught (defect 7); the response is written in batches with one ``sendall``
  per flush; closing waits for the web server only when request input is left unread (a close
  with unread input sends a RST that can destroy the response in flight).
- SCRIPT_NAME/PATH_INFO: nginx's stock ``scgi_params`` sends neither; see ``prefix``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import socket
import time
from collections.abc import Callable, MutableMapping
from typing import Any

from flup.server import scgi_base as _base

from . import errors, prefix
from .live import LiveConnections

_RECV_SIZE = 65536
SEND_BATCH = 256 * 1024
LINGER = 2.0


class BoundedInput:
    """``wsgi.input`` that ends at CONTENT_LENGTH, whatever the size asked for."""

    def __init__(self, raw: io.BufferedReader, length: int) -> None:
        self._raw = raw
        self.remaining = length

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0 or size > self.remaining:
            size = self.remaining
        if size == 0:
            return b""
        data = self._raw.read(size)
        if len(data) < size:
            self.remaining = 0
            raise ConnectionAbortedError("the web server closed before sending the request body")
        self.remaining -= len(data)
        return data

    def readline(self, size: int | None = -1) -> bytes:
        if size is None or size < 0 or size > self.remaining:
            size = self.remaining
        if size == 0:
            return b""
        data = self._raw.readline(size)
        self.remaining -= len(data)
        return data

    def readlines(self, hint: int = -1) -> list[bytes]:
        lines = []
        total = 0
        while line := self.readline():
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> BoundedInput:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line


class Output:
    """The response side of the socket: writes are batched, ``flush()`` sends them."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._parts: list[bytes] = []
        self._size = 0
        # flup's handler swallows EPIPE (scgi_base.py:516-518): remember it to log it once.
        self.gone: BaseException | None = None

    def write(self, data: bytes) -> None:
        if data:
            self._parts.append(bytes(data))
            self._size += len(data)
            if self._size >= SEND_BATCH:
                self.flush()

    def flush(self) -> None:
        if self._parts:
            data = b"".join(self._parts)
            self._parts.clear()
            self._size = 0
            try:
                self._sock.sendall(data)
            except errors.CLIENT_GONE as exc:
                self.gone = exc
                raise

    def discard(self) -> None:
        self._parts.clear()
        self._size = 0


def read_netstring(raw: io.BufferedReader, limit: int) -> bytes:
    """``<length>:<bytes>,`` with the length bounded by ``limit``; EOFError before any byte."""
    digits = b""
    while True:
        c = raw.read(1)
        if not c:
            if digits:
                raise errors.ProtocolError("connection closed inside the SCGI header length")
            raise EOFError
        if c == b":":
            break
        if not c.isdigit() or len(digits) >= 10:
            raise errors.ProtocolError("invalid SCGI netstring length")
        digits += c
    if not digits:
        raise errors.ProtocolError("empty SCGI netstring length")
    size = int(digits)
    if size > limit:
        raise errors.HeadersTooLarge(f"SCGI headers of {size} bytes (limit {limit})")
    data = raw.read(size)
    if len(data) < size or raw.read(1) != b",":
        raise errors.ProtocolError("truncated or unterminated SCGI netstring")
    return data


def parse_headers(data: bytes) -> dict[str, str]:
    items = data.split(b"\0")
    if items[-1] != b"" or len(items) % 2 != 1:
        raise errors.ProtocolError("SCGI headers are not NUL-terminated name/value pairs")
    return {
        items[i].decode("latin-1"): items[i + 1].decode("latin-1")
        for i in range(0, len(items) - 1, 2)
    }


class Request(_base.Request):  # type: ignore[misc]
    """One request: no per-request log line; exceptions and a client gone stay inside."""

    def run(self) -> None:
        try:
            self._conn.server.handler(self)
        except errors.CLIENT_GONE:
            raise
        except Exception:
            errors.app_exception(self.environ)
            if not self.stdout.dataWritten:
                self._conn.server.error(self)


class Connection(_base.Connection):  # type: ignore[misc]
    """One SCGI request on one connection; never raises."""

    def __init__(self, sock: socket.socket, addr: Any, server: Any, timeout: Any) -> None:
        super().__init__(sock, addr, server, timeout)
        sock.settimeout(errors.IO_TIMEOUT)
        self.in_request = False
        self._input: BoundedInput | None = None
        self._gone = False

    def stop(self) -> None:
        """One request per connection: there is never an idle kept-alive one to end."""

    def run(self) -> None:
        live: LiveConnections = self.server.live
        live.add(self)
        raw = self._sock.makefile("rb", buffering=_RECV_SIZE)
        output = Output(self._sock)
        environ: dict[str, str] = {}
        try:
            try:
                environ = parse_headers(read_netstring(raw, errors.MAX_HEADER_BYTES))
                length = int(environ.get("CONTENT_LENGTH", ""))
                if length < 0:
                    raise ValueError
            except ValueError:
                raise errors.ProtocolError("missing or invalid CONTENT_LENGTH") from None
            self._input = BoundedInput(raw, length)
            self.in_request = True
            self.server.requestClass(self, environ, self._input, output).run()
            output.flush()
            if output.gone is not None:
                raise output.gone
        except EOFError:
            pass
        except errors.HeadersTooLarge as exc:
            errors.protocol_error(errors.peer(self._sock, self._addr), exc)
            with contextlib.suppress(OSError):
                self._sock.sendall(errors.TOO_LARGE)
        except errors.ProtocolError as exc:
            errors.protocol_error(errors.peer(self._sock, self._addr), exc)
        except errors.CLIENT_GONE as exc:
            self._gone = True
            output.discard()
            if self.in_request:
                errors.client_gone(environ, exc)
        except Exception:
            errors.log.exception("unexpected error on an SCGI connection")
        finally:
            self.in_request = False
            live.discard(self)
            self._close(raw)

    def _close(self, raw: io.BufferedReader) -> None:
        sock = self._sock
        unread = self._input is None or self._input.remaining > 0
        try:
            if unread and not self._gone:
                sock.shutdown(socket.SHUT_WR)
                deadline = time.monotonic() + LINGER
                while (left := deadline - time.monotonic()) > 0:
                    sock.settimeout(left)
                    if not sock.recv(_RECV_SIZE):
                        break
        except OSError:
            pass
        finally:
            raw.close()
            sock.close()


class SCGIServer(_base.BaseSCGIServer):  # type: ignore[misc]
    """flup's SCGI WSGI glue with our connection, environ fixes and error page."""

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
            bindAddress="(bound by fcgi.sockets)",
            allowedServers=None,
            loggingLevel=logging.WARNING,
            debug=debug,
        )
        self.live = LiveConnections()

    def serve_connection(self, sock: socket.socket, addr: Any) -> None:
        Connection(sock, addr, self, None).run()

    def _sanitizeEnv(self, environ: MutableMapping[str, Any]) -> None:
        prefix.fix_query_string(environ)
        prefix.fix_paths(environ)

    def error(self, request: Any) -> None:
        request.stdout.write(
            b"Status: 500 Internal Server Error\r\n"
            + errors.ERROR_HEADERS
            + b"\r\n"
            + errors.error_page(self.debug)
        )
