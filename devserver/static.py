"""Serve static files (from the staticfiles finders), the admin media and MEDIA_ROOT.

werkzeug does the HTTP part (conditional GET with ETag and Last-Modified, content types); this
module decides which file answers a URL, which byte range of it (issue 10), and what a miss looks
like. It refuses anything that is not inside one of the roots it serves from: ``..`` and its
encodings, absolute paths, NUL bytes, and symlinks that lead out of a root all get a 404.

Range (RFC 9110 section 14; Django's runserver ignores Range and always answers 200):

- one satisfiable ``bytes`` range of a GET: 206 with Content-Range;
- a ``bytes`` range that cannot be satisfied (``bytes=100-200`` of a 26-byte file, ``bytes=-0``):
  416 with ``Content-Range: bytes */SIZE``;
- an invalid header (``abc``, ``bytes=5-2``), another unit (``items=0-3``), several ranges (we send
  no multipart/byteranges), HEAD, an empty file, or an If-Range that does not match the file: the
  Range header is ignored and the whole file is sent (200), as the RFC allows.

Preconditions come first (RFC 9110 section 13.2.2): If-None-Match or If-Modified-Since that match
give a 304 whatever the Range says.

A miss is Django's own 404, as django.contrib.staticfiles' handler gives it: an Http404 with the
message Django's serve views use, answered by ``response_for_exception`` (the technical 404 page
with DEBUG on, the project's handler404 with DEBUG off and --insecure), outside any middleware.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from django.contrib.staticfiles import finders
from django.core.exceptions import SuspiciousOperation
from django.core.handlers.exception import response_for_exception
from django.core.handlers.wsgi import WSGIHandler
from django.http import Http404
from django.utils.translation import gettext
from werkzeug.exceptions import RequestedRangeNotSatisfiable
from werkzeug.http import parse_date
from werkzeug.utils import send_file
from werkzeug.wrappers import Response
from werkzeug.wsgi import FileWrapper

CHUNK = 256 * 1024
UNSATISFIABLE = "unsatisfiable"
_RANGE_SPEC = re.compile(r"([0-9]*)-([0-9]*)")
_NOT_FOUND_KEY = "devserver.not_found"  # how StaticFilesApp hands its Http404 to _NotFound


def finder_roots() -> list[str]:
    """Every directory the staticfiles finders look in."""
    roots: list[str] = []
    for finder in finders.get_finders():
        roots += [root for _prefix, root in getattr(finder, "locations", [])]
        storages = list(getattr(finder, "storages", {}).values())
        if getattr(finder, "storage", None) is not None:
            storages.append(finder.storage)
        for storage in storages:
            location = getattr(storage, "location", None)
            if location:
                roots.append(location)
    return [os.path.realpath(r) for r in roots if os.path.isdir(r)]


def clean_relative(path: str) -> str | None:
    """A safe relative path, or None for traversal, absolute paths and other tricks."""
    if "\x00" in path or "\\" in path:
        return None
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        return None
    normalized = posixpath.normpath(path)
    if normalized in ("", ".") or normalized == ".." or normalized.startswith("../"):
        return None
    if path.endswith("/"):
        return None  # no directory listings
    return normalized


def within(path: str, roots: Iterable[str]) -> bool:
    real = os.path.realpath(path)
    return any(real.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def url_prefix(url: str | None) -> str | None:
    """The path prefix of STATIC_URL/MEDIA_URL, or None when it names another host."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.netloc:
        return None
    path = parts.path if parts.path.startswith("/") else "/" + parts.path
    return path if path.endswith("/") else path + "/"


def _position(digits: str) -> int:
    # int() refuses more than 4,300 digits (CVE-2020-10735): a position that long is past any file.
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= 30 else 10**30


def byte_range(header: str, size: int) -> tuple[int, int] | str | None:
    """What a Range header asks of a ``size``-byte file (RFC 9110 section 14.1): ``(start, stop)``
    for one satisfiable byte range, UNSATISFIABLE, or None when the header is to be ignored
    (invalid, another unit, or several ranges)."""
    unit, equals, ranges = header.partition("=")
    if not equals or unit.strip(" \t").lower() != "bytes":
        return None
    specs = [spec.strip(" \t") for spec in ranges.split(",")]
    specs = [spec for spec in specs if spec]  # a list may hold empty elements (section 5.6.1)
    if len(specs) != 1:
        return None
    match = _RANGE_SPEC.fullmatch(specs[0])
    if match is None:
        return None
    first, last = match.groups()
    if first:
        start = _position(first)
        if last and _position(last) < start:
            return None  # "bytes=5-2" is invalid, not unsatisfiable
        if start >= size:
            return UNSATISFIABLE
        return start, min(_position(last) + 1, size) if last else size
    if not last:
        return None  # "bytes=-"
    suffix = _position(last)
    if suffix == 0:
        return UNSATISFIABLE  # "bytes=-0": the last zero bytes
    return max(size - suffix, 0), size


def if_range_matches(value: str, response: Response) -> bool:
    """If-Range (RFC 9110 section 13.1.5): a strong entity-tag match, or the exact Last-Modified."""
    value = value.strip(" \t")
    if value.startswith(('"', "W/")):
        etag = response.headers.get("ETag")
        return not value.startswith("W/") and etag is not None and value == etag
    date = parse_date(value)
    return date is not None and date == response.last_modified


class _NotFound(WSGIHandler):
    """Django's answer to an Http404 raised outside any view, as StaticFilesHandler gives it:
    its request, signals and headers, ``response_for_exception`` and no middleware."""

    def load_middleware(self, is_async: bool = False) -> None:
        pass  # like StaticFilesHandler: the 404 page goes through no middleware

    def get_response(self, request):
        try:
            response = response_for_exception(request, request.META[_NOT_FOUND_KEY])
        except SuspiciousOperation as exc:
            # The technical 404 page shows the request's absolute URL: a Host header not in
            # ALLOWED_HOSTS raises DisallowedHost there (a 500 under StaticFilesHandler). Give the
            # 400 Django gives that Host everywhere else.
            response = response_for_exception(request, exc)
        if not response.streaming and not response.has_header("Content-Length"):
            # What Django's runserver (wsgiref) adds: the connection can then be kept alive.
            response.headers["Content-Length"] = str(len(response.content))
        return response


class StaticFilesApp:
    """WSGI middleware: answer STATIC_URL (and MEDIA_URL) from disk, pass the rest to ``app``.

    static_prefix   STATIC_URL's path, or None to serve no static files.
    admin_dir       serve ``<static_prefix>admin/`` from this directory (``--adminmedia``).
    media_prefix    MEDIA_URL's path with ``media_root``, or None.
    """

    def __init__(
        self,
        app: Callable[..., Iterable[bytes]],
        static_prefix: str | None,
        admin_dir: str | None = None,
        media_prefix: str | None = None,
        media_root: str | None = None,
    ) -> None:
        self.app = app
        self.static_prefix = static_prefix
        self.admin_dir = os.path.realpath(admin_dir) if admin_dir else None
        self.media_prefix = media_prefix if media_root else None
        self.media_root = os.path.realpath(media_root) if media_root else None
        self.media_root_shown = os.path.abspath(media_root) if media_root else ""
        self.static_roots = finder_roots()
        self.not_found = _NotFound()

    def serves(self, path: str) -> bool:
        """Whether a request for ``path`` (decoded) is answered here, not by ``app``."""
        return bool(
            (self.static_prefix and path.startswith(self.static_prefix))
            or (self.media_prefix and path.startswith(self.media_prefix))
        )

    def __call__(self, environ: dict, start_response: Callable[..., object]) -> Iterable[bytes]:
        raw = environ.get("PATH_INFO", "")
        try:
            path = raw.encode("latin-1").decode("utf-8")
        except UnicodeError:
            path = raw
        if self.static_prefix and path.startswith(self.static_prefix):
            return self.serve_static(path[len(self.static_prefix) :], environ, start_response)
        if self.media_prefix and path.startswith(self.media_prefix):
            return self.serve_media(path[len(self.media_prefix) :], environ, start_response)
        return self.app(environ, start_response)

    def serve_static(self, rel, environ, start_response):
        # django.contrib.staticfiles.views.serve's messages. It answers traversal with
        # SuspiciousFileOperation (a 500 naming both paths); we refuse with the plain 404.
        missing = Http404(
            gettext("Directory indexes are not allowed here.")
            if rel == "" or rel.endswith("/")
            else f"'{rel}' could not be found"
        )
        clean = clean_relative(rel)
        if clean is None:
            return self._not_found(missing, environ, start_response)
        if self.admin_dir and clean.startswith("admin/"):
            candidate = os.path.join(self.admin_dir, clean[len("admin/") :])
            roots = [self.admin_dir]
        else:
            try:
                candidate = finders.find(clean)
            except Exception:  # SuspiciousFileOperation and friends: not ours to serve
                candidate = None
            roots = self.static_roots
        if candidate and os.path.isdir(candidate) and within(candidate, roots):
            missing = Http404(gettext("Directory indexes are not allowed here."))
        return self._send(candidate, roots, missing, environ, start_response)

    def serve_media(self, rel, environ, start_response):
        # django.views.static.serve's messages (what a project's static() URL patterns answer):
        # a missing file inside MEDIA_ROOT is named by its full path, as Django does; a refused
        # path only by what the URL said.
        clean = clean_relative(rel)
        if clean is None or self.media_root is None:
            if rel == "" or rel.endswith("/"):
                message = gettext("Directory indexes are not allowed here.")
            else:
                message = gettext("“%(path)s” does not exist") % {"path": rel}
            return self._not_found(Http404(message), environ, start_response)
        candidate = os.path.join(self.media_root, clean)
        if os.path.isdir(candidate):
            message = gettext("Directory indexes are not allowed here.")
        elif within(candidate, [self.media_root]):
            shown = os.path.join(self.media_root_shown, clean)  # Django's safe_join() spelling
            message = gettext("“%(path)s” does not exist") % {"path": shown}
        else:
            message = gettext("“%(path)s” does not exist") % {"path": clean}
        return self._send(candidate, [self.media_root], Http404(message), environ, start_response)

    def _not_found(self, exc: Http404, environ: dict, start_response: Callable[..., object]):
        return self.not_found({**environ, _NOT_FOUND_KEY: exc}, start_response)

    def _send(self, candidate, roots, missing, environ, start_response):
        if not candidate or not os.path.isfile(candidate) or not within(candidate, roots):
            return self._not_found(missing, environ, start_response)
        # werkzeug would answer Range itself, but raises for anything it cannot satisfy, and lets a
        # Range win over If-None-Match: send the whole file first, then decide on the range.
        whole = {k: v for k, v in environ.items() if k not in ("HTTP_RANGE", "HTTP_IF_RANGE")}
        # Large chunks: a 1 MB file goes out in four writes instead of 128.
        whole["wsgi.file_wrapper"] = lambda f, *_: FileWrapper(f, CHUNK)
        response = send_file(candidate, whole, conditional=True, etag=True)
        response.headers["Cache-Control"] = "no-cache"
        if (
            response.status_code == 200
            and environ.get("REQUEST_METHOD") == "GET"  # the only method with ranges
            and "HTTP_RANGE" in environ
        ):
            response = self._range(response, environ, whole)
        return response(whole, start_response)

    def _range(self, response: Response, environ: dict, whole: dict) -> Response:
        size = response.content_length or 0
        if_range = environ.get("HTTP_IF_RANGE")
        if size == 0 or (if_range is not None and not if_range_matches(if_range, response)):
            return response  # nothing to cut, or the client's copy is stale: the whole file
        wanted = byte_range(environ["HTTP_RANGE"], size)
        if wanted is None:
            return response
        if wanted == UNSATISFIABLE:
            response.close()
            refused = RequestedRangeNotSatisfiable(length=size).get_response(whole)
            for name in ("Accept-Ranges", "ETag", "Last-Modified", "Cache-Control"):
                if name in response.headers:
                    refused.headers[name] = response.headers[name]
            return refused
        start, stop = wanted
        single = {**whole, "HTTP_RANGE": f"bytes={start}-{stop - 1}"}
        return response.make_conditional(single, accept_ranges=True, complete_length=size)
