"""Checkpoints (``--checkpoints``): a worker forked from the deepest point of the start-up that an
edit left good replays only the rest, and is never different from a cold one."""

from __future__ import annotations

import pytest

from tests.reloader.conftest import Running
from tests.reloader.staging import built, imports_of, serve, wait_rebuilt, write_module
from tests.support import wait_until

# c puts a function of its own into a library module: importing c again alone would leave the
# library holding the old one, and a library is never imported again.
HOLD = "import json\njson.HELD = lambda: V"


def test_an_edit_importing_again_cannot_take_replays_from_the_checkpoint_before(staged):
    server = staged()
    before = built(server)
    write_module(server.app, "c", "c2", extra=HOLD)
    serve(server, "a1 b1 c2")
    wait_rebuilt(server, before)  # a last checkpoint whose json holds c's function
    write_module(server.app, "c", "c3", extra=HOLD)
    pid = serve(server, "a1 b1 c3")
    assert imports_of(server, pid) == ["c", "serve"]
    log = server.proc.log()
    assert "json.HELD holds proj.c.<lambda>" in log
    assert log.rstrip().count("Reloading from checkpoint 'before proj.c'") == 1
    # The worker that found it could not take the edit left without touching the port.
    for _ in range(20):
        assert server.get().status == 200


def test_an_edit_read_before_every_checkpoint_replays_the_whole_start_up(staged):
    server = staged()
    before = built(server)
    (server.app / "data.txt").write_text("d1")
    write_module(server.app, "a", "a2", extra="D = open('data.txt').read()")
    serve(server, "a2 b1 c1")
    wait_rebuilt(server, before)
    (server.app / "data.txt").write_text("d2")  # read before every checkpoint but the template
    write_module(server.app, "c", "c2")
    pid = serve(server, "a2 b1 c2")
    assert imports_of(server, pid) == ["a", "b", "c", "serve"]
    log = server.proc.log()
    assert "The last checkpoint was ruled out: " in log
    assert "data.txt changed." in log


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
