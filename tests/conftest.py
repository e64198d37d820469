from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import EXAMPLE, ServerProcess, base_env, session_members


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start commands as ServerProcess; every one is stopped by process group at teardown,
    and the test fails if anything it started is still alive afterwards."""
    started: list[ServerProcess] = []

    def start(
        argv: list[str],
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        name: str | None = None,
        **kw: object,
    ) -> ServerProcess:
        log = tmp_path / f"{name or 'server'}-{len(started)}.log"
        proc = ServerProcess(
            argv, cwd or tmp_path, log, env if env is not None else base_env(), **kw
        )  # type: ignore[arg-type]
        started.append(proc.start())
        return proc

    yield start
    leaked = []
    for proc in started:
        proc.stop()
        leaked += session_members(proc.pid)
    assert not leaked, f"processes left behind: {leaked}"


@pytest.fixture
def mysite(tmp_path: Path) -> Path:
    """A private copy of examples/mysite: tests edit files here, never in the source tree."""
    dest = tmp_path / "mysite"
    shutil.copytree(
        EXAMPLE, dest, ignore=shutil.ignore_patterns("__pycache__", "db.sqlite3", "media")
    )
    return dest


@pytest.fixture(autouse=True)
def no_thread_leak() -> Iterator[None]:
    """Fail a test that leaves threads running in the test process (watchdog's fixture)."""
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    for t in leaked:
        t.join(timeout=2)
    leaked = [t for t in leaked if t.is_alive()]
    assert not leaked, f"threads left running: {leaked}"
