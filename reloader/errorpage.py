"""The 500 page the supervisor answers with, on the held sockets, while no worker can serve.

``ErrorResponder`` is a small non-blocking HTTP responder driven by the supervisor's selector:
read the request head (bounded in size and time), answer 500 with the page, close the writing
side, drain what the client still sends, close. The page escapes everything it shows and reloads
itself once the server answers with something else.
"""

from __future__ import annotations

import contextlib
import html
import selectors
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

HEADER = "X-Reloader"
HEADER_VALUE = "error"
READ_TIMEOUT = 5.0
DRAIN_TIMEOUT = 2.0
MAX_HEAD = 64 * 1024

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex">
<title>{title}</title>
<style>
body{{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d1d1d;background:#fafafa}}
header{{background:#ffc;border-bottom:1px solid #dd8;padding:16px 24px}}
h1{{font-size:20px;margin:0 0 4px}} p{{margin:4px 0}}
pre{{background:#fff;border:1px solid #ddd;margin:16px 24px;padding:12px 16px;overflow:auto;
font:13px/1.4 ui-monospace,monospace;white-space:pre-wrap}}
footer{{margin:0 24px 24px;color:#555}}
</style></head><body>
<header><h1>{title}</h1><p>{summary}</p></header>
<pre>{detail}</pre>
<footer><p>{hint}</p></footer>
<script>
(function poll() {{
  setTimeout(function () {{
    fetch(location.href, {{method: "HEAD", cache: "no-store"}}).then(function (r) {{
      if (r.headers.get("{header}") !== "{header_value}") {{ location.reload(); }}
      else {{ poll(); }}
    }}, poll);
  }}, 500);
}})();
</script>
</body></html>
"""


@dataclass
class Failure:
    """What the page shows."""

    title: str
    detail: str
    summary: str = ""
    hint: str = "The server is waiting for a file change to restart. This page reloads itself."


def render(failure: Failure) -> bytes:
    return _PAGE.format(
        title=html.escape(failure.title),
        summary=html.escape(failure.summary),
        detail=html.escape(failure.detail),
        hint=html.escape(failure.hint),
        header=HEADER,
        header_value=HEADER_VALUE,
    ).encode("utf-8")


def response(failure: Failure, head_only: bool) -> bytes:
    body = render(failure)
    head = (
        "HTTP/1.1 500 Internal Server Error\r\n"
        "Content-Type: text/html; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Cache-Control: no-store\r\n"
        f"{HEADER}: {HEADER_VALUE}\r\n"
        "Connection: close\r\n\r\n"
    ).encode("ascii")
    return head if head_only else head + body


@dataclass
class _Conn:
    sock: socket.socket
    deadline: float
    head: bytearray = field(default_factory=bytearray)
    out: bytes = b""
    draining: bool = False


class ErrorResponder:
    """Answer every connection accepted on the held sockets with the current failure page."""

    def __init__(self, selector: selectors.BaseSelector, failure: Callable[[], Failure]) -> None:
        self._selector = selector
        self._failure = failure
        self._conns: dict[int, _Conn] = {}

    def accept(self, listener: socket.socket) -> None:
        try:
            sock, _ = listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        sock.setblocking(False)
        conn = _Conn(sock, time.monotonic() + READ_TIMEOUT)
        self._conns[sock.fileno()] = conn
        self._selector.register(sock, selectors.EVENT_READ, ("error-conn", conn))

    def handle(self, conn: _Conn, mask: int) -> None:
        try:
            if mask & selectors.EVENT_WRITE:
                self._write(conn)
            elif mask & selectors.EVENT_READ:
                self._read(conn)
        except OSError:
            self._close(conn)

    def _read(self, conn: _Conn) -> None:
        data = conn.sock.recv(65536)
        if not data:
            self._close(conn)
            return
        if conn.draining:
            return
        conn.head += data
        if b"\r\n\r\n" in conn.head or len(conn.head) >= MAX_HEAD:
            head_only = conn.head.split(b" ", 1)[0] == b"HEAD"
            conn.out = response(self._failure(), head_only)
            self._selector.modify(conn.sock, selectors.EVENT_WRITE, ("error-conn", conn))

    def _write(self, conn: _Conn) -> None:
        sent = conn.sock.send(conn.out)
        conn.out = conn.out[sent:]
        if not conn.out:
            conn.sock.shutdown(socket.SHUT_WR)
            conn.draining = True
            conn.deadline = time.monotonic() + DRAIN_TIMEOUT
            self._selector.modify(conn.sock, selectors.EVENT_READ, ("error-conn", conn))

    def next_deadline(self) -> float | None:
        return min((c.deadline for c in self._conns.values()), default=None)

    def expire(self, now: float) -> None:
        for conn in [c for c in self._conns.values() if c.deadline <= now]:
            self._close(conn)

    def _close(self, conn: _Conn) -> None:
        self._conns.pop(conn.sock.fileno(), None)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(conn.sock)
        conn.sock.close()

    def close_all(self) -> None:
        for conn in list(self._conns.values()):
            self._close(conn)
