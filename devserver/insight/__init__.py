"""What each request cost: the SQL summary on its log line, ``--print-sql``, ``--pdb``.

Public API::

    wrap(app, protocol, options)   the app ("WSGI" or "ASGI") with what the options ask for

The summary (``devserver.insight.sql``) is on with ``DEBUG`` unless ``--nosqlsummary``;
``--print-sql`` and ``--print-sql-location`` (``devserver.insight.printing``) and ``--pdb``
(``devserver.insight.debugger``) are asked for. With none of them, ``app`` is returned as it is
and no query is timed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from devserver.serving import LOG_SUFFIX

from . import sql


def wrap(app: Callable, protocol: str, options: dict[str, Any]) -> Callable:
    from django.conf import settings

    summary = bool(options.get("sql_summary", True)) and bool(settings.DEBUG)
    location = bool(options.get("print_sql_location"))
    printing = bool(options.get("print_sql")) or location
    if options.get("pdb"):
        from . import debugger

        debugger.install()
    if not (summary or printing):
        return app
    printer = None
    if printing:
        from django.core.management.color import color_style

        from .printing import SqlPrinter

        printer = SqlPrinter(location=location, style=color_style())
    sql.install(sql.Recorder(printer))
    if not summary:
        return app
    return AsgiSummary(app) if protocol == "ASGI" else WsgiSummary(app)


class WsgiSummary:
    """Collect the request's queries until its body is closed."""

    def __init__(self, app: Callable) -> None:
        self.app = app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        collector, token = sql.collecting()
        environ[LOG_SUFFIX] = collector.suffix
        try:
            body = self.app(environ, start_response)
        except BaseException:
            sql.stop(token)
            raise
        return _Body(body, token)


class _Body:
    def __init__(self, body: Iterable[bytes], token: Any) -> None:
        self.body = body
        self.token = token

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.body)

    def close(self) -> None:
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            if self.token is not None:
                sql.stop(self.token)
                self.token = None


class AsgiSummary:
    """Collect the queries of an HTTP request's task (and the threads it runs sync code in)."""

    def __init__(self, app: Callable) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        collector, token = sql.collecting()
        scope[LOG_SUFFIX] = collector.suffix
        try:
            await self.app(scope, receive, send)
        finally:
            sql.stop(token)
