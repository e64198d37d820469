"""The fork template: ``python -m reloader._template``, started by the supervisor.

A fresh interpreter that imports the libraries that do not change while you edit (the modules
the supervisor sends in ``preload`` messages: stdlib and site-packages, never the project's
files) and then forks on request (``reloader.forkserver``): a worker, which runs the same
bootstrap as a cold worker, or a builder, which runs the program's start-up to make checkpoints
(``reloader.builder``). It imports between two looks at its control socket, so it can fork
between two imports.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import site
import socket
import sys
import time
from typing import Any

from . import _boot, protocol
from .children import set_parent_death_signal
from .config import Target
from .forkserver import ForkServer
from .modules import is_library_file, module_file, module_files


def startup_files() -> set[str]:
    """Files the interpreter read before any import: the .pth files of the site directories
    and the virtualenv's pyvenv.cfg. Changing one changes what this template would be."""
    files = set()
    for directory in site.getsitepackages():
        with contextlib.suppress(OSError):
            files |= {
                os.path.join(directory, n) for n in os.listdir(directory) if n.endswith(".pth")
            }
    config = os.path.join(sys.prefix, "pyvenv.cfg")
    if os.path.exists(config):
        files.add(config)
    return files


class Template:
    def __init__(self, inherited: protocol.Inherited) -> None:
        assert inherited.control is not None
        self.listen_fds = inherited.listen_fds
        self.server = ForkServer(
            inherited.control,
            worker_pgid=int(inherited.info.get("pgid", 0)),
            on_message=self.on_message,
            idle_work=self.preload_one,
        )
        self.queue: list[str] = []
        self.failed: set[str] = set()
        self.trusted: set[str] = {"reloader"}  # packages the supervisor vouches for
        self.reported: set[str] = set()
        self.imported = 0
        self.preload_started = 0.0
        self.batch_before: set[str] = set()

    def send(self, kind: str, **fields: Any) -> None:
        self.server.send(kind, **fields)

    # -------------------------------------------------------------- preloading
    def on_message(self, message: dict[str, Any]) -> None:
        if message["kind"] != protocol.PRELOAD:
            return
        self.trusted.update(str(t) for t in message.get("trusted", []))
        if not self.queue:
            self.preload_started = time.monotonic()
            self.imported = 0
            self.batch_before = set(sys.modules)
        self.queue += [str(m) for m in message.get("modules", [])]
        if not self.queue:
            self.preloaded()

    def preload_one(self) -> bool:
        """Import the next module asked for; True while more are waiting."""
        if not self.queue:
            return False
        self.import_one(self.queue.pop(0))
        if not self.queue:
            self.preloaded()
        return bool(self.queue)

    def import_one(self, name: str) -> None:
        if name in sys.modules or name in self.failed:
            return
        before = {id(module) for module in sys.modules.values()}
        try:
            importlib.import_module(name)
        except BaseException:  # anything a library does at import time without its settings
            self.failed.add(name)
            return
        self.imported += 1
        for new, module in list(sys.modules.items()):
            if id(module) in before or new.split(".")[0] in self.trusted:
                continue  # already known (multiprocessing aliases __main__), or vouched for
            path = module_file(module) if module is not None else None
            if path is not None and not is_library_file(path):
                # A library pulled in project code: this template cannot be trusted any more.
                self.send(
                    protocol.FAILED,
                    title="preload imported project code",
                    traceback=f"importing {name} imported {new} from {path}",
                    files=[],
                )
                sys.exit(protocol.EXIT_ERROR)

    def preloaded(self) -> None:
        files = (module_files() | startup_files()) - self.reported
        self.reported |= files
        if files:
            self.send(protocol.WATCH, files=sorted(files), trees=[], modules=[])
        self.send(
            protocol.PRELOADED,
            modules=self.imported,
            seconds=round(time.monotonic() - self.preload_started, 3),
            packages=self.packages_since(self.batch_before),
        )

    @staticmethod
    def packages_since(before: set[str]) -> dict[str, int]:
        """How many modules each top-level package gained since ``before`` (largest first)."""
        counts: dict[str, int] = {}
        for name in sys.modules.keys() - before:
            top = name.split(".")[0]
            counts[top] = counts.get(top, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    # -------------------------------------------------------------- the loop
    def run(self) -> None:
        self.send(protocol.HELLO, pid=os.getpid())  # usable now: a fork between two imports
        forked = self.server.serve()  # returns in a forked child only
        self.queue = []
        message = forked.message
        try:
            target = Target.from_dict(message["target"])
            inherited = protocol.Inherited(
                socket.socket(fileno=forked.control_fd), self.listen_fds, message["info"]
            )
        except BaseException:
            import traceback

            traceback.print_exc()
            os._exit(protocol.EXIT_ERROR)
        if message.get("role") == "builder":
            _boot.build(target, inherited)
        else:
            _boot.boot(target, inherited, self.reported, list(sys.modules))


def main() -> None:
    inherited = protocol.Inherited.from_environ()
    if inherited.control is None:
        print("reloader: the template is started by the supervisor", file=sys.stderr)
        sys.exit(protocol.EXIT_USAGE)
    # Gone with the supervisor, even in the middle of a long import: it holds the listening
    # sockets. If the supervisor died before this call, the template has another parent now.
    set_parent_death_signal(signal.SIGKILL)
    if os.getppid() != inherited.info.get("supervisor", os.getppid()):
        sys.exit(protocol.EXIT_ERROR)
    Template(inherited).run()


if __name__ == "__main__":
    main()
