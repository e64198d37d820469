"""A fast reload: in a fork of the final checkpoint, import again only what an edit can reach.

The final checkpoint ran the whole start-up. For an edit of project modules, a worker forked
from it drops the edited modules, their submodules and every project module that imported one
of them (``reloader.provenance`` records who imported what, each time), and imports them again
in their original order: each reads its file as it is now, as in a cold start. That is only the
same as a cold start if the rest of the program kept nothing of what those imports made, so
first every object they made (the *refreshed* objects) is looked at with whoever else holds it
(``reloader.holdings``):

- nobody, or the import system (``sys.modules``, the parent package's attribute, its locks and
  finder caches): nothing to do;
- plain data (no function, class, module, weak reference or instance of a refreshed class in
  it) that the rest keeps: a value a library computed while they were imported (a model field's
  column, Django's cached field lists, an ``lru_cache`` entry), kept as a cold start computes
  the same. Unless it is one of their own module or class values: the rest copied it (Django's
  settings object copies the settings module's values) and would keep the old one: ruled out;
- a collection that is nobody's attributes (a registry: a list, dict or set): a registration.
  It is undone (the entry removed, or a registered container emptied in place), and once
  imported again the collection must look exactly as before, new objects of the same types
  where the old ones were; entries that came back at the end are moved back where they were.
  Anything else (one more, one less) and the refresh is ruled out;
- anything another project module's import made (its module's globals, an attribute of an
  object it made, a closure: the URLconf holds the admin's views): that module is imported
  again too, with its importers, and the analysis starts over;
- anything else (the start-up's or a library's own objects holding one of theirs, a local
  variable of the paused start-up, a weak reference taken by other code, a reference only C
  code holds): ruled out (``Declined``, with the path that ruled it out). The worker says so
  and the supervisor forks the next one from an earlier checkpoint.

Their old classes are detached from their bases before the new code runs, so that a base's
``__subclasses__()`` lists only the new ones; a package's attribute for an old module is
removed, so that ``from package import module`` imports the new one.

What this cannot see: an atomic value (a string, a number) that their import appended to a
list of the rest, and a value of the rest that their import set only when it was not set yet.
"""

from __future__ import annotations

import collections
import gc
import importlib
import linecache
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .holdings import ATOMIC, Declined, Plan, Widen, analyse, clear_frames, describe
from .provenance import STAGE, Provenance

__all__ = ["Declined", "Result", "modules_to_refresh", "prepare", "refresh"]

MAX_MODULES = 400  # more than this: a checkpoint replays it as fast, and surely
MAX_WIDENINGS = 4  # modules outside added because they hold what the others made
WORTH = 0.5  # a refresh whose imports take more than this share of a replay is not tried


@dataclass
class Result:
    modules: list[str]  # imported again, in order
    seconds: float
    undone: int  # registrations undone and made again


def modules_to_refresh(provenance: Provenance, paths: Iterable[str]) -> list[str]:
    """The project modules to import again for these changed files, in start-up order: the
    modules of the files, their loaded submodules, and every module that imported one of them
    (transitively). Raises ``Declined`` for a file no module of the start-up was loaded from."""
    by_file = {r.file: r.name for r in provenance.modules.values() if r.file}
    todo = []
    for path in paths:
        name = by_file.get(path)
        if name is None:
            raise Declined(f"{path} is no module the start-up imported")
        todo.append(name)
    return _closure(provenance, todo)


def _closure(provenance: Provenance, todo: list[str]) -> list[str]:
    """These modules, their loaded submodules and their importers, in start-up order."""
    todo = list(todo)
    chosen: set[str] = set()
    importers: dict[str, set[str]] = collections.defaultdict(set)
    for record in provenance.modules.values():
        for importer in record.importers:
            importers[record.name].add(importer)
    while todo:
        name = todo.pop()
        if name in chosen or name == STAGE:
            continue
        chosen.add(name)
        todo += importers.get(name, ())
        prefix = name + "."
        todo += [n for n in provenance.modules if n.startswith(prefix)]
    ordered = sorted(chosen, key=lambda n: provenance.modules[n].position)
    if len(ordered) > MAX_MODULES:
        raise Declined(f"{len(ordered)} modules would be imported again")
    return ordered


def _within(provenance: Provenance, names: list[str], budget: float) -> None:
    """Rule a refresh out before its analysis when importing those modules again would take
    about as long as replaying the start-up from the checkpoint the supervisor would use
    (``budget`` seconds): a models module, imported by most of the project."""
    cost = sum(provenance.modules[n].seconds for n in names)
    if cost > budget * WORTH:
        raise Declined(
            f"importing {len(names)} modules again would take about {cost:.2f}s, and the start-up"
            f" from a checkpoint {budget:.2f}s"
        )


def prepare(provenance: Provenance, paths: Iterable[str]) -> Plan | Declined:
    """The analysis of a refresh for these files, done ahead (a builder does it for the files
    edited lately before it pauses as the final checkpoint, so that its workers only import):
    a plan, or why there is none."""
    try:
        names = modules_to_refresh(provenance, paths)
        owners: dict[int, str] = {}
        for _ in range(MAX_WIDENINGS):
            try:
                return analyse(provenance, names, owners)
            except Widen as widen:
                # A module outside holds what they made (the URLconf holds an admin's views):
                # importing it again too makes what it holds anew.
                clear_frames(widen)
                names = _closure(provenance, [*names, widen.module])
        raise Declined(f"{names[0]} and {len(names) - 1} more would have to be imported again")
    except Declined as exc:
        # Kept without its traceback: its frames would hold the analysis's lists.
        clear_frames(exc)
        return Declined(str(exc))


def refresh(
    provenance: Provenance,
    paths: Iterable[str],
    prepared: dict[frozenset[str], Any] | None = None,
    budget: float | None = None,
) -> Result:
    """Import again what these edits reach (see the module docstring), or raise ``Declined``
    before anything changed. An exception of the program's own import propagates: the worker
    fails as a cold one would. ``prepared``: plans made ahead, by the files they are for."""
    started = time.monotonic()
    paths = list(paths)
    plan = (prepared or {}).get(frozenset(paths))
    if plan is None:
        if budget is not None:
            _within(provenance, modules_to_refresh(provenance, paths), budget)
        plan = prepare(provenance, paths)
    if isinstance(plan, Declined):
        raise plan
    names = plan.names
    shapes = _undo(plan)
    # Their old classes go: their bases' ``__subclasses__()`` must not list them while the new
    # code imports (nor after).
    _detach([o for o in plan.objects if isinstance(o, type)])
    gc.freeze()  # what exists now is old: the imports' objects are the young ones
    for name in names:
        old = sys.modules.pop(name, None)
        linecache.cache.pop(provenance.modules[name].file or "", None)
        # ``from package import module`` takes the package's attribute when it has one: the
        # old module must not be found there.
        parent, _, last = name.rpartition(".")
        package = sys.modules.get(parent) if parent else None
        if old is not None and package is not None and getattr(package, last, None) is old:
            delattr(package, last)
    importlib.invalidate_caches()
    for name in names:
        if name not in sys.modules:
            importlib.import_module(name)
    new = {id(o): o for o in gc.get_objects()}
    _verify(plan, shapes, new)
    return Result(names, round(time.monotonic() - started, 4), len(plan.remove) + len(plan.empty))


# ---------------------------------------------------------------------- undo and verify
_Shape = list[Any]


def _undo(plan: Plan) -> dict[int, tuple[Any, _Shape]]:
    """Undo the registrations; return the shape of every collection touched, as it was."""
    shapes: dict[int, tuple[Any, _Shape]] = {}
    for holder, _ in plan.remove:
        shapes.setdefault(id(holder), (holder, _shape(holder, plan.ids)))
    for _, container in plan.empty:
        shapes.setdefault(id(container), (container, _shape(container, plan.ids)))
    for holder, obj in plan.remove:
        if isinstance(holder, dict):
            for key in [k for k, v in holder.items() if v is obj or k is obj]:
                del holder[key]
        elif isinstance(holder, set):
            holder.discard(obj)
        else:
            holder[:] = [x for x in holder if x is not obj]
    for _, container in plan.empty:
        container.clear()
    return shapes


def _shape(collection: Any, ids: dict[int, int], new: dict[int, Any] | None = None) -> _Shape:
    """What a collection holds, in order: refreshed (or, after, newly made) objects by type
    name, the others by identity, atomic values by value."""

    def kind(x: Any) -> Any:
        if new is not None and id(x) in new:
            return ("made", type(x).__qualname__)
        if new is None and id(x) in ids:
            return ("made", type(x).__qualname__)
        if isinstance(x, ATOMIC):
            return ("value", type(x).__name__, x)
        return ("same", id(x))

    if isinstance(collection, dict):
        return [(kind(k), kind(v)) for k, v in collection.items()]
    if isinstance(collection, (set, frozenset)):
        return sorted(repr(kind(x)) for x in collection)
    return [kind(x) for x in collection]


def _verify(plan: Plan, shapes: dict[int, tuple[Any, _Shape]], new: dict[int, Any]) -> None:
    for collection, before in shapes.values():
        after = _shape(collection, plan.ids, new)
        if after != before and _put_back(collection, before, after):
            after = _shape(collection, plan.ids, new)
        if after != before:
            raise Declined(
                f"importing again did not register the same in {describe(collection)} "
                f"({_difference(before, after)})"
            )


def _made(kind: Any) -> bool:
    if isinstance(kind, tuple) and len(kind) == 2 and isinstance(kind[0], tuple):
        return _made(kind[0]) or _made(kind[1])  # a dict entry: its key or its value
    return isinstance(kind, tuple) and bool(kind) and kind[0] == "made"


def _put_back(collection: Any, before: _Shape, after: _Shape) -> bool:
    """Registrations made again land at the end of a list or dict, after what modules
    imported later registered there: move them back to where a cold start makes them. Only
    when the rest is unchanged and the same number of entries of the same types came back."""
    if not isinstance(collection, (list, dict)):
        return False
    if [k for k in before if not _made(k)] != [k for k in after if not _made(k)]:
        return False
    if [k for k in before if _made(k)] != [k for k in after if _made(k)]:
        return False
    entries = list(collection.items()) if isinstance(collection, dict) else list(collection)
    kept = iter([e for e, k in zip(entries, after, strict=True) if not _made(k)])
    made = iter([e for e, k in zip(entries, after, strict=True) if _made(k)])
    ordered = [next(made) if _made(k) else next(kept) for k in before]
    if isinstance(collection, dict):
        collection.clear()
        collection.update(ordered)
    else:
        collection[:] = ordered
    return True


def _difference(before: _Shape, after: _Shape) -> str:
    for i, (old, now) in enumerate(zip(before, after, strict=False)):
        if old != now:
            return f"entry {i}: {_kind_text(old)} before, {_kind_text(now)} now"
    return f"{len(before)} entries before, {len(after)} now"


def _kind_text(kind: Any) -> str:
    if isinstance(kind, tuple) and len(kind) == 2 and isinstance(kind[0], tuple):
        return f"{_kind_text(kind[0])}: {_kind_text(kind[1])}"
    if isinstance(kind, tuple) and kind and kind[0] == "made":
        return f"a new {kind[1]}"
    if isinstance(kind, tuple) and kind and kind[0] == "value":
        return repr(kind[2])[:60]
    return "an object kept from before"


def _detach(old_types: list[type]) -> None:
    """The old classes leave their bases' ``__subclasses__()``: each is rebased on an empty
    class of its own kind (a class's bases can only be swapped for ones of the same layout),
    which nothing enumerates."""
    for klass in old_types:
        solid = klass.__base__
        while solid is not None and solid.__flags__ & _HEAPTYPE:
            solid = solid.__base__
        if solid is None or klass.__bases__ == (solid,):
            continue
        try:
            klass.__bases__ = (_detached(solid),)
        except TypeError:
            continue  # a layout of its own (__slots__): it stays where it is


_HEAPTYPE = 1 << 9
_DETACHED: dict[type, type] = {}


def _detached(solid: type) -> type:
    if solid not in _DETACHED:
        _DETACHED[solid] = type(f"detached {solid.__name__}", (solid,), {})
    return _DETACHED[solid]
