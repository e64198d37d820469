"""The supervisor: one loop that owns the sockets, the watcher and the current worker.

States: ``starting`` (a worker runs but has not said it serves), ``serving``, ``broken`` (no
worker can serve: the last one failed or died; the supervisor answers on the held sockets with
the error page until a change) and ``stopping``. Signal handlers and the watcher thread only
enqueue and wake the loop; the loop alone decides, logs and kills.

A restart retires the current worker (SIGTERM) and starts the next one as soon as the old one
said it stopped accepting (``stopping``) or exited; connections that arrive meanwhile wait in the
listen backlog of the held socket, so none is refused.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import queue
import selectors
import signal
import socket
import threading
import time
from typing import Any

from . import bytecode, children, protocol, tls
from . import sockets as socket_utils
from .audience import Audience
from .config import ConfigError, SupervisorConfig
from .debounce import Debouncer
from .errorpage import Failure
from .responder import ErrorResponder
from .signals import default_log_handler, describe_exit, queued_signals
from .starters import Starter, StartError, WorkerHandle, make_starter
from .watch import LIMIT
from .watchset import RESTART, TREE, WatchSet, modified_since

logger = logging.getLogger("reloader")

STARTING = "starting"
SERVING = "serving"
BROKEN = "broken"
STOPPING = "stopping"


class _Retiring:
    def __init__(self, handle: WorkerHandle, deadline: float) -> None:
        self.handle = handle
        self.deadline: float | None = deadline  # None once killed: nothing more to wait for
        self.stopped_accepting = False


class Supervisor:
    """Run ``config.target`` in a worker, restart it on change, hold the sockets.

    ``run()`` blocks until SIGINT/SIGTERM/SIGHUP (or ``stop()`` from another thread) and returns
    the exit status. Binding errors raise ``sockets.BindError`` before anything starts.

    ``adopt_orphans``: reap every child that ends, not only those the supervisor started (for a
    supervisor that is its own program: ``python -m reloader`` makes itself a child subreaper,
    and may be PID 1 in a container). An embedder's own children are left alone otherwise.
    """

    def __init__(self, config: SupervisorConfig, adopt_orphans: bool = False) -> None:
        self.config = config
        self._adopt_orphans = adopt_orphans
        self.state = STARTING
        self.generation = 0
        self._debounce = Debouncer(config.quiet_period, config.max_wait)
        self._set = WatchSet(config, self._on_change)
        self._worker: WorkerHandle | None = None
        self._worker_t0 = 0
        self._readers: dict[int, protocol.MessageReader] = {}
        self._retiring: list[_Retiring] = []
        self._pending_start = False
        self._pending_paths: list[str] = []
        self._failure: Failure | None = None
        self._changes: queue.SimpleQueue[list[str]] = queue.SimpleQueue()
        self._signals: list[int] = []
        self._stop_requested = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._selector = selectors.DefaultSelector()
        self._audience = config.audience
        self._responder = ErrorResponder(
            self._selector, self._current_failure, lambda: self._audience
        )
        self._sockets: list[socket.socket] = []
        try:  # HTTPS sockets: their certificates load now, or the supervisor does not start
            self._contexts = [tls.context_for(s.tls_cert, s.tls_key) for s in config.sockets]
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        self._starter: Starter | None = None
        self._reaper = children.Reaper()
        # Packages the caller vouched for (SupervisorConfig.preload): their modules are reported
        # for the fork template even from outside site-packages.
        self._trusted = sorted({name.split(".")[0] for name in config.preload})
        self.ready = threading.Event()  # set when a worker first says it serves (for embedders)

    # ----------------------------------------------------------------------------- public
    def run(self) -> int:
        with default_log_handler(self.config.verbose), queued_signals(self._signals, self._wake_w):
            self._sockets = [socket_utils.bind(spec) for spec in self.config.sockets]
            try:
                self._setup()
                # The first worker starts before watching does (watchdog's import and the
                # watches take a while): what it reports is checked against its start time.
                # Paths given with --watch are watched first, as nothing would check them.
                watch_first = self._set.has_extra()
                if watch_first:
                    self._set.start()
                self._start_worker()
                if not watch_first:
                    self._set.start()
                if self.config.announce:
                    assert self._starter is not None
                    logger.info(
                        "Watching for file changes with %s; workers start by %s.",
                        self._set.name,
                        self._starter.name,
                    )
                while not (self.state == STOPPING and not self._alive_workers()):
                    self._step()
            finally:
                self._teardown()
        return protocol.EXIT_OK

    def stop(self) -> None:
        """Ask the loop to stop (thread-safe)."""
        self._stop_requested.set()
        self._wake()

    # ----------------------------------------------------------------------------- setup
    def _setup(self) -> None:
        if self._adopt_orphans and os.getpid() != 1:
            self._adopt_orphans = children.become_subreaper()
        self._selector.register(self._wake_r, selectors.EVENT_READ, ("wake", None))
        self._starter = make_starter(
            self.config,
            [s.fileno() for s in self._sockets],
            self._watch_template_files,
            self._reaper,
            self._watch_deps,
        )
        self._sync_starter_fd()

    def _teardown(self) -> None:
        for retiring in self._retiring:
            retiring.handle.send_signal(signal.SIGKILL)
        if self._worker is not None:
            self._worker.send_signal(signal.SIGKILL)
        self._responder.close_all()
        self._set.stop()
        if self._starter is not None:
            self._starter.close()
        for sock, spec in zip(self._sockets, self.config.sockets, strict=False):
            socket_utils.close(sock, spec)
        self._selector.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    # ----------------------------------------------------------------------------- the loop
    def _step(self) -> None:
        timeout = self._timeout()
        for key, mask in self._selector.select(timeout):
            kind, data = key.data
            if kind == "wake":
                with contextlib.suppress(BlockingIOError):
                    while os.read(self._wake_r, 4096):
                        pass
            elif kind == "control":
                self._read_control(data)
            elif kind == "starter":
                assert self._starter is not None
                self._starter.handle_readable(data)
                self._sync_starter_fd()
            elif kind == "listener":
                self._responder.accept(data)
            elif kind == "error-conn":
                self._responder.handle(data, mask)
        self._handle_signals()
        self._handle_changes()
        now = time.monotonic()
        assert self._starter is not None
        self._starter.tick(now)
        self._responder.expire(now)
        self._reap(now)
        batch = self._debounce.take(now)
        if batch and self.state != STOPPING:
            self._restart(batch)

    def _timeout(self) -> float | None:
        assert self._starter is not None
        deadlines = [
            self._debounce.deadline(),
            self._responder.next_deadline(),
            self._starter.deadline(),
        ]
        deadlines += [r.deadline for r in self._retiring]
        if self._retiring or self.state == STOPPING:
            deadlines.append(time.monotonic() + 0.05)  # also poll: SIGCHLD may be someone else's
        pending = [d for d in deadlines if d is not None]
        if not pending:
            return None
        return max(0.0, min(pending) - time.monotonic())

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b"\0")

    def _handle_signals(self) -> None:
        if self._stop_requested.is_set() and self.state != STOPPING:
            self._begin_stop()
        while self._signals:
            signum = self._signals.pop(0)
            if signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                if self.state == STOPPING:
                    for retiring in self._retiring:  # asked twice: do not wait any longer
                        self._kill(retiring)
                else:
                    self._begin_stop()
            elif signum == signal.SIGUSR1 and self.state != STOPPING:
                self._restart(["SIGUSR1"], forced=True)

    def _begin_stop(self) -> None:
        self.state = STOPPING
        self._debounce.take_all()
        self._pending_start = False
        self._stop_listening_for_errors()
        if self._worker is not None:
            self._retire(self._worker)
            self._worker = None
        # The port is free for the next server at once, not after the workers' teardown: the
        # held sockets are shared with every worker, and a shutdown acts on all the copies.
        # Connections already accepted are not affected: their requests finish.
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    # ----------------------------------------------------------------------------- changes
    def _on_change(self, paths: list[str]) -> None:
        """Called from the watcher's thread."""
        self._changes.put(paths)
        self._wake()

    def _handle_changes(self) -> None:
        restart: list[str] = []
        tree: list[str] = []
        while True:
            try:
                paths = self._changes.get_nowait()
            except queue.Empty:
                break
            assert self._starter is not None
            self._starter.changed([p for p in paths if p != LIMIT])
            for path in paths:
                if path == LIMIT:
                    self._set.limit_reached("Cannot watch a new directory: the watch limit")
                    continue
                verdict = self._set.classify(path, broken=self.state == BROKEN)
                if verdict == RESTART:
                    restart.append(path)
                elif verdict == TREE:
                    tree.append(path)
        if tree and self.state == SERVING and self._worker is not None:
            self._send(self._worker, protocol.CHANGED, paths=tree)
        elif tree:
            restart += tree
        if restart and self.state == BROKEN:
            # The fix may be in: new requests wait in the backlog for the new worker, as during
            # any restart. The error page is only for code that is broken now.
            self._stop_listening_for_errors()
        if restart and self.state != STOPPING:
            assert self._starter is not None
            owned = [p for p in restart if self._starter.owns(p)]
            if owned:
                self._starter.restart(f"{owned[0]} changed")
                self._sync_starter_fd()
            self._debounce.add(restart, time.monotonic())

    def _watch_template_files(self, files: list[str], imported_since_ns: int) -> None:
        """Files the fork template imported: watched like a worker's (their change restarts
        both the template and the worker). One modified since the template began importing
        may be held in its old version by the template, and by forks of it: restart both."""
        new_files = self._set.add(files, [])
        late = modified_since(new_files, imported_since_ns)
        if late and self.state != STOPPING:
            assert self._starter is not None
            self._starter.restart(f"{late[0]} changed while the fork template imported it")
            self._sync_starter_fd()
            self._debounce.add(late, time.monotonic())

    def _sync_starter_fd(self) -> None:
        """The starter's sockets change (a template restarts, checkpoints come and go): keep the
        selector current. A closed fd's number is reused: register each anew."""
        assert self._starter is not None
        for key in list(self._selector.get_map().values()):
            if key.data[0] == "starter":
                self._selector.unregister(key.fileobj)
        for fd in self._starter.filenos():
            self._selector.register(fd, selectors.EVENT_READ, ("starter", fd))

    def _watch_deps(self, files: list[str], dirs: list[str], since_ns: int) -> list[str]:
        """What a checkpoint read: watched (a change makes it stale, never restarts); return
        those modified since it began reading them."""
        self._set.add_deps(files, dirs)
        return modified_since(files, since_ns)

    def _watch(self, files: list[str], trees: list[tuple[str, str]]) -> None:
        new_files = self._set.add(files, trees)
        # Edits made after this worker started but before its files were watched: a file the
        # worker reports for the first time with a newer mtime may have been imported old.
        late = modified_since(new_files, self._worker_t0)
        if late:
            self._debounce.add(late, time.monotonic())

    # ----------------------------------------------------------------------------- workers
    def _start_worker(self) -> None:
        assert self._starter is not None
        self._pending_start = False
        self._stop_listening_for_errors()
        bytecode.invalidate(self._pending_paths)
        self._pending_paths = []
        self.generation += 1
        info = {
            "generation": self.generation,
            "watcher": self._set.name,
            "trusted": self._trusted,
        }
        self._worker_t0 = time.time_ns()
        try:
            handle = self._starter.start(self.generation, info)
            self._sync_starter_fd()
        except StartError as exc:
            self._fail(Failure(f"Cannot start the {self.config.name}", str(exc)))
            return
        self._worker = handle
        self._failure = None
        self.state = STARTING
        self._readers[handle.control.fileno()] = protocol.MessageReader()
        self._selector.register(handle.control, selectors.EVENT_READ, ("control", handle))

    def _restart(self, paths: list[str], forced: bool = False) -> None:
        if paths and not forced:
            more = f" (and {len(paths) - 1} more)" if len(paths) > 1 else ""
            logger.info("%s changed, reloading.%s", paths[0], more)
        elif forced:
            logger.info("Reloading (%s).", paths[0] if paths else "forced")
        self._pending_paths += paths
        if self._worker is not None:
            self._retire(self._worker)
            self._worker = None
        self._pending_start = True
        self._maybe_start()

    def _maybe_start(self) -> None:
        if not self._pending_start or self.state == STOPPING:
            return
        # Start the next worker only when no older one may still accept a connection.
        if all(r.stopped_accepting or r.handle.poll() is not None for r in self._retiring):
            self._start_worker()

    def _retire(self, handle: WorkerHandle) -> None:
        handle.send_signal(signal.SIGTERM)
        self._retiring.append(_Retiring(handle, time.monotonic() + self.config.grace))

    def _kill(self, retiring: _Retiring) -> None:
        retiring.handle.send_signal(signal.SIGKILL)
        retiring.deadline = None

    def _alive_workers(self) -> bool:
        return bool(self._retiring) or self._worker is not None

    def _reap(self, now: float) -> None:
        orphans = self._reaper.reap() if self._adopt_orphans else self._reaper.reap_owned()
        if orphans:
            assert self._starter is not None
            self._starter.reaped(orphans)
        for retiring in list(self._retiring):
            status = retiring.handle.poll()
            if status is not None:
                self._retiring.remove(retiring)
                self._forget(retiring.handle)
            elif retiring.deadline is not None and now >= retiring.deadline:
                logger.warning(
                    "The %s (pid %s) did not stop within %gs; killing it.",
                    self.config.name,
                    retiring.handle.pid,
                    self.config.grace,
                )
                self._kill(retiring)
        self._maybe_start()
        worker = self._worker
        if worker is not None:
            status = worker.poll()
            if status is not None:
                # Read what it said before it went (its "failed" message) while it is still the
                # current worker: the exit may be noticed first (the fork start reports exits
                # on another socket).
                self._drain_control(worker)
                self._worker = None
                self._forget(worker)
                if self._failure is None and self.state != STOPPING:
                    self._fail(
                        Failure(
                            f"The {self.config.name} {describe_exit(status)}",
                            f"{self.config.name} pid {worker.pid} {describe_exit(status)}.",
                        )
                    )

    def _forget(self, handle: WorkerHandle) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(handle.control)
        self._readers.pop(handle.control.fileno(), None)
        handle.close()

    def _fail(self, failure: Failure) -> None:
        self._failure = failure
        self.state = BROKEN
        logger.error("%s", failure.detail.rstrip())
        logger.error("Waiting for a file change to restart the %s.", self.config.name)
        self._start_listening_for_errors()

    def _current_failure(self) -> Failure | None:
        return self._failure

    def _start_listening_for_errors(self) -> None:
        if not self._responder.listening:
            http = zip(self._sockets, self.config.sockets, self._contexts, strict=False)
            self._responder.listen([(sock, tls) for sock, spec, tls in http if spec.http])

    def _stop_listening_for_errors(self) -> None:
        self._responder.stop_listening()

    # ----------------------------------------------------------------------------- messages
    def _send(self, handle: WorkerHandle, kind: str, **fields: Any) -> None:
        try:
            handle.control.sendall(protocol.encode(kind, **fields))
        except OSError as exc:
            if exc.errno not in (errno.EPIPE, errno.ECONNRESET, errno.EBADF):
                raise

    def _read_control(self, handle: WorkerHandle) -> None:
        try:
            data = handle.control.recv(1 << 20)
        except OSError:
            data = b""
        if not data:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(handle.control)
            return
        reader = self._readers.get(handle.control.fileno())
        if reader is None:
            return
        for message in reader.feed(data):
            self._on_message(handle, message)

    def _drain_control(self, handle: WorkerHandle) -> None:
        """Read what an exited worker still had in flight (its ``failed`` message)."""
        handle.control.setblocking(False)
        with contextlib.suppress(OSError):
            while True:
                data = handle.control.recv(1 << 20)
                if not data:
                    break
                reader = self._readers.get(handle.control.fileno())
                for message in reader.feed(data) if reader else ():
                    self._on_message(handle, message)

    def _on_message(self, handle: WorkerHandle, message: dict[str, Any]) -> None:
        kind = message["kind"]
        current = handle is self._worker
        if kind == protocol.HELLO and isinstance(message.get("pid"), int):
            handle.hello(message["pid"])
        elif kind == protocol.WATCH:
            files = [str(f) for f in message.get("files", [])]
            trees = [(str(t[0]), str(t[1])) for t in message.get("trees", []) if len(t) == 2]
            self._watch(files, trees)
            assert self._starter is not None
            self._starter.learn([str(m) for m in message.get("modules", [])])
        elif kind == protocol.AUDIENCE:
            self._audience = Audience.from_dict(message, self._audience)
        elif kind == protocol.STOPPING:
            for retiring in self._retiring:
                if retiring.handle is handle:
                    retiring.stopped_accepting = True
            self._maybe_start()
        elif not current:
            return
        elif kind == protocol.READY:
            self.state = SERVING
            self.ready.set()
            assert self._starter is not None
            self._starter.worker_ready()
            self._sync_starter_fd()
        elif kind == protocol.FAILED:
            self._watch([str(f) for f in message.get("files", [])], [])
            self._fail(
                Failure(
                    str(message.get("title", "The program failed")),
                    str(message.get("traceback", "")),
                    summary=f"The {self.config.name} could not start or stopped with an error.",
                    focus=message.get("focus"),
                    frames=message.get("frames"),
                )
            )
        elif kind == protocol.DECLINED and self.state != STOPPING:
            # It serves nothing and leaves: the next worker starts another way, now.
            assert self._starter is not None
            self._starter.declined(str(message.get("reason", "?")))
            self._worker = None
            self._forget(handle)
            self._start_worker()
        elif kind == protocol.RELOAD and self.state != STOPPING:
            paths = [str(p) for p in message.get("paths", [])]
            self._debounce.add(
                paths or [str(message.get("reason", "a reload request"))], time.monotonic()
            )
