"""Fixtures for the fcgi tests: servers started through the ``spawn`` harness, nginx, the site.

- ``run_dir``: a short /tmp directory for sockets and nginx (see ``nginx.make_run_dir``).
- ``fcgi_server``: start ``python -m fcgi tests.fcgi.wsgiapp:app`` (or ``manage.py runfcgi`` in
  a site) with options; returns an :class:`FcgiServer` once it logged that it serves.
- ``site``: a copy of examples/mysite (the ``mysite`` fixture) with the DB migrated and the
  catalog fixture loaded (done once per session, then copied).
- ``nginx``: start nginx from an ``examples/nginx`` config rendered for this run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fcgi import nginx as nginx_support
from tests.support import (
    EXAMPLE,
    PYTHON,
    REPO,
    ServerProcess,
    base_env,
    child_pids,
    free_port,
    pid_alive,
    wait_until,
)

Address = str | tuple[str, int]


@dataclass
class FcgiServer:
    proc: ServerProcess
    address: Address

    @property
    def pid(self) -> int:
        return self.proc.pid

    def children(self) -> list[int]:
        return child_pids(self.proc.pid)

    def log(self) -> str:
        return self.proc.log()


def address_of(options: list[str]) -> Address:
    values = dict(o.split("=", 1) for o in options if "=" in o)
    if "socket" in values:
        return values["socket"]
    return (values["host"], int(values["port"]))


@pytest.fixture
def run_dir() -> Iterator[Path]:
    path = nginx_support.make_run_dir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def fcgi_server(
    spawn: Callable[..., ServerProcess],
) -> Callable[..., FcgiServer]:
    def start(
        *options: str,
        site: Path | None = None,
        app: str = "tests.fcgi.wsgiapp:app",
        env: dict[str, str] | None = None,
        name: str = "fcgi",
        ready: bool = True,
        foreground: bool = True,
    ) -> FcgiServer:
        opts = list(options)
        if foreground and not any(o.startswith("daemonize") for o in opts):
            opts.append("daemonize=false")
        if site is not None:
            argv, cwd = [PYTHON, "manage.py", "runfcgi", *opts], site
        else:
            argv, cwd = [PYTHON, "-m", "fcgi", app, *opts], REPO
        proc = spawn(argv, cwd=cwd, env=base_env(env), name=name)
        server = FcgiServer(proc, address_of(opts))
        if ready:
            proc.wait_for_log(" serving ", timeout=30)
        return server

    return start


@pytest.fixture(scope="session")
def prepared_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/mysite's database, migrated and loaded with the catalog fixture, once."""
    work = tmp_path_factory.mktemp("mysite-db") / "mysite"
    shutil.copytree(EXAMPLE, work, ignore=shutil.ignore_patterns("__pycache__", "db.sqlite3"))
    for command in (["migrate", "--noinput", "-v0"], ["loaddata", "-v0", "catalog"]):
        subprocess.run(
            [PYTHON, "manage.py", *command], cwd=work, env=base_env(), check=True, timeout=120
        )
    return work / "db.sqlite3"


@pytest.fixture
def site(mysite: Path, prepared_db: Path) -> Path:
    """A private copy of examples/mysite, migrated, with the catalog loaded."""
    shutil.copy2(prepared_db, mysite / "db.sqlite3")
    return mysite


@dataclass
class Nginx:
    port: int
    proc: ServerProcess
    prefix: Path

    def error_log(self) -> str:
        try:
            return (self.prefix / "error.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""


@pytest.fixture
def nginx(spawn: Callable[..., ServerProcess], run_dir: Path) -> Callable[..., Nginx]:
    if nginx_support.NGINX is None:
        pytest.skip("nginx is not installed: scripts/system-setup.sh installs nginx-light as root")

    def start(name: str, **render: object) -> Nginx:
        port = free_port()
        prefix = run_dir / "nginx"
        conf = prefix / "nginx.conf"
        sockets = None if "upstream_port" in render else run_dir / "sock"
        conf.write_text(
            nginx_support.render(name, port=port, socket_dir=sockets, **render)  # type: ignore[arg-type]
        )
        proc = spawn(nginx_support.command(prefix, conf), cwd=prefix, name="nginx")
        server = Nginx(port, proc, prefix)

        def up() -> bool:
            import socket

            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True

        wait_until(
            up, 15, what="nginx to listen", describe=lambda: proc.describe() + server.error_log()
        )
        return server

    return start


@pytest.fixture
def daemons() -> Iterator[list[int]]:
    """PIDs of daemonized servers (outside the harness' session): killed with their process
    group at teardown, and the test fails if one was still alive."""
    pids: list[int] = []
    yield pids
    survivors = [pid for pid in pids if pid_alive(pid)]
    for pid in survivors:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(os.getpgid(pid), signal.SIGKILL)
    assert not survivors, f"daemons left running: {survivors}"
