"""What a failed request costs: one log line for a client gone, a 500 page for an app exception.

flup lets ``ECONNRESET`` escape its handlers (only ``EPIPE`` is caught, e.g.
``flup/server/fcgi_base.py:1185-1187``): a client that resets mid-response prints a traceback and,
in prefork, kills the worker (defect 7). flup's debug page uses ``cgitb``, deprecated since
Python 3.11 and gone in 3.13. Here a client gone is one INFO line, an app exception is one
logged traceback and a 500 page (with the escaped traceback only when ``debug=true``), and a
protocol error is one WARNING line; none of them ends a worker.
"""

from __future__ import annotations

import html
import logging
import socket
import traceback
from collections.abc import Mapping
from typing import Any

log = logging.getLogger("fcgi")

# The peer (nginx) closed or reset the connection, or stopped reading for IO_TIMEOUT seconds.
CLIENT_GONE: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError)

# Seconds a connection may stay silent (reading) or blocked (writing) before it is dropped.
IO_TIMEOUT = 60.0

# Bytes of request headers (FastCGI params, SCGI netstring, AJP packet) we accept per request.
MAX_HEADER_BYTES = 1024 * 1024


class ProtocolError(Exception):
    """The web server sent something the protocol does not allow; the connection is closed."""


class HeadersTooLarge(ProtocolError):
    """The request's headers/params are over :data:`MAX_HEADER_BYTES`."""


def describe(environ: Mapping[str, Any]) -> str:
    """``GET /path?query`` for log lines."""
    method = environ.get("REQUEST_METHOD", "?")
    uri = environ.get("REQUEST_URI")
    if not uri:
        uri = f"{environ.get('SCRIPT_NAME', '')}{environ.get('PATH_INFO', '')}"
        if environ.get("QUERY_STRING"):
            uri += "?" + str(environ["QUERY_STRING"])
    return f"{method} {uri}"


def peer(sock: socket.socket, addr: Any) -> str:
    if isinstance(addr, tuple) and len(addr) >= 2:
        return f"{addr[0]}:{addr[1]}"
    return "unix socket peer"


def client_gone(environ: Mapping[str, Any], exc: BaseException) -> None:
    log.info("client went away during %s (%s)", describe(environ), _short(exc))


def protocol_error(where: str, exc: BaseException) -> None:
    log.warning("protocol error from %s: %s; connection closed", where, exc)


def app_exception(environ: Mapping[str, Any]) -> None:
    log.exception("unhandled exception in the application for %s", describe(environ))


def _short(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>500 Internal Server Error</title></head><body>
<h1>Internal Server Error</h1>
<p>An unhandled exception was thrown by the application.</p>
{detail}</body></html>
"""


def error_page(debug: bool) -> bytes:
    """The 500 page for the exception being handled; the traceback only when ``debug``."""
    detail = ""
    if debug:
        detail = "<pre>" + html.escape(traceback.format_exc()) + "</pre>\n"
    return _PAGE.format(detail=detail).encode("utf-8")


ERROR_HEADERS = b"Content-Type: text/html; charset=utf-8\r\n"
TOO_LARGE = (
    b"Status: 431 Request Header Fields Too Large\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
    b"Request headers too large.\n"
)
