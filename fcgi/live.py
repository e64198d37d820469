"""The connections being served, so that a graceful stop can end the idle kept-alive ones.

A connection between two requests (nginx's ``fastcgi_keep_conn on``, or AJP, whose connections
are persistent) blocks in ``recv()`` with nothing to finish; flup's threaded ``shutdown()`` joins
those threads and hangs (``flup/server/threadpool.py:254-256``, defect 12). :meth:`stop_all` asks
every connection to end after its current request and shuts the idle ones down at once.

No lock: ``set.add``/``set.discard``/``list(set)`` are single C calls under the GIL, so they are
atomic with respect to other threads and to signal handlers (a prefork child calls
:meth:`stop_all` from its SIGTERM handler, where taking a lock could deadlock).
"""

from __future__ import annotations

from typing import Protocol


class Stoppable(Protocol):
    def stop(self) -> None:
        """End after the current request; if idle between requests, end now."""


class LiveConnections:
    def __init__(self) -> None:
        self._conns: set[Stoppable] = set()
        self.stopping = False

    def add(self, conn: Stoppable) -> None:
        self._conns.add(conn)
        if self.stopping:
            conn.stop()

    def discard(self, conn: Stoppable) -> None:
        self._conns.discard(conn)

    def stop_all(self) -> None:
        self.stopping = True
        for conn in list(self._conns):
            conn.stop()

    def __len__(self) -> int:
        return len(self._conns)
