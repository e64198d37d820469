"""Live reload: the browser follows the code (issue 12).

On by default where runserver reloads and DEBUG is on; ``--nolivereload`` or
``DEVSERVER_LIVERELOAD = False`` turn it off; never with DEBUG off (``--insecure`` included),
with ``--noreload`` (nothing would tell the browser) or ``--nothreading`` (a stream would hold
the only thread). testserver has it for templates, static files and fixtures. With
django-browser-reload installed it stays off, saying so once: one script reloads, not two.

- ``events``: the stream each browser holds, and what goes on it;
- ``inject``: the WSGI middleware that serves it and puts the script in pages;
- ``changes``: what a changed file means (a stylesheet to swap, a page to reload);
- ``client.js`` and ``worker.js``: the browser's side.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from devserver.livereload.changes import Changes, Feed, SupervisorFeed
from devserver.livereload.events import Hub
from devserver.livereload.inject import PREFIX, LiveReload

__all__ = ["PREFIX", "Live", "SupervisorFeed", "WatchFeed", "enabled", "for_worker"]

SETTING = "DEVSERVER_LIVERELOAD"
BROWSER_RELOAD = "django_browser_reload"
STATICFILES = "django.contrib.staticfiles"
STEPPING_ASIDE = (
    "django-browser-reload is installed: it reloads the pages, devserver's live reload stays "
    "off (without it: stylesheets swapped in place, one stream per browser)."
)


def enabled(options: dict[str, Any], debug: bool, setting: object = True) -> bool:
    return (
        bool(debug)
        and bool(setting)
        and options.get("livereload", True)
        and options.get("use_threading", True)
    )


class WatchFeed:
    """testserver: its in-process ``devserver.watching.Watch``."""

    def __init__(self, watch: Any) -> None:
        self.watch = watch

    def watch_tree(self, directory: str) -> None:
        self.watch.watch(trees=[directory])

    def on_change(self, callback: Callable[[list[str]], bool]) -> None:
        self.watch.on_change(callback)


class Live:
    def __init__(
        self, feed: Feed, static_prefix: str | None, admin_dir: str | None, verbose: bool = False
    ) -> None:
        self.hub = Hub(verbose)
        self.changes = Changes(self.hub, static_prefix, admin_dir)
        self.changes.follow(feed)

    def wrap(self, app: Callable[..., Iterable[bytes]]) -> LiveReload:
        return LiveReload(app, self.hub)

    def reload(self, reason: str) -> None:
        self.hub.publish({"type": "reload", "reason": reason})

    def close(self) -> None:
        self.hub.close()


def for_worker(feed: Feed | None, options: dict[str, Any]) -> Live | None:
    """Live reload for the server process about to serve with these runserver ``options``
    (changes heard from ``feed``), or None where it is off."""
    from django.apps import apps
    from django.conf import settings

    from devserver.autoreload import logger
    from devserver.static import url_prefix
    from reloader import worker

    if feed is None or not enabled(options, settings.DEBUG, getattr(settings, SETTING, True)):
        return None
    if apps.is_installed(BROWSER_RELOAD):  # one script reloads, not two
        if worker.info().get("generation", 1) == 1:
            logger.info(STEPPING_ASIDE)
        return None
    static = url_prefix(settings.STATIC_URL) if apps.is_installed(STATICFILES) else None
    verbose = int(options.get("verbosity", 1)) >= 2
    return Live(feed, static, options.get("admin_media_path") or None, verbose)
