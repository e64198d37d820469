"""Our own WSGI pieces (static and media files, the live-reload endpoints) inside the ASGI app.

asgiref's ``WsgiToAsgi`` runs every WSGI call in the one thread that Django's sync views share
(``thread_sensitive=True``): a 1 MB file or an event stream that lasts as long as a tab is open
would hold every sync view behind it. Here each call runs in a thread of the bridge's own pool,
the request body is read first (these endpoints take none worth streaming), the response is
streamed chunk by chunk, and a client that leaves is seen: the ``devserver.gone`` callable in
the environ turns true, and the body iterator is closed at its next chunk.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from devserver.livereload.inject import GONE

THREADS = 32  # streams hold one each: a browser holds one, whatever its tabs


def environ_for(scope: dict[str, Any], body: bytes) -> dict[str, Any]:
    """The WSGI environ of an ASGI HTTP scope (PEP 3333 from the ASGI spec's fields)."""
    import io

    script_name = scope.get("root_path", "").encode("utf8").decode("latin1")
    path = scope["path"].encode("utf8").decode("latin1")
    if script_name and path.startswith(script_name):
        path = path[len(script_name) :]
    server = scope.get("server") or ("localhost", 80)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path,
        "QUERY_STRING": scope.get("query_string", b"").decode("ascii"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1] or 80),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "REMOTE_ADDR": (scope.get("client") or ("", 0))[0],
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for raw_name, raw_value in scope.get("headers", []):
        name = raw_name.decode("latin1").upper().replace("-", "_")
        value = raw_value.decode("latin1")
        if name == "CONTENT_LENGTH":
            key = "CONTENT_LENGTH"
        elif name == "CONTENT_TYPE":
            key = "CONTENT_TYPE"
        else:
            key = f"HTTP_{name}"
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


class Bridge:
    """Call WSGI ``app`` for ASGI HTTP requests, in threads of our own."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self._pool = ThreadPoolExecutor(THREADS, thread_name_prefix="devserver-wsgi")

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        left = threading.Event()
        environ = environ_for(scope, body)
        environ[GONE] = left.is_set
        loop = asyncio.get_running_loop()

        async def watch_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            left.set()

        watcher = asyncio.ensure_future(watch_disconnect())
        try:
            await loop.run_in_executor(self._pool, self._run, environ, send, loop, left)
        finally:
            watcher.cancel()

    def _run(
        self,
        environ: dict[str, Any],
        send: Callable,
        loop: asyncio.AbstractEventLoop,
        left: threading.Event,
    ) -> None:
        started: list[tuple[int, list[tuple[bytes, bytes]]]] = []

        def start_response(status: str, headers: list, exc_info: Any = None) -> Callable:
            code = int(status.split(" ", 1)[0])
            encoded = [(k.lower().encode("latin1"), str(v).encode("latin1")) for k, v in headers]
            started[:] = [(code, encoded)]
            return lambda data: None  # the legacy write(): none of our apps uses it

        def out(message: dict[str, Any]) -> None:
            asyncio.run_coroutine_threadsafe(send(message), loop).result()

        result = self.app(environ, start_response)
        try:
            head_sent = False
            for chunk in result:
                if not head_sent:
                    code, headers = started[0]
                    out({"type": "http.response.start", "status": code, "headers": headers})
                    head_sent = True
                if chunk:
                    out({"type": "http.response.body", "body": chunk, "more_body": True})
                if left.is_set():
                    break
            if not head_sent:
                code, headers = started[0]
                out({"type": "http.response.start", "status": code, "headers": headers})
            out({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
