"""The threaded process model: one process, a thread per connection in progress.

This replaces ``flup/server/threadedserver.py`` and ``threadpool.py`` (1.0.3), whose defects were:

5. Too few threads: ``ThreadPool.addJob`` (threadpool.py:271-291) starts a thread only to keep
   ``minSpare`` idle, counting a thread as idle until it *picks up* its job, so a burst piles up
   behind a handful of threads (100 concurrent one-second requests ran at 21 req/s). And the
   accept loop ``select()``\\s on the listening socket (threadedserver.py:76): past fd 1023 it
   raises and the server drops connections.
12. ``shutdown()`` joins every thread (threadpool.py:254-256): a thread idle on a kept-alive
   connection never ends, so SIGTERM hangs.

Here a connection is handed to an idle thread, or a new thread is started for it, up to
``maxthreads``; when all are busy, up to ``maxthreads`` more connections wait in a queue (a
thread that finishes takes the next at once), and beyond that the loop stops accepting
(connections wait in the kernel's backlog) until one is free. Idle threads above ``maxspare``
exit; ``minspare`` idle threads are kept ready. The accept loop waits with ``selectors``
(epoll). TERM/INT close the listening socket, end the idle kept-alive connections and wait (up
to ``grace`` seconds) for the requests in progress; a second TERM/INT stops waiting. HUP calls
``on_hup`` (reopen the logs); USR1 has nothing to replace in one process and is logged.
"""

from __future__ import annotations

import collections
import logging
import selectors
import signal
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from .live import LiveConnections
from .signals import SignalPipe
from .sockets import Listener

log = logging.getLogger("fcgi")

_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1)


class _Pool:
    """Threads running ``job(sock, addr)``: one per connection in progress, up to ``maxthreads``."""

    def __init__(
        self,
        job: Callable[[socket.socket, Any], None],
        minspare: int,
        maxspare: int,
        maxthreads: int,
    ) -> None:
        self.job = job
        self.minspare = min(minspare, maxthreads)
        self.maxspare = max(maxspare, self.minspare)
        self.maxthreads = maxthreads
        self._cond = threading.Condition()
        self._queue: collections.deque[tuple[socket.socket, Any]] = collections.deque()
        self._threads: set[threading.Thread] = set()
        self._idle = 0  # threads waiting for a job
        self._starting = 0  # threads started that have not reached the wait yet
        self._stopping = False

    def start(self) -> None:
        with self._cond:
            for _ in range(self.minspare):
                self._start_thread()

    def _start_thread(self) -> None:
        thread = threading.Thread(target=self._work, name="fcgi-worker", daemon=True)
        self._threads.add(thread)
        self._starting += 1
        thread.start()

    def _free(self) -> bool:
        # A thread for the next connection, or room in the queue: up to ``maxthreads`` accepted
        # connections wait here, so that a thread that finishes takes the next one at once
        # instead of waiting for the accepting thread to get the GIL back.
        return (
            self._idle + self._starting > len(self._queue)
            or len(self._threads) < self.maxthreads
            or len(self._queue) < self.maxthreads
        )

    def has_capacity(self) -> bool:
        with self._cond:
            return self._free()

    def wait_capacity(self, timeout: float) -> None:
        with self._cond:
            self._cond.wait_for(self._free, timeout)

    def submit(self, sock: socket.socket, addr: Any) -> None:
        with self._cond:
            self._queue.append((sock, addr))
            spare = self._idle + self._starting - len(self._queue)
            if spare >= 0:
                self._cond.notify()
            # One thread for this connection if none is idle, then keep minspare ready.
            while spare < self.minspare and len(self._threads) < self.maxthreads:
                self._start_thread()
                spare += 1

    def _work(self) -> None:
        me = threading.current_thread()
        starting = 1
        while True:
            with self._cond:
                self._starting -= starting
                starting = 0
                self._idle += 1
                while not self._queue and not self._stopping:
                    self._cond.wait()
                self._idle -= 1
                if not self._queue:
                    self._threads.discard(me)
                    self._cond.notify_all()
                    return
                sock, addr = self._queue.popleft()
            try:
                self.job(sock, addr)
            except Exception:
                log.exception("error serving a connection")
            with self._cond:
                if self._idle >= self.maxspare or self._stopping:
                    self._threads.discard(me)
                    self._cond.notify_all()
                    return
                self._cond.notify_all()  # a thread is free: wake wait_capacity()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()

    def wait_done(self, timeout: float) -> bool:
        """Wait until every queued connection is served and every thread is gone."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._threads and not self._queue, timeout)

    def busy(self) -> int:
        with self._cond:
            return len(self._threads) - self._idle


class ThreadedLoop:
    """Serve ``job(sock, addr)`` on a listening socket with a pool of threads."""

    def __init__(
        self,
        job: Callable[[socket.socket, Any], None],
        live: LiveConnections,
        *,
        minspare: int,
        maxspare: int,
        maxthreads: int,
        grace: float,
        on_hup: Callable[[], None] = lambda: None,
    ) -> None:
        self.live = live
        self.pool = _Pool(job, minspare, maxspare, maxthreads)
        self.grace = grace
        self.on_hup = on_hup
        self._stopping = False
        self._signals: SignalPipe | None = None

    def listen_for_signals(self) -> None:
        """Take TERM, INT, HUP, USR1 from now on (``run`` acts on them): called before the
        server says it serves, so that a signal sent at once is not the default one."""
        if self._signals is None:
            self._signals = SignalPipe(_SIGNALS).install()

    def run(self, listener: Listener) -> None:
        """Run until TERM/INT and the requests in progress are done (or ``grace`` ran out)."""
        self.listen_for_signals()
        signals = self._signals
        assert signals is not None
        selector = selectors.DefaultSelector()
        sock = listener.sock
        sock.setblocking(False)
        selector.register(signals, selectors.EVENT_READ)
        selector.register(sock, selectors.EVENT_READ)
        self.pool.start()
        try:
            while not self._stopping:
                if not self.pool.has_capacity():
                    self.pool.wait_capacity(0.2)
                    self._handle(signals.drain())
                    continue
                for key, _ in selector.select():
                    if key.fileobj is signals:
                        self._handle(signals.drain())
                    elif not self._stopping:
                        self._accept(sock)
            selector.unregister(sock)
            listener.close()  # refuse new connections at once; the backlog is dropped
            self.live.stop_all()
            self.pool.stop()
            deadline = time.monotonic() + self.grace
            while not self.pool.wait_done(0.2):
                if time.monotonic() >= deadline or self._handle(signals.drain()):
                    log.warning("%d request(s) still running: not waiting", self.pool.busy())
                    break
        finally:
            selector.close()
            signals.close()

    def _accept(self, sock: socket.socket) -> None:
        while self.pool.has_capacity():
            try:
                conn, addr = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.error("accept() failed: %s", exc)  # e.g. EMFILE: let a request finish
                time.sleep(0.05)
                return
            conn.setblocking(True)
            self.pool.submit(conn, addr)

    def _handle(self, signums: list[int]) -> bool:
        """Act on signals; return True when a stop was asked for while already stopping."""
        again = False
        for signum in signums:
            name = signal.Signals(signum).name
            if signum in (signal.SIGTERM, signal.SIGINT):
                if self._stopping:
                    again = True
                else:
                    log.info("%s: stopping gracefully", name)
                    self._stopping = True
            elif signum == signal.SIGHUP:
                self.on_hup()
                log.info("SIGHUP: logs reopened")
            elif signum == signal.SIGUSR1:
                log.info("SIGUSR1: nothing to replace in threaded mode")
        return again
