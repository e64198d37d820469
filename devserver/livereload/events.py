"""The live-reload event stream: what a worker tells the browsers that show its pages.

One ``Hub`` per serving process. Each browser holds one stream (``text/event-stream``, shared by
its tabs through a SharedWorker: see ``client.js``); every event goes to every stream as one
JSON ``data:`` line:

``{"type": "hello", "boot": ID}``
    first on every stream: the process that serves it. A page carries the ID of the process
    that rendered it; a tab that hears another one reloads (the code changed and a new worker
    serves: the stream reconnected into the listen backlog the supervisor holds, so the reload
    never meets a refused connection or a restart page).
``{"type": "reload", "reason": str}``
    reload the page: a template, a translation catalog, a fixture, a JS or image file changed.
``{"type": "css", "paths": [url path, ...]}``
    swap these stylesheets in place, no reload.

``close()`` ends every stream at once (the worker stops: a stream must never delay a restart).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

# Beside Django's reloader's lines (shown with DEBUG on), with -v 2 only.
logger = logging.getLogger("django.utils.autoreload")

RETRY_MS = 10  # how soon a browser reconnects once the stream ends (EventSource's retry): the
# reconnect waits in the backlog the supervisor holds, so sooner costs nothing
HEARTBEAT = 15.0  # a comment line this often (proxies drop idle connections)
PEER_CHECK = 1.0  # how often a quiet stream looks whether its browser hung up


class Hub:
    def __init__(self, verbose: bool = False) -> None:
        self.verbose = verbose
        # Made in the process that serves (never in a checkpoint): each worker has its own.
        self.boot = f"{os.getpid()}-{time.time_ns()}"
        self._lock = threading.Lock()
        self._streams: set[queue.SimpleQueue[dict[str, Any] | None]] = set()
        self._closed = False

    @property
    def streams(self) -> int:
        with self._lock:
            return len(self._streams)

    def publish(self, event: dict[str, Any]) -> None:
        with self._lock:
            streams = list(self._streams)
        for stream in streams:
            stream.put(event)
        if self.verbose:
            logger.info("Live reload: %s sent to %d browser(s)", event["type"], len(streams))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            streams, self._streams = list(self._streams), set()
        for stream in streams:
            stream.put(None)

    def stream(self, gone: Callable[[], bool] | None = None) -> Iterator[bytes]:
        """The body of one event-stream response. ``gone()`` says whether the browser left (a
        closed tab's stream ends within ``PEER_CHECK`` seconds, not at the next write); see
        ``hung_up`` for a socket's."""
        mine: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        with self._lock:
            if self._closed:
                return
            self._streams.add(mine)
            count = len(self._streams)
        if self.verbose:
            logger.info("Live reload: a browser connected (%d stream(s) open)", count)
        try:
            yield f"retry: {RETRY_MS}\n".encode() + _data({"type": "hello", "boot": self.boot})
            quiet_since = time.monotonic()
            while True:
                try:
                    event = mine.get(timeout=PEER_CHECK)
                except queue.Empty:
                    if gone is not None and gone():
                        return
                    if time.monotonic() - quiet_since >= HEARTBEAT:
                        quiet_since = time.monotonic()
                        yield b": ping\n\n"
                    continue
                if event is None:
                    return
                yield _data(event)
        finally:
            with self._lock:
                self._streams.discard(mine)


def hung_up(sock: socket.socket) -> bool:
    """The browser closed the connection (it sends nothing on an event stream: readable means
    end of file, or a reset). Over TLS anything readable means it left: its close_notify."""
    if isinstance(sock, ssl.SSLSocket):
        try:
            return bool(select.select([sock], [], [], 0)[0])
        except (OSError, ValueError):
            return True
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def _data(event: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(event)}\n\n".encode()
