"""The staged app of the checkpoint and refresh tests (``apps/staged.py``): helpers, and the
``staged`` fixture (in conftest.py)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.reloader.conftest import Running
from tests.support import PYTHON, base_env, free_port, wait_until

MODULE = textwrap.dedent(
    """\
    import os, time
    open("imports.log", "a").write(f"{name} {{os.getpid()}}\\n")
    time.sleep(0.2)  # a start-up takes a while: the builder pauses a checkpoint before each
    {extra}
    V = {value!r}
    """
)


def write_module(app: Path, name: str, value: str, extra: str = "") -> None:
    (app / "proj" / f"{name}.py").write_text(MODULE.format(name=name, value=value, extra=extra))


def staged_factory(spawn, app_dir):
    """``python -m reloader -v --start fork --checkpoints -- python staged.py``, once its last
    checkpoint is ready (so that the next reload can use it)."""
    (app_dir / "proj").mkdir()
    (app_dir / "proj" / "__init__.py").write_text("")
    for name in "abc":
        write_module(app_dir, name, f"{name}1")

    def start(env: dict[str, str] | None = None, wait_for: str = "The last checkpoint is ready"):
        port = free_port()
        argv = [PYTHON, "-m", "reloader", "-v", "--start", "fork", "--checkpoints"]
        argv += ["--bind", f"127.0.0.1:{port}", "--", PYTHON, "staged.py"]
        proc = spawn(argv, cwd=app_dir, env=base_env(env), name="staged")
        server = Running(proc, app_dir, port)
        server.wait_body("a1 b1 c1")
        if wait_for:
            proc.wait_for_log(wait_for, timeout=30)
        return server

    return start


def imports_of(server: Running, pid: int) -> list[str]:
    lines = (server.app / "imports.log").read_text().split("\n")
    return [line.split()[0] for line in lines if line.endswith(f" {pid}")]


def serve(server: Running, prefix: str) -> int:
    return int(server.wait_body(prefix).split()[-1])


def built(server: Running) -> int:
    """How many times the last checkpoint was made again, or kept for the next edit."""
    log = server.proc.log()
    return log.count("The last checkpoint is ready") + log.count("The last checkpoint is kept")


def wait_rebuilt(server: Running, before: int) -> None:
    """Wait for the build that follows a reload (from what the edit left good), or for the
    word that the last checkpoint is kept (it had analysed that edit ahead)."""
    wait_until(
        lambda: built(server) > before,
        30,
        what="the last checkpoint made again or kept",
        describe=server.proc.describe,
    )
