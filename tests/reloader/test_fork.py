"""The warm start: workers forked from a template that preloaded the libraries."""

from __future__ import annotations

import os
import signal
import time

from tests.reloader.conftest import Running
from tests.support import (
    PYTHON,
    child_pids,
    free_port,
    parent_of,
    pid_alive,
    port_is_free,
    wait_until,
)


def wait_forked(server: Running, n: int) -> list[int]:
    """Restart until worker n is a fork (its parent is the template, not the supervisor)."""
    for version in range(2, 2 + n):
        server.edit("appmod.py", f'VERSION = "v{version}"\n')
        server.wait_body(f"v{version}")
    workers = server.starts()
    assert parent_of(workers[-1]) != server.proc.pid, "the last worker was not forked"
    return workers


def test_the_template_never_imports_project_modules(spawn, app_dir):
    # Every import of appmod, in any process, leaves that process's pid behind.
    (app_dir / "appmod.py").write_text(
        'import os\nopen("imported-by.log", "a").write(f"{os.getpid()}\\n")\nVERSION = "v1"\n'
    )
    port = free_port()
    proc = spawn(
        [
            PYTHON,
            "-m",
            "reloader",
            "--start",
            "fork",
            "--bind",
            f"127.0.0.1:{port}",
            "--",
            PYTHON,
            "server.py",
        ],
        cwd=app_dir,
    )
    server = Running(proc, app_dir, port)
    server.wait_body("v1")
    for version in range(2, 5):
        server.edit(
            "appmod.py",
            (app_dir / "appmod.py").read_text().replace(f'"v{version - 1}"', f'"v{version}"'),
        )
        server.wait_body(f"v{version}")
    workers = server.starts()
    template = parent_of(workers[-1])
    assert template != proc.pid  # the last worker is a fork
    importers = [int(p) for p in (app_dir / "imported-by.log").read_text().split()]
    assert template not in importers
    assert sorted(set(importers)) == sorted(workers)


def test_forked_workers_start_with_fresh_state(forking_reloader):
    server = forking_reloader()
    # Each worker bumps a counter kept on a module the template preloads (json), and draws a
    # random number: a worker forked from anything but the pristine template would see the
    # counter of an earlier worker, and forks that were not reseeded would draw the same number.
    code = (
        "import json, random\n"
        "json._reloader_test_counter = getattr(json, '_reloader_test_counter', 0) + 1\n"
        "VERSION = f'n{{}}-{json._reloader_test_counter}-{random.random()}'\n"
    )
    bodies = []
    for n in range(1, 5):
        server.edit("appmod.py", code.replace("{{}}", str(n)))
        bodies.append(server.wait_body(f"n{n}-"))
    workers = server.starts()
    template = parent_of(workers[-1])
    assert template != server.proc.pid, "the last workers were forked"
    # Forks are in the supervisor's process group (the terminal's: Ctrl-C, debuggers); the
    # template is not (group signals are the supervisor's to act on).
    assert os.getpgid(workers[-1]) == os.getpgid(server.proc.pid)
    assert os.getpgid(template) != os.getpgid(server.proc.pid)
    counters = [b.split()[0].split("-")[1] for b in bodies]
    randoms = [b.split()[0].split("-")[2] for b in bodies]
    assert counters == ["1", "1", "1", "1"]
    assert len(set(randoms)) == 4


def test_a_changed_library_restarts_the_template(spawn, fakelib_venv):
    """A package upgraded in the virtualenv: forks must not run the template's old copy."""
    python, site_packages, lib, app = (
        fakelib_venv.python,
        fakelib_venv.site_packages,
        fakelib_venv.lib,
        fakelib_venv.app,
    )
    port = free_port()
    proc = spawn(
        [
            str(python),
            "-m",
            "reloader",
            "-v",
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
    # The template starts once the first worker serves, with what that worker imported.
    proc.wait_for_log("Fork template preloaded", count=1)
    server.edit("appmod.py", 'import fakelib\nVERSION = "v2-" + fakelib.VERSION\n')
    server.wait_body("v2-lib1")
    assert parent_of(server.starts()[-1]) != proc.pid  # forked: fakelib came from the template
    (lib / "__init__.py").write_text('VERSION = "lib2"\n')  # the upgrade
    server.wait_body("v2-lib2")
    assert "fakelib/__init__.py changed; restarting the fork template." in proc.log()
    # And the next template forks again, with the new version preloaded.
    server.edit("appmod.py", 'import fakelib\nVERSION = "v3-" + fakelib.VERSION\n')
    server.wait_body("v3-lib2")
    proc.wait_for_log("Fork template preloaded", count=2)
    server.edit("appmod.py", 'import fakelib\nVERSION = "v4-" + fakelib.VERSION\n')
    server.wait_body("v4-lib2")
    assert parent_of(server.starts()[-1]) != proc.pid
    # A .pth file of the virtualenv changes (a package reinstalled): the template restarts.
    before = len(server.starts())
    (site_packages / "outer.pth").write_text((site_packages / "outer.pth").read_text() + "\n")
    proc.wait_for_log("outer.pth changed; restarting the fork template.")
    server.wait_starts(before + 1)


def test_a_dead_template_is_replaced(forking_reloader):
    server = forking_reloader()
    workers = wait_forked(server, 2)
    template = parent_of(workers[-1])
    os.kill(template, 9)
    server.proc.wait_for_log("The fork template exited")
    server.edit("appmod.py", 'VERSION = "v-after"\n')
    server.wait_body("v-after")
    server.edit("appmod.py", 'VERSION = "v-after-2"\n')
    server.wait_body("v-after-2")
    last = parent_of(server.starts()[-1])
    assert last not in (template, server.proc.pid)  # forked from the new template


def slow_template(spawn, fakelib_venv, *options: str) -> Running:
    """A supervisor whose fork template imports a library that takes ten minutes to import."""
    (fakelib_venv.site_packages / "slowlib.py").write_text(
        "import pathlib, time\npathlib.Path(__file__).with_suffix('.importing').touch()\n"
        "time.sleep(600)\n"
    )
    port = free_port()
    argv = [str(fakelib_venv.python), "-m", "reloader", "--start", "fork", "--preload"]
    argv += ["slowlib", *options, "--bind", f"127.0.0.1:{port}", "--", "python", "server.py"]
    proc = spawn(argv, cwd=fakelib_venv.app)
    server = Running(proc, fakelib_venv.app, port)
    server.wait_body("v1-lib1")
    return server


def template_pid(supervisor: int) -> int:
    def find() -> int | None:
        for pid in child_pids(supervisor):
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"reloader._template" in f.read():
                    return pid
        return None

    return wait_until(find, what="the fork template")


def test_a_template_stuck_in_an_import_never_holds_a_reload_or_a_stop(spawn, fakelib_venv):
    server = slow_template(spawn, fakelib_venv, "-v")
    template_pid(server.proc.pid)
    for n in range(2, 9):  # until the template was asked three times (it may not be up yet)
        if server.proc.log().count("did not answer within") == 3:
            break
        saved = time.monotonic()
        server.edit("appmod.py", f'import fakelib\nVERSION = "v{n}-" + fakelib.VERSION\n')
        server.wait_body(f"v{n}-lib1")
        # A cold start of this small app takes a fraction of a second; waiting for the template
        # took 7.5 s (its 5 s timeout, then its restart).
        assert time.monotonic() - saved < 4.0, server.proc.log()
        assert parent_of(server.starts()[-1]) == server.proc.pid  # started cold
    log = server.proc.log()
    assert log.count("The fork template did not answer within 0.3s") == 3
    assert log.count("workers start cold (spawn) from now on") == 1
    assert "the fork template did not answer 3 times in a row" in log
    assert "restarting the fork template" not in log
    # Workers start cold from now on, with no wait at all.
    server.edit("appmod.py", 'import fakelib\nVERSION = "v9-" + fakelib.VERSION\n')
    server.wait_body("v9-lib1")
    assert server.proc.log().count("did not answer within") == 3
    stopping = time.monotonic()
    os.killpg(server.proc.pid, signal.SIGINT)
    assert server.proc.wait_exit(10) == 0
    assert time.monotonic() - stopping < 2.0


def test_the_template_dies_with_its_supervisor_even_in_the_middle_of_an_import(spawn, fakelib_venv):
    server = slow_template(spawn, fakelib_venv)
    template = template_pid(server.proc.pid)
    marker = fakelib_venv.site_packages / "slowlib.importing"
    wait_until(marker.exists, what="the template to be importing slowlib")
    server.proc.signal(signal.SIGKILL)
    server.proc.wait_exit(5)
    killed = time.monotonic()
    wait_until(lambda: not pid_alive(template), 3, what="the template to be gone")
    wait_until(lambda: port_is_free(server.port), 3, what="the port to be free")
    assert time.monotonic() - killed < 1.0
