from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.browser import browser, chromium  # noqa: F401 (fixtures for the browser tests)
from tests.support import EXAMPLE, PYTHON, ServerProcess, base_env, free_port, http_get, wait_until

BANNER_END = "Quit the server with CONTROL-C."


@pytest.fixture(scope="session")
def migrated_site(tmp_path_factory) -> Path:
    """examples/mysite with its SQLite database migrated and the catalog fixture loaded, once."""
    site = tmp_path_factory.mktemp("site") / "mysite"
    shutil.copytree(
        EXAMPLE, site, ignore=shutil.ignore_patterns("__pycache__", "db.sqlite3", "media")
    )
    for argv in (["migrate", "--noinput", "-v0"], ["loaddata", "-v0", "catalog"]):
        subprocess.run([PYTHON, "manage.py", *argv], cwd=site, env=base_env(), check=True)
    return site


@pytest.fixture
def site(migrated_site, tmp_path) -> Path:
    """A private, migrated copy of the example project for one test to edit."""
    dest = tmp_path / "mysite"
    shutil.copytree(migrated_site, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


@dataclass
class Devserver:
    proc: ServerProcess
    site: Path
    port: int
    host: str = "127.0.0.1"

    def get(self, path: str = "/", **kw):
        return http_get(self.port, path, host=self.host, **kw)

    def wait_status(self, path: str, status: int, timeout: float = 30.0, contains: str = ""):
        def check():
            resp = self.get(path)
            return resp if resp.status == status and contains in resp.text else None

        return wait_until(
            check, timeout, what=f"{path} -> {status} {contains!r}", describe=self.proc.describe
        )

    def pid(self) -> int:
        return int(self.get("/diag/pid/").text)

    def edit(self, relative: str, old: str, new: str) -> None:
        path = self.site / relative
        text = path.read_text()
        assert old in text, f"{old!r} not in {relative}"
        path.write_text(text.replace(old, new, 1))


@pytest.fixture
def runserver(spawn, site) -> Callable[..., Devserver]:
    """Start ``manage.py runserver`` on a free port; wait until it answers (unless told not to)."""

    def start(
        *args: str,
        addrport: str | None = None,
        env: dict[str, str] | None = None,
        wait: bool = True,
        host: str = "127.0.0.1",
        port: int | None = None,
    ) -> Devserver:
        port = port or free_port(host)
        if addrport is None:
            addrport = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        argv = [PYTHON, "manage.py", "runserver", *([addrport] if addrport else []), *args]
        proc = spawn(argv, cwd=site, env=base_env(env), name="runserver")
        server = Devserver(proc, site, port, host)
        if wait:
            proc.wait_for_log("Quit the server with CONTROL-C.", timeout=30)
            server.wait_status("/", 200)
        return server

    return start


@pytest.fixture
def testserver(spawn, site) -> Callable[..., Devserver]:
    """Start ``manage.py testserver ARGS``; wait until it answers (unless told not to).

    ``{addrport}`` in the arguments is replaced with 127.0.0.1 and a free port; without it,
    ``--addrport`` is added after the fixture names."""

    def start(
        *args: str,
        env: dict[str, str] | None = None,
        wait: bool = True,
        port: int | None = None,
        **kw: object,
    ) -> Devserver:
        port = port or free_port()
        addrport = f"127.0.0.1:{port}"
        if "{addrport}" in args:
            argv = [a.replace("{addrport}", addrport) for a in args]
        else:
            argv = [*args, "--addrport", addrport]
        proc = spawn(
            [PYTHON, "manage.py", "testserver", "--noinput", *argv],
            cwd=site,
            env=base_env(env),
            name="testserver",
            **kw,
        )
        server = Devserver(proc, site, port)
        if wait:
            wait_until(
                lambda: BANNER_END in proc.log() or proc.proc.poll() is not None,
                60,
                what="the banner",
                describe=proc.describe,
            )
            assert BANNER_END in proc.log(), proc.describe()
            server.wait_status("/", 200)
        return server

    return start


def run_manage(site: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 60):
    """A one-shot manage.py command; returns the CompletedProcess."""
    return subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=site,
        env=base_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
