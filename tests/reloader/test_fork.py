"""The warm start: workers forked from a template that preloaded the libraries."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

from tests.reloader.conftest import Running
from tests.support import PYTHON, free_port, parent_of


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


def test_a_changed_library_restarts_the_template(spawn, tmp_path):
    """A package upgraded in the virtualenv: forks must not run the template's old copy."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site_packages = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    # Our own environment's packages (reloader, werkzeug...) on top, as an added site dir.
    outer = sysconfig.get_paths()["purelib"]
    (site_packages / "outer.pth").write_text(f"import site; site.addsitedir({outer!r})\n")
    lib = site_packages / "fakelib"
    lib.mkdir()
    (lib / "__init__.py").write_text('VERSION = "lib1"\n')
    app = tmp_path / "app"
    app.mkdir()
    from tests.reloader.conftest import APPS

    for f in APPS.glob("*.py"):
        (app / f.name).write_text(f.read_text())
    (app / "appmod.py").write_text('import fakelib\nVERSION = "v1-" + fakelib.VERSION\n')
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
