"""A fast reload: in a fork of the final checkpoint, import again only what an edit can reach.

The final checkpoint ran the whole start-up. For an edit of project modules, a worker forked
from it drops the edited modules and every project module that imported them
(``reloader.provenance`` records who imported what), and imports them again in their original
order: each reads its file as it is now, as in a cold start. That is only the same as a cold
start if nothing else kept what those imports made, so before anything is dropped every object
they made (the *refreshed* objects) is looked at, with the references the rest of the program
holds to it (its reference count, less the references among refreshed objects):

- none, or only ``sys.modules`` and the parent package's attribute for a module: nothing to do;
- plain data (no function, class, module or instance of a refreshed class inside) held by a
  cache (an ``lru_cache``, a ``cached_property``, an attribute whose name says cache, or a
  collection that is one; Django's model options fill theirs while views are imported): kept, a
  cold start computes the same;
- held by a collection the rest of the program made (a registry: a list, dict or set that is
  no object's attributes): a registration. It is undone (the entry removed, or a registered
  container emptied in place), and once imported again the collection must look exactly as
  before, with new objects of the same types where the old ones were (same length, keys in the
  same order); otherwise the edit registers something else, or elsewhere, and a cold start could
  differ;
- anything else (an attribute of another object, a closure, a tuple, a weak reference taken by
  other code, a local variable of the paused start-up, a reference that only C code holds):
  ``Declined``, with the path that ruled it out; the worker comes from an earlier checkpoint.

Imported again, the old classes are detached from their bases, so that a base's
``__subclasses__()`` lists only the new ones.
"""

from __future__ import annotations

import abc
import collections
import contextlib
import functools
import gc
import importlib
import importlib.machinery
import linecache
import os
import sys
import time
import types
import weakref
import zipimport
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .modules import is_library_file
from .provenance import STAGE, Provenance

MAX_MODULES = 400  # more than this: a checkpoint replays it as fast, and surely
MAX_WIDENINGS = 4  # modules outside added because they hold what the others made
MAX_HOLDERS = 2000  # referenced from outside by more objects than this: not worth the analysis
PURE_LIMIT = 20000  # objects looked at to tell plain data from code
FEW = 40  # up to this many objects, the collector's own search for their referrers is faster
BATCH = 4096

_ATOMIC = (str, bytes, int, float, complex, bool, type(None), type(Ellipsis), types.CodeType)
_IDENTITY = (
    types.ModuleType,
    type,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.FrameType,
    types.GeneratorType,
    types.CoroutineType,
    types.AsyncGeneratorType,
    weakref.ref,
    functools.partial,
    property,
    classmethod,
    staticmethod,
)
_MACHINERY = (
    importlib.machinery.ModuleSpec,
    importlib.machinery.SourceFileLoader,
    importlib.machinery.SourcelessFileLoader,
    importlib.machinery.ExtensionFileLoader,
    importlib.machinery.FileFinder,
    zipimport.zipimporter,
)
_COLLECTIONS = (dict, list, set, collections.deque)


# The builder's import hooks run in the import system's frames.
_HOOK_FILES = {os.path.join(os.path.dirname(__file__), f) for f in ("builder.py", "provenance.py")}


# The containers of ours that hold the program's objects (plans made ahead, the lists of an
# analysis): never taken for the program's own holders, and their references are counted out.
_OURS: list[Any] = []
_OUR_IDS: set[int] = set()


def _ours(*containers: Any) -> None:
    for container in containers:
        if id(container) not in _OUR_IDS:
            _OUR_IDS.add(id(container))
            _OURS.append(container)


class Declined(Exception):
    """The fast reload would not be the same as a cold start: why (one line)."""


class _Widen(Exception):
    """What they made is held by a project module outside: import it again too."""

    def __init__(self, module: str) -> None:
        super().__init__(module)
        self.module = module


@dataclass
class Result:
    modules: list[str]  # imported again, in order
    seconds: float
    undone: int  # registrations undone and made again


@dataclass
class _Plan:
    names: list[str]
    objects: list[Any]  # the refreshed objects
    ids: dict[int, int]  # id -> index in objects
    remove: list[tuple[Any, Any]] = field(default_factory=list)  # (collection, object)
    empty: list[tuple[Any, Any]] = field(default_factory=list)  # (holding collection, container)
    files: set[str] = field(default_factory=set)  # of the refreshed modules
    live: set[int] = field(default_factory=set)  # ids of the frames that run (every thread's)
    own: dict[int, str] = field(default_factory=dict)  # their modules' and classes' values
    owners: dict[int, str] = field(default_factory=dict)  # id -> project module that made it
    recorded: set[str] = field(default_factory=set)  # the project modules of the start-up


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


def prepare(provenance: Provenance, paths: Iterable[str]) -> _Plan | Declined:
    """The analysis of a refresh for these files, done ahead (a builder does it for the files
    edited lately before it pauses as the final checkpoint, so that its workers only import):
    a plan, or why there is none."""
    try:
        names = modules_to_refresh(provenance, paths)
        owners: dict[int, str] = {}
        for _ in range(MAX_WIDENINGS):
            try:
                return _analyse(provenance, names, owners)
            except _Widen as widen:
                # A module outside holds what they made (the URLconf holds an admin's views):
                # importing it again too makes what it holds anew.
                _clear_frames(widen)
                names = _closure(provenance, [*names, widen.module])
        raise Declined(f"{names[0]} and {len(names) - 1} more would have to be imported again")
    except Declined as exc:
        # Kept without its traceback: its frames would hold the analysis's lists.
        _clear_frames(exc)
        return Declined(str(exc))


def refresh(
    provenance: Provenance, paths: Iterable[str], prepared: dict[frozenset[str], Any] | None = None
) -> Result:
    """Import again what these edits reach (see the module docstring), or raise ``Declined``
    before anything changed. An exception of the program's own import propagates: the worker
    fails as a cold one would. ``prepared``: plans made ahead, by the files they are for."""
    started = time.monotonic()
    paths = list(paths)
    plan = (prepared or {}).get(frozenset(paths))
    if plan is None:
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


# ---------------------------------------------------------------------- analysis
def _analyse(provenance: Provenance, names: list[str], owners: dict[int, str]) -> _Plan:
    if not owners:
        for record in provenance.modules.values():
            for o in record.owned:
                owners[id(o)] = record.name
    objects: list[Any] = []
    for name in names:
        objects += provenance.modules[name].owned
    ids = {id(o): i for i, o in enumerate(objects)}
    plan = _Plan(names, objects, ids)
    plan.owners = owners
    plan.recorded = set(provenance.modules)
    _ours(objects, plan.remove, plan.empty)  # and their references are counted as ours
    plan.files = {f for f in (provenance.modules[n].file for n in names) if f}
    plan.own = _own_values(objects, names)
    for top in sys._current_frames().values():
        frame: types.FrameType | None = top
        while frame is not None:
            plan.live.add(id(frame))
            frame = frame.f_back
    internal = _internal_references(objects, ids)
    # A refreshed object is referenced by its module's record and by the argument of
    # getrefcount (``objects`` is one of ours, counted in ``internal``): more means someone
    # else holds it.
    suspects: list[Any] = []
    weak: list[Any] = []
    _ours(suspects, weak)
    for i in range(len(objects)):
        excess = sys.getrefcount(objects[i]) - 2 - internal[i]
        if excess > 0 and not _expected(objects[i], ids, excess):
            suspects.append(objects[i])
    weak += _weak_holders(objects, ids)
    if len(suspects) + len(weak) > MAX_HOLDERS:
        raise Declined(f"{len(suspects) + len(weak)} objects they made are held from elsewhere")
    if not suspects and not weak:
        return plan
    ours = {id(r.owned) for r in provenance.modules.values()}
    checked = [*suspects, *weak]
    _ours(checked)
    holders = _referrers(checked, ours, ids)
    _ours(holders, *holders.values())
    # Who holds the holders: to tell an object's attributes from a collection, and a cache.
    containers = [h for hs in holders.values() for h in hs if type(h) is dict or _is_abc_data(h)]
    _ours(containers)
    second = _referrers(containers, ours, ids, theirs_too=True)
    for suspect in checked:
        found = holders.get(id(suspect), [])
        if not found:
            if _holds(weak, suspect) or not _pure(suspect, ids):
                raise Declined(f"{_describe(suspect)} is held by code the collector cannot see")
            continue  # plain data in a C-level cache (an lru_cache's entries)
        for holder in found:
            _classify(holder, suspect, plan, second.get(id(holder), []))
    return plan


def _scan(everything: list[Any], wanted: set[int]) -> list[Any]:
    """The objects among ``everything`` that reference one whose id is in ``wanted``.
    ``gc.get_referrers`` compares every reference with every object asked about; this asks the
    collector for the referents of thousands of objects at a time, and splits only the
    batches that reference one."""
    found: list[Any] = []
    pending = [
        (start, min(start + BATCH, len(everything))) for start in range(0, len(everything), BATCH)
    ]
    while pending:
        lo, hi = pending.pop()
        if wanted.isdisjoint(map(id, gc.get_referents(*everything[lo:hi]))):
            continue
        if hi - lo <= 8:
            found += [
                o for o in everything[lo:hi] if not wanted.isdisjoint(map(id, gc.get_referents(o)))
            ]
        else:
            mid = (lo + hi) // 2
            pending += [(lo, mid), (mid, hi)]
    return found


def _own_values(objects: list[Any], names: list[str]) -> dict[int, str]:
    """The values their modules and classes define (``settings.INSTALLED_APPS``), by id."""
    own: dict[int, str] = {}
    for name in names:
        module = sys.modules.get(name)
        if module is not None:
            for key, value in list(vars(module).items()):
                own.setdefault(id(value), f"{name}.{key}")
    for o in objects:
        if isinstance(o, type):
            for key, value in list(vars(o).items()):
                own.setdefault(id(value), f"{o.__module__}.{o.__qualname__}.{key}")
    return own


def _clear_frames(exc: BaseException) -> None:
    """An analysis that raised: its frames' variables (cells, lists of the program's objects)
    must not linger, to be taken for holders by the next."""
    tb = exc.__traceback__
    while tb is not None:
        with contextlib.suppress(RuntimeError):  # the frame that caught it still runs
            tb.tb_frame.clear()
        tb = tb.tb_next
    exc.__traceback__ = None


def _holds(sequence: Iterable[Any], obj: Any) -> bool:
    """``obj`` is in ``sequence`` (by identity). No generator expression: its closure cell
    would be one more holder of the program's objects for the next analysis to find."""
    for x in sequence:  # noqa: SIM110 - see above
        if x is obj:
            return True
    return False


def _internal_references(objects: list[Any], ids: dict[int, int]) -> list[int]:
    """How many references each refreshed object gets from the others (a function of its own:
    no loop variable outlives it to hold an object)."""
    internal = [0] * len(objects)
    for o in [*objects, *_OURS]:
        for r in gc.get_referents(o):
            i = ids.get(id(r))
            if i is not None:
                internal[i] += 1
    return internal


def _referrers(
    objs: list[Any], ours: set[int], ids: dict[int, int], theirs_too: bool = False
) -> dict[int, list[Any]]:
    """id(obj) -> the objects outside the refresh (``theirs_too``: refreshed ones too) and
    outside this analysis that reference it: one pass over every object the collector
    tracks."""
    if not objs:
        return {}
    wanted = {id(o) for o in objs}
    gc.unfreeze()
    try:
        few = len(objs) <= FEW
        referrers = gc.get_referrers(*objs) if few else _scan(gc.get_objects(), wanted)
    finally:
        gc.freeze()
    found: dict[int, list[Any]] = {}
    _ours(referrers, found)
    for holder in referrers:
        if id(holder) in ours or id(holder) in _OUR_IDS or holder is objs:
            continue
        if isinstance(holder, types.FrameType) and holder.f_code.co_filename == __file__:
            continue  # an analysis's own (this one, or one that raised)
        if id(holder) in ids and not theirs_too:
            continue
        for r in gc.get_referents(holder):
            if id(r) not in wanted:
                continue
            holders = found.get(id(r))
            if holders is None:
                holders = found[id(r)] = []
                _ours(holders)  # ours from its first moment: never taken for a registry
            if not _holds(holders, holder):
                holders.append(holder)
    return found


def _expected(obj: Any, ids: dict[int, int], excess: int) -> bool:
    """References (``excess`` of them from outside) that go with the import system, or that
    nothing can use."""
    if isinstance(obj, types.ModuleType):
        parent, _, last = obj.__name__.rpartition(".")
        expected = 1  # sys.modules
        holder = sys.modules.get(parent) if parent else None
        if holder is not None and id(holder) not in ids and holder.__dict__.get(last) is obj:
            expected += 1
        return excess <= expected
    if isinstance(obj, _MACHINERY) or type(obj).__name__ == "_ModuleLock":
        return True
    if type(obj) is weakref.ref and obj.__callback__ is None:
        target = obj()
        # The one plain weak reference to a class is the one its bases hold
        # (``__subclasses__``), and import locks are the import system's.
        return isinstance(target, type) or type(target).__name__ == "_ModuleLock"
    if type(obj) is dict and obj and all(_subclass_entry(k, v) for k, v in obj.items()):
        return True  # a base's ``__subclasses__`` table, made when it got its first subclass
    if type(obj) is list and _is_search_path(obj):
        return True
    return type(obj) in (tuple, frozenset) and _constant(obj)


def _subclass_entry(key: Any, value: Any) -> bool:
    return type(key) is int and type(value) is weakref.ref and id(value()) == key


def _is_search_path(obj: list[Any]) -> bool:
    if not all(isinstance(p, str) for p in obj):
        return False
    for module in list(sys.modules.values()):
        spec = getattr(module, "__spec__", None)
        if spec is not None and spec.submodule_search_locations is obj:
            return True
    return False


def _constant(obj: Any, depth: int = 0) -> bool:
    if isinstance(obj, _ATOMIC):
        return True
    if type(obj) in (tuple, frozenset) and depth < 8:
        return all(_constant(x, depth + 1) for x in obj)
    return False


def _weak_holders(objects: list[Any], ids: dict[int, int]) -> list[Any]:
    """Weak references to refreshed objects that the rest of the program took."""
    found = []
    for o in objects:
        if not isinstance(o, (type, types.FunctionType)) and not hasattr(type(o), "__weakref__"):
            continue
        try:
            refs = weakref.getweakrefs(o)
        except TypeError:
            continue
        found += [r for r in refs if id(r) not in ids and not _harmless_weakref(r, o)]
    return found


def _harmless_weakref(ref: Any, target: Any) -> bool:
    # A class's plain weak reference is shared by every holder of one (its bases first).
    return type(ref) is weakref.ref and ref.__callback__ is None and isinstance(target, type)


def _classify(holder: Any, obj: Any, plan: _Plan, above: list[Any]) -> None:
    """Decide what to do about ``holder`` holding ``obj`` (``above``: who holds ``holder``)."""
    if _holds(_import_tables(), holder) or isinstance(holder, _MACHINERY):
        return  # the import system's own tables and caches
    module = _module_of_dict(holder)
    if module is not None:
        keys = [k for k, v in holder.items() if v is obj]
        if isinstance(obj, types.ModuleType) and all(
            obj.__name__ == f"{module.__name__}.{k}" for k in keys
        ):
            return
        _widen(plan, module.__name__)
        raise Declined(f"{module.__name__}.{keys[0] if keys else '?'} holds {_describe(obj)}")
    if isinstance(holder, types.FrameType) and _finished_import_frame(holder, plan):
        return
    if _is_abc_data(holder):
        _abstract_base_entry(holder, obj, above)
        return
    owner = _attribute_owner(holder, above) if type(holder) is dict else None
    if owner is not None and id(owner) in plan.ids:
        return  # the attributes of one of theirs (given a dict made before it)
    pure = _pure(obj, plan.ids)
    registry = (
        isinstance(holder, _COLLECTIONS) and owner is None and not _held_as_cache(holder, above)
    )
    if pure and not registry:
        if id(obj) in plan.own:
            # One of their own values (a setting...) that the rest copied: it would keep the
            # old one.
            _widen(plan, plan.owners.get(id(owner if owner is not None else holder)))
            raise Declined(f"{_describe(owner or holder)} holds {plan.own[id(obj)]}")
        # Plain data that a computation made while they were imported (a model field's
        # column, a cached list of fields), kept by an object, a cache or a value of the rest.
        return
    if registry:
        entry = (holder, obj)
        _ours(entry)
        if isinstance(holder, dict) and isinstance(obj, _COLLECTIONS) and obj in holder.values():
            plan.empty.append(entry)
        else:
            plan.remove.append(entry)
        return
    # Held by an object of the rest of the program: made by a project module's import, that
    # module is imported again too; else the refresh is ruled out.
    _widen(plan, plan.owners.get(id(owner if owner is not None else holder)))
    if owner is not None:
        key = next((k for k, v in holder.items() if v is obj), "?")
        raise Declined(f"{_describe(owner)}.{key} holds {_describe(obj)}")
    if type(holder).__name__ == "_lru_cache_wrapper":
        raise Declined(f"the cache of {_qualname(holder)} holds {_describe(obj)}")
    try:
        own = object.__getattribute__(holder, "__dict__") is obj
    except (AttributeError, TypeError):
        own = False
    if own:
        raise Declined(f"the attributes of {_describe(holder)} hold what they made")
    raise Declined(f"{_describe(holder)} holds {_describe(obj)}")


def _widen(plan: _Plan, module: str | None) -> None:
    """Import ``module`` again too, if it is a project module the start-up imported (its own
    import made the holder)."""
    if module and module in plan.recorded and module not in plan.names:
        raise _Widen(module)


def _library_code(filename: str) -> bool:
    return filename.startswith("<frozen") or is_library_file(filename)


def _is_abc_data(obj: Any) -> bool:
    return type(obj).__name__ == "_abc_data" and type(obj).__module__ == "_abc"


def _abstract_base_entry(data: Any, entries: Any, above: list[Any]) -> None:
    """An abstract base class (``abc``) holds weak references to classes of theirs: in the
    caches of ``isinstance()`` (harmless: nothing reaches the old classes any more), or in its
    registry of virtual subclasses (``register()``: their import registered it)."""
    for klass in _all_classes():
        if klass.__dict__.get("_abc_impl") is data:
            registry = abc._get_dump(klass)[0]  # type: ignore[attr-defined]
            if any(ref in registry for ref in entries):
                raise Declined(f"their import registered a class with {_qualname(klass)}")
            return
    raise Declined("an abstract base class that cannot be found holds classes of theirs")


def _all_classes() -> Iterator[type]:
    seen: set[int] = set()
    pending: list[type] = [object]
    while pending:
        klass = pending.pop()
        if id(klass) in seen:
            continue
        seen.add(id(klass))
        yield klass
        try:
            pending += type.__subclasses__(klass)
        except TypeError:
            continue


def _import_tables() -> tuple[Any, ...]:
    bootstrap = sys.modules["importlib._bootstrap"]
    return (
        sys.modules,
        sys.path_importer_cache,
        getattr(bootstrap, "_module_locks", None),
        getattr(bootstrap, "_blocking_on", None),
    )


def _finished_import_frame(frame: types.FrameType, plan: _Plan) -> bool:
    """A frame that finished running, of the import system or of a refreshed module's own
    code: kept alive only because something later captured a frame below it (a traceback, a
    library that keeps ``sys._getframe()`` to resolve names), which reaches it through
    ``f_back``. Nothing reads its local variables."""
    if id(frame) in plan.live:
        return False
    filename = frame.f_code.co_filename
    return filename.startswith("<frozen importlib") or filename in plan.files | _HOOK_FILES


def _module_of_dict(d: Any) -> types.ModuleType | None:
    if type(d) is not dict or not isinstance(d.get("__name__"), str):
        return None
    module = sys.modules.get(d["__name__"])
    return module if module is not None and module.__dict__ is d else None


def _attribute_owner(d: dict[Any, Any], above: list[Any]) -> Any:
    """The object (or class) whose attributes ``d`` holds, among those holding it; None for a
    plain dict."""
    for r in above:
        if isinstance(r, type):
            if _holds(gc.get_referents(r), d):
                return r
            continue
        try:
            if object.__getattribute__(r, "__dict__") is d:
                return r
        except (AttributeError, TypeError):
            continue
    return None


def _cache_attribute(owner: Any, key: Any) -> bool:
    if not isinstance(key, str):
        return False
    if "cache" in key.lower():
        return True
    for klass in type(owner).__mro__:
        descriptor = klass.__dict__.get(key)
        if descriptor is not None:
            return "cached_property" in type(descriptor).__name__
    return False


def _held_as_cache(collection: Any, above: list[Any]) -> bool:
    """A collection that is a cache: held under a name that says so."""
    for r in above:
        if type(r) is dict:
            keys = [k for k, v in r.items() if v is collection]
            if any(isinstance(k, str) and "cache" in k.lower() for k in keys):
                return True
    return False


def _pure(obj: Any, ids: dict[int, int]) -> bool:
    """Plain data: no function, class, module, weak reference or instance of a refreshed
    class among the refreshed objects it holds."""
    seen = {id(obj)}
    pending = [obj]
    while pending:
        if len(seen) > PURE_LIMIT:
            return False
        x = pending.pop()
        if id(type(x)) in ids:
            return False
        if isinstance(x, types.FunctionType) and _library_code(x.__code__.co_filename):
            pass  # a library's closure (Django makes them for field defaults): data
        elif isinstance(x, _IDENTITY):
            return False
        for r in gc.get_referents(x):
            if id(r) in ids and id(r) not in seen:
                seen.add(id(r))
                pending.append(r)
    return True


# ---------------------------------------------------------------------- undo and verify
_Shape = list[Any]


def _undo(plan: _Plan) -> dict[int, tuple[Any, _Shape]]:
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
        if isinstance(x, _ATOMIC):
            return ("value", type(x).__name__, x)
        return ("same", id(x))

    if isinstance(collection, dict):
        return [(kind(k), kind(v)) for k, v in collection.items()]
    if isinstance(collection, (set, frozenset)):
        return sorted(repr(kind(x)) for x in collection)
    return [kind(x) for x in collection]


def _verify(plan: _Plan, shapes: dict[int, tuple[Any, _Shape]], new: dict[int, Any]) -> None:
    for collection, before in shapes.values():
        after = _shape(collection, plan.ids, new)
        if after != before and _put_back(collection, before, after):
            after = _shape(collection, plan.ids, new)
        if after != before:
            raise Declined(
                f"importing again did not register the same in {_describe(collection)} "
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


# ---------------------------------------------------------------------- descriptions
def _qualname(obj: Any) -> str:
    wrapped = getattr(obj, "__wrapped__", obj)
    return f"{getattr(wrapped, '__module__', '?')}.{getattr(wrapped, '__qualname__', '?')}"


def _short(obj: Any) -> str:
    if isinstance(obj, _ATOMIC):
        return repr(obj)[:40]
    if isinstance(obj, (type, types.FunctionType, types.ModuleType)):
        return _describe(obj)
    return type(obj).__qualname__


def _describe(obj: Any) -> str:
    if isinstance(obj, types.ModuleType):
        return f"module {obj.__name__}"
    if isinstance(obj, (type, types.FunctionType)):
        return _qualname(obj)
    if isinstance(obj, _COLLECTIONS):
        return f"a {type(obj).__name__} of {len(obj)}"
    if isinstance(obj, tuple):
        inside = ", ".join(_short(x) for x in obj[:4]) + (", ..." if len(obj) > 4 else "")
        return f"a tuple ({inside})"
    if isinstance(obj, types.FrameType):
        return f"a local variable of {obj.f_code.co_name}() ({obj.f_code.co_filename})"
    return f"a {type(obj).__module__}.{type(obj).__qualname__}"
