"""Who references what the project's imports made: found once, ahead, for every module.

An analysis (``reloader.holdings``) asks who holds the objects that importing some modules again
would replace. Finding out is a pass over every object the collector tracks (700,000 on NetBox),
and an analysis makes two while the developer waits for the reload. The final checkpoint finds
out once, for every project module at the same time, before it pauses (``build``: 4-7 s on
NetBox), and its forks look the answers up here:

- level 1: for every object a project module's import made that something outside that module
  references, or a weak reference to one taken outside, every object that references it, but
  those its own module's import made (whenever it is imported again, they are too);
- level 2: for every dict (but a module's globals) and abstract base class data among those
  referrers, every object that references it (an analysis tells an object's attributes from a
  registry, and a cache, by them).

An entry is used only where it explains every reference: the analysis counts the references an
object has from outside and those its entry accounts for, and looks up the slow way every object
referenced more than its entry explains (something made since ``build``, in the fork, or a
reference only C code holds). The index's own lists are not the program's: ``skip`` says which
they are, and ``held_by_index`` how many of them hold an object.

During an analysis, ``find`` answers from the index (``use_index``) or, without one or for what
it does not explain, by one pass (``gc.get_referrers`` for a few objects, batches of
``gc.get_referents`` for many); the analysis's own containers are registered (``register``) the
moment they exist, so that no analysis takes them for the program's holders.

Objects are keyed by ``address``, not ``id``: see there why.
"""

from __future__ import annotations

import gc
import itertools
import operator
import os
import sys
import time
import types
import weakref
from collections.abc import Iterable, Iterator
from typing import Any

from .provenance import Provenance

BATCH = 4096  # objects whose referents are asked for at once
PART = 64  # a batch that references a wanted object is looked at in parts of this many
CHUNK = 16384  # objects whose references are laid out at once when the index is built
FEW = 40  # up to this many objects, the collector's own search for their referrers is faster

# The analysis's own code: its frames are never the program's holders.
OUR_FILES = {
    os.path.join(os.path.dirname(__file__), f)
    for f in ("holdings.py", "refresh.py", "referrers.py")
}


# ``id()`` raises an audit event (``builtins.id``): in a builder, and in the checkpoints and workers
# forked from it, each call runs the builder's audit hook, Python code (``reloader.builder``),
# which makes it 4x slower, and these passes make millions of calls. ``object.__hash__`` is the
# object's address too (rotated by 4 bits: one number per object, as ``id``), with no event.
address = object.__hash__


def scan(everything: list[Any], wanted: set[int]) -> list[Any]:
    """The objects among ``everything`` that reference one whose ``address`` is in ``wanted``:
    the collector is asked for the referents of thousands of objects at a time; a batch that
    references one is looked at in parts, and a part that does, object by object."""
    found: list[Any] = []
    referents = gc.get_referents
    disjoint = wanted.isdisjoint
    for lo in range(0, len(everything), BATCH):
        batch = everything[lo : lo + BATCH]
        if disjoint(map(address, referents(*batch))):
            continue
        for start in range(0, len(batch), PART):
            part = batch[start : start + PART]
            if disjoint(map(address, referents(*part))):
                continue
            found += [o for o in part if not disjoint(map(address, referents(o)))]
    return found


def tracked() -> list[Any]:
    """Every object the collector tracks, frozen ones included (they are left frozen)."""
    gc.unfreeze()
    try:
        return gc.get_objects()
    finally:
        gc.freeze()


class Index:
    """The referrers of the project's objects (see the module docstring), by ``address``."""

    def __init__(self) -> None:
        self.first: dict[int, list[Any]] = {}  # object -> referrers outside its own module
        self.second: dict[int, list[Any]] = {}  # dict or abc data -> all its referrers
        self.held: dict[int, int] = {}  # object -> how many of the index's lists hold it
        self.own: set[int] = set()  # the index's containers
        self.seconds = 0.0

    def skip(self, holder: Any) -> bool:
        return address(holder) in self.own

    def held_by_index(self, obj: Any) -> int:
        return self.held.get(address(obj), 0)

    def lookup(self, objs: Iterable[Any], level: int) -> tuple[dict[int, list[Any]], list[Any]]:
        """(id -> referrers) for the objects the index knows at that level, and the others."""
        table = self.first if level == 1 else self.second
        known: dict[int, list[Any]] = {}
        unknown: list[Any] = []
        for obj in objs:
            entry = table.get(address(obj))
            if entry is None:
                unknown.append(obj)
            else:
                known[id(obj)] = entry
        return known, unknown

    def __len__(self) -> int:
        return len(self.first) + len(self.second)


def references(holder: Any, obj: Any) -> int:
    """How many references ``holder`` has to ``obj``."""
    count = 0
    for r in gc.get_referents(holder):
        if r is obj:
            count += 1
    return count


def build(provenance: Provenance) -> Index:
    """The index for every project module of this start-up (in the final checkpoint, once the
    start-up is over). The objects are taken in groups, those each module's import made and the
    others, thousands at a time: the collector lists what a batch references, in one call; the
    objects among them that another module made (or, for the others, that any did) are the
    batch's wanted ones, and only a batch that has some is looked at in parts, then object by
    object (references across modules are few). The second level is one ``scan``."""
    started = time.monotonic()
    index = Index()
    index.own.update(map(address, (index.first, index.second, index.held)))
    records = list(provenance.modules.values())
    owner: dict[int, int] = {}  # object -> the number of the record that made it
    for number, record in enumerate(records):
        owner.update(zip(map(address, record.owned), itertools.repeat(number)))
    everything = tracked()
    skipped = {address(r.owned) for r in records}
    skipped.update(map(address, (records, index.own, everything)))
    ours = map(skipped.__contains__, map(address, everything))
    heap = list(itertools.compress(everything, map(operator.not_, ours)))
    del everything
    weak = _outside_weak_references(heap, owner)
    made = map(owner.__contains__, map(address, heap))
    groups = [(r.owned, n) for n, r in enumerate(records)]
    groups.append((list(itertools.compress(heap, map(operator.not_, made))), -1))
    containers: set[int] = set()
    for objects, number in groups:
        for holder, target in _across(objects, number, owner, weak):
            if _ours(holder):
                continue
            _add(index, index.first, target, holder)
            if is_container(holder):
                containers.add(address(holder))
    del groups
    if containers:
        for holder in scan(heap, containers):
            if _ours(holder):
                continue
            for target in map(address, gc.get_referents(holder)):
                if target in containers:
                    _add(index, index.second, target, holder)
    del heap
    index.seconds = round(time.monotonic() - started, 3)
    gc.freeze()
    return index


def _across(
    objects: list[Any], number: int, owner: dict[int, int], weak: set[int]
) -> Iterator[tuple[Any, int]]:
    """(referrer, referent's address) for every reference of ``objects`` (those record
    ``number`` holds, or -1: no module made them) to an object another module made, or to a
    weak reference in ``weak``. A referrer's pairs come one after the other."""
    referents = gc.get_referents
    this = itertools.repeat(number)
    for lo in range(0, len(objects), CHUNK):
        batch = objects[lo : lo + CHUNK]
        targets = list(map(address, referents(*batch)))
        # Made by another module: their maker is not this one (and no maker counts as this one).
        makers = map(owner.get, targets, this)
        wanted = set(itertools.compress(targets, map(operator.ne, makers, this)))
        if weak:
            wanted.update(weak.intersection(targets))
        if not wanted:
            continue
        disjoint = wanted.isdisjoint
        for start in range(0, len(batch), PART):
            part = batch[start : start + PART]
            if disjoint(map(address, referents(*part))):
                continue
            for holder in part:
                held = list(map(address, referents(holder)))
                if disjoint(held):
                    continue
                seen: set[int] = set()
                for target in held:
                    if target in wanted and target not in seen:
                        seen.add(target)
                        yield holder, target


def _outside_weak_references(heap: list[Any], owner: dict[int, int]) -> set[int]:
    """The weak references to objects the modules' imports made that were taken outside them
    (proxies, which cannot be followed, are left to the analysis's own search)."""
    kinds: set[type] = set()
    pending: list[type] = [weakref.ref]
    while pending:
        kind = pending.pop()
        kinds.add(kind)
        pending += type.__subclasses__(kind)
    found: set[int] = set()
    for ref in itertools.compress(heap, map(kinds.__contains__, map(type, heap))):
        target = ref()
        if target is not None and address(target) in owner and address(ref) not in owner:
            found.add(address(ref))
    return found


def _add(index: Index, table: dict[int, list[Any]], target: int, holder: Any) -> None:
    entry = table.get(target)
    if entry is None:
        entry = table[target] = []
        index.own.add(address(entry))
    elif entry[-1] is holder:
        return  # one more reference from the same holder (its pairs come together)
    entry.append(holder)
    key = address(holder)
    index.held[key] = index.held.get(key, 0) + 1


def _ours(holder: Any) -> bool:
    """A frame of the analysis's own code."""
    return isinstance(holder, types.FrameType) and holder.f_code.co_filename in OUR_FILES


def module_of_dict(d: Any) -> types.ModuleType | None:
    """The module whose globals ``d`` is, or None."""
    if type(d) is not dict or not isinstance(d.get("__name__"), str):
        return None
    module = sys.modules.get(d["__name__"])
    return module if module is not None and module.__dict__ is d else None


def is_abc_data(obj: Any) -> bool:
    return type(obj).__name__ == "_abc_data" and type(obj).__module__ == "_abc"


def is_container(obj: Any) -> bool:
    """A holder whose own holders (level 2) an analysis asks about: a dict (but a module's
    globals, which tell what they are by themselves) or an abstract base class's data."""
    return (type(obj) is dict and module_of_dict(obj) is None) or is_abc_data(obj)


# ---------------------------------------------------------------------- during an analysis
# The containers of ours that hold the program's objects (plans made ahead, the lists of an
# analysis): never taken for the program's own holders, and their references are counted out.
OURS: list[Any] = []
OUR_IDS: set[int] = set()
_INDEX: Index | None = None


def register(*containers: Any) -> None:
    for container in containers:
        if id(container) not in OUR_IDS:
            OUR_IDS.add(id(container))
            OURS.append(container)


def use_index(index: Index | None) -> None:
    """Look referrers up in ``index`` (built in this process or the one it was forked from)
    rather than in a pass over every object."""
    global _INDEX
    _INDEX = index


def held_by_index(obj: Any) -> int:
    """How many of the index's lists hold ``obj`` (references that are not the program's)."""
    return _INDEX.held_by_index(obj) if _INDEX is not None else 0


def holds(sequence: Iterable[Any], obj: Any) -> bool:
    """``obj`` is in ``sequence`` (by identity). No generator expression: its closure cell
    would be one more holder of the program's objects for the next analysis to find."""
    for x in sequence:  # noqa: SIM110 - see above
        if x is obj:
            return True
    return False


def outside(objs: list[Any], owners: dict[int, str]) -> list[int]:
    """For each of ``objs`` (a list of ours), how many references the program holds to it: its
    reference count, less the argument of getrefcount, the references from our containers and
    the index's, and its record's (``owners``: the objects records hold, by ``address``). Only
    with an index (it needs the counts); else an empty list."""
    if _INDEX is None:
        return []
    wanted = set(map(address, objs))
    from_ours: dict[int, int] = {}
    for container in OURS:
        for key in map(address, gc.get_referents(container)):
            if key in wanted:
                from_ours[key] = from_ours.get(key, 0) + 1
    counts = []
    for i in range(len(objs)):
        count = sys.getrefcount(objs[i]) - 1 - from_ours.get(address(objs[i]), 0)
        count -= _INDEX.held_by_index(objs[i]) + (1 if address(objs[i]) in owners else 0)
        counts.append(count)
    return counts


def find(
    objs: list[Any],
    counts: list[int],
    ours: set[int],
    ids: dict[int, int],
    theirs_too: bool = False,
) -> dict[int, list[Any]]:
    """id(obj) -> the objects outside the refresh (``theirs_too``: refreshed ones too) and
    outside this analysis that reference it. From the index where there is one (level 1 for
    the objects they made and the weak references to them, 2 for the holders' dicts), for each
    object whose entry explains all of its ``counts`` references from outside; the others by a
    pass over every object the collector tracks."""
    if _INDEX is None:
        return _passed(objs, ours, ids, theirs_too)
    known, unknown = _INDEX.lookup(objs, 2 if theirs_too else 1)
    register(unknown)
    found: dict[int, list[Any]] = {}
    register(found)
    for i in range(len(objs)):
        entry = known.get(id(objs[i]))
        if entry is None:
            continue
        holders: list[Any] = []
        register(holders)
        explained = 0
        for holder in entry:
            if _skipped(holder, ours, ids, theirs_too):
                continue
            holders.append(holder)
            explained += references(holder, objs[i])
        if explained < counts[i]:
            unknown.append(objs[i])  # held by more than the index knows: the slow way
        elif holders:
            found[id(objs[i])] = holders
    found.update(_passed(unknown, ours, ids, theirs_too))
    return found


def _skipped(holder: Any, ours: set[int], ids: dict[int, int], theirs_too: bool) -> bool:
    if id(holder) in ours or id(holder) in OUR_IDS:
        return True
    if _INDEX is not None and _INDEX.skip(holder):  # the index's own lists
        return True
    if _ours(holder):
        return True  # an analysis's own frame (this one, or one that raised)
    return id(holder) in ids and not theirs_too


def _passed(
    objs: list[Any], ours: set[int], ids: dict[int, int], theirs_too: bool
) -> dict[int, list[Any]]:
    """``find`` by one pass over every object the collector tracks."""
    if not objs:
        return {}
    wanted = set(map(address, objs))
    if len(objs) <= FEW:
        gc.unfreeze()
        try:
            referrers = gc.get_referrers(*objs)
        finally:
            gc.freeze()
    else:
        referrers = scan(tracked(), wanted)
    found: dict[int, list[Any]] = {}
    register(referrers, found)
    for holder in referrers:
        if holder is objs or _skipped(holder, ours, ids, theirs_too):
            continue
        for r in gc.get_referents(holder):
            if address(r) not in wanted:
                continue
            holders = found.get(id(r))
            if holders is None:
                holders = found[id(r)] = []
                register(holders)  # ours from its first moment: never taken for a registry
            if not holds(holders, holder):
                holders.append(holder)
    return found


def weak_holders(objects: list[Any], ids: dict[int, int]) -> list[Any]:
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
