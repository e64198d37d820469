"""The ASGI app a worker serves: the project's, behind what runserver adds to it.

From the outside in: the request log (Django's format, ``django.server``), the live-reload
script and endpoints, the check-error switch, then static and media files, then the project's
application (``ASGI_APPLICATION`` or Django's ``get_asgi_application()``). WebSocket and lifespan
scopes go straight to the project's application.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from devserver import checking
from devserver.livereload import inject
from devserver.serving import log_request, log_suffix

from .bridge import Bridge

Scope = dict[str, Any]


def _headers(scope_or_message: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (k.decode("latin1"), v.decode("latin1")) for k, v in scope_or_message.get("headers", [])
    ]


class RequestLog:
    """One line of Django's request log per HTTP request, when its response is complete."""

    def __init__(self, app: Callable) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope.get("path", "").startswith(inject.PREFIX):
            return await self.app(scope, receive, send)
        query = scope.get("query_string", b"").decode("latin1")
        target = scope.get("raw_path", scope["path"].encode()).decode("latin1")
        version = scope.get("http_version", "1.1")
        requestline = f"{scope['method']} {target}{'?' + query if query else ''} HTTP/{version}"
        state: dict[str, Any] = {"status": "-", "sent": 0, "length": None}

        async def logged_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                state["status"] = str(message["status"])
                for name, value in _headers(message):
                    if name.lower() == "content-length":
                        state["length"] = value
            elif message["type"] == "http.response.body":
                state["sent"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, logged_send)
        finally:
            size = state["length"] or str(state["sent"])
            log_request(requestline, state["status"], size, suffix=log_suffix(scope))


class Static:
    """STATIC_URL and MEDIA_URL from ``devserver.static`` (Range, ETag, Django's 404s)."""

    def __init__(self, app: Callable, static_files: Any) -> None:
        self.app = app
        self.files = static_files  # a StaticFilesApp whose own app is never reached
        self.bridge = Bridge(static_files)

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] == "http" and self.files.serves(scope["path"]):
            return await self.bridge(scope, receive, send)
        return await self.app(scope, receive, send)


class Switch(checking.Switch):
    """``checking.Switch`` for ASGI: the project's app until the checks fail; assigning ``app``
    again (what ``checking.check_after_serving`` does) installs the WSGI check-error page."""

    @property  # type: ignore[override]
    def app(self) -> Callable:
        return self._app

    @app.setter
    def app(self, value: Callable) -> None:
        self._app = Bridge(value) if hasattr(self, "_app") else value

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:  # type: ignore[override]
        if scope["type"] != "http":
            return await self._app(scope, receive, send)
        with self._changed:
            self._in_flight += 1
        try:
            await self._app(scope, receive, send)
        finally:
            self._finished()


class LiveReload:
    """``devserver.livereload.inject`` for ASGI: its endpoints through the bridge (the event
    stream is a WSGI generator on the Hub), the script put into HTML documents."""

    def __init__(self, app: Callable, wsgi: inject.LiveReload) -> None:
        self.app = app
        self.wsgi = wsgi
        self.endpoints = Bridge(wsgi)

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope["path"].startswith(inject.PREFIX):
            return await self.endpoints(scope, receive, send)
        environ = {"REQUEST_METHOD": scope["method"]}
        for name, value in _headers(scope):
            environ["HTTP_" + name.upper().replace("-", "_")] = value
        if not inject.navigation(environ):
            return await self.app(scope, receive, send)
        held: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def buffered_send(message: dict[str, Any]) -> None:
            if held.get("passing"):
                return await send(message)
            if message["type"] == "http.response.start":
                headers = _headers(message)
                if not _maybe(headers):
                    held["passing"] = True
                    return await send(message)
                held["start"] = message
                held["headers"] = headers
                return None
            if message["type"] != "http.response.body":
                return await send(message)
            chunks.append(message.get("body", b""))
            size = sum(len(c) for c in chunks)
            if message.get("more_body") and size <= inject.MAX_BODY:
                return None
            content = b"".join(chunks)
            chunks.clear()
            start = held["start"]
            if message.get("more_body") or not inject.is_document(content):
                held["passing"] = True  # too big to hold, or not a page: as it came
                await send(start)
                return await send({**message, "body": content})
            content = inject.insert(content, self.wsgi.tag(held["headers"], environ))
            headers = [
                (k.encode("latin1"), v.encode("latin1"))
                for k, v in held["headers"]
                if k.lower() not in ("content-length", "etag", "last-modified")
            ]
            headers.append((b"content-length", str(len(content)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": content, "more_body": False})
            return None

        await self.app(scope, receive, buffered_send)


def _maybe(headers: list[tuple[str, str]]) -> bool:
    """The headers allow a script (the body decides the rest)."""
    return inject.injectable(headers, [b""])


class Serialized:
    """testserver on SQLite (``devserver.testdb``): one HTTP request at a time in ``app``, and
    none while the fixtures reload. WebSockets are not held to it (they last)."""

    def __init__(self, app: Callable, lock: Any) -> None:
        self.app = app
        self.lock = lock

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        import asyncio

        await asyncio.get_running_loop().run_in_executor(None, self.lock.acquire)
        try:
            await self.app(scope, receive, send)
        finally:
            self.lock.release()
