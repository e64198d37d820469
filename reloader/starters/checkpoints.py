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
start-up left to replay. The final one (where the start-up would serve) needs none. An edit of
project modules only (no data file, no directory listing) leaves the final checkpoint usable
with a *refresh*: its worker imports again what the edit reaches (``reloader.refresh``), and the
files edited since it was taken accumulate until it is replaced, or a refresh is declined.

A checkpoint taken after the start-up drew a random value is not *shared*: it forks one worker
(or none), then goes, so that no two workers hold the same value; builds start from shared ones.
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
    modules: frozenset[str] = frozenset()  # the files of project modules, among ``files``

    def add(self, batch: dict[str, Any]) -> Deps:
        """These deps, plus a builder's batch (``{"files": [[path, position]...], "dirs":
        [[path, position, by_import, [name...]]...]}``)."""
        files = self.files | {str(f[0]) for f in batch.get("files", [])}
        dirs = dict(self.dirs)
        for entry in batch.get("dirs", []):
            path, _position, by_import, names = entry
            if path not in dirs:
                dirs[str(path)] = (bool(by_import), frozenset(str(n) for n in names))
        modules = self.modules | {str(m) for m in batch.get("modules", [])}
        return Deps(files, dirs, modules)

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


@dataclass(eq=False)
class Checkpoint:
    """A paused start-up the supervisor may fork workers from."""

    link: ServerLink
    name: str
    module: str | None
    file: str | None  # of that module (a checkpoint taken before its first import)
    position: int
    seconds: float  # start-up time from the start to here
    final: bool
    deps: Deps
    build: Build
    shared: bool = True  # False: it forks one worker, then goes (see the module docstring)
    stale: str | None = None  # why it must not be used any more
    refresh: list[str] = field(default_factory=list)  # final only: modules edited since
    declined: dict[str, str] = field(default_factory=dict)  # final only: no refresh for these
    prepared: frozenset[str] = frozenset()  # final only: a refresh of one of these is ready

    def prepared_for_edits(self) -> bool:
        """No refresh waiting, or only that of one file this checkpoint analysed ahead."""
        return not self.refresh or (len(self.refresh) == 1 and self.refresh[0] in self.prepared)

    def module_edit(self, path: str) -> bool:
        """Whether a change of ``path`` leaves this (final) checkpoint usable with a refresh:
        the file of a project module it imported, edited (not created or removed)."""
        if not self.final or path not in self.deps.modules or not os.path.isfile(path):
            return False
        directory, name = os.path.split(path)
        listed = self.deps.dirs.get(directory)
        return listed is None or name in listed[1]

    @property
    def label(self) -> str:
        return "the last checkpoint" if self.final else f"checkpoint {self.name!r}"


@dataclass(eq=False)
class Build:
    """A builder: the process running the start-up from a base, and the checkpoints it made."""

    link: ServerLink
    base: Checkpoint | None  # forked from this checkpoint (None: from the fork template)
    deps: Deps
    checkpoints: list[Checkpoint] = field(default_factory=list)
    pid: int | None = None
    done: bool = False  # it paused for good (final checkpoint), failed, stopped, or was killed
    spent: bool = False  # one of its unshared checkpoints forked a worker
    refused: str | None = None

    def record(self, message: dict[str, Any], link: ServerLink) -> Checkpoint:
        self.deps = self.deps.add(message.get("deps", {}))
        checkpoint = Checkpoint(
            link=link,
            name=str(message.get("name", "?")),
            module=message.get("module"),
            file=message.get("file"),
            position=int(message.get("position", 0)),
            seconds=float(message.get("seconds", 0.0)),
            final=bool(message.get("final", False)),
            deps=self.deps,
            build=self,
            shared=bool(message.get("shared", True)),
            declined={str(k): str(v) for k, v in (message.get("declined") or {}).items()},
            prepared=frozenset(str(p) for p in message.get("prepared") or ()),
        )
        self.checkpoints.append(checkpoint)
        if checkpoint.final:
            self.done = True
        return checkpoint


def best(checkpoints: list[Checkpoint], shared_only: bool = False) -> Checkpoint | None:
    """The good checkpoint with the least start-up left to replay (not counting one that
    needs a refresh); ``shared_only``: among those that may fork more than once (a build's
    base)."""
    good = [
        c
        for c in checkpoints
        if c.stale is None and c.link.alive and not c.refresh and (c.shared or not shared_only)
    ]
    if not good:
        return None
    return max(good, key=lambda c: (c.final, c.seconds, c.position))


def refreshable(checkpoints: list[Checkpoint]) -> Checkpoint | None:
    """The final checkpoint, if an edit left it usable with a refresh."""
    for c in checkpoints:
        if c.final and c.refresh and c.stale is None and c.link.alive:
            return c
    return None
