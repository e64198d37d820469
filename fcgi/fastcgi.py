"""FastCGI on flup's ``fcgi_base``, with its defects fixed by subclassing.

What changes, against ``flup/server/fcgi_base.py`` (1.0.3):

- Reading: flup ``select()``\\s with a 1 s timeout before every record (:660-669) and then reads
  header, content and padding with separate ``recv()`` calls; ``select()`` cannot watch fds above
  1023, so past 1,024 open files every connection is dropped (defect 5). Records are read here
  from a buffer filled by large blocking ``recv()``\\s, with a socket timeout (poll-based).
- Params: flup decodes each FCGI_PARAMS record on its own, without bounds (a pair split across
  two records is garbled, 64 MB are accepted; :757-769) and its length checks are missing
  (``decode_pair`` :381-407). Here the stream is collected up to :data:`errors.MAX_HEADER_BYTES`
  (over it: a 431 response and the connection closed), then decoded with every length checked.
- Malformed records: a short FCGI_BEGIN_REQUEST raises ``struct.error`` out of
  ``Connection.run`` (:717-727): the threaded connection is never closed (nginx hangs until its
  timeout) and a prefork child dies (defect 11). Here any protocol error is one log line and a
  closed connection.
- FCGI_GET_VALUES looked up ``bytes`` names in a ``str``-keyed dict (:701-713) and always
  answered empty; here it answers.
- Writing: flup slices 8 KB records off the response (``OutputStream._write`` :291-302), which is
  quadratic: a 10 MB single-chunk response took 0.54 s against 0.02 s in 64 KB chunks (defect
  6). Records of up to 64 KB are cut from a ``memoryview`` and sent in batches.
- A client gone (``ECONNRESET``/``EPIPE``/timeout) is one log line (defect 7); see ``errors``.
- SCRIPT_NAME/PATH_INFO: see ``prefix`` (defect 9).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import sys
import time
from collections.abc import Callable, MutableMapping
from typing import Any

from flup.server import fcgi_base as _base

from . import access, errors, prefix
from .live import LiveConnections

_HEADER = struct.Struct("!BBHHBx")
_BEGIN_BODY = struct.Struct("!HB5x")
_END_BODY = struct.Struct("!LB3x")
_LENGTH4 = struct.Struct("!L")
_PADDING = [b"\0" * n for n in range(8)]

# The largest record content that needs no padding (65535 rounded down to a multiple of 8).
MAX_CONTENT = 65528
# Pending output is sent once it reaches this size (and at every flush of the response).
SEND_BATCH = 256 * 1024
_RECV_SIZE = 65536
# After the response, how long we wait for the web server to close before we do.
LINGER = 2.0


def decode_params(data: bytes) -> dict[str, str]:
    """Decode a complete FCGI_PARAMS stream, checking every length (WSGI str: latin-1)."""
    params: dict[str, str] = {}
    text = data.decode("latin-1")  # one decode; latin-1 maps byte i to character i
    end = len(data)
    pos = 0
    try:
        while pos < end:
            name_length = data[pos]
            if name_length & 0x80:
                name_length = int(_LENGTH4.unpack_from(data, pos)[0]) & 0x7FFFFFFF
                pos += 4
            else:
                pos += 1
            value_length = data[pos]
            if value_length & 0x80:
                value_length = int(_LENGTH4.unpack_from(data, pos)[0]) & 0x7FFFFFFF
                pos += 4
            else:
                pos += 1
            stop = pos + name_length + value_length
            if stop > end:
                raise errors.ProtocolError("a FastCGI param is longer than the FCGI_PARAMS stream")
            params[text[pos : pos + name_length]] = text[pos + name_length : stop]
            pos = stop
    except (IndexError, struct.error):
        raise errors.ProtocolError("FCGI_PARAMS ends inside a name-value pair") from None
    return params


class RecordReader:
    """FastCGI records from a socket, read through one buffer."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = bytearray()
        self._pos = 0

    def _fill(self, size: int) -> bool:
        while len(self._buf) - self._pos < size:
            if self._pos:
                del self._buf[: self._pos]
                self._pos = 0
            chunk = self._sock.recv(max(_RECV_SIZE, size - len(self._buf)))
            if not chunk:
                return False
            self._buf += chunk
        return True

    def read(self) -> tuple[int, int, bytes]:
        """The next record as ``(type, request id, content)``; EOFError at a clean end."""
        if not self._fill(_HEADER.size):
            raise EOFError
        version, rtype, request_id, clen, plen = _HEADER.unpack_from(self._buf, self._pos)
        if version != _base.FCGI_VERSION_1:
            raise errors.ProtocolError(f"FastCGI record of version {version} (not 1)")
        total = _HEADER.size + clen + plen
        if not self._fill(total):
            raise EOFError
        start = self._pos + _HEADER.size
        content = bytes(self._buf[start : start + clen])
        self._pos += total
        if self._pos == len(self._buf):
            self._buf.clear()
            self._pos = 0
        return rtype, request_id, content

    def pending(self) -> bool:
        return len(self._buf) > self._pos

    def complete(self) -> bool:
        """Whether a whole record is already buffered (reading it will not block)."""
        avail = len(self._buf) - self._pos
        if avail < _HEADER.size:
            return False
        _, _, _, clen, plen = _HEADER.unpack_from(self._buf, self._pos)
        return bool(avail >= _HEADER.size + clen + plen)


class OutputStream(_base.OutputStream):  # type: ignore[misc]
    """FCGI_STDOUT/FCGI_STDERR: records are queued on the connection, sent at each flush."""

    def _write(self, data: bytes) -> None:
        self._conn.queue(self._type, self._req.requestId, data)

    def flush(self) -> None:
        super().flush()
        self._conn.send()


class Request(_base.Request):  # type: ignore[misc]
    """One request: the app's exceptions and a client gone never escape ``run()``."""

    def __init__(self, conn: Connection, input_class: type, timeout: Any) -> None:
        super().__init__(conn, input_class, timeout)
        self.stdout = OutputStream(conn, self, _base.FCGI_STDOUT)
        self.stderr = OutputStream(conn, self, _base.FCGI_STDERR, buffered=True)
        self.param_bytes = bytearray()

    def run(self) -> None:
        conn: Connection = self._conn
        conn.in_request = True
        try:
            try:
                protocol_status, app_status = self.server.handler(self)
            except errors.CLIENT_GONE:
                raise
            except Exception:
                errors.app_exception(self.params)
                if not self.stdout.dataWritten:
                    self.server.error(self)
                protocol_status, app_status = _base.FCGI_REQUEST_COMPLETE, 0
            self._flush()
            self._end(app_status, protocol_status)
        except errors.CLIENT_GONE as exc:
            conn.client_gone(self.params, exc)
        finally:
            conn.in_request = False


class Connection(_base.Connection):  # type: ignore[misc]
    """One connection from the web server: records in, batched records out, never raises."""

    def __init__(self, sock: socket.socket, addr: Any, server: Any, timeout: Any) -> None:
        super().__init__(sock, addr, server, timeout)
        sock.settimeout(errors.IO_TIMEOUT)
        self.reader = RecordReader(sock)
        self._out: list[bytes | memoryview] = []
        self._out_size = 0
        self._gone = False
        self.in_request = False
        self.served = 0
        self.stdin_done = False

    # -- the connection's life -------------------------------------------------------------
    def run(self) -> None:
        live: LiveConnections = self.server.live
        self._keepGoing = True
        live.add(self)
        try:
            while self._keepGoing:
                self.process_input()
        except EOFError:
            pass
        except errors.ProtocolError as exc:
            errors.protocol_error(errors.peer(self._sock, self._addr), exc)
        except errors.CLIENT_GONE as exc:
            if self._requests:
                self.client_gone(next(iter(self._requests.values())).params, exc)
        except Exception:
            errors.log.exception("unexpected error on a FastCGI connection")
        finally:
            live.discard(self)
            self._close()

    def stop(self) -> None:
        self._keepGoing = False
        if self.served and not self.in_request and not self._requests:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)

    def client_gone(self, environ: MutableMapping[str, Any], exc: BaseException) -> None:
        if not self._gone:
            self._gone = True
            errors.client_gone(environ, exc)
        self._keepGoing = False
        self._out.clear()
        self._out_size = 0

    def _close(self) -> None:
        sock = self._sock
        try:
            if not self._gone:
                self.send()
                self._drain_buffered()
                if not self.stdin_done or self.reader.pending():
                    # Unread input would make close() send a RST, and the web server could lose
                    # the response: half-close, wait (briefly) for its close, then close.
                    sock.shutdown(socket.SHUT_WR)
                    deadline = time.monotonic() + LINGER
                    while (left := deadline - time.monotonic()) > 0:
                        sock.settimeout(left)
                        if not sock.recv(_RECV_SIZE):
                            break
        except (OSError, EOFError, errors.ProtocolError):
            pass
        finally:
            sock.close()

    def _drain_buffered(self) -> None:
        """Consume the input already buffered after the last request (its empty FCGI_STDIN)."""
        while self.reader.complete():
            rtype, _, content = self.reader.read()
            if rtype == _base.FCGI_STDIN and not content:
                self.stdin_done = True

    # -- input -------------------------------------------------------------------------------
    def process_input(self) -> None:
        rtype, request_id, content = self.reader.read()
        if rtype == _base.FCGI_STDIN and not content:
            self.stdin_done = True
        if rtype == _base.FCGI_BEGIN_REQUEST:
            self._begin(request_id, content)
        elif rtype == _base.FCGI_PARAMS:
            self._params(request_id, content)
        elif rtype == _base.FCGI_GET_VALUES:
            self._get_values(content)
        elif rtype in (_base.FCGI_STDIN, _base.FCGI_DATA, _base.FCGI_ABORT_REQUEST):
            record = _base.Record(rtype, request_id)
            record.contentData, record.contentLength = content, len(content)
            {
                _base.FCGI_STDIN: self._do_stdin,
                _base.FCGI_DATA: self._do_data,
                _base.FCGI_ABORT_REQUEST: self._do_abort_request,
            }[rtype](record)
        elif request_id == _base.FCGI_NULL_REQUEST_ID:
            self.queue(_base.FCGI_UNKNOWN_TYPE, 0, struct.pack("!B7x", rtype))
            self.send()

    def _begin(self, request_id: int, content: bytes) -> None:
        if len(content) != _BEGIN_BODY.size:
            raise errors.ProtocolError(
                f"FCGI_BEGIN_REQUEST with a {len(content)}-byte body (not 8)"
            )
        if request_id == _base.FCGI_NULL_REQUEST_ID:
            raise errors.ProtocolError("FCGI_BEGIN_REQUEST with request id 0")
        role, flags = _BEGIN_BODY.unpack(content)
        self.stdin_done = False
        req = self.server.request_class(self, self._inputStreamClass, self._timeout)
        req.requestId, req.role, req.flags, req.aborted = request_id, role, flags, False
        if self._requests:
            self.end_request(req, 0, _base.FCGI_CANT_MPX_CONN, remove=False)
        else:
            self._requests[request_id] = req

    def _params(self, request_id: int, content: bytes) -> None:
        req = self._requests.get(request_id)
        if req is None:
            return
        if content:
            req.param_bytes += content
            if len(req.param_bytes) > errors.MAX_HEADER_BYTES:
                self._refuse_large(req)
            return
        req.params = decode_params(bytes(req.param_bytes))
        req.param_bytes = bytearray()
        self._start_request(req)

    def _refuse_large(self, req: Any) -> None:
        errors.log.warning(
            "request params over %d bytes from %s: answered 431 and closed the connection",
            errors.MAX_HEADER_BYTES,
            errors.peer(self._sock, self._addr),
        )
        self.queue(_base.FCGI_STDOUT, req.requestId, errors.TOO_LARGE)
        self.queue(_base.FCGI_STDOUT, req.requestId, b"")
        self.end_request(req, 0, _base.FCGI_REQUEST_COMPLETE)
        self._keepGoing = False
        raise EOFError

    def _get_values(self, content: bytes) -> None:
        capability: dict[str, int] = self.server.capability
        answer = b"".join(
            _base.encode_pair(name.encode("latin-1"), str(capability[name]).encode("latin-1"))
            for name in decode_params(content)
            if name in capability
        )
        self.queue(_base.FCGI_GET_VALUES_RESULT, 0, answer)
        self.send()

    # -- output ------------------------------------------------------------------------------
    def queue(self, rtype: int, request_id: int, data: bytes | bytearray | memoryview) -> None:
        """Queue ``data`` as ``rtype`` records; empty ``data`` is the end-of-stream record."""
        size = len(data)
        if size <= MAX_CONTENT:  # the common case: one record
            pad = -size & 7
            self._out.append(_HEADER.pack(1, rtype, request_id, size, pad))
            if size:
                self._out.append(data if isinstance(data, bytes) else bytes(data))
                if pad:
                    self._out.append(_PADDING[pad])
                self._out_size += size
                if self._out_size >= SEND_BATCH:
                    self.send()
            return
        view = memoryview(data if isinstance(data, bytes) else bytes(data))
        for start in range(0, len(view), MAX_CONTENT):
            chunk = view[start : start + MAX_CONTENT]
            size = len(chunk)
            pad = -size & 7
            self._out.append(_HEADER.pack(1, rtype, request_id, size, pad))
            self._out.append(chunk)
            if pad:
                self._out.append(_PADDING[pad])
            self._out_size += size
            if self._out_size >= SEND_BATCH:
                self.send()

    def send(self) -> None:
        if self._out and not self._gone:
            data = b"".join(self._out)
            self._out.clear()
            self._out_size = 0
            self._sock.sendall(data)

    def writeRecord(self, rec: Any) -> None:
        self.queue(rec.type, rec.requestId, rec.contentData)

    def end_request(
        self,
        req: Any,
        appStatus: int = 0,
        protocolStatus: int = _base.FCGI_REQUEST_COMPLETE,
        remove: bool = True,
    ) -> None:
        self.queue(_base.FCGI_END_REQUEST, req.requestId, _END_BODY.pack(appStatus, protocolStatus))
        self.send()
        if remove:
            self._requests.pop(req.requestId, None)
            self.served += 1
        if not (req.flags & _base.FCGI_KEEP_CONN) and not self._requests:
            self._keepGoing = False


class FastCGIServer(_base.BaseFCGIServer):  # type: ignore[misc]
    """flup's FastCGI WSGI glue with our request class, environ fixes and error page."""

    request_class = Request
    maxwrite = MAX_CONTENT + _HEADER.size

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
            debug=debug,
        )
        self.live = LiveConnections()
        self.web_server_addrs = access.web_server_addrs()
        self.capability = {
            _base.FCGI_MAX_CONNS: concurrency,
            _base.FCGI_MAX_REQS: concurrency,
            _base.FCGI_MPXS_CONNS: 0,
        }

    def serve_connection(self, sock: socket.socket, addr: Any) -> None:
        if not access.allowed(addr, self.web_server_addrs):
            sock.close()
            return
        Connection(sock, addr, self, None).run()

    def _sanitizeEnv(self, environ: MutableMapping[str, Any]) -> None:
        environ["wsgi.errors"] = sys.stderr
        prefix.fix_paths(environ)
        prefix.fix_query_string(environ)
        for name, default in (
            ("REQUEST_METHOD", "GET"),
            ("SERVER_NAME", "localhost"),
            ("SERVER_PORT", "80"),
            ("SERVER_PROTOCOL", "HTTP/1.0"),
        ):
            environ.setdefault(name, default)

    def error(self, req: Any) -> None:
        req.stdout.write(
            b"Status: 500 Internal Server Error\r\n"
            + errors.ERROR_HEADERS
            + b"\r\n"
            + errors.error_page(self.debug)
        )
