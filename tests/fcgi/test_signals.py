"""Defects 2, 3 and 12: signals do what the help says, at once, in both process models.

TERM/INT stop gracefully (an idle server at once, a request in progress finishes), HUP reopens
outlog/errlog, USR1 replaces the prefork children; flup's prefork parent ignored TERM while
idle, died on USR1, and its threaded server hung on idle kept-alive connections.
"""

from __future__ import annotations

import contextlib
import signal
import struct
import threading
import time
from pathlib import Path

import pytest

from tests.fcgi.clients import (
    FCGI_KEEP_CONN,
    base_params,
    connect,
    fcgi_get,
    fcgi_read_response,
    fcgi_request_bytes,
)
from tests.support import pid_alive, wait_until

METHODS = ["prefork", "threaded"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
@pytest.mark.parametrize("method", METHODS)
def test_an_idle_server_stops_at_once(fcgi_server, run_dir: Path, method: str, signum) -> None:
    sock = run_dir / "sock" / "s.sock"
    server = fcgi_server(f"socket={sock}", f"method={method}")
    if method == "prefork":  # no request first: flup's parent hung in select() from the start
        wait_until(lambda: len(server.children()) == 5, 10, what="5 children")
    children = server.children()

    started = time.monotonic()
    server.proc.signal(signum)
    assert server.proc.wait_exit(10) == 0
    elapsed = time.monotonic() - started

    assert elapsed < 3.0, f"took {elapsed:.1f}s to stop an idle server"
    assert not [pid for pid in children if pid_alive(pid)]
    assert not sock.exists()


@pytest.mark.parametrize("method", METHODS)
def test_stop_lets_the_request_in_progress_finish(fcgi_server, run_dir: Path, method: str) -> None:
    sock = run_dir / "sock" / "s.sock"
    server = fcgi_server(f"socket={sock}", f"method={method}")
    result = {}

    def slow() -> None:
        result["response"] = fcgi_get(str(sock), "/sleep", query="s=1.5", timeout=20)

    client = threading.Thread(target=slow)
    client.start()
    server.proc.wait_for_log("sleep start")
    server.proc.signal(signal.SIGTERM)
    client.join(20)

    assert result["response"].status == 200
    assert server.proc.wait_exit(10) == 0
    assert "SIGTERM: stopping gracefully" in server.log()


@pytest.mark.parametrize("method", METHODS)
def test_stop_does_not_wait_for_idle_kept_alive_connections(
    fcgi_server, run_dir: Path, method: str
) -> None:
    sock = run_dir / "sock" / "s.sock"
    server = fcgi_server(f"socket={sock}", f"method={method}")
    conn = connect(str(sock))
    try:
        for request_id in (1, 2):  # two requests on one kept-alive connection
            conn.sendall(fcgi_request_bytes(base_params("/pid"), b"", request_id, FCGI_KEEP_CONN))
            assert fcgi_read_response(conn).status == 200
        started = time.monotonic()
        server.proc.signal(signal.SIGTERM)
        assert server.proc.wait_exit(10) == 0
        assert time.monotonic() - started < 3.0
    finally:
        conn.close()


def test_sigusr1_replaces_the_prefork_children(fcgi_server, run_dir: Path) -> None:
    sock = run_dir / "sock" / "s.sock"
    server = fcgi_server(f"socket={sock}", "minspare=2", "maxspare=2", "maxchildren=2")
    wait_until(lambda: len(server.children()) == 2, 10, what="2 children")
    before = set(server.children())

    server.proc.signal(signal.SIGUSR1)

    def replaced() -> bool:
        now = set(server.children())
        return len(now) == 2 and not now & before

    wait_until(replaced, 10, what="two new children", describe=server.proc.describe)
    assert server.proc.proc.poll() is None  # flup's parent died here
    assert int(fcgi_get(str(sock), "/pid").text) in server.children()
    assert "SIGUSR1: replacing the children" in server.log()


def test_sigusr1_is_harmless_in_threaded_mode(fcgi_server, run_dir: Path) -> None:
    sock = run_dir / "sock" / "s.sock"
    server = fcgi_server(f"socket={sock}", "method=threaded")
    server.proc.signal(signal.SIGUSR1)
    server.proc.wait_for_log("SIGUSR1: nothing to replace")
    assert fcgi_get(str(sock), "/pid").text == str(server.pid)


@pytest.mark.parametrize("method", METHODS)
def test_sighup_reopens_the_logs(fcgi_server, run_dir: Path, tmp_path: Path, method: str) -> None:
    sock = run_dir / "sock" / "s.sock"
    out, err = tmp_path / "out.log", tmp_path / "err.log"
    server = fcgi_server(
        f"socket={sock}", f"method={method}", f"outlog={out}", f"errlog={err}", ready=False
    )
    wait_until(lambda: err.exists() and " serving " in err.read_text(), 15, what="serving")
    assert fcgi_get(str(sock), "/print").status == 200
    wait_until(lambda: "hello on stdout" in out.read_text(), 5, what="app output in outlog")

    out.rename(tmp_path / "out.log.1")  # what logrotate does
    err.rename(tmp_path / "err.log.1")
    server.proc.signal(signal.SIGHUP)
    wait_until(lambda: err.exists() and "logs reopened" in err.read_text(), 10, what="reopen")

    if method == "prefork":  # the children were replaced, so they write to the new files too
        wait_until(lambda: len(server.children()) == 5, 10, what="new children")
    assert fcgi_get(str(sock), "/print").status == 200
    wait_until(lambda: out.exists() and "hello on stdout" in out.read_text(), 5, what="outlog")
    wait_until(lambda: "hello on stderr" in err.read_text(), 5, what="errlog")
    assert server.proc.proc.poll() is None  # flup's run() returned on SIGHUP


def test_prefork_children_exit_when_the_parent_is_killed(fcgi_server, run_dir: Path) -> None:
    sock = run_dir / "sock" / "s.sock"
    server = fcgi_server(f"socket={sock}")
    wait_until(lambda: len(server.children()) == 5, 10, what="5 children")
    children = server.children()

    server.proc.signal(signal.SIGKILL)
    server.proc.wait_exit(5)

    wait_until(lambda: not [p for p in children if pid_alive(p)], 5, what="orphans to exit")
    # The socket file is left behind, stale: the next server takes it over.
    again = fcgi_server(f"socket={sock}", "method=threaded", name="again")
    assert fcgi_get(str(sock), "/pid").text == str(again.pid)


def test_a_second_stop_signal_does_not_wait(fcgi_server, run_dir: Path) -> None:
    sock = run_dir / "sock" / "s.sock"
    server = fcgi_server(f"socket={sock}", "method=prefork")
    client = threading.Thread(
        target=lambda: _ignore(lambda: fcgi_get(str(sock), "/sleep", query="s=20", timeout=30))
    )
    client.start()
    try:
        server.proc.wait_for_log("sleep start")
        server.proc.signal(signal.SIGTERM)
        server.proc.wait_for_log("stopping gracefully")
        started = time.monotonic()
        server.proc.signal(signal.SIGINT)
        assert server.proc.wait_exit(10) == 0
        assert time.monotonic() - started < 5.0
    finally:
        client.join(30)


def _ignore(call) -> None:  # type: ignore[no-untyped-def]
    with contextlib.suppress(OSError, EOFError, struct.error):
        call()
