"""The worker side: what a program running under the supervisor calls.

Every function is safe to call when the program runs without a supervisor (they do nothing, and
``listen_fds()`` is empty), so a program needs no special case for ``--noreload``.

A worker has two threads of ours: one reads the control socket (``changed`` messages, and end of
file when the supervisor is gone), one reports newly imported modules (every ``REPORT_INTERVAL``
seconds during start-up, then every ``REPORT_INTERVAL_SETTLED``). Both are started by the
bootstrap after the fork, never in the template.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from types import FrameType, TracebackType
from typing import Any, NoReturn

from . import builder, failure, protocol
from .modules import library_modules, module_files

# New modules are looked for often while a program starts, then once a second: a module first
# imported late and edited meanwhile is caught by the supervisor's check of its mtime.
REPORT_INTERVAL = 0.25
REPORT_INTERVAL_SETTLED = 1.0
REPORT_SETTLE_AFTER = 20

ChangeCallback = Callable[[list[str]], bool]

_channel: _Channel | None = None
_stop_requested = False  # SIGTERM came (set by the bootstrap's handler)


class _Channel:
    def __init__(
        self,
        inherited: protocol.Inherited,
        known_files: Iterable[str] = (),
        known_modules: Iterable[str] = (),
    ) -> None:
        assert inherited.control is not None
        self.control = inherited.control
        self.listen_fds = inherited.listen_fds
        self.info = inherited.info
        self._send_lock = threading.Lock()
        # A fork starts with what its template reported: only what it imports itself is news.
        self._reported: set[str] = set(known_files)
        self._reported_modules: set[str] = set(known_modules)
        self._report_now = threading.Event()
        self._report_lock = threading.Lock()
        self._modules_seen = 0
        self._callbacks: list[ChangeCallback] = []
        self._closed = threading.Event()
        self._ready = False
        self._reader = threading.Thread(target=self._read, name="reloader-control", daemon=True)
        self._reporter = threading.Thread(
            target=self._report_loop, name="reloader-report", daemon=True
        )

    def start(self) -> None:
        self.send(protocol.HELLO, pid=os.getpid())
        self._reader.start()
        self._reporter.start()

    def send(self, kind: str, **fields: Any) -> None:
        data = protocol.encode(kind, **fields)
        with self._send_lock, contextlib.suppress(OSError):
            self.control.sendall(data)

    def report_modules(self, force: bool = False) -> None:
        with self._report_lock:
            count = len(sys.modules)
            if count == self._modules_seen and not force:
                return
            self._modules_seen = count
            new = module_files() - self._reported
            if not new:
                return
            self._reported |= new
            trusted = self.info.get("trusted", ())
            libraries = [
                m for m in library_modules(trusted=trusted) if m not in self._reported_modules
            ]
            self._reported_modules.update(libraries)
            self.send(protocol.WATCH, files=sorted(new), trees=[], modules=libraries)

    def watch(self, files: Iterable[str], trees: Iterable[tuple[str, str]]) -> None:
        with self._report_lock:
            new = {os.path.abspath(f) for f in files} - self._reported
            self._reported |= new
        tree_list = [[os.path.abspath(d), g] for d, g in trees]
        if new or tree_list:
            self.send(protocol.WATCH, files=sorted(new), trees=tree_list)

    def _report_loop(self) -> None:
        checks = 0
        while not self._closed.is_set():
            interval = REPORT_INTERVAL if checks < REPORT_SETTLE_AFTER else REPORT_INTERVAL_SETTLED
            forced = self._report_now.wait(interval)
            self._report_now.clear()
            if self._closed.is_set():
                return
            checks += 1
            self.report_modules(force=forced)

    def report_soon(self) -> None:
        """Report new modules from the reporter thread, now (not from the caller's thread)."""
        self._report_now.set()

    def _read(self) -> None:
        reader = protocol.MessageReader()
        while True:
            try:
                data = self.control.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            for message in reader.feed(data):
                if message["kind"] == protocol.CHANGED:
                    self._changed([str(p) for p in message.get("paths", [])])
        if not self._closed.is_set():
            _orphaned()

    def _changed(self, paths: list[str]) -> None:
        unhandled = []
        for path in paths:
            handled = False
            for callback in list(self._callbacks):
                try:
                    handled = bool(callback([path])) or handled
                except Exception as exc:  # a callback's bug must not kill the worker's reader
                    print(f"reloader: change callback failed: {exc!r}", file=sys.stderr)
            if not handled:
                unhandled.append(path)
        if unhandled:
            self.send(protocol.RELOAD, reason=f"{unhandled[0]} changed", paths=unhandled)

    def close(self) -> None:
        self._closed.set()
        self._report_now.set()
        with contextlib.suppress(OSError):
            self.control.shutdown(socket.SHUT_RDWR)
        self.control.close()


def _orphaned() -> None:
    """The supervisor is gone: free the port, stop as on SIGTERM, and be gone within
    ORPHAN_EXIT seconds."""
    timer = threading.Timer(protocol.ORPHAN_EXIT, os._exit, args=(protocol.EXIT_ERROR,))
    timer.daemon = True
    timer.start()
    if _channel is not None:
        # Nobody is left to serve on the held sockets: shut them down (for every process that
        # holds a copy), so that the port is free now, whatever this process still does.
        for fd in _channel.listen_fds:
            with contextlib.suppress(OSError):
                sock = socket.socket(fileno=os.dup(fd))
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
    with contextlib.suppress(ProcessLookupError):
        os.kill(os.getpid(), signal.SIGTERM)


def attach(
    inherited: protocol.Inherited,
    known_files: Iterable[str] = (),
    known_modules: Iterable[str] = (),
) -> None:
    """Called by the bootstrap: connect this process to its supervisor. A fork passes what its
    template already reported (``known_files``, ``known_modules``)."""
    global _channel
    if inherited.control is None:
        return
    _channel = _Channel(inherited, known_files, known_modules)
    _channel.start()


def detach() -> None:
    """Called by the bootstrap when the program ends: a last report, then close quietly."""
    global _channel
    if _channel is not None:
        _channel.close()
        _channel = None


def exit_now(status: int = protocol.EXIT_OK) -> NoReturn:
    """End the process at once, once its program is done: ``atexit`` handlers run (logging is
    flushed) and the standard streams are flushed, but the interpreter does not tear its heap
    down, which takes seconds on a big project (about 2 s on NetBox) and would keep the user
    waiting for the prompt, and the supervisor for the next start. Only for a program whose
    open files need no finalizer (a server that already stopped serving). Stop signals that
    come now are ignored: they could only interrupt the exit."""
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        with contextlib.suppress(ValueError):  # not the main thread
            signal.signal(signum, signal.SIG_IGN)
    with contextlib.suppress(BaseException):
        atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BaseException):
            stream.flush()
    with contextlib.suppress(BaseException):
        detach()
    os._exit(status)


def under_supervisor() -> bool:
    return _channel is not None


def listen_fds() -> list[int]:
    """The fds of the listening sockets the supervisor holds, in its config's order."""
    builder.serving()  # a builder never serves (it exits here if the program never paused)
    return list(_channel.listen_fds) if _channel else []


def info() -> dict[str, Any]:
    """``generation``, ``watcher`` and ``start`` of this worker (for a banner)."""
    return dict(_channel.info) if _channel else {}


def watch_files(paths: Iterable[str]) -> None:
    """Restart when one of these files changes (on top of the imported modules)."""
    if _channel:
        _channel.watch(paths, ())


def watch_tree(directory: str, glob: str = "**/*") -> None:
    """Call the ``on_change`` callbacks when a file under ``directory`` matching ``glob``
    changes while this worker serves; if none handles it, the worker is restarted."""
    if _channel:
        _channel.watch((), [(directory, glob)])


def on_change(callback: ChangeCallback) -> None:
    """Register a callback for tree changes; it returns True when it handled the change."""
    if _channel:
        _channel._callbacks.append(callback)


def ready() -> None:
    """Tell the supervisor this worker serves (its new modules follow from the reporter thread,
    so that serving does not wait for them).

    Raises KeyboardInterrupt if the supervisor already asked this worker to stop: the exception
    the SIGTERM handler raised can be lost (one landing in a weakref callback or a ``__del__`` is
    only printed), and a worker must not start serving after it."""
    if _stop_requested:
        raise KeyboardInterrupt
    builder.serving()  # a builder never serves (it exits here if the program never paused)
    if _channel:
        _channel.send(protocol.READY)
        _channel.report_soon()


def stop_requested() -> None:
    """Called by the bootstrap's SIGTERM handler, before it raises KeyboardInterrupt."""
    global _stop_requested
    _stop_requested = True


REDELIVER_AFTER = 0.01


def defer_if_unraisable(signum: int, frame: FrameType | None) -> threading.Timer | None:
    """For a signal handler about to raise: None when an exception raised in ``frame`` reaches
    the program. Python only prints ("Exception ignored in ...") what is raised in a ``__del__``
    or in the import machinery's weakref callback (``_get_module_lock.<locals>.cb``), and goes
    on; there, this sends ``signum`` to the main thread again shortly, so that the handler runs
    anew elsewhere, and returns that timer (cancel it once the stop was delivered otherwise).
    The handler should then return without raising."""
    if frame is None:
        return None
    code = frame.f_code
    if not (code.co_filename.startswith("<frozen importlib") or code.co_name == "__del__"):
        return None
    main = threading.main_thread().ident
    assert main is not None
    timer = threading.Timer(REDELIVER_AFTER, signal.pthread_kill, (main, signum))
    timer.daemon = True
    timer.start()
    return timer


def audience(
    details: bool | None, hosts: Iterable[str] | None, loopback_only: bool = False
) -> None:
    """Say who may see the details of the supervisor's error page (see ``reloader.audience``):
    ``details`` is the program's debug mode, ``hosts`` the allowed ``Host`` patterns (None for
    either: unknown, keep what the supervisor knew); ``loopback_only`` when the settings could
    not be read."""
    if _channel:
        _channel.send(
            protocol.AUDIENCE,
            details=details,
            hosts=list(hosts) if hosts is not None else None,
            loopback_only=loopback_only,
        )


def checkpoint(name: str, final: bool = False) -> None:
    """A point of the program's start-up a worker may be forked from (``reloader.builder``).

    Call it where the start-up has done something worth keeping: after loading settings and
    models, before serving (``final=True``: the last point, where the program would start to
    serve). In a worker it does nothing; in a builder it takes a checkpoint, and returns again in
    every worker later forked from it, which then goes on with its start-up from there. What the
    program does before a checkpoint must be the same for every worker: no thread, no open
    connection (close them in ``before_checkpoint``), no random value kept."""
    builder.checkpoint(name, final)


def before_checkpoint(callback: Callable[[], None]) -> None:
    """Call ``callback`` before each checkpoint (in a builder only): close database connections
    and anything else a fork must not share."""
    builder.before_checkpoint(callback)


def ignore_draws(*modules: str) -> None:
    """Random values drawn from the system by code of these modules (``"redis.connection"``)
    do not make checkpoints unshared: the program vouches that it drops what holds them before
    each checkpoint (``before_checkpoint``), so that no worker inherits them."""
    builder.ignore_draws(modules)


def building() -> bool:
    """Whether this process is a builder: it runs the start-up to take checkpoints, and never
    serves (``reloader.builder``)."""
    return builder.active()


def note_checkpoint(name: str) -> None:
    """Called in a worker forked from a checkpoint: its ``info()["start"]`` says which."""
    if _channel and name:
        _channel.info["start"] = f"fork from checkpoint {name!r}"


@contextlib.contextmanager
def reports_held() -> Iterator[None]:
    """No report of new modules is made meanwhile (``reloader.refresh`` looks at every object
    of the process: the reporter's own lists must not be among them)."""
    if _channel is None:
        yield
        return
    with _channel._report_lock:
        yield


def note_refresh(modules: list[str], seconds: float) -> None:
    """Called in a worker forked from the final checkpoint that imported ``modules`` again
    (``reloader.refresh``): its ``info()["start"]`` says so."""
    if _channel:
        shown = ", ".join(modules[:3]) + (
            f" and {len(modules) - 3} more" if len(modules) > 3 else ""
        )
        _channel.info["start"] = (
            f"fork from the last checkpoint, {shown} imported again in {seconds:.3f}s"
        )
        _channel.info["refreshed"] = list(modules)


def declined(reason: str) -> NoReturn:
    """A worker forked for a fast reload that would not be the same as a cold start: tell the
    supervisor why (it starts one another way) and leave, before serving anything."""
    if _channel:
        # The supervisor closes our control socket once it read this: that end of file is no
        # orphaning (which would shut the held sockets down for every process).
        _channel._closed.set()
        _channel.send(protocol.DECLINED, reason=reason)
    exit_now(protocol.EXIT_OK)


def stopping() -> None:
    """Tell the supervisor this worker no longer accepts connections."""
    if _channel:
        _channel.send(protocol.STOPPING)


def request_reload(reason: str) -> None:
    """Ask the supervisor to replace this worker."""
    if _channel:
        _channel.send(protocol.RELOAD, reason=reason)


def library_code(directory: str) -> None:
    """Fold the frames of files under ``directory`` on the error page, as library frames (a
    framework's glue installed in editable mode, say)."""
    failure.add_library_code(directory)


def failed(
    title: str,
    traceback_text: str,
    files: Iterable[str] = (),
    exception: BaseException | None = None,
    tb: TracebackType | None = None,
) -> None:
    """Report why the program cannot serve; the supervisor shows it until a change. With the
    ``exception`` (and its traceback ``tb``, when trimmed), the page leads with where to fix it
    (``reloader.failure``)."""
    if _channel:
        details = failure.describe(exception, tb) if exception is not None else {}
        _channel.report_modules(force=True)
        _channel.send(
            protocol.FAILED,
            title=title,
            traceback=traceback_text,
            files=sorted(set(files)),
            **details,
        )
