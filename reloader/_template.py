"""The fork template: ``python -m reloader._template``, started by the supervisor.

A fresh interpreter that imports the libraries that do not change while you edit (the modules
the supervisor sends in ``preload`` messages: stdlib and site-packages, never the project's
files) and then forks one worker per ``fork`` message. Each fork resets what the template set
up (signals, environment, working directory), runs the same bootstrap as a cold worker, and
exits through the normal interpreter shutdown. The template runs no thread of its own and
refuses to fork while one runs (some library started it), so a fork never copies a lock held by
another thread.

The loop below has no ``finally`` blocks on purpose: a fork leaves it by raising SystemExit
from the bootstrap, and nothing of the template's must run in the child on the way out.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import selectors
import signal
import site
import socket
import sys
import threading
import time
import traceback
from typing import Any

from . import _boot, protocol
from .children import set_parent_death_signal
from .config import Target
from .modules import is_library_file, module_file, module_files

_children: set[int] = set()


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
        self.control = inherited.control
        self.listen_fds = inherited.listen_fds
        self.worker_pgid = int(inherited.info.get("pgid", 0))
        self.reader = protocol.MessageReader()
        self.fds: list[int] = []
        self.requests: dict[int, dict[str, Any]] = {}  # fork messages waiting for their socket
        self.queue: list[str] = []
        self.failed: set[str] = set()
        self.trusted: set[str] = {"reloader"}  # packages the supervisor vouches for
        self.reported: set[str] = set()
        self.imported = 0
        self.preload_started = 0.0
        self.batch_before: set[str] = set()
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)

    def send(self, kind: str, **fields: Any) -> None:
        # If the supervisor is gone, the next read says so and the template exits.
        with contextlib.suppress(OSError):
            self.control.sendall(protocol.encode(kind, **fields))

    # -------------------------------------------------------------- preloading
    def preload_one(self) -> None:
        self.import_one(self.queue.pop(0))
        if not self.queue:
            self.preloaded()

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

    # -------------------------------------------------------------- forking
    def asked(self, message: dict[str, Any]) -> None:
        """A worker is wanted: ask for its control socket, or say why it cannot be forked."""
        generation = message.get("generation", 0)
        if threading.active_count() > 1:
            names = ", ".join(
                t.name for t in threading.enumerate() if t is not threading.current_thread()
            )
            self.send(
                protocol.FORKED,
                generation=generation,
                error=f"a thread runs in the template ({names})",
            )
            return
        self.requests[generation] = message
        self.send(protocol.FORKING, generation=generation)

    def fork(self, message: dict[str, Any], fd: int) -> None:
        generation = message.get("generation", 0)
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        gc.freeze()  # the preloaded objects stay out of the child's collections: fewer page copies
        pid = os.fork()
        if pid == 0:
            self.become_worker(message, fd)  # never returns: raises SystemExit
        os.close(fd)
        _children.add(pid)
        self.send(protocol.FORKED, generation=generation, pid=pid)

    def become_worker(self, message: dict[str, Any], fd: int) -> None:
        try:
            signal.set_wakeup_fd(-1)
            for signum in (signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP):
                signal.signal(signum, signal.SIG_DFL)
            self.requests.clear()
            signal.signal(signal.SIGINT, signal.default_int_handler)
            if self.worker_pgid:
                # Back in the supervisor's process group: the terminal's (a debugger works), and
                # Ctrl-C reaches the worker as it reaches a spawned one.
                with contextlib.suppress(OSError):
                    os.setpgid(0, self.worker_pgid)
            self.control.close()
            os.close(self.wake_r)
            os.close(self.wake_w)
            for other in self.fds:
                os.close(other)
            os.environ.clear()
            os.environ.update(message["env"])
            os.chdir(message["cwd"])
            target = Target.from_dict(message["target"])
            inherited = protocol.Inherited(
                socket.socket(fileno=fd), self.listen_fds, message["info"]
            )
        except BaseException:
            traceback.print_exc()
            os._exit(protocol.EXIT_ERROR)
        _boot.boot(target, inherited, self.reported, list(sys.modules))

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            _children.discard(pid)
            self.send(protocol.EXITED, pid=pid, status=os.waitstatus_to_exitcode(status))

    # -------------------------------------------------------------- the loop
    def run(self) -> None:
        # Stop signals are the supervisor's to act on (Ctrl-C and `kill -TERM -PGID` reach the
        # whole group): the template ends when its control socket closes.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)
        selector = selectors.DefaultSelector()
        selector.register(self.control, selectors.EVENT_READ, "control")
        selector.register(self.wake_r, selectors.EVENT_READ, "wake")
        self.send(protocol.HELLO, pid=os.getpid())  # usable now: a fork between two imports
        while True:
            for key, _ in selector.select(0 if self.queue else None):
                if key.data == "wake":
                    while True:
                        try:
                            if not os.read(self.wake_r, 4096):
                                break
                        except BlockingIOError:
                            break
                    self.reap()
                elif not self.read_control():
                    return  # the supervisor is gone
            if self.queue:
                self.preload_one()

    def read_control(self) -> bool:
        try:
            data, fds, _flags, _addr = socket.recv_fds(self.control, 1 << 20, 16)
        except OSError:  # ECONNRESET: the supervisor closed with our messages unread
            return False
        if not data:
            return False
        self.fds += fds
        for message in self.reader.feed(data):
            kind = message["kind"]
            if kind == protocol.PRELOAD:
                self.trusted.update(str(t) for t in message.get("trusted", []))
                if not self.queue:
                    self.preload_started = time.monotonic()
                    self.imported = 0
                    self.batch_before = set(sys.modules)
                self.queue += [str(m) for m in message.get("modules", [])]
                if not self.queue:
                    self.preloaded()
            elif kind == protocol.FORK:
                self.asked(message)
            elif kind == protocol.SOCKET and self.fds:
                fd = self.fds.pop(0)
                request = self.requests.pop(int(message.get("generation", -1)), None)
                if request is None:
                    os.close(fd)
                else:
                    self.fork(request, fd)
            elif kind == protocol.CANCEL:
                self.requests.pop(int(message.get("generation", -1)), None)
        return True


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
