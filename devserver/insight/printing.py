"""``--print-sql``: each query in the terminal as it runs, formatted, with its time and database;
``--print-sql-location`` adds the line of the project that ran it.

The parameters are written into the SQL as literals, so that the query reads as it ran (strings
quoted, ``None`` as NULL); a string over ``LONG`` characters is cut, with its length in a
comment; bytes show their length only. The SQL is laid out with ``sqlparse`` (Django's own
dependency). Queries are written whole, one at a time (threads never interleave), to stderr.
"""

from __future__ import annotations

import datetime
import decimal
import os
import sys
import sysconfig
import threading
import uuid
from typing import Any

LONG = 60
_lock = threading.Lock()


class SqlPrinter:
    def __init__(self, location: bool = False, style: Any = None) -> None:
        self.location = location
        self.style = style
        self.skipped = _library_dirs()

    def __call__(self, alias: str, sql: str, params: Any, many: bool, seconds: float) -> None:
        import sqlparse

        text = sqlparse.format(render(sql, params, many), reindent=True, keyword_case="upper")
        head = f"-- {alias}, {seconds * 1000:.2f} ms"
        if many:
            head += f", executemany of {len(params) if hasattr(params, '__len__') else '?'} rows"
        if self.location:
            head += f", {self.where() or 'no project frame'}"
        if self.style is not None:
            head = self.style.SQL_KEYWORD(head) if hasattr(self.style, "SQL_KEYWORD") else head
        with _lock:
            sys.stderr.write(f"{head}\n{text}\n")
            sys.stderr.flush()

    def where(self) -> str | None:
        """``file:line in function`` of the innermost frame that is the project's."""
        frame = sys._getframe(1)
        while frame is not None:
            filename = frame.f_code.co_filename
            if not filename.startswith("<") and not filename.startswith(self.skipped):
                shown = os.path.relpath(filename) if filename.startswith(os.getcwd()) else filename
                return f"{shown}:{frame.f_lineno} in {frame.f_code.co_name}"
            frame = frame.f_back  # type: ignore[assignment]
        return None


def _library_dirs() -> tuple[str, ...]:
    import django

    import devserver
    import reloader

    dirs = {os.path.dirname(m.__file__ or "") + os.sep for m in (django, devserver, reloader)}
    for name in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(name)
        if path:
            dirs.add(path.rstrip(os.sep) + os.sep)
    for path in sys.path:
        if path.rstrip(os.sep).endswith(("site-packages", "dist-packages")):
            dirs.add(path.rstrip(os.sep) + os.sep)
    return tuple(sorted(d for d in dirs if d != os.sep))


def render(sql: str, params: Any, many: bool = False) -> str:
    """``sql`` with its parameters written in as literals (as it is, when they do not fit)."""
    if params is None or many:
        return sql
    try:
        if isinstance(params, dict):
            return sql % {key: literal(value) for key, value in params.items()}
        return sql % tuple(literal(value) for value in params)
    except (TypeError, ValueError, KeyError):
        return f"{sql} /* params: {_cut(repr(params))} */"


def literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float, decimal.Decimal)):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"/* {len(bytes(value))} bytes */"
    if isinstance(value, (datetime.date, datetime.time, uuid.UUID)):
        return _quoted(str(value))
    if isinstance(value, str):
        return _quoted(value)
    return _quoted(repr(value))


def _quoted(text: str) -> str:
    if len(text) > LONG:
        return "'" + text[:LONG].replace("'", "''") + f"…' /* {len(text)} chars */"
    return "'" + text.replace("'", "''") + "'"


def _cut(text: str) -> str:
    return text if len(text) <= 4 * LONG else text[: 4 * LONG] + "…"
