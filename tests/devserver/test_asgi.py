"""runserver --asgi (issue 13): the project's ASGI application on uvicorn, under the supervisor.

Each test starts runserver on a copy of the example project, as ``--asgi`` or with Channels'
``ASGI_APPLICATION`` (``MYSITE_ASGI=channels``: Django for HTTP, an echo consumer on
``/ws/echo/`` with the in-memory channel layer), edits real files and waits, bounded, for what
the server must answer; the WebSocket client is the ``websockets`` package.
"""

from __future__ import annotations

import asyncio
import re
import signal
import time

import pytest

from tests.devserver.conftest import run_manage
from tests.support import pid_alive, port_is_free, session_members, wait_until

pytest.importorskip("uvicorn", reason="the asgi extra (uvicorn) is not installed")

CHANNELS = {"MYSITE_ASGI": "channels"}


def set_version(server, value: str) -> None:
    (server.site / "diagnostics" / "version.py").write_text(f"VERSION = {value!r}\n")


def test_async_and_sync_views_static_files_and_the_request_log(runserver):
    server = runserver("--asgi")
    log = server.proc.log()
    assert f"Starting ASGI development server at http://127.0.0.1:{server.port}/" in log
    version, pid = server.get("/diag/async/").text.split()  # an async view
    assert server.get("/diag/version/").text == version  # a sync one
    assert server.pid() == int(pid)
    whole = server.get("/static/css/site.css")
    assert whole.status == 200 and whole.headers["etag"]
    part = server.get("/static/css/site.css", headers={"Range": "bytes=0-3"})
    assert part.status == 206 and part.body == whole.body[:4]
    assert server.get("/static/nope.css").status == 404
    server.proc.wait_for_log('"GET /diag/async/ HTTP/1.1" 200 ')
    assert re.search(
        r'\[\d\d/\w{3}/\d{4} [\d:]{8}\] "GET /static/css/site.css HTTP/1.1" 206 4',
        server.proc.log(),
    )
    set_version(server, "edited")
    server.wait_status("/diag/async/", 200, contains="edited")


async def _echo_through_reloads(server, reloads: int) -> list[tuple[int | None, float, float]]:
    import websockets

    url = f"ws://127.0.0.1:{server.port}/ws/echo/"
    seen = []
    ws = await websockets.connect(url)
    hello = await ws.recv()
    for n in range(1, reloads + 1):
        await ws.send("ping")
        assert (await ws.recv()).endswith(" ping")
        set_version(server, f"v{n}")
        saved = time.monotonic()
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(ws.recv(), 15)
        closed_after = time.monotonic() - saved
        ws = await websockets.connect(url, open_timeout=15)
        hello = await ws.recv()
        assert hello.startswith(f"hello v{n} "), hello
        rcvd = closed.value.rcvd
        seen.append((rcvd.code if rcvd else None, closed_after, time.monotonic() - saved))
    await ws.close()
    return seen


def test_a_channels_consumer_through_ten_reloads_is_closed_with_1012_and_reconnects(runserver):
    server = runserver(env=CHANNELS)  # ASGI_APPLICATION: ASGI without --asgi
    assert "Starting ASGI development server" in server.proc.log()
    seen = asyncio.run(_echo_through_reloads(server, 10))
    assert [code for code, _, _ in seen] == [1012] * 10, seen
    # The open WebSocket never held a reload: closed at once, served anew within moments.
    assert max(closed for _, closed, _ in seen) < 2.0, seen
    assert max(back for _, _, back in seen) < 5.0, seen
    # And Ctrl-C stops it without a word: no accept on the sockets the supervisor shut down.
    server.proc.signal(signal.SIGINT)
    server.proc.wait_exit(10)
    log = server.proc.log()
    assert "Traceback" not in log and "Exception in callback" not in log, log[-3000:]


def test_a_syntax_error_shows_the_error_page_until_the_fix(runserver):
    server = runserver(env=CHANNELS)
    (server.site / "diagnostics" / "version.py").write_text("VERSION = (\n")
    page = server.wait_status("/diag/async/", 500, contains="SyntaxError").text
    assert "<b>diagnostics/version.py</b>, line 1" in page
    set_version(server, "fixed")
    server.wait_status("/diag/async/", 200, contains="fixed")


def test_check_errors_put_up_the_check_error_page(runserver):
    server = runserver("--asgi")
    server.edit(
        "catalog/models.py",
        "models.DecimalField(max_digits=8, decimal_places=2)",
        "models.DecimalField(decimal_places=2)",
    )
    server.wait_status("/", 500, contains="fields.E132")


def test_the_lifespan_runs_in_each_worker(runserver, tmp_path):
    notes = tmp_path / "lifespan.log"
    server = runserver(env={"MYSITE_ASGI": "lifespan", "MYSITE_LIFESPAN_LOG": str(notes)})
    first = server.pid()
    set_version(server, "second")
    server.wait_status("/diag/version/", 200, contains="second")
    second = server.pid()
    wait_until(lambda: f"shutdown {first}" in notes.read_text(), 10, what="the old shutdown")
    lines = notes.read_text().splitlines()
    assert f"startup {first}" in lines and f"startup {second}" in lines
    assert lines.index(f"startup {first}") < lines.index(f"shutdown {first}")


def test_sigkill_of_the_supervisor_leaves_nothing(runserver):
    server = runserver(env=CHANNELS)
    worker = server.pid()
    server.proc.signal(signal.SIGKILL)
    server.proc.wait_exit(5)
    wait_until(lambda: port_is_free(server.port), 3, what="the port to be free")
    wait_until(lambda: not pid_alive(worker), 3, what="the worker to exit")
    wait_until(lambda: not session_members(server.proc.pid), 5, what="every process to exit")


def test_asgi_without_uvicorn_is_one_line(site, tmp_path):
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'uvicorn':\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
    )
    result = run_manage(site, "runserver", "--asgi", env={"PYTHONPATH": str(blocker)})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "CommandError: --asgi needs uvicorn, which is not installed: "
        "pip install 'devserver[asgi]' (or pip install uvicorn)."
    ], result.stderr


def test_testserver_serves_asgi_with_fixture_reloads_and_websockets(testserver, site):
    import websockets

    server = testserver("catalog", env=CHANNELS)
    assert "Starting ASGI development server at" in server.proc.log()
    assert "Espresso Blend" in server.get("/").text
    fixture = site / "catalog" / "fixtures" / "catalog.json"
    fixture.write_text(fixture.read_text().replace("Espresso Blend", "Ristretto Blend"))
    server.wait_status("/", 200, contains="Ristretto Blend")

    async def echo() -> str:
        async with websockets.connect(f"ws://127.0.0.1:{server.port}/ws/echo/") as ws:
            await ws.recv()
            await ws.send("over asgi")
            return await ws.recv()

    assert asyncio.run(echo()).endswith(" over asgi")
    server.proc.signal(signal.SIGINT)
    assert server.proc.wait_exit(15) == 0
    assert "Destroying test database for alias 'default'..." in server.proc.log()


def test_an_endless_stream_never_holds_the_new_worker_and_ends_with_the_old(runserver):
    import socket

    server = runserver(env=CHANNELS)
    sock = socket.create_connection(("127.0.0.1", server.port))
    try:
        sock.sendall(b"GET /diag/ticks/ HTTP/1.1\r\nHost: localhost\r\n\r\n")
        sock.settimeout(10)
        data = b""
        while b"tick 2 " not in data:
            data += sock.recv(4096)
        set_version(server, "next")
        saved = time.monotonic()
        server.wait_status("/diag/async/", 200, contains="next")
        served_after = time.monotonic() - saved
        while sock.recv(4096):  # the old worker ends it: within its drain time (3 s)
            pass
        ended_after = time.monotonic() - saved
    finally:
        sock.close()
    assert served_after < 2.0, served_after
    assert ended_after < 6.0, ended_after
