"""Defect 10: the socket path is never stolen from a live server, a stale one is replaced, the
socket goes away at exit, and the umask applies to the socket file only."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
from pathlib import Path

from tests.fcgi.clients import fcgi_get
from tests.support import PYTHON, REPO, base_env, free_port


def _umask_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    raise AssertionError("no Umask line")


def _run_second(*options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "fcgi", "tests.fcgi.wsgiapp:app", "daemonize=false", *options],
        cwd=REPO,
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_a_second_server_on_a_live_socket_is_refused(fcgi_server, run_dir: Path) -> None:
    sock = run_dir / "sock" / "a.sock"
    first = fcgi_server(f"socket={sock}", "method=threaded")
    pid = fcgi_get(str(sock), "/pid").text
    inode = sock.stat().st_ino

    second = _run_second(f"socket={sock}")

    assert second.returncode == 2
    assert f"socket={sock}: another server is listening on it" in second.stderr
    assert len(second.stderr.splitlines()) == 1
    assert sock.stat().st_ino == inode  # not unlinked and re-created
    assert fcgi_get(str(sock), "/pid").text == pid
    assert first.proc.proc.poll() is None


def test_a_stale_socket_is_removed(fcgi_server, run_dir: Path) -> None:
    sock = run_dir / "sock" / "stale.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(sock))
    dead.close()  # the file stays, nobody listens: what a killed server leaves behind
    assert stat.S_ISSOCK(sock.stat().st_mode)

    server = fcgi_server(f"socket={sock}")

    assert fcgi_get(str(sock), "/pid").status == 200
    assert "removed the stale socket" in server.log()


def test_something_else_at_the_socket_path_is_refused(run_dir: Path) -> None:
    path = run_dir / "sock" / "file.sock"
    path.write_text("not a socket")
    result = _run_second(f"socket={path}")
    assert result.returncode == 2
    assert "exists and is not a socket" in result.stderr
    assert path.read_text() == "not a socket"


def test_the_socket_is_removed_at_exit(fcgi_server, run_dir: Path) -> None:
    for method in ("prefork", "threaded"):
        sock = run_dir / "sock" / f"{method}.sock"
        server = fcgi_server(f"socket={sock}", f"method={method}")
        assert fcgi_get(str(sock), "/pid").status == 200
        server.proc.signal(signal.SIGTERM)
        assert server.proc.wait_exit(10) == 0
        assert not sock.exists()
        assert "stopped" in server.log()


def test_a_successors_socket_is_not_removed(fcgi_server, run_dir: Path) -> None:
    sock = run_dir / "sock" / "s.sock"
    server = fcgi_server(f"socket={sock}", "method=threaded")
    sock.unlink()  # someone moved our socket away and put theirs in its place
    theirs = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    theirs.bind(str(sock))
    try:
        server.proc.signal(signal.SIGTERM)
        assert server.proc.wait_exit(10) == 0
        assert sock.exists()
    finally:
        theirs.close()


def test_the_umask_applies_to_the_socket_only(fcgi_server, run_dir: Path) -> None:
    ours = os.umask(0o022)
    os.umask(ours)
    sock = run_dir / "sock" / "u.sock"
    server = fcgi_server(f"socket={sock}", "umask=007", "method=threaded")
    assert stat.S_IMODE(sock.stat().st_mode) == 0o770
    assert _umask_of(server.pid) == ours  # the process umask was never changed

    default = run_dir / "sock" / "d.sock"
    fcgi_server(f"socket={default}", "method=threaded")
    assert stat.S_IMODE(default.stat().st_mode) == 0o755  # 1.8's documented default, 022


def test_a_tcp_port_in_use_is_a_one_line_error() -> None:
    port = free_port()
    holder = socket.socket()
    holder.bind(("127.0.0.1", port))
    holder.listen()
    try:
        result = _run_second("host=127.0.0.1", f"port={port}")
    finally:
        holder.close()
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"Error: port {port} on 127.0.0.1 is already in use: "
        "stop that program or choose another port="
    )
