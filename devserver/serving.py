"""werkzeug's HTTP/1.1 server on a socket we already hold, with Django's request log.

Stopping is graceful and quick: SIGTERM, SIGINT or SIGHUP (the supervisor retiring this worker,
Ctrl-C, the terminal closed) only set a flag and wake the accept loop through a pipe, so no
exception can land between ``accept()`` and the hand-over of a connection. The server then stops
accepting, tells the supervisor (``reloader.worker.stopping``: the next worker may start now),
closes its idle keep-alive connections, and lets the requests in flight finish for a few seconds.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import signal
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator

from werkzeug.serving import BaseWSGIServer, ThreadedWSGIServer, WSGIRequestHandler

from reloader import worker

logger = logging.getLogger("django.server")

DRAIN_TIMEOUT = 3.0
QUIET = "devserver.quiet"  # an environ key: the request log leaves this request out
# An environ (WSGI) or scope (ASGI) key an inner app may set: a callable returning the text that
# ends this request's log line (e.g. devserver.insight's " (12 queries, 8.4 ms)"), called once
# the response is complete.
LOG_SUFFIX = "devserver.log_suffix"
_MONTHS = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def server_time() -> str:
    """The time as Django's request log shows it: ``23/Nov/2026 11:26:59``."""
    t = time.localtime()
    day = f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon]}/{t.tm_year:04d}"
    return f"{day} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"


def log_request(
    requestline: str, status: str, size: str, request: object = None, suffix: str = ""
) -> None:
    """One line of Django's request log (``django.server``: its level follows the status),
    ``suffix`` at its end."""
    extra: dict[str, object] = {"request": request, "server_time": server_time()}
    level = logger.info
    if status.isdigit() and len(status) == 3:
        extra["status_code"] = int(status)
        if status[0] == "5":
            level = logger.error
        elif status[0] == "4":
            level = logger.warning
    level('"%s" %s %s%s', requestline, status, size, suffix, extra=extra)


def log_suffix(carrier: dict) -> str:
    """What ``LOG_SUFFIX`` in an environ or scope says (empty if nothing set it, or it failed)."""
    make = carrier.get(LOG_SUFFIX)
    if make is None:
        return ""
    try:
        return str(make())
    except Exception:
        logger.exception("Error while ending a request's log line")
        return ""


class RequestLog:
    """WSGI middleware: log each request when its response is complete, with its real size."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict, start_response: Callable[..., object]) -> Iterable[bytes]:
        state: dict[str, str | None] = {"status": None, "length": None}

        def logged_start_response(status: str, headers: list, exc_info: object = None) -> object:
            state["status"] = status.split(" ", 1)[0]
            for name, value in headers:
                if name.lower() == "content-length":
                    state["length"] = value
            return start_response(status, headers, exc_info)

        requestline = " ".join(
            [
                environ.get("REQUEST_METHOD", "-"),
                environ.get("REQUEST_URI") or environ.get("PATH_INFO", "/"),
                environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
            ]
        )
        try:
            result = self.app(environ, logged_start_response)
        except BaseException:
            log_request(
                requestline, "500", "-", environ.get("werkzeug.socket"), log_suffix(environ)
            )
            raise
        if environ.get(QUIET):
            return result
        return _LoggedBody(result, state, requestline, environ)


class _LoggedBody:
    def __init__(self, body: Iterable[bytes], state: dict, requestline: str, environ: dict):
        self.body = body
        self.state = state
        self.requestline = requestline
        self.environ = environ
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.body:
            self.sent += len(chunk)
            yield chunk

    def close(self) -> None:
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            size = self.state["length"] or str(self.sent)
            request = self.environ.get("werkzeug.socket")
            suffix = log_suffix(self.environ)
            log_request(self.requestline, self.state["status"] or "-", size, request, suffix)


class RequestHandler(WSGIRequestHandler):
    """werkzeug's handler, logging like Django and cooperating with a graceful stop."""

    def handle_one_request(self) -> None:
        self._in_app = False
        server = self.server
        # The first request of a connection is always served: the client sent it to a server
        # that accepted the connection. Only waits for a further keep-alive request are idle,
        # and those end when the server stops.
        keep_alive_wait = getattr(self, "_served_one", False)
        self._served_one = True
        if keep_alive_wait:
            if server.stopping:  # type: ignore[attr-defined]
                self.close_connection = True
                return
            server.mark_idle(self.connection, True)  # type: ignore[attr-defined]
        try:
            super().handle_one_request()
        finally:
            server.mark_idle(self.connection, False)  # type: ignore[attr-defined]

    def parse_request(self) -> bool:
        self.server.mark_idle(self.connection, False)  # type: ignore[attr-defined]
        return super().parse_request()

    def make_environ(self):  # type: ignore[no-untyped-def]
        self._in_app = True  # the RequestLog middleware logs this request
        environ = super().make_environ()
        environ["werkzeug.socket"] = self.connection
        return environ

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if getattr(self, "_in_app", False):
            return
        requestline = getattr(self, "requestline", "")
        if requestline.startswith("\x16\x03"):  # a TLS handshake: 0x16 Handshake, 0x03 TLS 1.x
            logger.error(
                "You're accessing the development server over HTTPS, but it only supports HTTP.",
                extra={
                    "request": self.connection,
                    "server_time": server_time(),
                    "status_code": 500,
                },
            )
            return
        log_request(requestline, str(getattr(code, "value", code)), str(size), self.connection)

    def log_error(self, format: str, *args: object) -> None:
        pass  # werkzeug/BaseHTTPRequestHandler chatter; the request line is logged above

    def connection_dropped(self, error: BaseException, environ: dict | None = None) -> None:
        logger.info(
            "- Broken pipe from %s", self.client_address, extra={"server_time": server_time()}
        )


class _GracefulStop:
    """Mixin for werkzeug's servers: a stop that is safe to request from a signal handler."""

    stopping = False
    socket: socket.socket

    def _init_stop(self) -> None:
        self.stop_callbacks: list[Callable[[], None]] = []  # once accepting ended (main thread)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._lock = threading.Lock()
        self._connections: dict[socket.socket, bool] = {}  # connection -> idle
        self._done = threading.Condition(self._lock)

    def mark_idle(self, connection: socket.socket, idle: bool) -> None:
        with self._lock:
            if connection in self._connections:
                self._connections[connection] = idle
        if idle and self.stopping:
            self._shut(connection)

    def process_request(self, request, client_address):  # type: ignore[no-untyped-def]
        with self._lock:
            self._connections[request] = False
        super().process_request(request, client_address)  # type: ignore[misc]

    def shutdown_request(self, request):  # type: ignore[no-untyped-def]
        with self._lock:
            self._connections.pop(request, None)
            self._done.notify_all()
        super().shutdown_request(request)  # type: ignore[misc]

    def request_stop(self, *_: object) -> None:
        """Stop accepting and close idle connections; callable from a signal handler."""
        self.stopping = True
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"\0")
        for connection, idle in list(self._connections.items()):
            if idle:
                self._shut(connection)

    @staticmethod
    def _shut(connection: socket.socket) -> None:
        with contextlib.suppress(OSError):
            if isinstance(connection, ssl.SSLSocket):  # its thread still reads: leave TLS be
                with socket.socket(fileno=os.dup(connection.fileno())) as raw:
                    raw.shutdown(socket.SHUT_RD)
            else:
                connection.shutdown(socket.SHUT_RD)

    def serve_until_stopped(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self.socket, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self.stopping:
                for key, _ in selector.select():
                    if key.fileobj is self.socket and not self.stopping:
                        self._handle_request_noblock()  # type: ignore[attr-defined]
        self.socket.close()
        worker.stopping()
        self.request_stop()
        for callback in self.stop_callbacks:
            try:
                callback()
            except Exception:
                logger.exception("Error while stopping")
        deadline = time.monotonic() + DRAIN_TIMEOUT
        with self._lock:
            while self._connections and time.monotonic() < deadline:
                self._done.wait(timeout=max(0.0, deadline - time.monotonic()))
        os.close(self._wake_r)
        os.close(self._wake_w)


class DevServer(_GracefulStop, BaseWSGIServer):
    def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self._init_stop()


class ThreadedDevServer(_GracefulStop, ThreadedWSGIServer):
    def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self._init_stop()


def make_server(
    sock: socket.socket,
    app: Callable[..., Iterable[bytes]],
    threading: bool = True,
    context: ssl.SSLContext | None = None,
) -> DevServer | ThreadedDevServer:
    """A server answering with ``app`` (wrapped in the request log) on the listening ``sock``;
    over TLS with ``context`` (``devserver.https``: plain HTTP is redirected)."""
    host, port = sock.getsockname()[:2]
    server_class: type[DevServer | ThreadedDevServer] = (
        ThreadedDevServer if threading else DevServer
    )
    if context is not None:
        from devserver.https import Https

        server_class = type(f"Https{server_class.__name__}", (Https, server_class), {})
    server = server_class(host, port, RequestLog(app), RequestHandler, fd=sock.fileno())
    if context is not None:
        server.tls = context  # type: ignore[union-attr]
        server.ssl_context = context  # werkzeug: wsgi.url_scheme https, TLS errors not raised
    return server


def serve(server: DevServer | ThreadedDevServer) -> None:
    """Serve until SIGTERM, SIGINT or SIGHUP (or ``server.request_stop()``), then stop
    gracefully."""
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            previous[signum] = signal.signal(signum, server.request_stop)
    try:
        server.serve_until_stopped()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
