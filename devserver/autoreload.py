"""Django's reloader signals, sent in a worker so that Django's receivers work with our supervisor.

Django resets its cached template loaders and translation catalogs from ``file_changed``
receivers, after ``autoreload_started`` receivers asked the reloader to watch the template and
locale directories (third-party apps such as django-browser-reload hook in the same way). The
shim below is the ``sender`` they see: ``watch_dir`` and ``extra_files`` turn into reports to the
supervisor; a change under a watched directory comes back as ``file_changed``, and if no receiver
handles it the supervisor restarts the worker, as Django's reloader would.
"""

from __future__ import annotations

import logging
from pathlib import Path

from django.utils.autoreload import autoreload_started, file_changed

from reloader import worker

# Django's reloader logs under this name; its default LOGGING shows it when DEBUG is on.
logger = logging.getLogger("django.utils.autoreload")


class SupervisedReloader:
    """What Django's receivers expect of a reloader, backed by the supervisor."""

    def __init__(self) -> None:
        self.extra_files: set[Path] = set()
        self.directory_globs: dict[Path, set[str]] = {}

    def watch_dir(self, path: str | Path, glob: str) -> None:
        path = Path(path).absolute()
        self.directory_globs.setdefault(path, set()).add(glob)
        worker.watch_tree(str(path), glob)

    def watched_files(self, include_globs: bool = True):  # what some receivers inspect
        yield from self.extra_files

    def notify_file_changed(self, path: str | Path) -> bool:
        results = file_changed.send(sender=self, file_path=Path(path))
        return any(result for _receiver, result in results)


def start() -> SupervisedReloader:
    """Send ``autoreload_started`` and route tree changes to ``file_changed``."""
    reloader = SupervisedReloader()
    autoreload_started.send(sender=reloader)
    if reloader.extra_files:
        worker.watch_files(str(p) for p in reloader.extra_files)
    worker.on_change(lambda paths: all(reloader.notify_file_changed(p) for p in paths))
    return reloader
