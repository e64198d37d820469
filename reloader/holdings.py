"""Who holds what the imports of some project modules made: the analysis of a refresh.

``reloader.refresh`` imports again, in a fork of the final checkpoint, the modules an edit
reaches. Before anything is dropped, this looks at every object their imports made
(``reloader.provenance`` recorded them) and at who else references it: its reference count,
less the references among those objects and ours, says whether anyone does;
``reloader.referrers`` finds who (in the index the last checkpoint made, else by a pass over
every object). What each holder means is decided in ``classify`` (the rules are in
``reloader.refresh``'s docstring): nothing to do, a registration to undo and see made again, a
module to import again too (``Widen``), or ``Declined``.

The analysis's own containers are registered (``referrers.register``) the moment they exist: a
later analysis in the same process must neither take them for the program's holders nor miss
the references they hold. No closure captures the program's objects here, for the same reason.
"""

from __future__ import annotations

import abc
import collections
import contextlib
import functools
import gc
import importlib.machinery
import itertools
import os
import sys
import types
import weakref
import zipimport
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .modules import is_library_file
from .provenance import Provenance
from .referrers import (
    OURS,
    address,
    find,
    held_by_index,
    holds,
    is_abc_data,
    is_container,
    module_of_dict,
    outside,
    register,
    weak_holders,
)

MAX_HOLDERS = 2000  # referenced from outside by more objects than this: not worth the analysis
PURE_LIMIT = 20000  # objects looked at to tell plain data from code

ATOMIC = (str, bytes, int, float, complex, bool, type(None), type(Ellipsis), types.CodeType)
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


class Declined(Exception):
    """The fast reload would not be the same as a cold start: why (one line)."""


class Widen(Exception):
    """What they made is held by a project module outside: import it again too."""

    def __init__(self, module: str) -> None:
        super().__init__(module)
        self.module = module


@dataclass
class Plan:
    names: list[str]
    objects: list[Any]  # the refreshed objects
    ids: dict[int, int]  # id -> index in objects
    remove: list[tuple[Any, Any]] = field(default_factory=list)  # (collection, object)
    empty: list[tuple[Any, Any]] = field(default_factory=list)  # (holding collection, container)
    files: set[str] = field(default_factory=set)  # of the refreshed modules
    live: set[int] = field(default_factory=set)  # ids of the frames that run (every thread's)
    own: dict[int, str] = field(default_factory=dict)  # their modules' and classes' values
    owners: dict[int, str] = field(default_factory=dict)  # address -> module that made it
    recorded: set[str] = field(default_factory=set)  # the project modules of the start-up


# ---------------------------------------------------------------------- analysis
def analyse(provenance: Provenance, names: list[str], owners: dict[int, str]) -> Plan:
    if not owners:  # by ``address``: no audit event per object (``reloader.referrers``)
        for record in provenance.modules.values():
            owners.update(zip(map(address, record.owned), itertools.repeat(record.name)))
    objects: list[Any] = []
    for name in names:
        objects += provenance.modules[name].owned
    ids = {id(o): i for i, o in enumerate(objects)}
    plan = Plan(names, objects, ids)
    plan.owners = owners
    plan.recorded = set(provenance.modules)
    register(objects, plan.remove, plan.empty)  # and their references are counted as ours
    plan.files = {f for f in (provenance.modules[n].file for n in names) if f}
    plan.own = _own_values(objects, names)
    for top in sys._current_frames().values():
        frame: types.FrameType | None = top
        while frame is not None:
            plan.live.add(id(frame))
            frame = frame.f_back
    internal = _internal_references(objects, ids)
    # A refreshed object is referenced by its module's record and by the argument of
    # getrefcount (``objects`` is one of ours, counted in ``internal``, and so are the index's
    # lists): more means someone else holds it.
    suspects: list[Any] = []
    weak: list[Any] = []
    excesses: list[int] = []
    register(suspects, weak)
    for i in range(len(objects)):
        excess = sys.getrefcount(objects[i]) - 2 - internal[i] - held_by_index(objects[i])
        if excess > 0 and not _expected(objects[i], ids, excess):
            suspects.append(objects[i])
            excesses.append(excess)
    weak += weak_holders(objects, ids)
    if len(suspects) + len(weak) > MAX_HOLDERS:
        raise Declined(f"{len(suspects) + len(weak)} objects they made are held from elsewhere")
    if not suspects and not weak:
        return plan
    ours = {id(r.owned) for r in provenance.modules.values()}
    checked = [*suspects, *weak]
    register(checked)
    holders = find(checked, excesses + outside(weak, plan.owners), ours, ids)
    register(holders, *holders.values())
    # Who holds the holders: to tell an object's attributes from a collection, and a cache.
    containers = _containers(holders)
    second = find(containers, outside(containers, plan.owners), ours, ids, theirs_too=True)
    for suspect in checked:
        found = holders.get(id(suspect), [])
        if not found:
            if holds(weak, suspect) or not _pure(suspect, ids):
                raise Declined(f"{describe(suspect)} is held by code the collector cannot see")
            continue  # plain data in a C-level cache (an lru_cache's entries)
        for holder in found:
            _classify(holder, suspect, plan, second.get(id(holder), []))
    return plan


def _containers(holders: dict[int, list[Any]]) -> list[Any]:
    """The holders whose own holders tell what they are (``referrers.is_container``), once
    each: module globals are classified by themselves, and the index has no entry for them."""
    containers: list[Any] = []
    seen: set[int] = set()
    register(containers)
    for found in holders.values():
        for h in found:
            if is_container(h) and id(h) not in seen:
                seen.add(id(h))
                containers.append(h)
    return containers


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


def clear_frames(exc: BaseException) -> None:
    """An analysis that raised: its frames' variables (cells, lists of the program's objects)
    must not linger, to be taken for holders by the next."""
    tb = exc.__traceback__
    while tb is not None:
        with contextlib.suppress(RuntimeError):  # the frame that caught it still runs
            tb.tb_frame.clear()
        tb = tb.tb_next
    exc.__traceback__ = None


def _internal_references(objects: list[Any], ids: dict[int, int]) -> list[int]:
    """How many references each refreshed object gets from the others (a function of its own:
    no loop variable outlives it to hold an object)."""
    internal = [0] * len(objects)
    for o in [*objects, *OURS]:
        for r in gc.get_referents(o):
            i = ids.get(id(r))
            if i is not None:
                internal[i] += 1
    return internal


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
    if isinstance(obj, ATOMIC):
        return True
    if type(obj) in (tuple, frozenset) and depth < 8:
        return all(_constant(x, depth + 1) for x in obj)
    return False


def _classify(holder: Any, obj: Any, plan: Plan, above: list[Any]) -> None:
    """Decide what to do about ``holder`` holding ``obj`` (``above``: who holds ``holder``)."""
    if holds(_import_tables(), holder) or isinstance(holder, _MACHINERY):
        return  # the import system's own tables and caches
    module = module_of_dict(holder)
    if module is not None:
        keys = [k for k, v in holder.items() if v is obj]
        if isinstance(obj, types.ModuleType) and all(
            obj.__name__ == f"{module.__name__}.{k}" for k in keys
        ):
            return
        _widen(plan, module.__name__)
        raise Declined(f"{module.__name__}.{keys[0] if keys else '?'} holds {describe(obj)}")
    if isinstance(holder, types.FrameType) and _finished_import_frame(holder, plan):
        return
    if is_abc_data(holder):
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
            _widen(plan, plan.owners.get(address(owner if owner is not None else holder)))
            raise Declined(f"{describe(owner or holder)} holds {plan.own[id(obj)]}")
        # Plain data that a computation made while they were imported (a model field's
        # column, a cached list of fields), kept by an object, a cache or a value of the rest.
        return
    if registry:
        entry = (holder, obj)
        register(entry)
        if isinstance(holder, dict) and isinstance(obj, _COLLECTIONS) and obj in holder.values():
            plan.empty.append(entry)
        else:
            plan.remove.append(entry)
        return
    # Held by an object of the rest of the program: made by a project module's import, that
    # module is imported again too; else the refresh is ruled out.
    _widen(plan, plan.owners.get(address(owner if owner is not None else holder)))
    if owner is not None:
        key = next((k for k, v in holder.items() if v is obj), "?")
        raise Declined(f"{describe(owner)}.{key} holds {describe(obj)}")
    if type(holder).__name__ == "_lru_cache_wrapper":
        raise Declined(f"the cache of {_qualname(holder)} holds {describe(obj)}")
    try:
        own = object.__getattribute__(holder, "__dict__") is obj
    except (AttributeError, TypeError):
        own = False
    if own:
        raise Declined(f"the attributes of {describe(holder)} hold what they made")
    raise Declined(f"{describe(holder)} holds {describe(obj)}")


def _widen(plan: Plan, module: str | None) -> None:
    """Import ``module`` again too, if it is a project module the start-up imported (its own
    import made the holder)."""
    if module and module in plan.recorded and module not in plan.names:
        raise Widen(module)


def _library_code(filename: str) -> bool:
    return filename.startswith("<frozen") or is_library_file(filename)


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


def _finished_import_frame(frame: types.FrameType, plan: Plan) -> bool:
    """A frame that finished running, of the import system or of a refreshed module's own
    code: kept alive only because something later captured a frame below it (a traceback, a
    library that keeps ``sys._getframe()`` to resolve names), which reaches it through
    ``f_back``. Nothing reads its local variables."""
    if id(frame) in plan.live:
        return False
    filename = frame.f_code.co_filename
    return filename.startswith("<frozen importlib") or filename in plan.files | _HOOK_FILES


def _attribute_owner(d: dict[Any, Any], above: list[Any]) -> Any:
    """The object (or class) whose attributes ``d`` holds, among those holding it; None for a
    plain dict."""
    for r in above:
        if isinstance(r, type):
            if holds(gc.get_referents(r), d):
                return r
            continue
        try:
            if object.__getattribute__(r, "__dict__") is d:
                return r
        except (AttributeError, TypeError):
            continue
    return None


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


# ---------------------------------------------------------------------- descriptions
def _qualname(obj: Any) -> str:
    wrapped = getattr(obj, "__wrapped__", obj)
    return f"{getattr(wrapped, '__module__', '?')}.{getattr(wrapped, '__qualname__', '?')}"


def _short(obj: Any) -> str:
    if isinstance(obj, ATOMIC):
        return repr(obj)[:40]
    if isinstance(obj, (type, types.FunctionType, types.ModuleType)):
        return describe(obj)
    return type(obj).__qualname__


def describe(obj: Any) -> str:
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
