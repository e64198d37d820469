"""WSGI middleware: serve the live-reload endpoints and put the client script in HTML pages.

Under ``PREFIX`` (the server's root, outside Django's URLconf): ``client.js`` (each tab),
``worker.js`` (the SharedWorker that holds the one stream of a browser) and ``events`` (the
stream, ``devserver.livereload.events``). None of them goes to the request log.

A response gets the script only when it is a page a browser navigated to: ``text/html``, not
compressed, not a range, not a fragment fetched by script (``Sec-Fetch-Dest`` other than
``document``/``iframe``, ``X-Requested-With``, htmx's ``HX-Request``), and its body is known in
full (a list, or a Django response that is not streaming, under ``MAX_BODY``), and it is a
document (a doctype, ``<html>`` or ``<body>``: not ``HttpResponse("ok")``, text/html by
default). The tag goes before the last ``</body>`` (at the end without one), with the
response's CSP nonce when its ``Content-Security-Policy`` sets one; Content-Length is fixed,
and ETag and Last-Modified are dropped (the page now names the process that rendered it: a 304
would revive an old one). Any other response passes untouched. The helpers below work on
headers and bytes, so the ASGI side (``devserver.asgi``) uses them too.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable
from importlib import resources
from typing import Any

from devserver.livereload.events import Hub, hung_up
from devserver.serving import QUIET

PREFIX = "/__devserver__/"
GONE = "devserver.gone"  # environ key: a callable, true once the client left (no socket: ASGI)
MAX_BODY = 8 * 1024 * 1024
_BODY_END = re.compile(rb"</body\s*>", re.IGNORECASE)
_DOCUMENT = re.compile(rb"<!doctype\s+html|<html[\s>]|<body[\s>]", re.IGNORECASE)
_NONCE = re.compile(r"'nonce-([A-Za-z0-9+/=_-]+)'")
_FRAGMENT_DESTS = {"", "document", "iframe", "frame", "embed", "object"}
_DROPPED = {"content-length", "etag", "last-modified"}

App = Callable[..., Iterable[bytes]]


def _asset(name: str) -> bytes:
    return resources.files("devserver.livereload").joinpath(name).read_bytes()


class LiveReload:
    def __init__(self, app: App, hub: Hub) -> None:
        self.app = app
        self.hub = hub
        self._assets = {name: _asset(name) for name in ("client.js", "worker.js")}

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith(PREFIX):
            environ[QUIET] = True
            return self._serve(path[len(PREFIX) :], environ, start_response)
        if not navigation(environ):
            return self.app(environ, start_response)
        held: dict[str, Any] = {}
        real_write: list[Callable[[bytes], Any]] = []

        def hold(status: str, headers: list, exc_info: Any = None) -> Callable[[bytes], Any]:
            held.update(status=status, headers=headers, exc_info=exc_info)
            return write

        def write(data: bytes) -> Any:  # the legacy write(): the response is not ours to change
            if not real_write:
                real_write.append(start_response(held["status"], held["headers"], held["exc_info"]))
            return real_write[0](data)

        body = self.app(environ, hold)
        if not held:  # start_response comes with the first chunk: the body is not ours either
            return _late(body, held, start_response)
        if real_write or not injectable(held["headers"], body):
            if not real_write:
                start_response(held["status"], held["headers"], held["exc_info"])
            return body
        try:
            content = b"".join(body)
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()
        if not is_document(content):  # HttpResponse("ok"): text/html by default, no page
            start_response(held["status"], held["headers"], held["exc_info"])
            return [content]
        content = insert(content, self.tag(held["headers"], environ))
        headers = [(k, v) for k, v in held["headers"] if k.lower() not in _DROPPED]
        headers.append(("Content-Length", str(len(content))))
        start_response(held["status"], headers, held["exc_info"])
        return [content]

    def tag(self, headers: list, environ: dict) -> bytes:
        """The script tag for a page with these response ``headers``."""
        csp_nonce = nonce(headers)
        attributes = f' nonce="{html.escape(csp_nonce)}"' if csp_nonce else ""
        if environ.get("REQUEST_METHOD") == "POST":
            attributes += ' data-post=""'  # reloaded by a GET: never "Confirm Form Resubmission"
        return (
            f'<script src="{PREFIX}client.js" data-boot="{self.hub.boot}" '
            f'data-base="{PREFIX}"{attributes} defer></script>'
        ).encode()

    def _serve(self, name: str, environ: dict, start_response: Callable[..., Any]):
        if name == "events":
            start_response(
                "200 OK",
                [
                    ("Content-Type", "text/event-stream"),
                    ("Cache-Control", "no-store"),
                    ("X-Accel-Buffering", "no"),  # nginx in front: do not buffer the stream
                ],
            )
            gone = environ.get(GONE)
            sock = environ.get("werkzeug.socket")
            if gone is None and sock is not None:
                gone = lambda: hung_up(sock)  # noqa: E731
            return self.hub.stream(gone)
        asset = self._assets.get(name)
        if asset is None:
            start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"Not found\n"]
        start_response(
            "200 OK",
            [
                ("Content-Type", "text/javascript; charset=utf-8"),
                ("Content-Length", str(len(asset))),
                ("Cache-Control", "no-cache"),
            ],
        )
        return [asset]


def _late(body: Iterable[bytes], held: dict, start_response: Callable[..., Any]):
    try:
        for chunk in body:
            if held:
                start_response(held["status"], held["headers"], held["exc_info"])
                held.clear()
            yield chunk
        if held:
            start_response(held["status"], held["headers"], held["exc_info"])
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()


def navigation(environ: dict) -> bool:
    """A page the browser shows (not a fragment a script fetched)."""
    if environ.get("HTTP_SEC_FETCH_DEST", "") not in _FRAGMENT_DESTS:
        return False
    if environ.get("HTTP_HX_REQUEST") or environ.get("HTTP_X_REQUESTED_WITH"):
        return False
    return environ.get("REQUEST_METHOD", "GET") in ("GET", "POST", "HEAD")


def _header(headers: list, name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return str(value)
    return None


def injectable(headers: list, body: Iterable[bytes]) -> bool:
    content_type = (_header(headers, "content-type") or "").split(";")[0].strip().lower()
    if content_type != "text/html":
        return False
    if (_header(headers, "content-encoding") or "identity").lower() != "identity":
        return False
    if _header(headers, "content-range") is not None:
        return False
    length = _header(headers, "content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        return False
    if isinstance(body, (list, tuple)):
        return sum(len(chunk) for chunk in body) <= MAX_BODY
    response = _response(body)
    if getattr(response, "streaming", True) is not False:  # a Django response that streams
        return False
    content = getattr(response, "content", None)
    return isinstance(content, bytes) and len(content) <= MAX_BODY


def _response(body: Iterable[bytes]) -> object:
    """The Django response inside our own body wrappers (each keeps what it wraps as ``body``:
    the check switch's, testserver's database lock's), which iterate it unchanged."""
    for _ in range(8):
        if hasattr(body, "streaming") or not hasattr(body, "body"):
            break
        body = body.body
    return body


def nonce(headers: list) -> str | None:
    """The nonce the page's Content-Security-Policy allows scripts with, if any."""
    for key, value in headers:
        if key.lower() != "content-security-policy":
            continue
        directives = {}
        for part in str(value).split(";"):
            words = part.split()
            if words:
                directives.setdefault(words[0].lower(), " ".join(words[1:]))
        for name in ("script-src-elem", "script-src", "default-src"):
            if name in directives:
                found = _NONCE.search(directives[name])
                if found:
                    return found.group(1)
                break
    return None


def is_document(content: bytes) -> bool:
    """An HTML document, not a bare text/html reply (``HttpResponse(str(pk))``)."""
    return _DOCUMENT.search(content, 0, 4096) is not None or _BODY_END.search(content) is not None


def insert(content: bytes, tag: bytes) -> bytes:
    ends = list(_BODY_END.finditer(content))
    if not ends:
        return content + tag
    at = ends[-1].start()
    return content[:at] + tag + content[at:]
