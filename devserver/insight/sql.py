"""What each request cost in the database: every query of every connection, timed.

One execute wrapper (Django's "database instrumentation": ``connection.execute_wrappers``) is put
on every connection of every thread, the moment it connects (``connection_created``) and on those
already connected. It times each query and hands it to the request's ``Collector``, which a
middleware puts in a context variable for the request's duration: a WSGI request's thread until
its body is closed (queries run while a streaming response is sent count), an ASGI request's task
and the threads asgiref runs its sync code in (they copy the context). A query outside any
request (a management thread, the checks) is not counted.

The summary ends the request's log line: `` (12 queries, 8.4 ms, 3 duplicates)``; nothing for a
request that ran no query. *Duplicates* are queries whose SQL text (on the same database, whatever
the parameters) had run before in the request: the usual sign of an N+1 (a loop that runs the
same query for each row); 12 queries of 3 distinct texts are 9 duplicates.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable
from typing import Any

Printer = Callable[[str, str, Any, bool, float], None]

_current: contextvars.ContextVar[Collector | None] = contextvars.ContextVar(
    "devserver_sql", default=None
)


class Collector:
    """The queries of one request: ``(alias, sql, seconds)``."""

    __slots__ = ("queries",)

    def __init__(self) -> None:
        self.queries: list[tuple[str, str, float]] = []

    def suffix(self) -> str:
        """The end of the request's log line (empty: no query)."""
        count = len(self.queries)
        if not count:
            return ""
        milliseconds = sum(q[2] for q in self.queries) * 1000
        duplicates = count - len({(alias, sql) for alias, sql, _ in self.queries})
        text = f" ({count} {'query' if count == 1 else 'queries'}, {milliseconds:.1f} ms"
        if duplicates:
            text += f", {duplicates} duplicate{'s' if duplicates > 1 else ''}"
        return text + ")"


def collecting() -> tuple[Collector, contextvars.Token]:
    """Start collecting this context's queries; give the token back to ``stop``."""
    collector = Collector()
    return collector, _current.set(collector)


def stop(token: contextvars.Token) -> None:
    try:
        _current.reset(token)
    except ValueError:  # ended in another context than it began in: this one stops anyway
        _current.set(None)


class Recorder:
    """The execute wrapper: times the query, records it, prints it (``--print-sql``)."""

    def __init__(self, printer: Printer | None = None) -> None:
        self.printer = printer

    def __call__(self, execute: Callable, sql: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            took = time.perf_counter() - started
            alias = context["connection"].alias
            collector = _current.get()
            if collector is not None:
                collector.queries.append((alias, sql, took))
            if self.printer is not None:
                self.printer(alias, sql, params, many, took)


def install(recorder: Recorder) -> None:
    """Put ``recorder`` on every database connection, now and whenever one connects."""
    from django.db import connections
    from django.db.backends.signals import connection_created

    def add(sender: Any = None, connection: Any = None, **_: Any) -> None:
        if connection is not None and recorder not in connection.execute_wrappers:
            connection.execute_wrappers.append(recorder)

    connection_created.connect(add, weak=False, dispatch_uid="devserver.insight.sql")
    for connection in connections.all(initialized_only=True):
        add(connection=connection)
