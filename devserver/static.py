"""Serve static files (from the staticfiles finders), the admin media and MEDIA_ROOT.

werkzeug does the HTTP part (conditional GET with ETag and Last-Modified, Range, content types);
this module only decides which file answers a URL, and refuses anything that is not inside one of
the roots it serves from: ``..`` and its encodings, absolute paths, NUL bytes, and symlinks that
lead out of a root all get a 404.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from django.contrib.staticfiles import finders
from django.utils.html import escape
from werkzeug.utils import send_file
from werkzeug.wsgi import FileWrapper

CHUNK = 256 * 1024


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


def _not_found(path: str, start_response: Callable[..., object]) -> list[bytes]:
    body = f"<h1>Not Found</h1><p>{escape(path)} could not be found.</p>\n".encode()
    start_response(
        "404 Not Found",
        [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))],
    )
    return [body]


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
        self.static_roots = finder_roots()

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
        clean = clean_relative(rel)
        if clean is None:
            return _not_found(rel, start_response)
        if self.admin_dir and clean.startswith("admin/"):
            candidate = os.path.join(self.admin_dir, clean[len("admin/") :])
            roots = [self.admin_dir]
        else:
            try:
                candidate = finders.find(clean)
            except Exception:  # SuspiciousFileOperation and friends: not ours to serve
                candidate = None
            roots = self.static_roots
        return self._send(candidate, roots, rel, environ, start_response)

    def serve_media(self, rel, environ, start_response):
        clean = clean_relative(rel)
        if clean is None or self.media_root is None:
            return _not_found(rel, start_response)
        candidate = os.path.join(self.media_root, clean)
        return self._send(candidate, [self.media_root], rel, environ, start_response)

    def _send(self, candidate, roots, rel, environ, start_response):
        if not candidate or not os.path.isfile(candidate) or not within(candidate, roots):
            return _not_found(rel, start_response)
        # Large chunks: a 1 MB file goes out in four writes instead of 128.
        environ = {**environ, "wsgi.file_wrapper": lambda f, *_: FileWrapper(f, CHUNK)}
        response = send_file(candidate, environ, conditional=True, etag=True)
        response.headers["Cache-Control"] = "no-cache"
        return response(environ, start_response)
