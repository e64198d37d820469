"""The cold start: every worker is a fresh interpreter (or the plain command), started with
``subprocess`` so that no thread of the supervisor ever meets a bare ``fork()``."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
from collections.abc import Mapping
from typing import Any

from .. import protocol
from ..children import Reaper, guarded
from ..config import SupervisorConfig
from . import Starter, StartError, WorkerHandle


def worker_argv(config: SupervisorConfig) -> list[str]:
    target = config.target
    if target.kind == "command":
        # It cannot notice the supervisor's death by its control socket: the kernel tells it.
        return guarded([target.value, *target.args], config.python)
    return [
        config.python,
        *config.interpreter_flags,
        "-m",
        "reloader._boot",
        target.kind,
        target.value,
        *target.args,
    ]


class SpawnedWorker(WorkerHandle):
    def __init__(self, generation: int, proc: subprocess.Popen[bytes], control: socket.socket):
        self.generation = generation
        self.proc = proc
        self.control = control

    @property
    def pid(self) -> int | None:
        return self.proc.pid

    def poll(self) -> int | None:
        return self.proc.poll()

    def send_signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            if self.proc.poll() is None:
                self.proc.send_signal(signum)


class SpawnStarter(Starter):
    name = "spawn"

    def __init__(self, config: SupervisorConfig, listen_fds: list[int], reaper: Reaper) -> None:
        self.config = config
        self.listen_fds = listen_fds
        self.reaper = reaper

    def start(self, generation: int, info: Mapping[str, Any]) -> WorkerHandle:
        ours, theirs = socket.socketpair()
        return self.start_with(generation, info, ours, theirs)

    def start_with(
        self,
        generation: int,
        info: Mapping[str, Any],
        ours: socket.socket,
        theirs: socket.socket,
    ) -> SpawnedWorker:
        """Start a worker on a control socket pair made beforehand (closes ``theirs``)."""
        base = self.config.env if self.config.env is not None else os.environ
        info = {"mode": "spawn", **info, "start": "spawn"}
        env = protocol.child_env(base, theirs.fileno(), self.listen_fds, info)
        try:
            proc = subprocess.Popen(
                worker_argv(self.config),
                cwd=self.config.cwd,
                env=env,
                pass_fds=(theirs.fileno(), *self.listen_fds),
            )
        except OSError as exc:
            ours.close()
            raise StartError(exc.errno or 0, f"cannot start the worker: {exc}") from None
        finally:
            theirs.close()
        self.reaper.own(proc)
        return SpawnedWorker(generation, proc, ours)
