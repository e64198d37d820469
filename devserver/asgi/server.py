"""uvicorn on the socket the supervisor holds, stopping the way the reloader expects.

Why uvicorn: it serves HTTP/1.1 and WebSockets, runs an app's lifespan (and skips it quietly
when the app has none: Django's ASGIHandler refuses the scope), takes an already bound socket,
and on shutdown closes WebSockets with 1012 (Service Restart) so that clients reconnect.

What changes from uvicorn's own run: SIGTERM, SIGINT and SIGHUP (the supervisor retiring this
worker, Ctrl-C, the terminal closed) all stop it, and the stop is not raised again afterwards;
the moment it stops accepting, the supervisor is told (``reloader.worker.stopping``: the next
worker may start now); the callbacks in ``stop_callbacks`` run then (the live-reload streams
end); requests still in flight get ``DRAIN_TIMEOUT`` seconds, then their tasks are cancelled
(an SSE stream never holds the old worker longer than that, and never holds the new one at all).
Its own logging is off: the request log is Django's (``devserver.asgi.app.RequestLog``).
With ``--https`` each connection goes through ``devserver.https.sniffing_protocol`` first.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import signal
import socket
import ssl
import threading
from collections.abc import Callable, Generator
from typing import Any

import uvicorn

from devserver.serving import DRAIN_TIMEOUT, logger
from reloader import worker

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_GONE_LISTENING = (errno.EINVAL, errno.EBADF)


class AsgiServer(uvicorn.Server):
    def __init__(
        self, sock: socket.socket, app: Callable, context: ssl.SSLContext | None = None
    ) -> None:
        config = uvicorn.Config(
            app,
            lifespan="auto",
            log_config=None,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=int(DRAIN_TIMEOUT),
            ws="websockets-sansio",
            proxy_headers=False,
            server_header=False,
        )
        super().__init__(config)
        self.sock = sock
        self.server_address = sock.getsockname()
        self.stop_callbacks: list[Callable[[], None]] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        self.context = context
        self.sniffing: set[Any] = set()  # HTTPS: connections not yet handed to uvicorn

    def request_stop(self, *_: Any) -> None:
        """Stop serving; callable from a signal handler or another thread. Accepting stops at
        the loop's next turn, not at uvicorn's next tick (0.1 s): a supervisor that stops shuts
        the held sockets down for every process, and an accept on them fails from then on."""
        self.should_exit = True
        if self.loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed already
                self.loop.call_soon_threadsafe(self._stop_accepting)

    def _stop_accepting(self) -> None:
        for server in getattr(self, "servers", []):
            server.close()

    def _exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        if self.should_exit and isinstance(error, OSError) and error.errno in _GONE_LISTENING:
            return  # an accept on the held socket the supervisor just shut down
        loop.default_exception_handler(context)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        self.loop.set_exception_handler(self._exception)
        if self.context is not None:
            from devserver.https import sniffing_protocol

            served = self.config.http_protocol_class
            self.config.http_protocol_class = sniffing_protocol(  # type: ignore[assignment]
                served, self.context, self.sniffing
            )
        await super().startup(sockets=sockets)

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {signum: signal.signal(signum, self.request_stop) for signum in STOP_SIGNALS}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._stop_accepting()
        self.sock.close()
        for connection in list(self.sniffing):
            connection.close()
        worker.stopping()
        for callback in self.stop_callbacks:
            try:
                callback()
            except Exception:
                logger.exception("Error while stopping")
        await super().shutdown(sockets=None)


def make_server(
    sock: socket.socket, app: Callable, context: ssl.SSLContext | None = None
) -> AsgiServer:
    return AsgiServer(sock, app, context)


def serve(server: AsgiServer) -> None:
    server.run(sockets=[server.sock])
