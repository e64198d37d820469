"""Who may see a traceback on the error pages, as Django decides who sees its technical 500 page.

Django shows a traceback only with ``DEBUG`` on, and only to a request whose ``Host`` passes
``ALLOWED_HOSTS`` (with its debug defaults for localhost): that is what stops DNS rebinding
against a server on 127.0.0.1. The supervisor's error page follows the same rules
(``reloader.audience``), with what each worker tells it (``report``). When the settings cannot
even be imported, ``DEBUG`` is read from the settings file without running it, if it is written
there as a literal, and only loopback clients may see the details.
"""

from __future__ import annotations

import ast
import importlib.util
import os
from typing import Any

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.handlers.wsgi import WSGIRequest

import reloader
from reloader import worker


def from_settings() -> reloader.Audience:
    """The audience the loaded settings give (raises if they cannot be loaded)."""
    return reloader.Audience.for_debug(bool(settings.DEBUG), list(settings.ALLOWED_HOSTS))


def report() -> None:
    """Tell the supervisor who may see this worker's failures; re-raise a broken settings
    module's error (the worker fails with it, and the supervisor shows it to that audience)."""
    try:
        audience = from_settings()
    except BaseException:
        worker.audience(declared_debug(), None, loopback_only=True)
        raise
    worker.audience(audience.details, audience.hosts)


def declared_debug(module: str | None = None) -> bool | None:
    """``DEBUG`` as the settings module's source assigns it at top level, if it is a literal
    (``DEBUG = False``); None when it cannot tell (computed, or the file does not parse)."""
    name = module or os.environ.get("DJANGO_SETTINGS_MODULE")
    if not name:
        return None
    try:
        spec = importlib.util.find_spec(name)
        origin = spec.origin if spec is not None else None
        if not origin or not origin.endswith(".py"):
            return None
        with open(origin, "rb") as f:
            tree = ast.parse(f.read(), origin)
    except Exception:  # a package that fails to import, a file that does not parse...
        return None
    value: bool | None = None
    for node in tree.body:
        targets: list[Any] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets = [node.target]
        if any(isinstance(t, ast.Name) and t.id == "DEBUG" for t in targets):
            literal = node.value
            value = literal.value if isinstance(literal, ast.Constant) else None
            value = value if isinstance(value, bool) else None
    return value


def sees_details(environ: dict[str, Any]) -> bool:
    """Whether this request may see a traceback (Django's ``DEBUG`` and ``get_host()``)."""
    if not settings.DEBUG:
        return False
    try:
        WSGIRequest(environ).get_host()
    except DisallowedHost:
        return False
    return True
