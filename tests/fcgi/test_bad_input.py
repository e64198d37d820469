"""Bad input that gave a traceback or let two servers share a pid file (issue 10)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from fcgi import OptionError, Options, serve
from tests.support import PYTHON, REPO, base_env, free_port, pid_alive, port_is_free, wait_until

LONG_LABEL = "a" * 300  # DNS allows 63 characters a label: the idna codec raises UnicodeError
APP = [PYTHON, "-m", "fcgi", "tests.fcgi.wsgiapp:app", "host=127.0.0.1", "method=threaded"]


def python_m_fcgi(*words: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "fcgi", "tests.fcgi.wsgiapp:app", *words],
        cwd=REPO,
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (
            [f"host={LONG_LABEL}", "port=8000"],
            f"host={LONG_LABEL}: not a valid host name or address",
        ),
        (
            [f"host={LONG_LABEL}.example", "port=8000"],
            f"host={LONG_LABEL}.example: not a valid host name or address",
        ),
        (["pidfile={dir}"], "pidfile={dir}: is a directory, give a file name"),
        (["outlog={dir}"], "outlog={dir}: is a directory, give a file name"),
        (["errlog={dir}"], "errlog={dir}: is a directory, give a file name"),
        (["socket={dir}"], "socket={dir}: is a directory, give the socket's file name"),
    ],
    ids=["long label", "long first label", "pidfile", "outlog", "errlog", "socket"],
)
def test_bad_hosts_and_directories_for_files_are_refused_at_parse_time(tmp_path, words, message):
    with pytest.raises(OptionError) as excinfo:
        Options.parse([w.format(dir=tmp_path) for w in words])
    assert str(excinfo.value) == message.format(dir=tmp_path)


def test_host_names_up_to_what_dns_allows_are_accepted():
    longest = ".".join(["a" * 63] * 3 + ["a" * 61])  # 253 characters
    assert Options.parse([f"host={longest}", "port=8000"]).host == longest
    assert Options.parse(["host=::1", "port=8000"]).host == "::1"


def test_options_built_directly_with_a_bad_host_fail_with_an_option_error():
    # The library path: Options(...) without parse() reaches getaddrinfo.
    options = Options(host=LONG_LABEL, port=free_port(), daemonize=False)
    with pytest.raises(OptionError, match="not a valid host name or address"):
        serve(lambda environ, start_response: [], options)


@pytest.mark.parametrize("daemonize", ["false", "true"])
@pytest.mark.parametrize("key", ["pidfile", "outlog", "errlog"])
def test_python_m_fcgi_with_a_directory_for_a_file_is_one_line(tmp_path, key, daemonize):
    port = free_port()
    result = python_m_fcgi("host=127.0.0.1", f"port={port}", f"daemonize={daemonize}", f"{key}=/")
    assert result.returncode == 2
    assert result.stderr == f"Error: {key}=/: is a directory, give a file name\n"
    assert port_is_free(port)


def test_python_m_fcgi_with_a_host_label_too_long_is_one_line():
    result = python_m_fcgi(f"host={LONG_LABEL}", "port=8000", "daemonize=false")
    assert result.returncode == 2
    assert result.stderr == f"Error: host={LONG_LABEL}: not a valid host name or address\n"


# ------------------------------------------------------------------ one pid file, one server


@pytest.fixture
def killed_at_teardown() -> Iterator[list[str]]:
    """Words of command lines whose processes are killed at teardown: daemons leave the
    harness' session, and one stuck before its pid file is written cannot be found by it."""
    marks: list[str] = []
    yield marks
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace")
            if any(mark in argv.split("\0") for mark in marks):
                os.kill(int(entry), signal.SIGKILL)


def test_two_daemons_started_at_once_with_one_pidfile_one_runs(
    spawn, tmp_path, killed_at_teardown, daemons
):
    # Both starters are held between taking the pid file and writing the daemon's pid: the
    # daemon opens outlog, a FIFO, which blocks until someone reads it. Before, both had passed
    # the check by then, and both ran.
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    pidfile = tmp_path / "fcgi.pid"
    killed_at_teardown.append(f"pidfile={pidfile}")
    ports = [free_port(), free_port()]
    starters = [
        spawn(
            [*APP, f"port={port}", "daemonize=true", f"pidfile={pidfile}", f"outlog={fifo}"],
            cwd=REPO,
            name=f"starter-{n}",
        )
        for n, port in enumerate(ports)
    ]
    # The first to take the pid file holds it (its starter's pid, then its daemon's); the other
    # is refused before it binds.
    refused = wait_until(
        lambda: next((s for s in starters if s.proc.poll() is not None), None),
        30,
        what="one starter to be refused",
    )
    winner = starters[1 - starters.index(refused)]
    assert refused.wait_exit() == 2
    assert refused.log().startswith("Error: pidfile=")
    assert "already running on PID " in refused.log()
    assert "(or the pid file is stale)" in refused.log()
    assert port_is_free(ports[starters.index(refused)])
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # lets the daemon go on
    try:
        assert winner.wait_exit(30) == 0, winner.log()
        daemon = int(pidfile.read_text())
        daemons.append(daemon)
        assert pid_alive(daemon) and daemon != winner.pid
        assert not port_is_free(ports[starters.index(winner)])
        os.kill(daemon, signal.SIGTERM)
        wait_until(lambda: not pid_alive(daemon), 15, what="the daemon to exit")
    finally:
        os.close(reader)
    assert not pidfile.exists()


def test_a_pidfile_left_by_a_dead_process_is_taken_over(spawn, tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    pidfile = tmp_path / "fcgi.pid"
    pidfile.write_text(f"{dead.pid}\n")
    port = free_port()
    server = spawn(
        [*APP, f"port={port}", "daemonize=false", f"pidfile={pidfile}"],
        cwd=REPO,
    )
    server.wait_for_log(" serving ")
    assert pidfile.read_text() == f"{server.pid}\n"
    server.signal(signal.SIGTERM)
    assert server.wait_exit(15) == 0
    assert not pidfile.exists()


def test_a_server_that_cannot_bind_gives_the_pidfile_back(tmp_path):
    pidfile = tmp_path / "fcgi.pid"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = python_m_fcgi("host=127.0.0.1", f"port={port}", f"pidfile={pidfile}")
    assert result.returncode == 2
    assert "already in use" in result.stderr
    assert not pidfile.exists()


def test_the_pid_file_directory_lock_is_not_left_held(tmp_path):
    # acquire() holds the directory's flock only while it checks and writes.
    import fcntl

    from fcgi import pidfile

    path = tmp_path / "p.pid"
    pidfile.acquire(str(path))
    assert path.read_text() == f"{os.getpid()}\n"
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)
    pidfile.remove(str(path))
    assert not path.exists()
