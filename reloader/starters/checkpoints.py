"""The supervisor's record of checkpoints: what each one read, and whether a change made it stale.

A checkpoint (``reloader.builder``) is a paused start-up that forks workers. It stays good for an
edit as long as it never read what changed: every module file it imported, file it opened and
directory it listed before it paused is recorded, in the order of the start-up. A path that
changes makes stale every checkpoint that read it; a name created in (or removed from) a
directory a checkpoint listed makes it stale too, since a start-up now could find (or miss) it:
a new ``admin.py``, a new ``templatetags`` module, an optional settings module that was missing.
When the import system listed the directory, only names it could import count (so an editor's
swap file does not).

Which checkpoint forks the next worker: the deepest good one, i.e. the one with the least
start-up left to replay. The final one (where the start-up would serve) needs none.
"""

from __future__ import annotations

import importlib.machinery
import os
from dataclasses import dataclass, field
from typing import Any

from .links import ServerLink

_MODULE_SUFFIXES = tuple(importlib.machinery.all_suffixes())


def importable(path: str) -> bool:
    """Whether the import system could import this entry of a directory: ``views.py``, a
    package directory... (not an editor's or ``sed -i``'s temporary file)."""
    name = os.path.basename(path)
    for suffix in _MODULE_SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)].isidentifier():
            return True
    return name.isidentifier() and (os.path.isdir(path) or not os.path.lexists(path))


@dataclass
class Deps:
    """What a start-up read up to a point: files, and directories with the names in them."""

    files: frozenset[str] = frozenset()
    dirs: dict[str, tuple[bool, frozenset[str]]] = field(default_factory=dict)

    def add(self, batch: dict[str, Any]) -> Deps:
        """These deps, plus a builder's batch (``{"files": [[path, position]...], "dirs":
        [[path, position, by_import, [name...]]...]}``)."""
        files = self.files | {str(f[0]) for f in batch.get("files", [])}
        dirs = dict(self.dirs)
        for entry in batch.get("dirs", []):
            path, _position, by_import, names = entry
            if path not in dirs:
                dirs[str(path)] = (bool(by_import), frozenset(str(n) for n in names))
        return Deps(files, dirs)

    def stale_reason(self, path: str) -> str | None:
        """Why a change of ``path`` makes a state that read these deps stale, or None."""
        if path in self.files:
            return f"{path} changed"
        directory, name = os.path.split(path)
        listed = self.dirs.get(directory)
        if listed is None:
            return None
        by_import, names = listed
        if by_import and not importable(path):
            return None
        exists = os.path.lexists(path)
        if exists and name not in names:
            return f"{path} was created"
        if not exists and name in names:
            return f"{path} was removed"
        return None


@dataclass
class Checkpoint:
    """A paused start-up the supervisor may fork workers from."""

    link: ServerLink
    name: str
    module: str | None
    position: int
    seconds: float  # start-up time from the start to here
    final: bool
    deps: Deps
    build: Build
    stale: str | None = None  # why it must not be used any more

    @property
    def label(self) -> str:
        return "the last checkpoint" if self.final else f"checkpoint {self.name!r}"


@dataclass
class Build:
    """A builder: the process running the start-up from a base, and the checkpoints it made."""

    link: ServerLink
    base: Checkpoint | None  # forked from this checkpoint (None: from the fork template)
    deps: Deps
    checkpoints: list[Checkpoint] = field(default_factory=list)
    pid: int | None = None
    done: bool = False  # it paused for good (final checkpoint), failed, stopped, or was killed
    refused: str | None = None

    def record(self, message: dict[str, Any], link: ServerLink) -> Checkpoint:
        self.deps = self.deps.add(message.get("deps", {}))
        checkpoint = Checkpoint(
            link=link,
            name=str(message.get("name", "?")),
            module=message.get("module"),
            position=int(message.get("position", 0)),
            seconds=float(message.get("seconds", 0.0)),
            final=bool(message.get("final", False)),
            deps=self.deps,
            build=self,
        )
        self.checkpoints.append(checkpoint)
        if checkpoint.final:
            self.done = True
        return checkpoint


def best(checkpoints: list[Checkpoint]) -> Checkpoint | None:
    """The good checkpoint with the least start-up left to replay."""
    good = [c for c in checkpoints if c.stale is None and c.link.alive]
    if not good:
        return None
    return max(good, key=lambda c: (c.final, c.seconds, c.position))
