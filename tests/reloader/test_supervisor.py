"""The real supervisor, on real files and sockets, serving a werkzeug app on the held socket."""

from __future__ import annotations

import http.client
import os
import signal
import textwrap
import threading
import time

import pytest

from tests.support import PYTHON, http_get, pid_alive, port_is_free, session_members, wait_until


def test_restarts_on_change_and_serves_new_code(reloader):
    server = reloader()
    first = server.starts()
    server.edit("appmod.py", 'VERSION = "v2"\n')
    body = server.wait_body("v2")
    assert int(body.split()[1]) != first[0]
    assert "appmod.py changed, reloading." in server.proc.log()
    assert not pid_alive(first[0])


def test_atomic_save_by_rename_restarts(reloader):
    server = reloader()
    tmp = server.app / ".appmod.py.tmp-save"
    tmp.write_text('VERSION = "v2-renamed"\n')
    os.replace(tmp, server.app / "appmod.py")
    server.wait_body("v2-renamed")
    assert len(server.starts()) == 2


def test_touch_restarts(reloader):
    server = reloader()
    os.utime(server.app / "appmod.py")
    server.wait_starts(2)
    server.wait_body("v1")


def test_burst_of_500_changes_gives_one_restart_running_the_newest_code(reloader):
    # 500 modules imported by the app, all rewritten at once as a `git checkout` would.
    server_app = None

    def write_modules(app, version):
        pkg = app / "many"
        pkg.mkdir(exist_ok=True)
        (pkg / "__init__.py").write_text("".join(f"from . import m{i}\n" for i in range(500)))
        for i in range(500):
            (pkg / f"m{i}.py").write_text(f"VALUE = {version!r}\n")

    from tests.reloader.conftest import APPS  # noqa: F401 - the app imports `many` via appmod

    # A quiet period well above any pause of the writing loop on a loaded CI machine: this test
    # is about bursts becoming one restart, not about the default quiet period.
    server = reloader("--debounce", "0.1", wait=False)
    server_app = server.app
    # Start over with an appmod that reads the package, before the first worker imports it.
    write_modules(server_app, "b0")
    server.edit("appmod.py", "import many\nVERSION = 'v' + many.m499.VALUE + many.m0.VALUE\n")
    server.wait_body("vb0b0")
    before = len(server.starts())
    for version in ("b1", "b2", "b3"):  # three quick checkouts in a row: one burst
        write_modules(server_app, version)
    server.wait_body("vb3b3")
    # The burst may be cut once by the 2 s maximum wait on a slow machine, never more.
    assert len(server.starts()) - before in (1, 2)
    restarts = server.proc.log().count("reloading.")
    assert restarts <= before + 1


def test_syntax_error_serves_500_then_recovers(reloader):
    server = reloader()
    server.edit("appmod.py", 'VERSION = "<script>alert(1)</script>\n')
    resp = server.wait_status(500)
    assert "SyntaxError" in resp.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in resp.text
    assert "<script>alert(1)" not in resp.text
    assert resp.headers["x-reloader"] == "error"
    # The traceback is printed once, by the supervisor.
    wait_until(lambda: "SyntaxError" in server.proc.log(), 5)
    assert server.proc.log().count("SyntaxError: unterminated string literal") == 1
    # HEAD gets the status without a body.
    head = http_get(server.port, "/", method="HEAD")
    assert head.status == 500 and head.body == b""
    server.edit("appmod.py", 'VERSION = "v3"\n')
    server.wait_body("v3")


def test_missing_module_is_picked_up_when_created(reloader):
    server = reloader()
    server.edit("appmod.py", 'from helper import VALUE\nVERSION = "v" + VALUE\n')
    resp = server.wait_status(500)
    assert "ModuleNotFoundError" in resp.text
    server.edit("helper.py", 'VALUE = "-helper"\n')
    server.wait_body("v-helper")


def test_no_connection_is_refused_while_a_client_loops_through_10_restarts(reloader):
    server = reloader()
    errors: list[str] = []
    statuses: dict[int, int] = {}
    stop = threading.Event()

    def client():
        while not stop.is_set():
            try:
                resp = http_get(server.port, "/", timeout=15)
                statuses[resp.status] = statuses.get(resp.status, 0) + 1
            except (OSError, http.client.HTTPException) as exc:
                errors.append(repr(exc))

    thread = threading.Thread(target=client)
    thread.start()
    try:
        for n in range(2, 12):
            server.edit("appmod.py", f'VERSION = "r{n}"\n')
            server.wait_body(f"r{n} ")
    finally:
        stop.set()
        thread.join(timeout=30)
    assert len(server.starts()) == 11
    assert errors == []
    assert set(statuses) == {200}, statuses
    assert sum(statuses.values()) > 20


@pytest.mark.parametrize("how", ["SIGINT to the group", "SIGTERM to the supervisor"])
def test_stop_signal_leaves_no_process_and_frees_the_port(reloader, how):
    server = reloader()
    worker_pid = server.starts()[0]
    if how == "SIGINT to the group":
        os.killpg(server.proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    else:
        server.proc.signal(signal.SIGTERM)
    assert server.proc.wait_exit(10) == 0
    assert port_is_free(server.port)
    assert session_members(server.proc.pid) == []
    assert not pid_alive(worker_pid)
    log = server.proc.log()
    assert "Traceback" not in log, log


def test_sigkill_of_the_supervisor_frees_the_port_and_takes_the_worker_down(reloader):
    server = reloader()
    worker_pid = server.starts()[0]
    server.proc.signal(signal.SIGKILL)
    server.proc.wait_exit(5)
    killed_at = time.monotonic()
    wait_until(lambda: port_is_free(server.port), 3, what="the port to be free")
    freed = time.monotonic() - killed_at
    wait_until(lambda: not pid_alive(worker_pid), 3, what="the orphaned worker to exit")
    assert freed < 0.5
    assert time.monotonic() - killed_at < 1.0


def test_sigkill_of_the_supervisor_takes_a_plain_command_down(spawning_reloader):
    server = spawning_reloader(
        bind=False, command=["sh", "-c", "echo $$ >> starts.log; exec sleep 600"]
    )
    command = server.wait_starts(1)[0]
    server.proc.signal(signal.SIGKILL)
    server.proc.wait_exit(5)
    killed_at = time.monotonic()
    wait_until(lambda: not pid_alive(command), 3, what="the plain command to exit")
    assert time.monotonic() - killed_at < 0.5


def test_poll_mode_restarts(reloader):
    server = reloader("--poll", "--poll-interval", "0.1")
    assert "Watching for file changes with polling every 0.1s" in server.proc.log()
    server.edit("appmod.py", 'VERSION = "v2-polled"\n')
    server.wait_body("v2-polled")
    tmp = server.app / "appmod.tmp"
    tmp.write_text('VERSION = "v3-polled"\n')
    os.replace(tmp, server.app / "appmod.py")
    server.wait_body("v3-polled")


def test_edit_in_the_first_moment_after_start_is_not_lost(reloader):
    server = reloader(wait=False)
    # Edit before the worker could even report what it imported.
    server.edit("appmod.py", 'VERSION = "v2-early"\n')
    server.wait_body("v2-early")


def test_two_saves_of_the_same_size_within_a_second_run_the_newest_code(reloader):
    server = reloader()
    path = server.app / "appmod.py"
    path.write_text('VERSION = "v2aaaa"\n')
    server.wait_body("v2aaaa")
    stamp = path.stat().st_mtime_ns
    # Same size, and the same mtime: exactly what CPython's .pyc check cannot tell apart.
    path.write_text('VERSION = "v2bbbb"\n')
    os.utime(path, ns=(stamp, stamp))
    server.wait_body("v2bbbb")


def test_a_worker_that_lost_its_stop_while_starting_does_not_serve(reloader, app_dir):
    # The exception a SIGTERM raises can be lost (Python only prints one that lands in a weakref
    # callback or a __del__). A worker told to stop while it starts must still not serve: else
    # the next one waits for the grace period (30 s here), and the old code answers meanwhile.
    (app_dir / "slow_start.py").write_text(
        textwrap.dedent(
            """
            import time

            import appmod

            if appmod.VERSION == "v2":
                open("sleeping", "w").close()
                try:
                    time.sleep(20)
                except KeyboardInterrupt:
                    pass  # lost, as it may be

            import server

            server.main()
            """
        )
    )
    server = reloader("--grace", "30", command=[PYTHON, "slow_start.py"])
    server.edit("appmod.py", 'VERSION = "v2"\n')
    wait_until(lambda: (app_dir / "sleeping").exists(), 20, what="the second worker to start")
    server.edit("appmod.py", 'VERSION = "v3"\n')
    server.wait_body("v3", timeout=15)


def test_worker_that_dies_after_serving_is_reported_and_restarted_on_change(reloader):
    server = reloader()
    with pytest.raises(OSError):
        http_get(server.port, "/crash", timeout=5)
    resp = server.wait_status(500)
    assert "exited with status 3" in resp.text
    assert "exited with status 3" in server.proc.log()
    server.edit("appmod.py", 'VERSION = "v2-after-crash"\n')
    server.wait_body("v2-after-crash")


def test_ignored_files_never_restart(reloader):
    server = reloader()
    for name in (".appmod.py.swp", "appmod.py~", "4913", ".#appmod.py"):
        (server.app / name).write_text("x")
    (server.app / "__pycache__").mkdir(exist_ok=True)
    (server.app / "__pycache__" / "junk.pyc").write_bytes(b"x")
    # Events are handled in order: once this real change restarted the worker, the ignored
    # ones before it had their chance and must not have added a restart.
    server.edit("appmod.py", 'VERSION = "v2"\n')
    server.wait_body("v2")
    assert len(server.starts()) == 2


def test_sigusr1_restarts_now(reloader):
    server = reloader()
    server.proc.signal(signal.SIGUSR1)
    server.wait_starts(2)
    server.wait_body("v1")
    assert "Reloading (SIGUSR1)." in server.proc.log()


def test_port_in_use_is_a_one_line_error(reloader, spawn, app_dir):
    server = reloader()
    other = spawn(
        [PYTHON, "-m", "reloader", "--bind", f"127.0.0.1:{server.port}", "--", PYTHON, "server.py"],
        cwd=app_dir,
        name="second",
    )
    assert other.wait_exit(10) != 0
    lines = other.log().strip().splitlines()
    assert lines == [
        f"reloader: error: Port {server.port} is in use by another program. Either identify "
        "and stop that program, or start the server with a different port."
    ]


def test_python_command_restarts_when_an_imported_module_changes(reloader):
    server = reloader(bind=False, command=[PYTHON, "-u", "plain.py"])
    (server.app / "plain.py").write_text(
        "import appmod, os, time\n"
        "open('starts.log', 'a').write(f'{os.getpid()}\\n')\n"
        "print('plain', appmod.VERSION, flush=True)\n"
        "time.sleep(600)\n"
    )
    server.wait_starts(1)
    server.edit("appmod.py", 'VERSION = "v2-plain"\n')
    server.proc.wait_for_log("plain v2-plain")


def test_plain_command_restarts_when_a_watched_path_changes(spawning_reloader, tmp_path):
    watched = tmp_path / "watched"
    watched.mkdir()
    (watched / "sub").mkdir()
    server = spawning_reloader(
        "--watch",
        str(watched),
        bind=False,
        command=["sh", "-c", "echo $$ >> starts.log; exec sleep 600"],
    )
    server.wait_starts(1)
    (watched / "sub" / "config.toml").write_text("a = 1\n")
    server.wait_starts(2)
    (watched / "node_modules").mkdir()
    (watched / "node_modules" / "x.js").write_text("1")
    (watched / "sub" / "config.toml").write_text("a = 2\n")
    server.wait_starts(3)
    assert len(server.starts()) == 3


def _userns_works() -> bool:
    import shutil
    import subprocess

    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        [
            "unshare",
            "--user",
            "--map-root-user",
            "sh",
            "-c",
            "echo 3 > /proc/sys/user/max_inotify_watches",
        ],
        capture_output=True,
    )
    return probe.returncode == 0


@pytest.mark.skipif(not _userns_works(), reason="cannot lower inotify limits in a user namespace")
def test_running_out_of_inotify_watches_falls_back_to_polling(spawn, app_dir):
    from tests.reloader.conftest import Running
    from tests.support import free_port

    # inotify limits are per user namespace: this supervisor alone gets 3 watches.
    port = free_port()
    script = (
        "echo 3 > /proc/sys/user/max_inotify_watches && exec "
        f"{PYTHON} -m reloader --poll-interval 0.1 --bind 127.0.0.1:{port} -- {PYTHON} server.py"
    )
    proc = spawn(["unshare", "--user", "--map-root-user", "sh", "-c", script], cwd=app_dir)
    server = Running(proc, app_dir, port)
    server.wait_body("v1")
    proc.wait_for_log("inotify watch limit reached (3 watches")
    proc.wait_for_log("falling back to polling every 0.1s")
    server.edit("appmod.py", 'VERSION = "v2-after-fallback"\n')
    server.wait_body("v2-after-fallback")


def test_fork_start_of_a_plain_command_is_a_one_line_error(spawn, app_dir):
    proc = spawn(
        [PYTHON, "-m", "reloader", "--start", "fork", "--", "sh", "-c", "true"], cwd=app_dir
    )
    assert proc.wait_exit(10) == 2
    assert proc.log().strip() == "reloader: error: the fork start runs Python targets only"


def test_closing_the_terminal_stops_everything_and_frees_the_port(spawn, app_dir, start_mode):
    from tests.reloader.conftest import Running
    from tests.support import free_port

    port = free_port()
    argv = [PYTHON, "-m", "reloader", "--start", start_mode, "--bind", f"127.0.0.1:{port}"]
    proc = spawn([*argv, "--", PYTHON, "server.py"], cwd=app_dir, terminal=True)
    server = Running(proc, app_dir, port)
    server.wait_body("v1")
    if start_mode == "fork":  # a forked worker too: the template has its own process group
        server.edit("appmod.py", 'VERSION = "v2"\n')
        server.wait_body("v2")
    proc.hang_up()
    assert proc.wait_exit(10) == 0
    assert port_is_free(port)
    wait_until(lambda: not session_members(proc.pid), 5, what="every process to be gone")
