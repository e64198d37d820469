"""What each project module's import did, recorded by a builder for fast reloads.

A builder (``reloader.builder``) runs the program's start-up; this records, for every module of
the project (a file outside the standard library and site-packages), what ``reloader.refresh``
needs to import it again in a fork of the final checkpoint without a cold start:

- the order in which the imports began, and each module's file;
- its importers: every project module whose code was running when an ``import`` statement or
  ``importlib.import_module`` named it (each time, not only the first: ``from views import X``
  in a module imported later holds ``X`` as much as the first importer does). ``STAGE`` stands
  for the start-up's own code (``django.setup()``), which runs outside any project module;
- what its import made: every object the garbage collector tracks that was created while the
  module's own code ran (its nested imports' objects are theirs). Between two imports the
  collector is frozen (``gc.freeze()``, constant time), so the objects made since the last
  boundary are exactly the young ones (``gc.get_objects()`` lists no frozen object).

The records hold their objects: an object made by a module's import stays alive as long as the
build does (and in the checkpoints and workers forked from it: letting them go would write to
every object, and copy the whole heap into each fork), and is never mistaken for a later one at
the same address.
"""

from __future__ import annotations

import builtins
import contextlib
import gc
import importlib._bootstrap as _bootstrap
import time
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

STAGE = ""  # the importer that is no module: the start-up's own code


@dataclass(eq=False)
class ModuleRecord:
    name: str
    file: str | None
    position: int
    importers: set[str] = field(default_factory=set)
    owned: list[Any] = field(default_factory=list)
    seconds: float = 0.0  # its own code's time (not its nested imports')


class Provenance:
    """The records of one start-up (see the module docstring)."""

    def __init__(self) -> None:
        self.modules: dict[str, ModuleRecord] = {}
        self.running: list[str | None] = []  # executing imports: a project module's name, or None
        self.recording = False
        self.since = time.perf_counter()  # the last boundary
        self._original_import: Callable[..., Any] = builtins.__import__
        self._original_gcd: Callable[..., Any] = _bootstrap._gcd_import  # type: ignore[attr-defined]

    # -------------------------------------------------------------- hooks
    def install(self) -> None:
        self.recording = True
        gc.freeze()
        builtins.__import__ = self._import  # type: ignore[assignment]
        _bootstrap._gcd_import = self._gcd_import  # type: ignore[attr-defined]

    def uninstall(self) -> None:
        """Stop recording (the final checkpoint, or a worker forked from any checkpoint)."""
        if self.recording:
            self.boundary()
        self.recording = False
        if builtins.__import__ == self._import:
            builtins.__import__ = self._original_import
        if _bootstrap._gcd_import == self._gcd_import:  # type: ignore[attr-defined]
            _bootstrap._gcd_import = self._original_gcd  # type: ignore[attr-defined]

    # -------------------------------------------------------------- boundaries
    def owner(self) -> str | None:
        """The project module whose own code runs now, or None (a library's, or the
        start-up's)."""
        return self.running[-1] if self.running else None

    def boundary(self) -> None:
        """The code running changes (an import begins or ends): what was made since the last
        boundary belongs to the module whose code ran."""
        if not self.recording:
            return
        owner = self.owner()
        now = time.perf_counter()
        if owner is not None:
            record = self.modules.get(owner)
            if record is not None:
                made = gc.get_objects()  # before anything of ours exists
                record.owned += [o for o in made if not _transient(o)]
                record.seconds += now - self.since
        gc.freeze()
        self.since = time.perf_counter()

    @contextlib.contextmanager
    def aside(self) -> Iterator[None]:
        """Run the recorder's (or the builder's) own code: what it makes belongs to nobody."""
        self.boundary()
        try:
            yield
        finally:
            if self.recording:
                gc.freeze()
            self.since = time.perf_counter()  # the builder's time is nobody's either

    def enter(self, name: str, file: str | None, project: bool) -> None:
        """An import begins (called by the builder's loader hook)."""
        if not self.recording:
            return
        self.boundary()
        if project and name not in self.modules:
            self.modules[name] = ModuleRecord(name, file, len(self.modules), {self.importer()})
            gc.freeze()  # the record is ours, not the importer's
        self.running.append(name if project else None)

    def leave(self) -> None:
        if not self.recording:
            return
        self.boundary()
        if self.running:
            self.running.pop()

    def importer(self) -> str:
        """The innermost project module whose import is running, or ``STAGE``."""
        for name in reversed(self.running):
            if name is not None:
                return name
        return STAGE

    # -------------------------------------------------------------- edges
    def note(self, name: str) -> None:
        record = self.modules.get(name)
        if record is not None:
            record.importers.add(self.importer())

    def _import(
        self,
        name: str,
        globals: dict[str, Any] | None = None,
        locals: Any = None,
        fromlist: Any = (),
        level: int = 0,
    ) -> Any:
        module = self._original_import(name, globals, locals, fromlist, level)
        if self.recording:
            try:
                full = _absolute(name, globals, level)
            except (ImportError, ValueError, KeyError, TypeError):
                full = None
            if full:
                parts = full.split(".")
                for i in range(1, len(parts) + 1):
                    self.note(".".join(parts[:i]))
                for item in fromlist or ():
                    if isinstance(item, str):
                        self.note(f"{full}.{item}")
        return module

    def _gcd_import(self, name: str, package: str | None = None, level: int = 0) -> Any:
        module = self._original_gcd(name, package, level)
        if self.recording and isinstance(module, types.ModuleType):
            self.note(module.__name__)
        return module


def _absolute(name: str, globals: dict[str, Any] | None, level: int) -> str:
    if level == 0:
        return name
    package = _bootstrap._calc___package__(globals or {})  # type: ignore[attr-defined]
    return str(_bootstrap._resolve_name(name, package, level))  # type: ignore[attr-defined]


def _transient(obj: Any) -> bool:
    """Objects that are the interpreter's at a boundary, not the module's: the frames of the
    import machinery running now."""
    return isinstance(obj, types.FrameType)
