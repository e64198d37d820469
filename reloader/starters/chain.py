"""Builders and checkpoints, seen from the supervisor (``SupervisorConfig.checkpoints``).

Once a worker serves and the fork template is ready, a builder is forked (from the template, or
from the deepest good checkpoint when an edit made the rest stale): it runs the program's
start-up and sends a ``checkpoint`` message at each point it paused a copy of itself, with what
the start-up read before it (``starters.checkpoints``). A change makes stale every checkpoint
that read it (its process is ended at once); the next worker is forked from the deepest good
one. One build at a time; a build stops on its own (and says why, once) where the start-up
leaves something forks must not share.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import protocol
from .checkpoints import Build, Checkpoint, Deps, best
from .links import ServerLink

if TYPE_CHECKING:
    from .fork import ForkStarter
    from .forked import ForkedWorker

logger = logging.getLogger("reloader")

HOT_FILES = 8  # the files edited last: each build keeps a checkpoint just before their import

WatchDeps = Callable[[list[str], list[str], int], list[str]]


class Chain:
    def __init__(self, starter: ForkStarter, watch_deps: WatchDeps) -> None:
        self.starter = starter
        self.watch_deps = watch_deps
        self.checkpoints: list[Checkpoint] = []
        self.builds: list[Build] = []
        self.pending: dict[int, Build] = {}  # by the (negative) generation of its fork request
        self.next_generation = -1
        self.hot: list[str] = []
        self.said: set[str] = set()
        self.serving = False
        self.ruled_out: list[tuple[str, str]] = []  # (checkpoint, why) since the last start
        self.given_up: str | None = None

    # ----------------------------------------------------------------- choosing
    def best(self) -> Checkpoint | None:
        checkpoint = best(self.checkpoints)
        deeper = [
            (label, why)
            for label, why, seconds in self.ruled_out_list()
            if checkpoint is None or seconds > checkpoint.seconds
        ]
        if deeper:
            label, why = deeper[-1]
            logger.debug("%s was ruled out: %s.", label[0].upper() + label[1:], why)
        self.ruled_out = []
        return checkpoint

    def ruled_out_list(self) -> list[tuple[str, str, float]]:
        seconds = {c.label: c.seconds for c in self.checkpoints}
        return [(label, why, seconds.get(label, 0.0)) for label, why in self.ruled_out]

    # ----------------------------------------------------------------- building
    def worker_ready(self) -> None:
        self.serving = True
        self.maybe_build()

    def template_preloaded(self) -> None:
        self.maybe_build()

    def maybe_build(self) -> None:
        starter = self.starter
        if self.given_up or not (starter.ready and starter.preloaded_once and self.serving):
            return
        if any(not build.done for build in self.builds):
            return
        base = best(self.checkpoints)
        if base is not None and base.final:
            return
        link = base.link if base is not None else starter.template
        if link is None:
            return
        generation = self.next_generation
        self.next_generation -= 1
        info = {
            "role": "builder",
            "pgid": os.getpgrp(),
            "hot": list(self.hot),
            "trusted": sorted({n.split(".")[0] for n in starter.config.preload}),
            "seconds": base.seconds if base is not None else 0.0,
            "position": base.position if base is not None else 0,
        }
        request = starter.ask(link, generation, info, role="builder", checkpoint=base)
        build = Build(
            link=ServerLink(request.control, "builder", "a builder"),
            base=base,
            deps=base.deps if base is not None else Deps(),
        )
        starter.add_link(build.link)
        self.pending[generation] = build
        self.builds.append(build)
        logger.debug(
            "Building checkpoints from %s.", base.label if base is not None else "the template"
        )

    def builder_started(self, request: ForkedWorker) -> None:
        build = self.pending.pop(request.generation, None)
        if build is not None:
            build.pid = build.link.pid = request.pid
        request.theirs = None
        self.starter.workers.pop(request.generation, None)

    def builder_lost(self, request: ForkedWorker) -> None:
        build = self.pending.pop(request.generation, None)
        if build is not None:
            self.end_build(build)

    def end_build(self, build: Build) -> None:
        build.done = True
        if not any(c.final and c.link is build.link for c in build.checkpoints):
            self.starter.drop_link(build.link, kill=True)

    def build_of(self, link: ServerLink) -> Build | None:
        for build in self.builds:
            if build.link is link and not build.done:
                return build
        return None

    def hello(self, link: ServerLink, message: dict[str, Any]) -> None:
        if isinstance(message.get("pid"), int):
            link.pid = message["pid"]

    def on_message(self, link: ServerLink, message: dict[str, Any]) -> None:
        kind = message["kind"]
        build = self.build_of(link)
        if build is None:
            return
        if kind == protocol.CHECKPOINT:
            self.checkpoint(build, link, message)
        elif kind == protocol.REFUSED:
            reason = str(message.get("reason", "?"))
            build.refused = reason
            if reason not in self.said:
                self.said.add(reason)
                logger.info("No more checkpoints in this start-up: %s.", reason)
            if "without calling checkpoint" in reason:
                self.given_up = reason
        elif kind == protocol.FAILED:
            logger.debug("The start-up failed in a builder: %s", message.get("title"))
            self.end_build(build)

    def checkpoint(self, build: Build, link: ServerLink, message: dict[str, Any]) -> None:
        final = bool(message.get("final"))
        if final:
            server = link
            server.kind = "checkpoint"
        else:
            fd = link.take_fd()
            if fd is None:
                return
            server = ServerLink(socket.socket(fileno=fd), "checkpoint")
            self.starter.add_link(server)
        server.pid = int(message.get("pid", 0)) or None
        checkpoint = build.record(message, server)
        server.name = checkpoint.label
        deps = message.get("deps", {})
        files = [str(f[0]) for f in deps.get("files", [])]
        dirs = [str(d[0]) for d in deps.get("dirs", [])]
        late = self.watch_deps(files, dirs, int(deps.get("since_ns", 0)))
        if late:
            # Changed after the builder read it, maybe before we watched it: stale already.
            self.make_stale(checkpoint, f"{late[0]} changed while it was built")
            self.starter.drop_link(build.link, kill=True)
            build.done = True
            return
        self.checkpoints.append(checkpoint)
        logger.debug(
            "%s is ready (%.2fs into the start-up).",
            checkpoint.label[0].upper() + checkpoint.label[1:],
            checkpoint.seconds,
        )

    # ----------------------------------------------------------------- staleness
    def changed(self, paths: list[str]) -> None:
        for path in paths:
            if path.endswith(".py"):
                if path in self.hot:
                    self.hot.remove(path)
                self.hot.append(path)
        del self.hot[:-HOT_FILES]
        for checkpoint in list(self.checkpoints):
            for path in paths:
                reason = checkpoint.deps.stale_reason(path)
                if reason is not None:
                    self.make_stale(checkpoint, reason)
                    break
        for build in self.builds:
            if build.done:
                continue
            for path in paths:
                if build.deps.stale_reason(path) is not None:
                    self.end_build(build)
                    break

    def make_stale(self, checkpoint: Checkpoint, reason: str) -> None:
        checkpoint.stale = reason
        self.ruled_out.append((checkpoint.label, reason))
        if checkpoint in self.checkpoints:
            self.checkpoints.remove(checkpoint)
        self.starter.drop_link(checkpoint.link)

    def invalidate_all(self, reason: str) -> None:
        for checkpoint in list(self.checkpoints):
            self.make_stale(checkpoint, reason)
        for build in self.builds:
            if not build.done:
                self.end_build(build)

    def link_died(self, link: ServerLink) -> None:
        for checkpoint in list(self.checkpoints):
            if checkpoint.link is link:
                self.make_stale(checkpoint, "its process ended")
        build = self.build_of(link)
        if build is not None:
            build.done = True

    def exited(self, pid: int) -> None:
        for build in self.builds:
            if build.pid == pid and not build.done:
                build.done = True
                self.starter.drop_link(build.link)

    def server_refused(self, link: ServerLink, error: str) -> None:
        for checkpoint in list(self.checkpoints):
            if checkpoint.link is link:
                self.make_stale(checkpoint, f"it cannot fork: {error}")

    def close(self) -> None:
        for checkpoint in list(self.checkpoints):
            self.starter.drop_link(checkpoint.link)
        for build in self.builds:
            if not build.done:
                self.starter.drop_link(build.link, kill=True)
        self.checkpoints = []
