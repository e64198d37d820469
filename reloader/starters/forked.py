"""A worker asked of the fork template: a fork once the template answers, or else a cold start.

The handle exists from the moment the supervisor asks for the worker, so that the supervisor
can register its control socket at once and never wait. Its life: ``WAITING`` (the template was
asked and has not said it is between two imports), ``HANDED`` (the worker's control socket went
to the template, which forks at once), ``RUNNING`` (its PID is known: from the template's
``forked``, or the worker's own ``hello``), or ``SPAWNED`` (the template did not answer in time:
the worker was started cold on the same control socket, and this handle now speaks for it).
A stop asked before the worker exists cancels it: it never runs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Mapping
from typing import Any

from . import WorkerHandle
from .spawn import SpawnedWorker

WAITING = "waiting"
HANDED = "handed"
RUNNING = "running"
SPAWNED = "spawned"
CANCELLED = "cancelled"


class ForkedWorker(WorkerHandle):
    """A worker forked from the template (see the module docstring)."""

    def __init__(
        self,
        generation: int,
        control: socket.socket,
        theirs: socket.socket,
        info: Mapping[str, Any],
        deadline: float,
    ) -> None:
        self.generation = generation
        self.control = control
        self.theirs: socket.socket | None = theirs  # until handed to the template
        self.info = dict(info)
        self.deadline = deadline
        self.state = WAITING
        self.status: int | None = None
        self.orphaned = False  # its template is gone: its parent is now us, or init
        self.spawned: SpawnedWorker | None = None
        self._pid: int | None = None
        self._signals: list[int] = []  # asked for before its PID was known
        self.asked_at = time.monotonic()
        self.link: Any = None  # the fork server asked for it (starters.links.ServerLink)

    @property
    def pid(self) -> int | None:
        return self.spawned.pid if self.spawned is not None else self._pid

    def hello(self, pid: int) -> None:
        self.started(pid)

    def started(self, pid: int) -> None:
        """Its PID is known: deliver what was asked of it meanwhile."""
        if self.spawned is not None or self._pid is not None:
            return
        self._pid = pid
        self.state = RUNNING
        for signum in self._signals:
            self.send_signal(signum)
        self._signals = []

    def handed(self) -> socket.socket:
        """The worker's end of its control socket, given to the template."""
        assert self.theirs is not None
        theirs, self.theirs = self.theirs, None
        self.state = HANDED
        return theirs

    def fell_back(self, spawned: SpawnedWorker) -> None:
        self.spawned = spawned
        self.theirs = None
        self.state = SPAWNED
        for signum in self._signals:
            spawned.send_signal(signum)
        self._signals = []

    def cancel(self) -> None:
        """Never started, never will: it counts as a worker that stopped."""
        self.state = CANCELLED
        self.status = 0
        if self.theirs is not None:
            self.theirs.close()
            self.theirs = None

    def poll(self) -> int | None:
        if self.spawned is not None:
            return self.spawned.poll()
        if self.status is None and self.orphaned and self._pid is not None:
            # Its parent (the template) is gone. If we are not its new parent, init reaps it;
            # if we are (a subreaper, PID 1), the supervisor's reaper sets its status.
            try:
                os.kill(self._pid, 0)
            except ProcessLookupError:
                self.status = 0
        return self.status

    def send_signal(self, signum: int) -> None:
        if self.spawned is not None:
            self.spawned.send_signal(signum)
        elif self.status is not None:
            return
        elif self._pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signum)
        elif self.state == WAITING and signum in (signal.SIGTERM, signal.SIGKILL):
            self.cancel()
        else:
            self._signals.append(signum)

    def close(self) -> None:
        if self.theirs is not None:
            self.theirs.close()
            self.theirs = None
        super().close()
