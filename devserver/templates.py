"""Template (and translation) edits in testserver: Django's own receivers, in this process.

Django resets its cached template loaders (cached even with DEBUG on since Django 4.1) from a
``file_changed`` receiver, after an ``autoreload_started`` receiver asked the reloader to watch
every template directory (``TEMPLATES`` DIRS, the apps' ``templates/``); the translation
catalogs work the same way with ``*.mo`` files. Django's testserver never runs a reloader, so a
template rendered once is never read again. Here the reloader those receivers see is backed by
an in-process ``Watch``: a changed file matching a watched directory's glob is sent as
``file_changed``, and nothing restarts (a change no receiver handles, such as a ``.py`` file, is
ignored: testserver does not reload Python code).
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

from django.utils.autoreload import autoreload_started

from devserver.autoreload import SupervisedReloader
from devserver.watching import Watch


class InProcessReloader(SupervisedReloader):
    """What Django's receivers expect of a reloader, backed by a ``Watch``."""

    def __init__(self, watch: Watch) -> None:
        super().__init__()
        self._watch = watch

    def watch_dir(self, path: str | Path, glob: str) -> None:
        path = Path(path).absolute()
        self.directory_globs.setdefault(path, set()).add(glob)
        self._watch.watch(trees=[str(path)])

    def wanted(self, path: Path) -> bool:
        if path in self.extra_files:
            return True
        for directory, globs in self.directory_globs.items():
            if directory in path.parents and any(_matches(path, directory, g) for g in globs):
                return True
        return False

    def handle(self, paths: list[str]) -> None:
        for path in map(Path, paths):
            if self.wanted(path):
                self.notify_file_changed(path)


def _matches(path: Path, directory: Path, glob: str) -> bool:
    """``Path.glob`` semantics for the patterns Django's receivers use (``**/*``, ``**/*.mo``)."""
    relative = path.relative_to(directory)
    if glob.startswith("**/"):
        return fnmatch.fnmatchcase(path.name, glob[3:])
    return len(relative.parts) == 1 and fnmatch.fnmatchcase(path.name, glob)


def watch_templates(watch: Watch) -> InProcessReloader:
    """Have Django's receivers name what to watch, and tell them what changed."""
    reloader = InProcessReloader(watch)
    autoreload_started.send(sender=reloader)
    if reloader.extra_files:
        watch.watch(files=[str(p) for p in reloader.extra_files])
    watch.on_change(reloader.handle)
    return reloader
