"""How a worker serves: WSGI on werkzeug (Django's runserver) or ASGI on uvicorn (``--asgi``).

``inner_run`` builds the same stack either way (the project's application, static and media
files, the check-error switch, live reload, the request log, a server on the held socket) and
asks the ``Stack`` for each piece in its protocol. The check-error page and live reload's
endpoints are WSGI apps; under ASGI they run through ``devserver.asgi.bridge``.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from devserver import checking, serving


class Wsgi:
    name = "WSGI"

    def application(self, command: Any, options: dict[str, Any]) -> Callable:
        return command.get_handler(None, **options)

    def error_page(self, wsgi_app: Callable) -> Callable:
        return wsgi_app

    def switch(self, app: Callable) -> checking.Switch:
        return checking.Switch(app)

    def live(self, app: Callable, live: Any) -> Callable:
        return live.wrap(app)

    def make_server(
        self, sock: socket.socket, app: Callable, threading: bool, context: Any = None
    ) -> Any:
        return serving.make_server(sock, app, threading, context)

    def serve(self, server: Any) -> None:
        serving.serve(server)


class Asgi(Wsgi):
    name = "ASGI"

    def application(self, command: Any, options: dict[str, Any]) -> Callable:
        from devserver import asgi
        from devserver.asgi.app import Serialized, Static

        app = asgi.application()
        lock = getattr(command, "db_lock", None)  # testserver on SQLite: requests take turns
        if lock is not None:
            app = Serialized(app, lock)
        files = command.static_files(_unreachable, options)
        return Static(app, files) if files is not None else app

    def error_page(self, wsgi_app: Callable) -> Callable:
        from devserver.asgi.bridge import Bridge

        return Bridge(wsgi_app)

    def switch(self, app: Callable) -> checking.Switch:
        from devserver.asgi.app import Switch

        return Switch(app)

    def live(self, app: Callable, live: Any) -> Callable:
        from devserver.asgi.app import LiveReload

        return LiveReload(app, live.wrap(_unreachable))

    def make_server(
        self, sock: socket.socket, app: Callable, threading: bool, context: Any = None
    ) -> Any:
        from devserver.asgi.app import RequestLog
        from devserver.asgi.server import make_server

        return make_server(sock, RequestLog(app), context)

    def serve(self, server: Any) -> None:
        from devserver.asgi.server import serve

        serve(server)


def _unreachable(environ: dict, start_response: Callable) -> list[bytes]:
    """The WSGI app behind our WSGI pieces under ASGI: they only get the paths they answer."""
    start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
    return [b"Not found\n"]


def for_options(options: dict[str, Any], settings: Any) -> Wsgi:
    from devserver import asgi

    return Asgi() if asgi.requested(options, settings) else Wsgi()
