"""The supervisor as PID 1 (``docker run`` without ``--init``), and no busy loop in any state.

A PID namespace (``unshare --pid --fork``) makes the supervisor PID 1 there, as in a container:
every process whose parent dies is re-parented to it, and nobody else will reap them.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

import pytest

from tests.reloader.conftest import Running
from tests.support import (
    child_pids,
    cpu_seconds_over,
    free_port,
    parent_of,
    pid_alive,
    port_is_free,
    wait_until,
    zombie_children,
)

# A supervisor waiting for something sleeps in select(): over half a second of idle time it
# uses a few milliseconds at most; a busy loop uses the whole half second. Of four such windows
# the quietest counts (one may hold real work: watching the files a new template reported).
IDLE_CPU_LIMIT = 0.05


def _pid_namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", "test $$ = 1"],
        capture_output=True,
    )
    return probe.returncode == 0


needs_pidns = pytest.mark.skipif(
    not _pid_namespaces_work(), reason="cannot create a PID namespace here (needs root)"
)


def ns_pids(pid: int) -> list[int]:
    """A process's PIDs from the outermost namespace in, as /proc/PID/status lists them."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return [int(p) for p in line.split()[1:]]
    except OSError:
        pass
    return []


def outer_pid(inner: int, supervisor: int) -> int:
    """The PID seen from here of the process that is ``inner`` in the supervisor's namespace."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            pids = ns_pids(int(entry))
            if (len(pids) == 2 and pids[1] == inner and int(entry) != supervisor) or (
                inner == 1 and int(entry) == supervisor
            ):
                return int(entry)
    raise AssertionError(f"no process is {inner} in the namespace")


def assert_idle(pid: int, what: str) -> None:
    used = min(cpu_seconds_over(pid, 0.5) for _ in range(4))
    assert used < IDLE_CPU_LIMIT, f"the supervisor used {used:.2f} s of CPU in 0.5 s {what}"


@needs_pidns
def test_as_pid_1_every_child_is_reaped_through_worker_and_template_restarts(spawn, fakelib_venv):
    app = fakelib_venv.app
    port = free_port()
    proc = spawn(
        [
            "unshare",
            "--pid",
            "--fork",
            "--kill-child",
            "--mount-proc",
            str(fakelib_venv.python),
            "-m",
            "reloader",
            "--start",
            "fork",
            "--bind",
            f"127.0.0.1:{port}",
            "--",
            "python",
            "server.py",
        ],
        cwd=app,
    )
    server = Running(proc, app, port)
    server.wait_body("v1-lib1")
    supervisor = wait_until(lambda: child_pids(proc.pid)[:1], what="the supervisor")[0]
    assert ns_pids(supervisor) == [supervisor, 1]

    # Edit until the worker is a fork of the template.
    for n in range(2, 6):
        server.edit("appmod.py", f'import fakelib\nVERSION = "v{n}-" + fakelib.VERSION\n')
        server.wait_body(f"v{n}-lib1")
        if parent_of(outer_pid(server.starts()[-1], supervisor)) != supervisor:
            break
    forked = outer_pid(server.starts()[-1], supervisor)
    assert parent_of(forked) != supervisor, "no worker was forked"

    # A library upgrade restarts the template; its old fork is now the supervisor's child.
    (fakelib_venv.lib / "__init__.py").write_text('VERSION = "lib2"\n')
    server.wait_body(f"v{n}-lib2")
    wait_until(lambda: not pid_alive(forked), what="the old fork to be gone")
    wait_until(
        lambda: not zombie_children(supervisor),
        what="every exited child to be reaped",
        describe=proc.describe,
    )
    # And once more through a worker restart, a template restart and a fork of the new one.
    n += 1
    server.edit("appmod.py", f'import fakelib\nVERSION = "v{n}-" + fakelib.VERSION\n')
    server.wait_body(f"v{n}-lib2")
    (fakelib_venv.lib / "__init__.py").write_text('VERSION = "lib3"\n')
    server.wait_body(f"v{n}-lib3")
    wait_until(lambda: not zombie_children(supervisor), what="every exited child to be reaped")
    assert "did not stop within" not in proc.log()
    assert_idle(supervisor, "while serving as PID 1")

    # SIGTERM stops everything, as PID 1 too, well within the grace period.
    started = time.monotonic()
    os.kill(supervisor, signal.SIGTERM)
    assert proc.wait_exit(10) == 0, proc.describe()
    assert time.monotonic() - started < 5.0
    assert port_is_free(port)


def test_no_busy_loop_while_serving_broken_or_stopping_a_stubborn_worker(reloader):
    server = reloader("--grace", "3")
    assert_idle(server.proc.pid, "while serving")
    server.edit("appmod.py", "VERSION = (\n")
    server.wait_status(500)
    assert_idle(server.proc.pid, "while showing the error page")
    # A worker that ignores SIGTERM: the supervisor waits out the grace period, asleep.
    server.edit(
        "appmod.py",
        "import signal\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "signal.signal = lambda *args: None  # server.py's own handler is not installed\n"
        'VERSION = "v-stubborn"\n',
    )
    server.wait_body("v-stubborn")
    server.edit("appmod.py", 'VERSION = "v-next"\n')
    server.proc.wait_for_log("appmod.py changed, reloading.", count=2)
    assert_idle(server.proc.pid, "while a stubborn worker has its grace period")
    server.wait_body("v-next", timeout=20)
    server.proc.wait_for_log("did not stop within 3s; killing it")
    assert not zombie_children(server.proc.pid)
    assert_idle(server.proc.pid, "after killing the stubborn worker")
