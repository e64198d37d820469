"""The supervisor's error page: who sees the failure, what a fix looks like from a client that
keeps asking, and a flood of connections when file descriptors run out."""

from __future__ import annotations

import socket
import threading

from tests.reloader.conftest import Running
from tests.support import PYTHON, free_port, http_get, wait_until

SECRET = "s3cr3t-do-not-show"


def test_the_failure_is_shown_to_localhost_only_and_never_to_another_host(reloader):
    server = reloader()
    server.edit("appmod.py", f'VERSION = "{SECRET}" + NOT_DEFINED\n')
    local = server.wait_status(500)
    assert SECRET in local.text and "NameError" in local.text
    for host in ("anything.invalid", "attacker.example:80", "127.0.0.1.nip.io", ""):
        resp = http_get(server.port, headers={"Host": host})
        assert resp.status == 500
        assert SECRET not in resp.text and "NameError" not in resp.text, host
        assert "Server Error (500)" in resp.text
        assert resp.headers["x-reloader"] == "error"  # it still reloads itself once fixed
    for host in (f"localhost:{server.port}", "127.0.0.1", "[::1]:80", "app.localhost"):
        assert SECRET in http_get(server.port, headers={"Host": host}).text, host
    # The terminal has it all.
    assert SECRET in server.proc.log()


def test_the_program_says_who_may_see_its_failures(reloader):
    # As runserver does with DEBUG off: nobody.
    server = reloader()
    server.edit(
        "appmod.py",
        "from reloader import worker\n"
        "worker.audience(False, ['*'])\n"
        f'raise RuntimeError("boom {SECRET}")\n',
    )
    resp = server.wait_status(500)
    assert SECRET not in resp.text and "RuntimeError" not in resp.text
    assert "Server Error (500)" in resp.text
    assert f"RuntimeError: boom {SECRET}" in server.proc.log()
    # Debug on, every host allowed; and what it said holds until a worker says otherwise.
    server.edit(
        "appmod.py",
        "from reloader import worker\nworker.audience(True, ['*'])\nraise KeyError('second')\n",
    )
    wait_until(
        lambda: "second" in http_get(server.port, headers={"Host": "any.example"}).text,
        what="the details for any host",
    )
    # A failure before the program could say anything: what it said last still holds.
    server.edit("appmod.py", "VERSION = (\n")
    wait_until(
        lambda: "SyntaxError" in http_get(server.port, headers={"Host": "any.example"}).text,
        what="the details for any host",
    )


def test_a_fix_saved_while_a_client_loops_is_never_answered_by_a_restart_page(reloader):
    server = reloader()
    responses: list[tuple[int, str]] = []
    done = threading.Event()

    def loop() -> None:
        while not done.is_set():
            try:
                resp = server.get(timeout=10)
            except OSError as exc:
                responses.append((0, repr(exc)))
                continue
            responses.append((resp.status, resp.text))

    thread = threading.Thread(target=loop)
    thread.start()
    try:
        for n in range(5):
            server.edit("appmod.py", "VERSION = (\n")
            count = len(responses)
            wait_until(
                lambda c=count: any(s == 500 for s, _ in responses[c:]),
                what="the error page",
            )
            count = len(responses)
            server.edit("appmod.py", f'VERSION = "v-fixed-{n}"\n')
            wait_until(
                lambda c=count, n=n: any(t.startswith(f"v-fixed-{n}") for _, t in responses[c:]),
                what="the fixed page",
            )
    finally:
        done.set()
        thread.join()
    assert all(status in (200, 500) for status, _ in responses), [
        r for r in responses if r[0] not in (200, 500)
    ]
    errors = [text for status, text in responses if status == 500]
    assert all("SyntaxError" in text for text in errors), [
        t[:300] for t in errors if "SyntaxError" not in t
    ]
    assert not any("Restarting" in text for text in errors)


def test_the_error_page_holds_at_most_its_cap_of_idle_connections_oldest_out_first(spawn, app_dir):
    from reloader.responder import MAX_CONNECTIONS

    (app_dir / "appmod.py").write_text("VERSION = (\n")
    port = free_port()
    argv = [PYTHON, "-m", "reloader", "--bind", f"127.0.0.1:{port}", "--", PYTHON, "server.py"]
    proc = spawn(argv, cwd=app_dir)
    server = Running(proc, app_dir, port)
    server.wait_status(500)
    clients = []
    try:
        for _ in range(MAX_CONNECTIONS + 10):
            client = socket.create_connection(("127.0.0.1", port))
            client.settimeout(2)  # less than the responder's READ_TIMEOUT: only the cap closes
            clients.append(client)
        server.wait_status(500)  # the loop took every one of them in
        # The ten oldest were pushed out (end of file, no answer); the newest is still open.
        for client in clients[:10]:
            assert client.recv(1) == b""
        clients[-1].sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert clients[-1].recv(12).startswith(b"HTTP/1.1 500")
    finally:
        for client in clients:
            client.close()


def test_running_out_of_file_descriptors_never_stops_the_supervisor(spawn, app_dir, start_mode):
    (app_dir / "appmod.py").write_text("VERSION = (\n")
    port = free_port()
    argv = ["prlimit", "--nofile=64:64", PYTHON, "-m", "reloader", "--start", start_mode]
    argv += ["--bind", f"127.0.0.1:{port}", "--", PYTHON, "server.py"]
    proc = spawn(argv, cwd=app_dir)
    server = Running(proc, app_dir, port)
    server.wait_status(500)
    # Idle connections, far more than the supervisor may hold open.
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(300)]
    try:
        resp = wait_until(
            lambda: (r := server.get(timeout=10)).status == 500 and r,
            20,
            what="an answer among the idle connections",
            describe=proc.describe,
        )
        assert "SyntaxError" in resp.text
        assert proc.proc is not None and proc.proc.poll() is None
    finally:
        for client in clients:
            client.close()
    server.edit("appmod.py", 'VERSION = "v-after-the-flood"\n')
    server.wait_body("v-after-the-flood")
    assert "Traceback" not in proc.log().split("SyntaxError")[-1]


def test_the_page_leads_with_the_programs_file_and_line_and_folds_the_rest(reloader):
    server = reloader()
    server.edit("appmod.py", 'VERSION = "v1"\n\n\ndef broken():\n    return [1, 2\n')
    page = server.wait_status(500).text
    focus = page.index('<section class="focus">')
    frames = page.index('<section class="frames">')
    assert page.index("SyntaxError") < focus < frames < page.index("The traceback as text")
    where = page[focus:frames]
    assert "<b>appmod.py</b>, line 5" in where  # relative to the project's directory
    assert '<div class="hit"><span class="n">5</span>    return [1, 2</div>' in where
    assert '<div class="caret"><span class="n"></span>           ^</div>' in where  # the "["
    assert '<div class="frame project">server.py, line 12, in &lt;module&gt;' in page[frames:]
    assert "prefers-color-scheme:dark" in page


def test_a_runtime_error_focuses_on_the_deepest_frame_of_the_program(reloader):
    server = reloader()
    server.edit(
        "appmod.py",
        "import json\n\n\ndef load():\n    return json.loads('{')\n\n\nVERSION = load()\n",
    )
    page = server.wait_status(500).text
    focus = page[page.index('<section class="focus">') : page.index('<section class="frames">')]
    assert "<b>appmod.py</b>, line 5, in load" in focus  # not json's own frames
    assert "JSONDecodeError" in page[: page.index("<section")]
    # The program's frames open, the library's folded: json's three in one <details>.
    frames = page[page.index('<section class="frames">') :]
    assert '<div class="frame project">appmod.py, line 8, in &lt;module&gt;' in frames
    assert '<details class="folded"><summary>3 frames of the library</summary>' in frames
