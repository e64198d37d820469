"""The prefork process model: a parent that only manages children, children that serve.

This replaces the loop of ``flup/server/preforkserver.py`` (1.0.3), whose defects were:

1. A child's status byte is compared with a ``str`` (:184): every child looks idle, so the pool
   never grows past ``maxSpare`` and ``maxChildren`` is ignored.
2. SIGUSR1 sends a ``str`` to a socket (:195): the parent dies.
3. The parent blocks in ``select()`` without a timeout (:153, :164), which Python restarts after a
   signal: SIGTERM/SIGINT/SIGHUP are ignored while idle.
4. Exited children are reaped only when a 2 s ``select()`` timeout expires (:152-158, no
   SIGCHLD handling): ``maxRequests`` recycling stalls, ~4000 req/s fell to ~300 at 100.

Here the parent waits on its children's control sockets and on the signal pipe (``signals``), so
a signal or a child's message is handled at once. Children report ``B`` (busy: accepted a
connection), ``I`` (idle again) or ``R`` (retiring: accepted the last connection of its
``maxrequests``); the parent forks a replacement for a retiring child *before* it exits, so
recycling never leaves a gap. The pool is kept between ``minspare`` and ``maxspare`` idle
children and at most ``maxchildren`` serving ones: when no child is idle the pool doubles, and
spare children above ``maxspare`` are dismissed one a second while the excess lasts. (A child
finishing its last request, or dismissed, may still be exiting while its replacement starts.)

Signals, in the parent: TERM/INT stop gracefully (no new connections; requests in progress
finish, for up to ``grace`` seconds; a second TERM/INT kills the children at once); HUP calls
``on_hup`` (reopen the logs) and replaces the children; USR1 replaces the children; CHLD reaps.
In a child: TERM/INT finish the current request, then exit; HUP/USR1 are the parent's business.
The parent's signals are blocked across ``fork()`` until the child has its own handlers (a
signal in between would go through the parent's wakeup fd, which the child shares).
Children stay in the parent's process group, so ``kill -TERM -<pgid>`` stops everything
gracefully too. A child whose parent died sees its control socket close and exits.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import select
import selectors
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

from .live import LiveConnections
from .signals import SignalPipe
from .sockets import Listener

log = logging.getLogger("fcgi")

_BUSY, _IDLE, _RETIRING = b"B", b"I", b"R"
_PARENT_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGCHLD)


@dataclass(eq=False)
class _Child:
    pid: int
    ctrl: socket.socket | None
    state: str = "idle"  # idle, busy, retiring (last request), leaving (told to go)
    started: float = 0.0


class PreforkLoop:
    """Serve ``job(sock, addr)`` on a listening socket with a pool of forked children."""

    def __init__(
        self,
        job: Callable[[socket.socket, Any], None],
        live: LiveConnections,
        *,
        minspare: int,
        maxspare: int,
        maxchildren: int,
        maxrequests: int,
        grace: float,
        on_hup: Callable[[], None] = lambda: None,
    ) -> None:
        self.job = job
        self.live = live
        self.maxchildren = maxchildren
        self.minspare = min(minspare, maxchildren)
        self.maxspare = min(maxspare, maxchildren)
        self.maxrequests = maxrequests
        self.grace = grace
        self._mask: set[int | signal.Signals] = set()  # the signal mask to restore after a fork
        self.on_hup = on_hup
        self._children: dict[int, _Child] = {}
        self._stopping = False
        self._deadline = 0.0
        self._spawn_after = 0.0
        self._excess_since: float | None = None
        self._chld = False
        self._pipe: SignalPipe | None = None

    @property
    def _signals(self) -> SignalPipe:
        assert self._pipe is not None, "listen_for_signals() first"
        return self._pipe

    def listen_for_signals(self) -> None:
        """Take TERM, INT, HUP... from now on (``run`` acts on them): called before the server
        says it serves, so that a signal sent at once is not the default one (death without
        removing the pid file or the socket)."""
        if self._pipe is None:
            self._pipe = SignalPipe(_PARENT_SIGNALS).install()

    # -- parent ------------------------------------------------------------------------------
    def run(self, listener: Listener) -> None:
        """Run until TERM/INT and every child has exited."""
        listener.sock.setblocking(False)
        self._listener = listener
        self.listen_for_signals()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._signals, selectors.EVENT_READ)
        try:
            self._spawn(max(self.maxspare, self.minspare, 1))
            while self._children or not self._stopping:
                self._wait()
                if self._chld or self._stopping:
                    self._chld = False
                    self._reap()
                if self._stopping:
                    if self._children and time.monotonic() >= self._deadline:
                        self._kill_all()
                else:
                    self._balance()
        finally:
            self._kill_all()
            self._selector.close()
            self._signals.close()

    def _wait(self) -> None:
        timeout: float | None = None
        now = time.monotonic()
        if self._stopping:
            timeout = max(0.0, min(self._deadline - now, 0.5))
        elif self._spawn_after > now:
            timeout = self._spawn_after - now
        elif self._excess_since is not None:
            timeout = max(0.0, self._excess_since + 1.0 - now)
        for key, _ in self._selector.select(timeout):
            if key.data is None:
                for signum in self._signals.drain():
                    self._on_signal(signum)
            else:
                self._on_message(key.data)

    def _on_signal(self, signum: int) -> None:
        if signum == signal.SIGCHLD:
            self._chld = True
        elif signum in (signal.SIGTERM, signal.SIGINT):
            if self._stopping:
                log.info("second %s: killing the children", signal.Signals(signum).name)
                self._deadline = 0.0
                return
            log.info("%s: stopping gracefully", signal.Signals(signum).name)
            self._stopping = True
            self._deadline = time.monotonic() + self.grace
            for child in self._children.values():
                self._dismiss(child)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGTERM)
        elif signum == signal.SIGHUP and not self._stopping:
            self.on_hup()
            log.info("SIGHUP: logs reopened, replacing the children")
            self._replace_all()
        elif signum == signal.SIGUSR1 and not self._stopping:
            log.info("SIGUSR1: replacing the children")
            self._replace_all()

    def _on_message(self, child: _Child) -> None:
        assert child.ctrl is not None
        try:
            data = child.ctrl.recv(256)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._dismiss(child)
            return
        last = data[-1:]
        if child.state in ("idle", "busy"):
            child.state = {_BUSY: "busy", _IDLE: "idle", _RETIRING: "retiring"}.get(
                last, child.state
            )

    def _dismiss(self, child: _Child) -> None:
        """Close our end of the child's control socket: an idle child exits at once, a busy one
        after its request."""
        if child.ctrl is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(child.ctrl)
            child.ctrl.close()
            child.ctrl = None
        if child.state != "retiring":
            child.state = "leaving"

    def _replace_all(self) -> None:
        """Dismiss every child and fork as many new ones (they start with the new log fds)."""
        serving = [c for c in self._children.values() if c.state in ("idle", "busy")]
        for child in list(self._children.values()):
            self._dismiss(child)
        self._spawn(max(len(serving), self.minspare, 1))

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = self._children.pop(pid, None)
            if child is None:
                continue
            self._dismiss(child)
            if status and not self._stopping:
                how = (
                    f"signal {signal.Signals(-os.waitstatus_to_exitcode(status)).name}"
                    if os.WIFSIGNALED(status)
                    else f"status {os.waitstatus_to_exitcode(status)}"
                )
                log.warning("child %d exited with %s; replacing it", pid, how)
                if time.monotonic() - child.started < 1.0:
                    self._spawn_after = time.monotonic() + 1.0  # a child that dies at birth

    def _balance(self) -> None:
        serving = [c for c in self._children.values() if c.state in ("idle", "busy")]
        idle = sum(1 for c in serving if c.state == "idle")
        if idle < self.minspare and len(serving) < self.maxchildren:
            if time.monotonic() < self._spawn_after:
                return
            wanted = self.minspare - idle
            if idle == 0:
                wanted = max(wanted, len(serving))  # a burst: double the pool
            self._spawn(min(wanted, self.maxchildren - len(serving)))
        elif idle > self.maxspare:
            # Shrink slowly, one child a second while the excess lasts (Apache's way): a burst
            # that pauses for a few milliseconds must not kill and re-fork the pool.
            now = time.monotonic()
            if self._excess_since is None:
                self._excess_since = now
            elif now - self._excess_since >= 1.0:
                oldest = min((c for c in serving if c.state == "idle"), key=lambda c: c.started)
                self._dismiss(oldest)
                self._excess_since = now
            return
        self._excess_since = None

    def _spawn(self, count: int) -> None:
        # What the parent holds is shared with the children until written to; a collection in
        # a child would write to every object's GC header and copy the whole heap.
        gc.freeze()
        for _ in range(count):
            parent_end, child_end = socket.socketpair()
            # Until the child has handlers of its own, a signal sent to it would run the
            # parent's, whose wakeup fd it shares: a TERM to a child just forked reached the
            # parent as a second TERM, and it killed the children. Held pending until then.
            self._mask = signal.pthread_sigmask(signal.SIG_BLOCK, _PARENT_SIGNALS)
            try:
                pid = os.fork()
            except OSError as exc:
                signal.pthread_sigmask(signal.SIG_SETMASK, self._mask)
                parent_end.close()
                child_end.close()
                log.error("cannot fork a child (%s); retrying in a second", exc.strerror)
                self._spawn_after = time.monotonic() + 1.0
                return
            if pid == 0:
                parent_end.close()
                self._become_child(child_end)
            signal.pthread_sigmask(signal.SIG_SETMASK, self._mask)
            child_end.close()
            parent_end.setblocking(False)
            child = _Child(pid, parent_end, "idle", time.monotonic())
            self._children[pid] = child
            self._selector.register(parent_end, selectors.EVENT_READ, child)

    def _kill_all(self) -> None:
        for pid in list(self._children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for pid in list(self._children):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            self._dismiss(self._children.pop(pid))

    # -- child -------------------------------------------------------------------------------
    def _become_child(self, ctrl: socket.socket) -> None:
        """In the forked child: drop the parent's state, serve, and never return."""
        code = 0
        try:
            for other in self._children.values():
                if other.ctrl is not None:
                    other.ctrl.close()
            self._children = {}
            self._selector.close()
            self._signals.forget()
            code = _ChildLife(self, ctrl).serve()
        except BaseException:
            log.exception("child %d failed", os.getpid())
            code = 1
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            os._exit(code)


class _ChildLife:
    """A child's life: wait for a connection or a word from the parent, serve, report."""

    def __init__(self, loop: PreforkLoop, ctrl: socket.socket) -> None:
        self.loop = loop
        self.ctrl = ctrl
        self.stopping = False

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        # Runs between bytecodes of the serving code: finish the current request, end idle
        # kept-alive connections now (a shutdown() wakes their blocked recv()).
        self.stopping = True
        self.loop.live.stop_all()

    def serve(self) -> int:
        for signum in (signal.SIGHUP, signal.SIGUSR1):
            signal.signal(signum, signal.SIG_IGN)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_stop)
        signal.pthread_sigmask(signal.SIG_SETMASK, self.loop._mask)  # what came meanwhile, now
        listen = self.loop._listener.sock
        poller = select.epoll()
        exclusive = getattr(select, "EPOLLEXCLUSIVE", 0)
        poller.register(listen.fileno(), select.EPOLLIN | exclusive)
        poller.register(self.ctrl.fileno(), select.EPOLLIN)
        poller.register(wake_r, select.EPOLLIN)
        served = 0
        maxrequests = self.loop.maxrequests
        # A fixed pool (minspare = maxchildren) never grows nor shrinks: the parent only needs
        # to hear about retirements, so busy/idle reports (two parent wake-ups a request) go.
        report = self.loop.minspare < self.loop.maxchildren
        while not self.stopping:
            ready = {fd for fd, _ in poller.poll()}
            if self.stopping or self.ctrl.fileno() in ready:
                break
            if wake_r in ready:
                with contextlib.suppress(OSError):
                    os.read(wake_r, 512)
            if listen.fileno() not in ready:
                continue
            try:
                sock, addr = listen.accept()
            except (BlockingIOError, InterruptedError):
                continue  # another child took it
            served += 1
            last = 0 < maxrequests <= served
            if (report or last) and not self._tell(_RETIRING if last else _BUSY):
                sock.close()
                break
            try:
                self.loop.job(sock, addr)
            except Exception:
                log.exception("error serving a connection")
            if last or self.stopping or (report and not self._tell(_IDLE)):
                break
        return 0

    def _tell(self, state: bytes) -> bool:
        try:
            self.ctrl.sendall(state)
        except OSError:
            return False
        return True
