"""What a changed file means for the pages a browser shows.

- a stylesheet the staticfiles finders serve (``--adminmedia`` included): ``css``, swapped in
  place; another static file (JS, an image, a font): ``reload``; a file a finder would not
  serve (shadowed by another app's of the same name): nothing;
- a template (not ``.py``, under a directory Django's template loaders read: what Django's own
  ``template_changed`` receiver resets the loaders for) or a ``.mo`` catalog: ``reload``, once
  Django's receiver has done its part (it runs first);
- anything else: not ours. Under runserver an unhandled change restarts the worker, and the
  tabs reload when the new one greets them.

Changes arrive from a *feed*: the supervisor (runserver: ``reloader.worker``, the static trees
are reported to it as trees whose changes come back here) or testserver's in-process ``Watch``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

from django.contrib.staticfiles import finders
from django.template.autoreload import get_template_directories

from devserver.livereload.events import Hub


class Feed(Protocol):
    def watch_tree(self, directory: str) -> None: ...

    def on_change(self, callback: Callable[[list[str]], bool]) -> None: ...


class SupervisorFeed:
    """runserver: the supervisor watches the trees and sends their changes to this worker."""

    def watch_tree(self, directory: str) -> None:
        from reloader import worker

        worker.watch_tree(directory, "**/*")

    def on_change(self, callback: Callable[[list[str]], bool]) -> None:
        from reloader import worker

        worker.on_change(callback)


def static_roots(admin_dir: str | None) -> list[tuple[str, str]]:
    """(URL prefix under STATIC_URL, directory) for every directory static files come from."""
    roots: list[tuple[str, str]] = []
    if admin_dir:
        roots.append(("admin/", os.path.realpath(admin_dir)))
    for finder in finders.get_finders():
        for prefix, root in getattr(finder, "locations", []):
            roots.append((f"{prefix}/" if prefix else "", os.path.realpath(root)))
        storages = list(getattr(finder, "storages", {}).values())
        if getattr(finder, "storage", None) is not None:
            storages.append(finder.storage)
        for storage in storages:
            location = getattr(storage, "location", None)
            if location and os.path.isdir(location):
                roots.append(("", os.path.realpath(location)))
    unique = dict.fromkeys(roots)
    return [root for root in unique if os.path.isdir(root[1])]


class Changes:
    """Turn changed paths into events on ``hub``."""

    def __init__(self, hub: Hub, static_prefix: str | None, admin_dir: str | None) -> None:
        self.hub = hub
        self.static_prefix = static_prefix
        self.admin_dir = os.path.realpath(admin_dir) if admin_dir else None
        self.roots = static_roots(admin_dir) if static_prefix else []

    def follow(self, feed: Feed) -> None:
        for _prefix, root in self.roots:
            feed.watch_tree(root)
        feed.on_change(self.changed)

    def changed(self, paths: list[str]) -> bool:
        """Publish what ``paths`` mean; True when they were all static files (handled here)."""
        stylesheets: list[str] = []
        reload_for: list[str] = []
        handled = True
        for path in paths:
            kind, url = self.classify(path)
            if kind == "css" and url:
                stylesheets.append(url)
            elif kind == "static":
                reload_for.append(path)
            elif kind == "page":
                reload_for.append(path)
                handled = False  # Django's receiver handles it; we only follow
            elif kind is None:
                handled = False
        if reload_for:
            self.hub.publish({"type": "reload", "reason": f"{reload_for[0]} changed"})
        elif stylesheets:
            self.hub.publish({"type": "css", "paths": stylesheets})
        return handled

    def classify(self, path: str) -> tuple[str | None, str | None]:
        """("css", url) | ("static", url) | ("shadowed", None) | ("page", None) | (None, None)"""
        real = os.path.realpath(path)
        for prefix, root in self.roots:
            if not real.startswith(root + os.sep):
                continue
            relative = prefix + Path(os.path.relpath(real, root)).as_posix()
            if not self._served(relative, real):
                return "shadowed", None
            url = f"{self.static_prefix}{quote(relative)}"
            return ("css" if real.endswith(".css") else "static"), url
        file_path = Path(path)
        if file_path.suffix == ".mo":
            return "page", None
        if file_path.suffix != ".py" and any(
            directory in file_path.parents for directory in _template_directories()
        ):
            return "page", None
        return None, None

    def _served(self, relative: str, real: str) -> bool:
        if self.admin_dir and relative.startswith("admin/"):
            return real.startswith(self.admin_dir + os.sep)
        if not os.path.exists(real):
            return True  # deleted: the page that used it reloads
        try:
            found = finders.find(relative)
        except Exception:
            return False
        return bool(found) and os.path.realpath(str(found)) == real


def _template_directories() -> Iterable[Path]:
    return get_template_directories()
