"""The one harness every test uses to run real processes on real sockets.

- ``ServerProcess`` starts a command in its own session (``start_new_session=True``), writes its
  output to a log file, and on ``stop()`` sends SIGTERM to the whole process group, waits, then
  SIGKILL. ``session_members(sid)`` lists what is still alive in a session, so a test can prove
  that nothing was left behind.
- ``wait_until`` is the only way to wait: a bounded poll on ``time.monotonic()`` that raises with a
  description (and the server's log tail) instead of sleeping and hoping.
- ``free_port`` picks a free loopback port at run time.
"""

from __future__ import annotations

import contextlib
import fcntl
import http.client
import os
import select
import signal
import socket
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "mysite"
PYTHON = sys.executable


def free_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on the port now. Like every server (Django's, ours), bind
    with SO_REUSEADDR: connections left in TIME_WAIT do not count, a listening socket does."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def wait_until(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    interval: float = 0.02,
    what: str = "condition",
    describe: Callable[[], str] | None = None,
) -> T:
    """Poll ``predicate`` until it returns a truthy value; raise after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            value = predicate()
        except (OSError, http.client.HTTPException) as exc:
            value, last_error = None, exc  # type: ignore[assignment]
        if value:
            return value
        if time.monotonic() >= deadline:
            detail = f"; last error: {last_error!r}" if last_error else ""
            extra = f"\n{describe()}" if describe else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{detail}{extra}")
        time.sleep(interval)


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def http_request(
    url_host: str,
    port: int,
    path: str = "/",
    method: str = "GET",
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
) -> Response:
    """One request on a new connection (no keep-alive); raises OSError when refused."""
    conn = http.client.HTTPConnection(url_host.strip("[]"), port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        resp = conn.getresponse()
        data = resp.read()
        return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    finally:
        conn.close()


def http_get(port: int, path: str = "/", host: str = "127.0.0.1", **kw: object) -> Response:
    return http_request(host, port, path, **kw)  # type: ignore[arg-type]


def proc_stat(pid: int) -> tuple[str, int, int, int] | None:
    """(state, ppid, pgid, sid) of a process from /proc, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces: split after the last ')'.
    fields = stat[stat.rfind(b")") + 2 :].split()
    return fields[0].decode(), int(fields[1]), int(fields[2]), int(fields[3])


def cpu_ticks(pid: int) -> int:
    """User plus system CPU time of a process so far, in clock ticks (usually 1/100 s)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    fields = stat[stat.rfind(b")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


def cpu_seconds_over(pid: int, seconds: float) -> float:
    """CPU seconds a process used during the next ``seconds`` of wall time (a measurement
    window, not a wait for something to happen)."""
    before = cpu_ticks(pid)
    time.sleep(seconds)
    return (cpu_ticks(pid) - before) / os.sysconf("SC_CLK_TCK")


def zombie_children(pid: int) -> list[int]:
    """Children of ``pid`` that exited and that nobody reaped."""
    return [
        int(entry)
        for entry in os.listdir("/proc")
        if entry.isdigit()
        and (stat := proc_stat(int(entry))) is not None
        and stat[0] == "Z"
        and stat[1] == pid
    ]


def live_processes() -> Iterator[tuple[int, tuple[str, int, int, int]]]:
    """(pid, stat) of every process that is not a zombie."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = proc_stat(int(entry))
            if stat is not None and stat[0] != "Z":
                yield int(entry), stat


def session_members(sid: int) -> list[int]:
    """PIDs of live (non-zombie) processes whose session id is ``sid``."""
    return [pid for pid, stat in live_processes() if stat[3] == sid]


def child_pids(pid: int) -> list[int]:
    """Live children of ``pid``."""
    return sorted(child for child, stat in live_processes() if stat[1] == pid)


def parent_of(pid: int) -> int:
    stat = proc_stat(pid)
    assert stat is not None, f"process {pid} is gone"
    return stat[1]


def pid_alive(pid: int) -> bool:
    stat = proc_stat(pid)
    return stat is not None and stat[0] != "Z"


@dataclass
class ServerProcess:
    """A command run in its own session with its output in a log file."""

    argv: list[str]
    cwd: Path
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    stdin: int | None = subprocess.DEVNULL
    proc: subprocess.Popen[bytes] | None = None
    terminal: bool = False  # run with a pseudo-terminal as its controlling terminal

    def start(self) -> ServerProcess:
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self._copier: threading.Thread | None = None
        if self.terminal:
            self._start_in_terminal()
            return self
        self.proc = subprocess.Popen(
            self.argv,
            cwd=self.cwd,
            env=self.env,
            stdin=self.stdin,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def _start_in_terminal(self) -> None:
        """As a terminal runs a program: a new session whose controlling terminal is a pty;
        what it writes goes to the log."""
        self._master, slave = os.openpty()
        self._closing = threading.Event()
        self.proc = subprocess.Popen(
            self.argv,
            cwd=self.cwd,
            env=self.env,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
        )
        os.close(slave)
        self._copier = threading.Thread(target=self._copy_output, daemon=True)
        self._copier.start()

    def _copy_output(self) -> None:
        while not self._closing.is_set():
            ready, _, _ = select.select([self._master], [], [], 0.05)
            if not ready:
                continue
            try:
                data = os.read(self._master, 65536)
            except OSError:  # EIO: every slave end is closed
                return
            if not data:
                return
            self._log.write(data)
            self._log.flush()

    def hang_up(self) -> None:
        """Close the terminal, as closing a terminal window does: the kernel sends SIGHUP to
        the session leader, and writes to the terminal fail from now on."""
        assert self.terminal and self._copier is not None
        self._closing.set()
        self._copier.join()
        self._copier = None
        os.close(self._master)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log(self) -> str:
        try:
            return self.log_path.read_text("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def describe(self) -> str:
        tail = "\n".join(self.log().splitlines()[-60:])
        status = self.proc.poll() if self.proc else None
        return f"--- {' '.join(self.argv)} (pid {self.pid}, exit {status}) log tail ---\n{tail}"

    def wait_for_log(self, text: str, timeout: float = 15.0, count: int = 1) -> str:
        def seen() -> bool:
            return self.log().count(text) >= count

        wait_until(seen, timeout, what=f"{text!r} x{count} in the log", describe=self.describe)
        return self.log()

    def wait_exit(self, timeout: float = 15.0) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"process did not exit within {timeout}s\n{self.describe()}"
            ) from None

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the process group, wait, then SIGKILL whatever is left in the session."""
        if self.proc is None:
            return
        sid = self.proc.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(sid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and (self.proc.poll() is None or session_members(sid)):
            time.sleep(0.02)
        for pid in session_members(sid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        if self._copier is not None:
            self.hang_up()
        self._log.close()


def frame_in(filename: str, function: str = "f"):
    """A live frame of a function compiled as if it came from ``filename`` (e.g. the import
    machinery's ``<frozen importlib._bootstrap>``), for a signal handler to be given."""
    namespace: dict[str, object] = {}
    source = f"def {function}():\n    import sys\n    return sys._getframe()\n"
    exec(compile(source, filename, "exec"), namespace)
    return namespace[function]()  # type: ignore[operator]


def base_env(extra: Mapping[str, str] | None = None, drop: Iterable[str] = ()) -> dict[str, str]:
    """The environment for a child: ours, unbuffered, without anything that steers Django, and
    writing bytecode (as on a developer's machine: the stale-.pyc tests need it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELOADER_", "DJANGO_"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    for key in drop:
        env.pop(key, None)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env
