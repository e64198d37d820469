"""A WSGI app that answers every request with an error page (system check errors).

The checks' messages may quote settings: they are shown only where Django would show its
technical 500 page (``devserver.audience``); every other request gets the generic page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import reloader
from devserver.audience import sees_details

HEADER = ("X-Reloader", "error")  # the page reloads itself once the server answers otherwise


def error_app(
    title: str, detail: str, focus: dict[str, Any] | None = None
) -> Callable[..., Iterable[bytes]]:
    """``focus``: where the first error points in the project (``devserver.checksource``)."""
    detailed = reloader.render_error_page(
        reloader.Failure(
            title,
            detail,
            summary="The server runs, but Django's system checks found errors.",
            hint="Fix them and save: the server restarts, and this page reloads itself.",
            focus=focus,
        )
    )
    generic = reloader.render_generic_error_page()

    def app(environ: dict, start_response: Callable[..., object]) -> Iterable[bytes]:
        body = detailed if sees_details(environ) else generic
        start_response(
            "500 Internal Server Error",
            [
                ("Content-Type", "text/html; charset=utf-8"),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
                HEADER,
            ],
        )
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]

    return app
