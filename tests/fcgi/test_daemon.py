"""``daemonize``: detach, pid file, stdio to outlog/errlog, workdir, SIGHUP, a clean stop."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.fcgi.clients import fcgi_get
from tests.support import http_request, pid_alive, wait_until


@pytest.mark.nginx
def test_runfcgi_daemonized_behind_nginx_stops_clean(
    fcgi_server, nginx, site: Path, run_dir: Path, tmp_path: Path, daemons: list[int]
) -> None:
    sock = run_dir / "sock" / "fcgi.sock"
    pidfile, out, err = tmp_path / "run" / "fcgi.pid", tmp_path / "out.log", tmp_path / "err.log"
    pidfile.parent.mkdir()
    workdir = tmp_path / "work"
    workdir.mkdir()
    starter = fcgi_server(
        f"socket={sock}",
        "umask=007",
        "daemonize=true",
        f"pidfile={pidfile}",
        f"outlog={out}",
        f"errlog={err}",
        f"workdir={workdir}",
        "maxspare=2",
        site=site,
        ready=False,
    )
    # The command the user ran returns once the daemon serves (exit 0), like 1.8's did.
    assert starter.proc.wait_exit(30) == 0, starter.log()
    pid = int(pidfile.read_text())
    daemons.append(pid)
    assert pidfile.read_text() == f"{pid}\n"
    assert pid_alive(pid) and pid != starter.pid
    assert os.getsid(pid) != starter.pid  # a new session: detached from the terminal's
    assert os.readlink(f"/proc/{pid}/cwd") == str(workdir)
    assert os.readlink(f"/proc/{pid}/fd/0") == "/dev/null"
    assert os.readlink(f"/proc/{pid}/fd/1") == str(out)
    assert os.readlink(f"/proc/{pid}/fd/2") == str(err)
    assert " serving fcgi (prefork) on unix:" in err.read_text()

    web = nginx("fastcgi-unix.conf")
    assert http_request("127.0.0.1", web.port, "/").status == 200
    children = [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    assert children

    err.rename(tmp_path / "err.log.1")  # logrotate
    os.kill(pid, signal.SIGHUP)
    wait_until(lambda: err.exists() and "logs reopened" in err.read_text(), 10, what="reopen")
    assert http_request("127.0.0.1", web.port, "/diag/pid/").status == 200

    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not pid_alive(pid), 15, what="the daemon to exit")
    wait_until(lambda: not [c for c in children if pid_alive(c)], 5, what="its children")
    assert not pidfile.exists()
    assert not sock.exists()
    assert "stopped" in err.read_text()


def test_a_pidfile_held_by_a_running_server_is_refused(
    fcgi_server, run_dir: Path, tmp_path: Path
) -> None:
    pidfile = tmp_path / "fcgi.pid"
    first = fcgi_server(
        f"socket={run_dir / 'sock' / 'a.sock'}", f"pidfile={pidfile}", "method=threaded"
    )
    assert pidfile.read_text() == f"{first.pid}\n"
    second = fcgi_server(
        f"socket={run_dir / 'sock' / 'b.sock'}", f"pidfile={pidfile}", name="second", ready=False
    )
    assert second.proc.wait_exit(15) == 2
    assert f"already running on PID {first.pid}" in second.log()
    assert not (run_dir / "sock" / "b.sock").exists()  # the socket it bound was removed
    assert pidfile.read_text() == f"{first.pid}\n"


def test_a_daemon_reports_its_start_and_writes_stdio_to_the_logs(
    fcgi_server, run_dir: Path, tmp_path: Path, daemons: list[int]
) -> None:
    sock = run_dir / "sock" / "d.sock"
    pidfile, out, err = tmp_path / "d.pid", tmp_path / "out.log", tmp_path / "err.log"
    starter = fcgi_server(
        f"socket={sock}",
        "method=threaded",
        "daemonize",  # bare: true (1.8 crashed)
        f"pidfile={pidfile}",
        f"outlog={out}",
        f"errlog={err}",
        ready=False,
    )
    assert starter.proc.wait_exit(15) == 0
    pid = int(pidfile.read_text())
    daemons.append(pid)
    assert os.readlink(f"/proc/{pid}/cwd") == "/"  # workdir's default
    assert fcgi_get(str(sock), "/print").status == 200
    wait_until(lambda: "hello on stdout" in out.read_text(), 5, what="stdout in outlog")
    wait_until(lambda: "hello on stderr" in err.read_text(), 5, what="stderr in errlog")
    os.kill(pid, signal.SIGINT)
    wait_until(lambda: not pid_alive(pid), 10, what="the daemon to exit")
    assert not pidfile.exists() and not sock.exists()


def test_by_default_a_bound_server_detaches(fcgi_server, run_dir: Path, daemons: list[int]) -> None:
    """1.8's rule: without daemonize=, a server on host/port or socket detaches."""
    sock = run_dir / "sock" / "d.sock"
    starter = fcgi_server(f"socket={sock}", "method=threaded", ready=False, foreground=False)
    assert starter.proc.wait_exit(15) == 0
    pid = int(fcgi_get(str(sock), "/pid").text)
    daemons.append(pid)
    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not pid_alive(pid), 10, what="the daemon to exit")


def test_a_pidfile_taken_over_by_another_process_is_left_alone(
    fcgi_server, run_dir: Path, tmp_path: Path
) -> None:
    pidfile = tmp_path / "fcgi.pid"
    server = fcgi_server(f"socket={run_dir / 'sock' / 'a.sock'}", f"pidfile={pidfile}")
    pidfile.write_text("1\n")  # a successor wrote its pid: not ours to remove any more
    server.proc.signal(signal.SIGTERM)
    assert server.proc.wait_exit(10) == 0
    assert pidfile.read_text() == "1\n"
