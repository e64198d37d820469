"""How a worker is started: one replaceable piece.

``spawn`` starts a fresh interpreter per worker (the cold start); ``fork`` forks each worker from
a template process that already imported the libraries (the warm start). Both hand back a
``WorkerHandle``; the supervisor does not know which one it talks to.
"""

from __future__ import annotations

import os
import socket
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any

from ..children import Reaper
from ..config import SupervisorConfig


class StartError(OSError):
    """A worker could not be started at all (e.g. the interpreter does not exist)."""


class WorkerHandle(ABC):
    """A started worker, seen from the supervisor."""

    generation: int
    control: socket.socket

    @property
    @abstractmethod
    def pid(self) -> int | None: ...

    @abstractmethod
    def poll(self) -> int | None:
        """The exit status once the worker ended (negative: killed by that signal), else None."""

    @abstractmethod
    def send_signal(self, signum: int) -> None: ...

    def hello(self, pid: int) -> None:  # noqa: B027 - only a fork learns its PID this way
        """The worker's first message named its PID."""

    def close(self) -> None:
        self.control.close()


class Starter(ABC):
    name: str

    @abstractmethod
    def start(self, generation: int, info: Mapping[str, Any]) -> WorkerHandle:
        """Start worker ``generation``; ``info`` reaches it through the protocol, with
        ``start`` added: how this very worker was started."""

    def filenos(self) -> list[int]:
        """The fds for the supervisor's selector when the starter has messages of its own."""
        return []

    def handle_readable(self, fd: int) -> None:  # noqa: B027 - only the fork start has messages
        """Read the starter's own messages (workers' exit statuses, the template's files)."""

    def changed(self, paths: list[str]) -> None:  # noqa: B027
        """Paths that changed (whatever they mean to the worker): saved states may be stale."""

    def deadline(self) -> float | None:
        """When ``tick`` must run next (``time.monotonic()``), if the starter waits for
        something."""
        return None

    def tick(self, now: float) -> None:  # noqa: B027
        """Act on what did not happen in time (a template that does not answer)."""

    def reaped(self, statuses: Mapping[int, int]) -> None:  # noqa: B027
        """Processes the supervisor reaped that it did not start itself (orphaned forks)."""

    def learn(self, modules: list[str]) -> None:  # noqa: B027
        """Library modules a worker imported (the fork start preloads them)."""

    def worker_ready(self) -> None:  # noqa: B027
        """A worker serves: background work no longer competes with a start."""

    def declined(self, reason: str) -> None:  # noqa: B027 - only a refresh declines
        """The current worker would not have been the same as a cold start (``refresh``)."""

    def owns(self, path: str) -> bool:
        """Whether a change of ``path`` must restart the starter's own processes."""
        return False

    def restart(self, reason: str) -> None:  # noqa: B027
        """Restart the starter's own processes (the template)."""

    def close(self) -> None:  # noqa: B027 - most starters hold nothing
        """Release what the starter holds (the template process)."""


def resolve_start(config: SupervisorConfig) -> str:
    """``auto`` is fork where the platform can fork and the target is Python, else spawn."""
    if config.start != "auto":
        return config.start
    return "fork" if hasattr(os, "fork") and config.target.is_python else "spawn"


def make_starter(
    config: SupervisorConfig,
    listen_fds: list[int],
    on_template_files: Callable[[list[str], int], None],
    reaper: Reaper,
    watch_deps: Callable[[list[str], list[str], int], list[str]],
) -> Starter:
    if resolve_start(config) == "fork":
        from .fork import ForkStarter

        return ForkStarter(config, listen_fds, on_template_files, reaper, watch_deps)
    from .spawn import SpawnStarter

    return SpawnStarter(config, listen_fds, reaper)
