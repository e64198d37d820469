"""How a worker is started: one replaceable piece.

``spawn`` starts a fresh interpreter per worker (the cold start); ``fork`` forks each worker from
a template process that already imported the libraries (the warm start). Both hand back a
``WorkerHandle``; the supervisor does not know which one it talks to.
"""

from __future__ import annotations

import socket
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

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

    def close(self) -> None:
        self.control.close()


class Starter(ABC):
    name: str

    @abstractmethod
    def start(self, generation: int, info: Mapping[str, Any]) -> WorkerHandle: ...

    def fileno(self) -> int | None:
        """An fd for the supervisor's selector when the starter has its own messages."""
        return None

    def handle_readable(self) -> list[tuple[int, int]]:
        """Read the starter's own messages; return (pid, status) of workers that ended."""
        return []

    def close(self) -> None:  # noqa: B027 - most starters hold nothing
        """Release what the starter holds (the template process)."""


def make_starter(config: SupervisorConfig, listen_fds: list[int]) -> Starter:
    from .spawn import SpawnStarter

    return SpawnStarter(config, listen_fds)
