"""Checkpoints (``--checkpoints``): a worker forked from the deepest point of the start-up that an
edit left good replays only the rest, and is never different from a cold one."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

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


@pytest.fixture
def staged(spawn, app_dir):
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
    return server.proc.log().count("The last checkpoint is ready")


def wait_rebuilt(server: Running, before: int) -> None:
    """Wait for the build that follows a reload (from what the edit left good)."""
    server.proc.wait_for_log("The last checkpoint is ready", count=before + 1, timeout=30)


def test_an_edit_replays_only_the_start_up_after_the_last_good_checkpoint(staged):
    server = staged()
    before = built(server)
    write_module(server.app, "c", "c2")
    pid = serve(server, "a1 b1 c2")
    assert imports_of(server, pid) == ["c", "serve"]
    assert "Reloading from checkpoint 'before proj.c'" in server.proc.log()
    # An edit read before every checkpoint but the template: the whole start-up again.
    wait_rebuilt(server, before)
    write_module(server.app, "a", "a2")
    pid = serve(server, "a2 b1 c2")
    assert imports_of(server, pid) == ["a", "b", "c", "serve"]
    assert "The last checkpoint was ruled out: " in server.proc.log()
    assert "proj/a.py changed." in server.proc.log()


def test_a_module_created_where_the_start_up_looked_is_found(staged):
    # proj/__init__.py imports an optional module if there is one: a checkpoint taken after it
    # looked (and found nothing) must not be used once the module exists.
    server = staged()
    before = built(server)
    init = server.app / "proj" / "__init__.py"
    init.write_text(
        "try:\n    from .optional import EXTRA\nexcept ImportError:\n    EXTRA = 'none'\n"
    )
    write_module(server.app, "c", "c2")  # a restart that reads the new __init__
    serve(server, "a1 b1 c2 none")
    wait_rebuilt(server, before)
    (server.app / "proj" / "optional.py").write_text("EXTRA = 'found'\n")
    write_module(server.app, "c", "c3")
    serve(server, "a1 b1 c3 found")


def test_a_data_file_read_at_start_up_is_read_again(staged):
    server = staged()
    before = built(server)
    (server.app / "data.txt").write_text("d1")
    write_module(server.app, "b", "b", extra="V2 = open('data.txt').read()")
    (server.app / "proj" / "b.py").write_text(
        (server.app / "proj" / "b.py").read_text().replace("V = 'b'", "V = 'b-' + V2")
    )
    serve(server, "a1 b-d1 c1")
    wait_rebuilt(server, before)
    (server.app / "data.txt").write_text("d2")  # restarts nothing by itself...
    write_module(server.app, "c", "c2")  # ...but the next worker reads it
    serve(server, "a1 b-d2 c2")


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        (
            "import threading; threading.Thread(target=time.sleep, args=(600,), daemon=True,"
            " name='poller').start()",
            "a thread runs in it (poller)",
        ),
        ("import socket; KEEP = socket.socketpair()", "a socket is open (fd"),
    ],
    ids=["thread", "socket"],
)
def test_what_forks_must_not_share_stops_checkpoints_with_one_line(staged, extra, reason):
    server = staged(wait_for="")
    write_module(server.app, "b", "b2", extra=extra)
    serve(server, "a1 b2 c1")
    server.proc.wait_for_log("No more checkpoints in this start-up", timeout=30)
    # Reloads still work: from a checkpoint taken before (after a), never after.
    for n in (2, 3):
        write_module(server.app, "c", f"c{n}")
        pid = serve(server, f"a1 b2 c{n}")
        assert imports_of(server, pid) == ["b", "c", "serve"]
    log = server.proc.log()
    assert log.count("No more checkpoints in this start-up") == 1, log
    assert reason in log


def test_no_two_workers_share_a_random_value_drawn_at_import(staged):
    server = staged(wait_for="")
    write_module(server.app, "b", "b", extra="import secrets; TOKEN = secrets.token_hex(8)")
    path = server.app / "proj" / "b.py"
    path.write_text(path.read_text().replace("V = 'b'", "V = 'b-' + TOKEN"))
    tokens = {server.wait_body("a1 b-").split()[1]}
    server.proc.wait_for_log("draws a random value", timeout=30)
    for n in (2, 3, 4):
        write_module(server.app, "c", f"c{n}")
        tokens.add(_body_with(server, f" c{n} "))  # spaces: the hex token may hold "c4"
    assert len(tokens) == 4, tokens


def _body_with(server: Running, token: str) -> str:
    body = wait_until(
        lambda: (r := server.get()).status == 200 and token in r.text and r.text,
        20,
        what=f"a body with {token}",
        describe=server.proc.describe,
    )
    return body.split()[1]


def test_a_program_without_its_final_checkpoint_is_never_served_by_a_builder(staged):
    server = staged(env={"STAGED_FINAL": "0"}, wait_for="")
    server.proc.wait_for_log("without calling checkpoint(final=True)", timeout=30)
    write_module(server.app, "c", "c2")
    pid = serve(server, "a1 b1 c2")
    assert imports_of(server, pid) == ["c", "serve"]  # a checkpoint before it still serves
    log = (server.app / "imports.log").read_text().split("\n")
    assert len([line for line in log if line.startswith("serve")]) == 2  # never the builder
