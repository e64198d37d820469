"""Checkpoints: a program's start-up, paused where a worker can be forked from it.

A *builder* runs the program's start-up (it is forked from the fork template, or from a
checkpoint to build again what an edit made stale) with three things a worker does not do:

- it records what the start-up read, in order: the file of every module imported, every file
  opened for reading, every directory listed (with the names in it), and sends them with each
  checkpoint;
- before the first import of a project module, at most every ``SPACING`` seconds of start-up (and
  always before the modules the supervisor names as *hot*: those edited lately), and where the
  program calls ``reloader.worker.checkpoint(name)``, it forks a paused copy of itself: a
  *checkpoint*, a fork server (``reloader.forkserver``) that forks workers on request;
- where the program calls ``checkpoint(name, final=True)`` (just before it would serve), it
  becomes that checkpoint itself. A builder never serves.

A worker forked from a checkpoint returns from that point and goes on with the start-up as any
worker does: it replays the rest of the start-up, reading every file as it is now. A state taken
before a module's first import cannot depend on that module, so a checkpoint is good for any
edit of what it did not read (the supervisor keeps track of that: ``starters.checkpoints``).

A checkpoint is not taken (and the builder stops taking any: one line says why) when the
start-up left something a fork must not share: a running thread, an open socket other than the
held ones (a database connection the program did not close), a running event loop, or a random
value drawn at import by a module outside the standard library (each worker would have the
same). Programs close what they can before each checkpoint (``reloader.worker.before_checkpoint``:
Django's connections).
"""

from __future__ import annotations

import contextlib
import gc
import importlib._bootstrap as _bootstrap
import os
import random
import signal
import socket
import stat
import sys
import time
from collections.abc import Callable, Mapping
from importlib.machinery import SourceFileLoader
from types import FrameType
from typing import Any

from . import protocol, referrers, refresh
from .children import set_parent_death_signal
from .forkserver import Forked, ForkServer, refuse_reason
from .modules import is_library_file, stdlib_file
from .provenance import Provenance

SPACING = 0.15  # seconds of start-up between two checkpoints at import boundaries
MAX_CHECKPOINTS = 16
MAX_LISTED_NAMES = 5000
PREPARED = 4  # the files edited last whose refresh the final checkpoint analyses ahead

_builder: Builder | None = None
_before_checkpoint: list[Callable[[], None]] = []
_ignored_draws: list[str] = []


def active() -> bool:
    """Whether this process is a builder (it records, checkpoints, and never serves)."""
    return _builder is not None


def before_checkpoint(callback: Callable[[], None]) -> None:
    """Call ``callback`` in the builder just before each checkpoint is taken (close what a fork
    must not share: database connections...)."""
    _before_checkpoint.append(callback)


def ignore_draws(modules: tuple[str, ...]) -> None:
    """Random values that code of these modules draws are not kept for workers: the program
    drops what holds them before each checkpoint (``before_checkpoint``)."""
    _ignored_draws.extend(modules)


def _drawn_by_ignored() -> bool:
    """Whether the code that asked for random bytes (the first caller outside the standard
    library) belongs to a module of ``ignore_draws``."""
    if not _ignored_draws:
        return False
    frame: FrameType | None = sys._getframe(2)
    while frame is not None and stdlib_file(os.path.abspath(frame.f_code.co_filename)):
        frame = frame.f_back
    if frame is None:
        return False
    name = str(frame.f_globals.get("__name__", ""))
    return any(name == m or name.startswith(m + ".") for m in _ignored_draws)


_ORIGINAL_PATH_STATS = SourceFileLoader.path_stats
RECENT_SAVE = 2.0  # seconds: longer than a .pyc's whole-second mtime can tell two saves apart


def _path_stats(loader: SourceFileLoader, path: str) -> Mapping[str, Any]:
    stats = _ORIGINAL_PATH_STATS(loader, path)
    if time.time() - float(stats["mtime"]) < RECENT_SAVE:
        return {"mtime": stats["mtime"], "size": -1}  # matches no .pyc: the source is compiled
    return stats


class Builder:
    def __init__(self, control: socket.socket, listen_fds: list[int], info: dict[str, Any]) -> None:
        self.wrote_bytecode = not sys.dont_write_bytecode  # the process's own choice
        self.control = control
        self.listen_fds = listen_fds
        self.info = info
        self.worker_pgid = int(info.get("pgid", 0))
        self.hot: set[str] = set(info.get("hot", []))
        self.recent: list[str] = [str(p) for p in info.get("hot", [])]  # oldest first
        self.prepared: dict[frozenset[str], Any] = {}
        self.index: referrers.Index | None = None
        # Never the project's, wherever it is installed: ours (``refresh`` is imported late).
        self.trusted: set[str] = {"reloader", *info.get("trusted", [])}
        self.position = int(info.get("position", 0))
        self.started = time.monotonic()
        self.offset = float(info.get("seconds", 0.0))  # start-up time before this builder
        self.last_checkpoint = self.started
        self.count = 0
        self.stopped: str | None = None  # why no more checkpoints are taken
        # Why the checkpoints from here on are not shared: each forks one worker (a random
        # value drawn before them would be in every fork).
        self.tainted: str | None = None
        self.provenance = Provenance()
        self.files: dict[str, int] = {}
        self.module_files: list[str] = []  # of project modules, not sent yet
        self.dirs: dict[str, tuple[int, bool, list[str]]] = {}
        self.sent_files = 0
        self.batch_started_ns = time.time_ns()
        self.recording = True
        self.listed: set[str] = set()
        self.draws = 0
        self.random_state = random.getstate()
        self.boundary_draws = 0
        self.executing: list[tuple[str, str | None]] = [("the start-up", None)]
        self.original_load = _bootstrap._load_unlocked  # type: ignore[attr-defined]

    # -------------------------------------------------------------- set-up
    def install(self) -> None:
        # A builder imports ahead of time, beside the edits: bytecode it wrote for a source it
        # read before a save could look fresh afterwards (same second, same size) and would
        # be run by the next worker. Workers write it again, after the supervisor removed it.
        self.wrote_bytecode = not sys.dont_write_bytecode
        sys.dont_write_bytecode = True
        # It may also import a file saved a moment ago, before the supervisor removed its old
        # bytecode (reloader.bytecode): a .pyc of the previous save, same second and size,
        # would pass for fresh. A source saved lately is compiled, never taken from a .pyc.
        SourceFileLoader.path_stats = _path_stats  # type: ignore[method-assign,assignment]
        _bootstrap._load_unlocked = self._load  # type: ignore[attr-defined]
        sys.addaudithook(_audit)
        _count_draws(self)
        self.provenance.install()

    def uninstall(self) -> None:
        """In a worker forked from a checkpoint: nothing of the builder stays active (the
        provenance records stay, for ``reloader.refresh``)."""
        self.recording = False
        _bootstrap._load_unlocked = self.original_load  # type: ignore[attr-defined]
        sys.dont_write_bytecode = not self.wrote_bytecode
        SourceFileLoader.path_stats = _ORIGINAL_PATH_STATS  # type: ignore[method-assign]
        self.provenance.uninstall()

    def send(self, kind: str, *, fds: tuple[int, ...] = (), **fields: Any) -> None:
        data = protocol.encode(kind, **fields)
        try:
            if fds:
                socket.send_fds(self.control, [data], list(fds))
            else:
                self.control.sendall(data)
        except OSError:  # the supervisor is gone, or gave up on this build
            os._exit(protocol.EXIT_OK)

    # -------------------------------------------------------------- recording
    def seconds(self) -> float:
        return round(self.offset + time.monotonic() - self.started, 4)

    def _load(self, spec: Any) -> Any:
        with self.provenance.aside():  # what the builder makes here is nobody's
            name = spec.name
            origin = spec.origin if spec.has_location else None
            path = os.path.abspath(origin) if isinstance(origin, str) else None
            project = (
                path is not None
                and name.split(".")[0] not in self.trusted
                and not is_library_file(path)
            )
            self.boundary()
            if project and self.stopped is None and self.count < MAX_CHECKPOINTS:
                due = time.monotonic() - self.last_checkpoint >= SPACING
                if due or path in self.hot:
                    self.take(f"before {name}", module=name, file=path)
            self.position += 1
            if path is not None:
                self.note_file(path)
                if project:
                    self.module_files.append(path)
            self.executing.append((name, path))
        self.provenance.enter(name, path, project)
        try:
            return self.original_load(spec)
        finally:
            self.provenance.leave()
            with self.provenance.aside():
                self.boundary()
                self.executing.pop()

    def note_file(self, path: str) -> None:
        if path not in self.files and "__pycache__" not in path:
            self.files[path] = self.position

    def note_dir(self, path: str, by_import: bool) -> None:
        if path in self.dirs or path in self.listed:
            return
        with self.provenance.aside():
            self.listed.add(path)
            names: list[str] = []
            self.recording = False  # our own listing is not the program's
            try:
                with contextlib.suppress(OSError):
                    names = sorted(os.listdir(path))[:MAX_LISTED_NAMES]
            finally:
                self.recording = True
            self.dirs[path] = (self.position, by_import, names)

    def boundary(self) -> None:
        """Between two imports: whoever ran since the last boundary (a module's own code, or
        the start-up's) drew random values, or not. A value drawn before a checkpoint is in
        every fork of it: the checkpoints from here on fork one worker each, unless it was the
        standard library (``random`` reseeds itself in a fork)."""
        if not self.recording or self.stopped is not None or self.tainted is not None:
            return
        state = random.getstate()
        drew = self.draws != self.boundary_draws or state != self.random_state
        self.boundary_draws = self.draws
        self.random_state = state
        if not drew:
            return
        name, origin = self.executing[-1]
        if origin is not None and stdlib_file(os.path.abspath(origin)):
            return
        where = f"{name} draws" if origin is not None else "the start-up drew"
        self.tainted = f"{where} a random value (every worker forked from one would share it)"
        self.send(protocol.REFUSED, reason=self.tainted, shared=False)

    def stop(self, reason: str) -> None:
        if self.stopped is None:
            self.stopped = reason
            self.send(protocol.REFUSED, reason=reason)

    # -------------------------------------------------------------- checkpoints
    def guard(self) -> str | None:
        """Why the state now must not be shared by forks, or None."""
        reason = refuse_reason()
        if reason is not None:
            return f"{reason} (started by the program's start-up)"
        with contextlib.suppress(Exception):
            import asyncio

            if asyncio._get_running_loop() is not None:
                return "an asyncio event loop runs"
        sock = self.open_socket()
        if sock is not None:
            return f"a socket is open ({sock}): forks would share it"
        return None

    def open_socket(self) -> str | None:
        allowed = {0, 1, 2, self.control.fileno(), *self.listen_fds}
        with contextlib.suppress(OSError):
            for entry in os.listdir("/proc/self/fd"):
                fd = int(entry)
                if fd in allowed:
                    continue
                with contextlib.suppress(OSError):
                    if stat.S_ISSOCK(os.fstat(fd).st_mode):
                        return describe_socket(fd)
        return None

    def deps(self) -> dict[str, Any]:
        """What was read since the last checkpoint (the supervisor keeps the rest)."""
        files = [[p, pos] for p, pos in list(self.files.items())[self.sent_files :]]
        self.sent_files = len(self.files)
        dirs = [[p, pos, imp, names] for p, (pos, imp, names) in self.dirs.items()]
        self.dirs = {}
        started, self.batch_started_ns = self.batch_started_ns, time.time_ns()
        modules, self.module_files = self.module_files, []
        return {"files": files, "dirs": dirs, "modules": modules, "since_ns": started}

    def take(
        self, name: str, module: str | None = None, final: bool = False, file: str | None = None
    ) -> None:
        """Fork a paused checkpoint here (or, ``final``, become one): returns in the builder,
        and again in every process later forked from the checkpoint."""
        if self.stopped is not None:
            if final:  # it must not serve, and cannot be a checkpoint: its work is done
                os._exit(protocol.EXIT_OK)
            return
        for callback in _before_checkpoint:
            callback()
        with self.provenance.aside():
            self.boundary()  # a value drawn since the last import is in this checkpoint too
        reason = self.guard()
        if reason is not None:
            self.stop(f"no checkpoint {name}: {reason}")
            if final:
                os._exit(protocol.EXIT_OK)
            return
        fields: dict[str, Any] = {
            "name": name,
            "module": module,
            "file": file,
            "position": self.position,
            "seconds": self.seconds(),
            "final": final,
            "shared": self.tainted is None,
            "deps": self.deps(),
        }
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        gc.freeze()
        if final:
            self.provenance.uninstall()  # the start-up is over: what it did is recorded
            _warm_inspect()
            fields["declined"] = self.prepare_refreshes()
            fields["indexed"] = self.index.seconds if self.index is not None else None
            fields["prepared"] = sorted(
                next(iter(k)) for k, v in self.prepared.items() if not isinstance(v, Exception)
            )
            self.send(protocol.CHECKPOINT, pid=os.getpid(), **fields)
            self.pause(self.control, final=True)  # returns in forked children only
            return
        ours, theirs = socket.socketpair()
        pid = os.fork()
        if pid == 0:
            theirs.close()
            self.control.close()  # the builder's: this process is a checkpoint now
            self.pause(ours)  # returns in forked children only
            return
        ours.close()
        self.count += 1
        self.last_checkpoint = time.monotonic()
        self.send(protocol.CHECKPOINT, fds=(theirs.fileno(),), pid=pid, **fields)
        theirs.close()

    def prepare_refreshes(self) -> dict[str, str]:
        """Before pausing as the final checkpoint: the analysis of a refresh (``refresh``) for
        each of the files edited last, so that a worker for their next edit only imports.
        Returns why a refresh would be declined, by file."""
        modules = {r.file for r in self.provenance.modules.values() if r.file}
        declined = {}
        # Who references what each module's import made, found once for all of them: their
        # analyses (these, and those of the files not prepared, in the workers) look it up.
        self.index = referrers.build(self.provenance)
        referrers.use_index(self.index)
        for path in [p for p in self.recent if p in modules][-PREPARED:]:
            prepared = refresh.prepare(self.provenance, [path])
            self.prepared[frozenset([path])] = prepared
            if isinstance(prepared, refresh.Declined):
                declined[path] = str(prepared)
        gc.freeze()
        return declined

    def pause(self, control: socket.socket, final: bool = False) -> None:
        """Be a checkpoint: fork on request; return in each child, set up as its role says."""
        self.recording = False
        server = ForkServer(control, worker_pgid=self.worker_pgid)
        forked = server.serve()
        self.resume(forked, final)

    def resume(self, forked: Forked, final: bool = False) -> None:
        global _builder
        message = forked.message
        info = dict(message.get("info", {}))
        control = socket.socket(fileno=forked.control_fd)
        if message.get("role") == "builder":
            # Build again from here: a new control socket, the same recordings so far.
            self.control = control
            self.info = info
            self.hot = set(info.get("hot", []))
            self.recent = [str(p) for p in info.get("hot", [])]
            self.started = time.monotonic()
            self.offset = float(info.get("seconds", self.offset))
            self.last_checkpoint = self.started
            self.count = 0
            self.files = {}
            self.module_files = []
            self.sent_files = 0
            self.dirs = {}
            self.batch_started_ns = time.time_ns()
            self.recording = True
            self.random_state = random.getstate()
            self.send(protocol.HELLO, pid=os.getpid())
            return
        # A worker: it goes on with the start-up from here, as any worker.
        self.uninstall()
        _builder = None
        from . import _boot, worker

        inherited = protocol.Inherited(control, self.listen_fds, info)
        _boot.attach_worker(inherited, known_modules=list(sys.modules))
        worker.note_checkpoint(str(message.get("checkpoint", "")))
        paths = message.get("refresh")
        if final and paths:
            try:
                with worker.reports_held():
                    budget = message.get("budget")
                    result = refresh.refresh(
                        self.provenance,
                        [str(p) for p in paths],
                        self.prepared,
                        float(budget) if isinstance(budget, int | float) else None,
                    )
            except refresh.Declined as exc:
                worker.declined(str(exc))  # the supervisor starts a worker another way
            worker.note_refresh(result.modules, result.seconds)
        # The records (and plans) stay as they are: letting them go would touch every object
        # they hold (its reference count), and so copy every page of the checkpoint's heap into
        # this process. What they keep alive, the checkpoint kept alive too.


def describe_socket(fd: int) -> str:
    """``fd 7, 127.0.0.1:5432`` for a connected socket."""
    try:
        sock = socket.socket(fileno=os.dup(fd))
    except OSError:
        return f"fd {fd}"
    try:
        peer = sock.getpeername()
    except OSError:
        peer = None
    finally:
        sock.close()
    if isinstance(peer, tuple):
        return f"fd {fd}, {peer[0]}:{peer[1]}"
    return f"fd {fd}" + (f", {peer}" if peer else "")


def _audit(event: str, args: tuple[Any, ...]) -> None:
    builder = _builder
    if builder is None or not builder.recording:
        return
    if event == "open":
        path, mode, flags = (*args, None, None, None)[:3]
        if not isinstance(path, str | bytes):
            return
        if isinstance(mode, str) and any(c in mode for c in "wax+"):
            return
        if isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR):
            return
        path = os.fsdecode(path)
        builder.note_file(os.path.abspath(path))
    elif event in ("os.listdir", "os.scandir"):
        path = args[0] if args else "."
        if path is None:
            path = "."
        if not isinstance(path, str | bytes):
            return
        caller = sys._getframe(2).f_code.co_filename
        by_import = caller.startswith("<frozen importlib") or caller.endswith("pkgutil.py")
        builder.note_dir(os.path.abspath(os.fsdecode(path)), by_import)


def _warm_inspect() -> None:
    """Fill ``inspect``'s table of which file is which module, if the program imported
    ``inspect``: its first ``getmodule`` for an object without ``__module__`` walks every module
    (0.5 s of a new NetBox worker's first page, where django-debug-toolbar records a stack for
    each cache call). The table holds names and paths only: a worker finds the modules it
    imports again under the same names, and adds what is new on its next walk, as a cold
    process would have filled it on its first."""
    inspect = sys.modules.get("inspect")
    if inspect is not None:
        with contextlib.suppress(Exception):
            inspect.getmodule(_warm_inspect.__code__)


def _count_draws(builder: Builder) -> None:
    """Count the random bytes drawn from the system (``os.urandom``, ``SystemRandom``,
    ``secrets``): a value made of them at import time would be shared by forks."""
    original = os.urandom

    def urandom(n: int) -> bytes:
        if not _drawn_by_ignored():
            builder.draws += 1
        return original(n)

    os.urandom = urandom
    random._urandom = urandom  # type: ignore[attr-defined]


def failed(exc: BaseException) -> None:
    """The start-up raised in the builder: say so (the worker shows the error, not us)."""
    import traceback

    if _builder is not None:
        title = traceback.format_exception_only(type(exc), exc)[-1].strip()
        _builder.send(protocol.FAILED, title=title, traceback="", files=[])


def serving() -> None:
    """The program is about to serve in a builder: it has no final checkpoint. Never serve."""
    if _builder is not None:
        _builder.stop("the program serves without calling checkpoint(final=True)")
        os._exit(protocol.EXIT_OK)


def start(control: socket.socket, listen_fds: list[int], info: dict[str, Any]) -> None:
    """Make this process (a fresh fork of the template) a builder."""
    global _builder
    parent = os.getppid()
    # Gone with the process it was forked from (a stale checkpoint, a replaced template): its
    # checkpoints would be stale too.
    set_parent_death_signal(signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(protocol.EXIT_OK)
    _builder = Builder(control, listen_fds, info)
    _builder.install()
    _builder.send(protocol.HELLO, pid=os.getpid())


def checkpoint(name: str, final: bool = False) -> None:
    """In a builder: take a checkpoint here (``final``: become one; see the module docstring).
    Elsewhere: nothing."""
    if _builder is not None:
        _builder.take(name, final=final)
