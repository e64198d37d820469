"""The warm start: fork each worker from a template process that already imported the libraries.

The template is a fresh interpreter started with ``subprocess`` (the supervisor itself never
forks: it runs threads). It learns what to import from the workers' reports (their stdlib and
site-packages modules) plus ``SupervisorConfig.preload``, and reports the files it imported: a
change to one of them (a package upgraded in the virtualenv) restarts the template. While no
template is ready (the very first start, or right after a restart of the template) workers are
spawned cold, so a start never waits for the template.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from typing import Any

from .. import protocol
from ..config import SupervisorConfig
from . import Starter, WorkerHandle
from .spawn import SpawnStarter

logger = logging.getLogger("reloader")

FORK_TIMEOUT = 5.0
MAX_TEMPLATE_FAILURES = 3


class ForkedWorker(WorkerHandle):
    """A fork of the template. Its exit status comes from the template; if the template went
    first, the orphan is reaped by init and only its disappearance can be seen."""

    def __init__(self, generation: int, pid: int, control: socket.socket) -> None:
        self.generation = generation
        self._pid = pid
        self.control = control
        self.status: int | None = None
        self.orphaned = False

    @property
    def pid(self) -> int | None:
        return self._pid

    def poll(self) -> int | None:
        if self.status is None and self.orphaned:
            try:
                os.kill(self._pid, 0)
            except ProcessLookupError:
                self.status = 0  # gone; init reaped it and kept its status
        return self.status

    def send_signal(self, signum: int) -> None:
        if self.status is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signum)


class ForkStarter(Starter):
    name = "fork"

    def __init__(
        self,
        config: SupervisorConfig,
        listen_fds: list[int],
        on_template_files: Callable[[list[str], int], None],
    ) -> None:
        self.config = config
        self.listen_fds = listen_fds
        self.on_template_files = on_template_files
        self.spawn = SpawnStarter(config, listen_fds)
        self.template: subprocess.Popen[bytes] | None = None
        self.control: socket.socket | None = None
        self.reader = protocol.MessageReader()
        self.ready = False
        self.learned: dict[str, None] = dict.fromkeys(config.preload)
        self.workers: dict[int, ForkedWorker] = {}
        self.pending: list[dict[str, Any]] = []
        self.failures = 0
        self.disabled = False
        self.template_files: set[str] = set()
        self.unsent: list[str] = []
        self.batch_started_ns = 0
        # The template starts once the first worker serves, not beside it: on a small machine
        # they would only slow each other down (see worker_ready).
        self.started_once = False

    # ----------------------------------------------------------------- the template
    def start_template(self) -> None:
        if self.disabled:
            return
        ours, theirs = socket.socketpair()
        base = self.config.template_env
        if base is None:
            base = self.config.env if self.config.env is not None else os.environ
        info = {"role": "template", "pgid": os.getpgrp()}
        env = protocol.child_env(base, theirs.fileno(), self.listen_fds, info)
        argv = [self.config.python, *self.config.interpreter_flags, "-m", "reloader._template"]
        try:
            # Its own process group: Ctrl-C and `kill -TERM -PGID` are the supervisor's to act on,
            # even while the template is still importing. Its forks join our group again.
            self.template = subprocess.Popen(
                argv,
                cwd=self.config.cwd,
                env=env,
                pass_fds=(theirs.fileno(), *self.listen_fds),
                process_group=0,
            )
        except OSError as exc:
            ours.close()
            self.disable(f"cannot start the fork template: {exc}")
            return
        finally:
            theirs.close()
        self.control = ours
        self.reader = protocol.MessageReader()
        self.ready = False
        self.unsent = []
        # The configured modules are imported even from outside site-packages (an editable
        # install of the tool itself); their packages are vouched for.
        trusted = sorted({name.split(".")[0] for name in self.config.preload})
        self.preload(list(self.learned), trusted=trusted)

    def stop_template(self) -> None:
        if self.control is not None:
            self.control.close()
            self.control = None
        if self.template is not None:
            # It exits when its control socket closes; it ignores SIGTERM, so kill a stuck one.
            try:
                self.template.wait(2)
            except subprocess.TimeoutExpired:
                self.template.kill()
                self.template.wait()
            self.template = None
        self.ready = False
        # Its forks live on (each has its own control socket to the supervisor) as orphans.
        for worker in self.workers.values():
            worker.orphaned = True
        self.workers.clear()

    def restart(self, reason: str) -> None:
        if self.disabled:
            return
        logger.info("%s; restarting the fork template.", reason)
        self.stop_template()
        self.template_files.clear()
        self.start_template()

    def owns(self, path: str) -> bool:
        """A file the template imported, or a .pth file next to one: changing it changes what
        the template would import."""
        if path in self.template_files:
            return True
        return path.endswith(".pth") and any(
            os.path.dirname(f) == os.path.dirname(path) for f in self.template_files
        )

    def disable(self, reason: str) -> None:
        if not self.disabled:
            logger.warning("%s; workers start cold (spawn) from now on.", reason)
        self.disabled = True
        self.stop_template()

    def send(self, kind: str, fds: tuple[int, ...] = (), **fields: Any) -> bool:
        if self.control is None:
            return False
        try:
            if fds:
                socket.send_fds(self.control, [protocol.encode(kind, **fields)], list(fds))
            else:
                self.control.sendall(protocol.encode(kind, **fields))
        except OSError:
            self.template_died()
            return False
        return True

    def template_died(self) -> None:
        status = self.template.wait(2) if self.template else None
        logger.warning("The fork template exited (status %s); starting a new one.", status)
        self.failures += 1
        self.stop_template()
        if self.failures >= MAX_TEMPLATE_FAILURES:
            self.disable(f"the fork template failed {self.failures} times (last status {status})")
        else:
            self.start_template()

    # ----------------------------------------------------------------- the Starter interface
    def learn(self, modules: list[str]) -> None:
        new = [m for m in modules if m not in self.learned]
        if not new:
            return
        self.learned.update(dict.fromkeys(new))
        if self.control is not None:
            self.preload(new)
        else:
            self.unsent += new

    def preload(self, modules: list[str], **fields: Any) -> None:
        # A file the template imports from now on may change before it reports it: its report
        # is checked against this time (see the supervisor's _watch_template_files).
        self.batch_started_ns = time.time_ns()
        self.send(protocol.PRELOAD, modules=modules, **fields)

    def worker_ready(self) -> None:
        """Start the template once the first worker serves (see __init__)."""
        if not self.started_once:
            self.started_once = True
            self.start_template()

    def start(self, generation: int, info: Mapping[str, Any]) -> WorkerHandle:
        info = {**info, "mode": "fork"}
        if not self.ready:
            logger.debug("The fork template is not ready yet: starting this worker cold.")
            return self.spawn.start(generation, info)
        ours, theirs = socket.socketpair()
        env = dict(self.config.env if self.config.env is not None else os.environ)
        sent = self.send(
            protocol.FORK,
            fds=(theirs.fileno(),),
            generation=generation,
            target=self.config.target.to_dict(),
            env=env,
            cwd=self.config.cwd or os.getcwd(),
            info={**info, "start": "fork"},
        )
        theirs.close()
        reply = self.wait_forked(generation) if sent else None
        if reply is None or "pid" not in reply:
            ours.close()
            if reply is not None:
                self.disable(f"the fork template cannot fork: {reply.get('error')}")
            return self.spawn.start(generation, info)
        worker = ForkedWorker(generation, int(reply["pid"]), ours)
        self.workers[worker.generation] = worker
        return worker

    def wait_forked(self, generation: int) -> dict[str, Any] | None:
        deadline = time.monotonic() + FORK_TIMEOUT
        while self.control is not None and time.monotonic() < deadline:
            for message in self.pending:
                if message["kind"] == protocol.FORKED and message.get("generation") == generation:
                    self.pending.remove(message)
                    return message
            ready, _, _ = select.select([self.control], [], [], deadline - time.monotonic())
            if ready and not self.read():
                return None
        if self.control is not None:
            self.restart("The fork template did not answer")
        return None

    def fileno(self) -> int | None:
        return self.control.fileno() if self.control is not None else None

    def handle_readable(self) -> None:
        if not self.read():
            return
        # start() waits for its own "forked" synchronously: one arriving now is late, and the
        # fork it names belongs to nobody.
        for message in self.pending:
            if message["kind"] == protocol.FORKED and "pid" in message:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(message["pid"]), signal.SIGKILL)
        self.pending = []

    def read(self) -> bool:
        """Read and apply the template's messages; False when the template is gone."""
        assert self.control is not None
        try:
            data = self.control.recv(1 << 20)
        except OSError:
            data = b""
        if not data:
            self.template_died()
            return False
        control = self.control
        for message in self.reader.feed(data):
            if self.control is not control:
                break  # a message made us restart the template: the rest was the old one's
            kind = message["kind"]
            if kind == protocol.HELLO:
                self.ready = True
            elif kind == protocol.PRELOADED:
                self.failures = 0
                logger.debug(
                    "Fork template preloaded %s modules in %ss.",
                    message.get("modules"),
                    message.get("seconds"),
                )
            elif kind == protocol.WATCH:
                files = [str(f) for f in message.get("files", [])]
                self.template_files.update(files)
                self.on_template_files(files, self.batch_started_ns)
            elif kind == protocol.EXITED:
                for worker in self.workers.values():
                    if worker.pid == message.get("pid"):
                        worker.status = int(message.get("status", -1))
                self.workers = {g: w for g, w in self.workers.items() if w.status is None}
            elif kind == protocol.FAILED:
                self.disable(f"the fork template failed: {message.get('traceback')}")
                return False
            else:
                self.pending.append(message)
        return True

    def close(self) -> None:
        self.stop_template()
