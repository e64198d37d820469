"""The warm start: fork each worker from a process that already did part of its start-up.

The fork template is a fresh interpreter started with ``subprocess`` (the supervisor itself never
forks: it runs threads). It learns what to import from the workers' reports (their stdlib and
site-packages modules) plus ``SupervisorConfig.preload``, and reports the files it imported: a
change to one of them (a package upgraded in the virtualenv) restarts the template.

With ``SupervisorConfig.checkpoints``, the template also forks *builders* that run the program's
start-up and leave checkpoints along it (``reloader.builder``, ``starters.checkpoints``): a
worker is then forked from the deepest checkpoint that did not read what changed, and replays
only the rest of the start-up. After a reload a builder makes again, from there, what the edit
made stale, once the new worker serves.

The supervisor never waits for a fork server. A worker is asked of it (``fork``); it answers
(``forking``) when it can (the template, between two of its imports), and only then gets the
worker's control socket (``socket``) and forks. If it does not answer within ``FORK_PATIENCE`` (a
library that takes long to import), the worker is started cold on that same control socket
instead, as when no template is ready (the very first start, or right after a restart of the
template); after ``MAX_TEMPLATE_FAILURES`` such failures in a row (or deaths), workers start cold
for good.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from typing import Any

from .. import protocol
from ..children import Reaper
from ..config import SupervisorConfig
from . import Starter, StartError, WorkerHandle
from .chain import Chain
from .forked import CANCELLED, HANDED, SPAWNED, WAITING, ForkedWorker
from .links import ServerLink
from .spawn import SpawnStarter

logger = logging.getLogger("reloader")

FORK_PATIENCE = protocol.FORK_PATIENCE
MAX_TEMPLATE_FAILURES = 3


class ForkStarter(Starter):
    name = "fork"

    def __init__(
        self,
        config: SupervisorConfig,
        listen_fds: list[int],
        on_template_files: Callable[[list[str], int], None],
        reaper: Reaper,
        watch_deps: Callable[[list[str], list[str], int], list[str]] | None = None,
    ) -> None:
        self.config = config
        self.listen_fds = listen_fds
        self.on_template_files = on_template_files
        self.reaper = reaper
        self.spawn = SpawnStarter(config, listen_fds, reaper)
        self.process: subprocess.Popen[bytes] | None = None
        self.template: ServerLink | None = None
        self.links: dict[int, ServerLink] = {}  # every fork server and builder, by fd
        self.ready = False
        self.preloaded_once = False
        self.learned: dict[str, None] = dict.fromkeys(config.preload)
        self.workers: dict[int, ForkedWorker] = {}  # by generation
        self.failures = 0
        self.disabled = False
        self.template_files: set[str] = set()
        self.batch_started_ns = 0
        self.chain = (
            Chain(self, watch_deps) if config.checkpoints and watch_deps is not None else None
        )
        # The template starts once the first worker serves, not beside it: on a small machine
        # they would only slow each other down (see worker_ready).
        self.started_once = False

    # ----------------------------------------------------------------- links
    def add_link(self, link: ServerLink) -> None:
        self.links[link.fileno()] = link

    def drop_link(self, link: ServerLink, kill: bool = False) -> None:
        if link.alive:
            self.links.pop(link.fileno(), None)
            link.close(kill=kill)

    def filenos(self) -> list[int]:
        return [fd for fd, link in self.links.items() if link.alive]

    # ----------------------------------------------------------------- the template
    def start_template(self) -> None:
        if self.disabled:
            return
        ours, theirs = socket.socketpair()
        base = self.config.template_env
        if base is None:
            base = self.config.env if self.config.env is not None else os.environ
        info = {"role": "template", "pgid": os.getpgrp(), "supervisor": os.getpid()}
        env = protocol.child_env(base, theirs.fileno(), self.listen_fds, info)
        argv = [self.config.python, *self.config.interpreter_flags, "-m", "reloader._template"]
        try:
            # Its own process group: Ctrl-C and `kill -TERM -PGID` are the supervisor's to act on,
            # even while the template is still importing. Its forks join our group again.
            self.process = subprocess.Popen(
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
        self.reaper.own(self.process)
        self.template = ServerLink(ours, "template", "the fork template")
        self.template.pid = self.process.pid
        self.add_link(self.template)
        self.ready = False
        # The configured modules are imported even from outside site-packages (an editable
        # install of the tool itself); their packages are vouched for.
        trusted = sorted({name.split(".")[0] for name in self.config.preload})
        self.preload(list(self.learned), trusted=trusted)

    def stop_template(self) -> None:
        """End the template now, whatever it is doing (it holds nothing worth a wait: the
        supervisor reaps it later). Its forks live on, each tied to the supervisor by its own
        control socket; the workers asked of it start cold. Checkpoints hold its libraries:
        they go too."""
        if self.template is not None:
            self.drop_link(self.template)
            self.template = None
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            self.process = None
        self.ready = False
        if self.chain is not None:
            self.chain.invalidate_all("the fork template was replaced")
        self.orphan_workers()

    def orphan_workers(self, link: ServerLink | None = None) -> None:
        """The fork server of these workers is gone: those not forked yet start cold."""
        for worker in list(self.workers.values()):
            if link is not None and worker.link is not link:
                continue
            if worker.state == WAITING:
                self.fall_back(worker)
            elif worker.state != SPAWNED:
                worker.orphaned = True
        self.forget_finished()

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

    def failed(self, reason: str) -> None:
        """One more failure of the template in a row: replace it, or give up on it."""
        self.failures += 1
        if self.failures >= MAX_TEMPLATE_FAILURES:
            self.disable(f"{reason} ({self.failures} times in a row)")
        else:
            logger.warning("%s; starting a new one.", reason)
            self.stop_template()
            self.start_template()

    def template_died(self) -> None:
        status = self.process.poll() if self.process is not None else None
        shown = "unknown" if status is None else status
        self.failed(f"The fork template exited (status {shown})")

    # ----------------------------------------------------------------- the Starter interface
    def learn(self, modules: list[str]) -> None:
        new = [m for m in modules if m not in self.learned]
        if not new:
            return
        self.learned.update(dict.fromkeys(new))
        if self.template is not None:
            self.preload(new)

    def preload(self, modules: list[str], **fields: Any) -> None:
        # A file the template imports from now on may change before it reports it: its report
        # is checked against this time (see the supervisor's _watch_template_files).
        self.batch_started_ns = time.time_ns()
        if self.template is not None and not self.template.send(
            protocol.PRELOAD, modules=modules, **fields
        ):
            self.template_died()

    def worker_ready(self) -> None:
        """Start the template once the first worker serves (see __init__); then builders."""
        if not self.started_once:
            self.started_once = True
            self.start_template()
        if self.chain is not None:
            self.chain.worker_ready()

    def changed(self, paths: list[str]) -> None:
        if self.chain is not None:
            self.chain.changed(paths)

    def start(self, generation: int, info: Mapping[str, Any]) -> WorkerHandle:
        info = {**info, "mode": "fork"}
        busy = any(w.state == WAITING for w in self.workers.values())
        if busy:
            logger.debug("The fork template is not ready: starting this worker cold.")
            return self.spawn.start(generation, info)
        server, refresh, budget = self.chain.choose() if self.chain is not None else (None, [], 0)
        link = server.link if server is not None else self.template
        if link is None or (server is None and not self.ready):
            logger.debug("The fork template is not ready: starting this worker cold.")
            return self.spawn.start(generation, info)
        if server is not None and refresh:
            shown = ", ".join(os.path.basename(p) for p in refresh[:3])
            more = f" and {len(refresh) - 3} more" if len(refresh) > 3 else ""
            logger.debug(
                "Reloading from the last checkpoint (%.2fs of start-up kept), importing again "
                "what %s%s reach.",
                server.seconds,
                shown,
                more,
            )
        elif server is not None:
            logger.debug(
                "Reloading from %s (%.2fs of start-up kept).", server.label, server.seconds
            )
        else:
            logger.debug("Reloading from the fork template.")
        return self.ask(
            link,
            generation,
            info,
            role="worker",
            checkpoint=server,
            refresh=refresh,
            budget=budget,
        )

    def declined(self, reason: str) -> None:
        if self.chain is not None:
            self.chain.declined(reason)

    def ask(
        self,
        link: ServerLink,
        generation: int,
        info: Mapping[str, Any],
        role: str,
        checkpoint: Any = None,
        refresh: list[str] | None = None,
        budget: float = 0.0,
    ) -> ForkedWorker:
        """Ask a fork server for a child (a worker, or a builder)."""
        ours, theirs = socket.socketpair()
        worker = ForkedWorker(generation, ours, theirs, info, time.monotonic() + FORK_PATIENCE)
        worker.link = link
        self.workers[generation] = worker
        env = dict(self.config.env if self.config.env is not None else os.environ)
        sent = link.send(
            protocol.FORK,
            generation=generation,
            role=role,
            target=self.config.target.to_dict(),
            env=env,
            cwd=self.config.cwd or os.getcwd(),
            info={**info, "start": "fork"},
            checkpoint=checkpoint.name if checkpoint is not None else None,
            refresh=refresh or None,
            budget=round(budget, 4) if refresh else None,
        )
        if not sent:
            self.link_died(link)
        return worker

    def fall_back(self, worker: ForkedWorker) -> None:
        """Start a worker the fork server did not fork cold, on the control socket made for it
        (a builder is given up instead)."""
        if worker.generation < 0:
            worker.cancel()
            if self.chain is not None:
                self.chain.builder_lost(worker)
            return
        assert worker.theirs is not None
        ours = worker.control  # the supervisor already reads this one
        theirs = worker.theirs
        worker.theirs = None
        try:
            spawned = self.spawn.start_with(worker.generation, worker.info, ours, theirs)
        except StartError:
            worker.cancel()
            worker.status = protocol.EXIT_ERROR
            return
        worker.fell_back(spawned)

    def deadline(self) -> float | None:
        deadlines = [w.deadline for w in self.workers.values() if w.state == WAITING]
        deadlines += [
            w.deadline + FORK_PATIENCE
            for w in self.workers.values()
            if w.state == HANDED and w.pid is None and w.status is None
        ]
        return min(deadlines, default=None)

    def tick(self, now: float) -> None:
        late = [w for w in self.workers.values() if w.state == WAITING and w.deadline <= now]
        template_late = False
        for worker in late:
            if worker.link is self.template:
                template_late = True
                logger.info(
                    "The fork template did not answer within %gs (is a library slow to "
                    "import?): starting this worker cold.",
                    FORK_PATIENCE,
                )
            self.fall_back(worker)
        if template_late:
            self.failures += 1
            if self.failures >= MAX_TEMPLATE_FAILURES:
                self.disable(f"the fork template did not answer {self.failures} times in a row")
        for worker in [w for w in self.workers.values() if w.state == HANDED]:
            if worker.deadline + FORK_PATIENCE <= now and worker.pid is None and not late:
                # It had the socket and did not fork: it is stuck or gone.
                worker.cancel()
                worker.status = protocol.EXIT_ERROR
                if worker.link is self.template:
                    self.failed("The fork template did not fork")
        self.forget_finished()

    def forget_finished(self) -> None:
        self.workers = {
            g: w
            for g, w in self.workers.items()
            if w.state not in (SPAWNED, CANCELLED) and w.status is None
        }

    def reaped(self, statuses: Mapping[int, int]) -> None:
        for worker in self.workers.values():
            if worker.pid in statuses and worker.spawned is None:
                worker.status = statuses[worker.pid]  # type: ignore[index]
        self.forget_finished()

    def handle_readable(self, fd: int | None = None) -> None:
        link = self.links.get(fd) if fd is not None else self.template
        if link is None:
            return
        messages = link.receive()
        if messages is None:
            self.link_died(link)
            return
        for message in messages:
            if not link.alive:
                return  # a message made us drop this link: the rest was its old news
            self.on_message(link, message)

    def link_died(self, link: ServerLink) -> None:
        self.drop_link(link)
        if link is self.template:
            self.template = None
            self.template_died()
        elif self.chain is not None:
            self.chain.link_died(link)
            self.orphan_workers(link)

    def on_message(self, link: ServerLink, message: dict[str, Any]) -> None:
        kind = message["kind"]
        worker = self.workers.get(int(message.get("generation", -(10**9))))
        if kind == protocol.HELLO:
            if link is self.template:
                self.ready = True
            elif self.chain is not None:
                self.chain.hello(link, message)
        elif kind == protocol.FORKING:
            if worker is None or worker.state != WAITING:
                # Too late: it started cold, or was stopped before it started.
                link.send(protocol.CANCEL, generation=message.get("generation"))
            else:
                theirs = worker.handed()
                link.send(protocol.SOCKET, fds=(theirs.fileno(),), generation=worker.generation)
                theirs.close()
        elif kind == protocol.FORKED:
            if worker is not None and "pid" in message:
                worker.started(int(message["pid"]))
                if link is self.template:
                    self.failures = 0
                if self.chain is not None and worker.generation < 0:
                    self.chain.builder_started(worker)
                if self.chain is not None:
                    self.chain.forked(link)
            elif worker is not None and link is self.template:
                # Refused before it asked for the socket: the worker starts cold (disable()).
                self.disable(f"the fork template cannot fork: {message.get('error')}")
            elif worker is not None:
                logger.debug("%s cannot fork: %s", link.name, message.get("error"))
                self.fall_back(worker)
                if self.chain is not None:
                    self.chain.server_refused(link, str(message.get("error")))
        elif kind == protocol.EXITED:
            for worker in self.workers.values():
                if worker.pid == message.get("pid") and worker.spawned is None:
                    worker.status = int(message.get("status", -1))
            self.forget_finished()
            if self.chain is not None:
                self.chain.exited(int(message.get("pid", 0)))
        elif link is self.template:
            self.on_template_message(message)
        elif self.chain is not None:
            self.chain.on_message(link, message)

    def on_template_message(self, message: dict[str, Any]) -> None:
        kind = message["kind"]
        if kind == protocol.PRELOADED:
            self.failures = 0
            packages = message.get("packages") or {}
            shown = ", ".join(f"{name} {count}" for name, count in list(packages.items())[:12])
            more = f", and {len(packages) - 12} more packages" if len(packages) > 12 else ""
            logger.debug(
                "Fork template preloaded %s modules in %ss (pid %s)%s",
                sum(packages.values()) if packages else message.get("modules"),
                message.get("seconds"),
                self.template.pid if self.template is not None else "?",
                f": {shown}{more}." if shown else ".",
            )
            self.preloaded_once = True
            if self.chain is not None:
                self.chain.template_preloaded()
        elif kind == protocol.WATCH:
            files = [str(f) for f in message.get("files", [])]
            self.template_files.update(files)
            self.on_template_files(files, self.batch_started_ns)
        elif kind == protocol.FAILED:
            self.disable(f"the fork template failed: {message.get('traceback')}")

    def close(self) -> None:
        for worker in self.workers.values():
            if worker.state == WAITING:
                worker.cancel()
        if self.chain is not None:
            self.chain.close()
        self.stop_template()
