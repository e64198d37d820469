"""ASGI under the same supervisor (issue 13): ``runserver --asgi``.

Chosen with ``--asgi``, or by itself when the settings name an ``ASGI_APPLICATION`` (Channels'
setting, as Daphne's runserver does). Each worker serves the project's ASGI application with
uvicorn (``pip install devserver[asgi]``) on the socket the supervisor holds; everything else
runserver does stays: checks on every reload, the migrations notice, static and media files,
the request log, the error pages, live reload.

- ``app``: what runserver puts around the project's application;
- ``bridge``: our WSGI pieces (static files, live-reload endpoints) inside it;
- ``server``: uvicorn, stopping as the reloader expects (WebSockets closed with 1012).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

MISSING = (
    "--asgi needs uvicorn, which is not installed: pip install 'devserver[asgi]' "
    "(or pip install uvicorn)."
)


def requested(options: dict[str, Any], settings: Any) -> bool:
    """Whether this runserver serves ASGI: --asgi, or an ASGI_APPLICATION in the settings."""
    if options.get("asgi") is not None:
        return bool(options["asgi"])
    return bool(getattr(settings, "ASGI_APPLICATION", None))


def installed() -> bool:
    try:
        return importlib.util.find_spec("uvicorn") is not None
    except ImportError:
        return False


def application() -> Callable:
    """The project's ASGI application: ASGI_APPLICATION, else Django's."""
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.utils.module_loading import import_string

    path = getattr(settings, "ASGI_APPLICATION", None)
    if not path:
        from django.core.asgi import get_asgi_application

        return get_asgi_application()
    try:
        return import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"ASGI application '{path}' could not be loaded; Error importing module."
        ) from exc
