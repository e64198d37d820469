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
from .checkpoints import Build, Checkpoint, Deps, best, refreshable
from .links import ServerLink

if TYPE_CHECKING:
    from .fork import ForkStarter
    from .forked import ForkedWorker

logger = logging.getLogger("reloader")

HOT_FILES = 8  # the files edited last: each build keeps a checkpoint just before their import
KEEP_SPACED = 2  # checkpoints at import boundaries kept besides those (see Chain.prune)
# A refresh is asked for unless a good checkpoint leaves less than this much start-up to replay
# (the analysis a refresh begins with takes about as long on a small project), or it was
# prepared by the last checkpoint ahead.
REPLAY_WORTH = 0.03

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
        # (checkpoint, why, its seconds into the start-up) since the last start
        self.ruled_out: list[tuple[str, str, float]] = []
        self.given_up: str | None = None
        self.refreshing: Checkpoint | None = None  # asked for the current worker's refresh
        self.spent: dict[int, ServerLink] = {}  # unshared checkpoints that forked their worker

    # ----------------------------------------------------------------- choosing
    def choose(self) -> tuple[Checkpoint | None, list[str], float]:
        """The checkpoint the next worker is forked from, the files whose modules it imports
        again first (a refresh of the final checkpoint; empty: none), and the start-up time a
        replay would take instead (what the refresh may cost at most)."""
        checkpoint = best(self.checkpoints)
        refresh: list[str] = []
        budget = 0.0
        final = refreshable(self.checkpoints)
        if final is not None and (
            checkpoint is None
            or final.seconds - checkpoint.seconds > REPLAY_WORTH
            or (len(final.refresh) == 1 and final.refresh[0] in final.prepared)
        ):
            budget = final.seconds - (checkpoint.seconds if checkpoint is not None else 0.0)
            checkpoint, refresh = final, list(final.refresh)
        deeper = [
            (label, why)
            for label, why, seconds in self.ruled_out
            if checkpoint is None or seconds > checkpoint.seconds
        ]
        if deeper:
            label, why = deeper[-1]
            logger.debug("%s was ruled out: %s.", label[0].upper() + label[1:], why)
        self.ruled_out = []
        self.refreshing = checkpoint if refresh else None
        if checkpoint is not None and not checkpoint.shared:
            # The random values drawn in its build go to one worker only: no other checkpoint
            # of that build after the draw may fork one.
            checkpoint.build.spent = True
            if not checkpoint.build.done:
                self.end_build(checkpoint.build)  # what it would make now is spent too
            for other in [c for c in self.checkpoints if c.build is checkpoint.build]:
                if not other.shared and other is not checkpoint:
                    self.make_stale(other, "a checkpoint of its build forked a worker")
            self.checkpoints.remove(checkpoint)
            checkpoint.stale = "it forked its one worker"
            self.spent[checkpoint.link.fileno()] = checkpoint.link
            self.ruled_out = []
        return checkpoint, refresh, budget

    def forked(self, link: ServerLink) -> None:
        """A fork server forked a child: an unshared checkpoint is done."""
        spent = self.spent.pop(link.fileno(), None)
        if spent is link:
            self.starter.drop_link(link)

    def declined(self, reason: str) -> None:
        """The worker forked for a refresh would not be the same as a cold start."""
        checkpoint, self.refreshing = self.refreshing, None
        logger.debug("A fast reload was ruled out: %s.", reason)
        if checkpoint is not None and checkpoint in self.checkpoints:
            self.make_stale(checkpoint, f"importing again was ruled out: {reason}")
            self.ruled_out = []

    # ----------------------------------------------------------------- building
    def worker_ready(self) -> None:
        self.serving = True
        self.maybe_build(after_reload=True)

    def template_preloaded(self) -> None:
        self.maybe_build()

    def maybe_build(self, after_reload: bool = False) -> None:
        starter = self.starter
        if self.given_up or not (starter.ready and starter.preloaded_once and self.serving):
            return
        if any(not build.done for build in self.builds):
            return
        if any(c.final and c.stale is None and c.prepared_for_edits() for c in self.checkpoints):
            # The whole start-up is ready to fork a worker, with at most a refresh it analysed
            # ahead: a new build would only cost a heap more (workers share the last
            # checkpoint's pages while it lives).
            if after_reload:
                logger.debug("The last checkpoint is kept: it analysed this edit ahead.")
            return
        base = best(self.checkpoints, shared_only=True)
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
            if reason not in self.said:
                self.said.add(reason)
                if message.get("shared", True):
                    logger.info("No more checkpoints in this start-up: %s.", reason)
                else:
                    logger.info("Checkpoints from here on fork one worker each: %s.", reason)
            if not message.get("shared", True):
                return
            build.refused = reason
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
        if build.spent and not checkpoint.shared:
            self.make_stale(checkpoint, "a checkpoint of its build forked a worker")
            return
        if checkpoint.final:
            # The one before (waiting with a refresh, or no longer shared) is outdone.
            for old in [c for c in self.checkpoints if c.final]:
                self.make_stale(old, "a newer last checkpoint is ready")
            self.ruled_out = []
        self.checkpoints.append(checkpoint)
        indexed = message.get("indexed")
        logger.debug(
            "%s is ready (%.2fs into the start-up%s).",
            checkpoint.label[0].upper() + checkpoint.label[1:],
            checkpoint.seconds,
            f"; who references what indexed in {indexed:.2f}s"
            if isinstance(indexed, int | float)
            else "",
        )
        if checkpoint.final:
            self.prune()

    def prune(self) -> None:
        """Once the start-up is checkpointed to its end, keep of the checkpoints along it only
        those worth their memory (each holds the pages the builder changed after it): the
        program's own (``django.setup``), those before the files edited lately, the deepest
        one a build may start from, and the ``KEEP_SPACED`` deepest others."""
        base = best([c for c in self.checkpoints if not c.final], shared_only=True)
        spaced = 0
        for c in sorted(self.checkpoints, key=lambda c: c.seconds, reverse=True):
            if c.final or c.module is None or c.file in self.hot or c is base:
                continue
            spaced += 1
            if spaced > KEEP_SPACED:
                self.make_stale(c, "fewer checkpoints are kept once the last one is ready")
        self.ruled_out = []

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
                if reason is None:
                    continue
                if path in checkpoint.declined:
                    reason = f"importing again was ruled out: {checkpoint.declined[path]}"
                elif checkpoint.module_edit(path):
                    if path not in checkpoint.refresh:
                        checkpoint.refresh.append(path)
                    continue
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
        self.ruled_out.append((checkpoint.label, reason, checkpoint.seconds))
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
