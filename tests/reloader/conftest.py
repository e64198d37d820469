from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import PYTHON, ServerProcess, free_port, http_get, wait_until

APPS = Path(__file__).parent / "apps"


@dataclass
class Running:
    """A supervisor started by a test, with its app directory and port."""

    proc: ServerProcess
    app: Path
    port: int

    def starts(self) -> list[int]:
        try:
            return [int(p) for p in (self.app / "starts.log").read_text().split()]
        except FileNotFoundError:
            return []

    def wait_starts(self, n: int, timeout: float = 20.0) -> list[int]:
        wait_until(
            lambda: len(self.starts()) >= n,
            timeout,
            what=f"{n} worker starts",
            describe=self.proc.describe,
        )
        return self.starts()

    def get(self, path: str = "/", timeout: float = 10.0):
        return http_get(self.port, path, timeout=timeout)

    def wait_body(self, prefix: str, timeout: float = 20.0) -> str:
        def serves() -> str | None:
            resp = self.get()
            return resp.text if resp.status == 200 and resp.text.startswith(prefix) else None

        return wait_until(
            serves, timeout, what=f"a response starting {prefix!r}", describe=self.proc.describe
        )

    def wait_status(self, status: int, timeout: float = 20.0):
        return wait_until(
            lambda: (r := self.get()).status == status and r,
            timeout,
            what=f"status {status}",
            describe=self.proc.describe,
        )

    def edit(self, name: str, text: str) -> None:
        (self.app / name).write_text(text)


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    app = tmp_path / "app"
    app.mkdir()
    for f in APPS.glob("*.py"):
        shutil.copy(f, app / f.name)
    return app


@pytest.fixture(params=["spawn", "fork"])
def start_mode(request) -> str:
    """Every supervisor test runs under both ways of starting a worker."""
    return request.param


def make_reloader(spawn, app_dir: Path, start_mode: str) -> Callable[..., Running]:
    """A factory: ``python -m reloader --start MODE --bind 127.0.0.1:PORT [opts] -- CMD``."""

    def start(
        *options: str,
        command: list[str] | None = None,
        bind: bool = True,
        wait: bool = True,
    ) -> Running:
        port = free_port()
        argv = [PYTHON, "-m", "reloader", "--start", start_mode, *options]
        if bind:
            argv += ["--bind", f"127.0.0.1:{port}"]
        argv += ["--", *(command or [PYTHON, "server.py"])]
        proc = spawn(argv, cwd=app_dir, name="reloader")
        running = Running(proc, app_dir, port)
        if wait and bind:
            running.wait_body("v1")
        return running

    return start


@pytest.fixture
def reloader(spawn, app_dir, start_mode) -> Callable[..., Running]:
    """The supervisor running server.py, once per start mode."""
    return make_reloader(spawn, app_dir, start_mode)


@pytest.fixture
def forking_reloader(spawn, app_dir) -> Callable[..., Running]:
    """The supervisor running server.py with the fork start."""
    return make_reloader(spawn, app_dir, "fork")


@pytest.fixture
def spawning_reloader(spawn, app_dir) -> Callable[..., Running]:
    """The supervisor with the spawn start (plain commands cannot be forked)."""
    return make_reloader(spawn, app_dir, "spawn")


@dataclass
class Venv:
    """A virtualenv whose site-packages holds ``fakelib`` (a library the tests can upgrade) and
    sees our own environment's packages through ``outer.pth``."""

    python: Path
    site_packages: Path
    lib: Path
    app: Path


@pytest.fixture
def fakelib_venv(tmp_path: Path) -> Venv:
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
    for f in APPS.glob("*.py"):
        (app / f.name).write_text(f.read_text())
    (app / "appmod.py").write_text('import fakelib\nVERSION = "v1-" + fakelib.VERSION\n')
    return Venv(python, site_packages, lib, app)


@pytest.fixture
def staged(spawn, app_dir):
    """The staged app under ``--checkpoints`` (``tests.reloader.staging``)."""
    from tests.reloader.staging import staged_factory

    return staged_factory(spawn, app_dir)
