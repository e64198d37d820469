"""SCRIPT_NAME and PATH_INFO as a WSGI app needs them, from what nginx actually sends.

When PATH_INFO is missing, flup takes ``REQUEST_URI[len(SCRIPT_NAME):]``
(``flup/server/fcgi_base.py:1203-1210``). With Debian's stock ``fastcgi_params``, SCRIPT_NAME is
``$fastcgi_script_name``, the whole URI, so PATH_INFO comes out empty and every URL silently
routes to the app's ``/`` with status 200 (defect 9). SCGI's stock ``scgi_params`` sends no
SCRIPT_NAME nor PATH_INFO at all, and flup then uses the raw, still %-encoded REQUEST_URI.

The rules here, applied only when the server sent no PATH_INFO, or an empty one with SCRIPT_NAME
equal to the whole path (a non-empty PATH_INFO is the web server's word and is kept):

- the request path is ``DOCUMENT_URI`` (nginx's ``$document_uri``: decoded and normalised), else
  the %-decoded path of ``REQUEST_URI``;
- no SCRIPT_NAME: the app is at the root, PATH_INFO is the path;
- SCRIPT_NAME equal to the whole path: that is the stock ``fastcgi_params``; the app is served at
  the root and a warning says, once, what to put in nginx's config for a location prefix;
- SCRIPT_NAME a leading part of the path (``fastcgi_param SCRIPT_NAME /app;``): PATH_INFO is
  the rest;
- SCRIPT_NAME that does not match the path: served at the root, with a warning.

The nginx side of a prefix location is in ``examples/nginx/prefix.conf``::

    location /app/ {
        fastcgi_split_path_info ^(/app)(/.*)$;
        include fastcgi_params;
        fastcgi_param PATH_INFO $fastcgi_path_info;
        ...
    }
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import unquote_to_bytes

log = logging.getLogger("fcgi")

STOCK_PARAMS_ADVICE = (
    "nginx sent SCRIPT_NAME equal to the whole path and no PATH_INFO (Debian's stock "
    "fastcgi_params): serving the app at the root. If it lives under a location prefix, add "
    "to that location: fastcgi_split_path_info ^(/prefix)(/.*)$; "
    "fastcgi_param PATH_INFO $fastcgi_path_info;"
)
MISMATCH_ADVICE = (
    "SCRIPT_NAME %r is not a prefix of the request path %r and there is no PATH_INFO: serving "
    "the app at the root. Set SCRIPT_NAME to the location prefix and PATH_INFO to the rest."
)

_warned: set[str] = set()


def _warn_once(key: str, message: str, *args: object) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning(message, *args)


def request_path(environ: MutableMapping[str, Any]) -> str | None:
    """The decoded request path, as a WSGI (latin-1) string, or None if the server sent none."""
    path = environ.get("DOCUMENT_URI")
    if path:
        return str(path)
    uri = environ.get("REQUEST_URI")
    if not uri:
        return None
    raw = str(uri).split("?", 1)[0]
    if not raw.startswith("/") and "://" in raw:
        # An absolute-form request target (GET http://host/path): keep the path.
        raw = "/" + raw.split("://", 1)[1].partition("/")[2]
    return unquote_to_bytes(raw).decode("latin-1")


def fix_paths(environ: MutableMapping[str, Any]) -> None:
    """Fill in SCRIPT_NAME and PATH_INFO (see the module docstring); always sets both keys."""
    script = str(environ.get("SCRIPT_NAME") or "")
    path_info = environ.get("PATH_INFO")
    path = None if path_info else request_path(environ)
    if path_info or (path_info is not None and path != script):
        # The web server's split; an empty PATH_INFO is only doubted when SCRIPT_NAME is the
        # whole path (``fastcgi_param PATH_INFO $fastcgi_path_info`` without a split regex).
        environ["SCRIPT_NAME"] = script.rstrip("/")
        return
    if path is None:
        environ["SCRIPT_NAME"], environ["PATH_INFO"] = script, ""
        return
    if not script or script == "/":
        environ["SCRIPT_NAME"], environ["PATH_INFO"] = "", path
    elif path == script:
        _warn_once("stock", STOCK_PARAMS_ADVICE)
        environ["SCRIPT_NAME"], environ["PATH_INFO"] = "", path
    elif path.startswith(script.rstrip("/") + "/"):
        prefix = script.rstrip("/")
        environ["SCRIPT_NAME"], environ["PATH_INFO"] = prefix, path[len(prefix) :]
    else:
        _warn_once("mismatch", MISMATCH_ADVICE, script, path)
        environ["SCRIPT_NAME"], environ["PATH_INFO"] = "", path


def fix_query_string(environ: MutableMapping[str, Any]) -> None:
    """QUERY_STRING from REQUEST_URI when the server did not send it (as flup does)."""
    if environ.get("QUERY_STRING"):
        return
    uri = str(environ.get("REQUEST_URI") or "")
    environ["QUERY_STRING"] = uri.split("?", 1)[1] if "?" in uri else ""
