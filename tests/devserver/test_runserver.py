"""manage.py runserver: the command line, serving, checks and reloads, as real subprocesses."""

from __future__ import annotations

import os
import signal
import socket
import textwrap

import pytest

from tests.devserver.conftest import run_manage
from tests.support import (
    PYTHON,
    base_env,
    free_port,
    http_request,
    parent_of,
    port_is_free,
    session_members,
    wait_until,
)


def ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


# ------------------------------------------------------------------ the command line


@pytest.mark.parametrize(
    ("form", "shown"),
    [
        ("{port}", "http://127.0.0.1:{port}/"),
        ("127.0.0.1:{port}", "http://127.0.0.1:{port}/"),
        ("localhost:{port}", "http://localhost:{port}/"),
    ],
)
def test_ipv4_addrport_forms(runserver, form, shown):
    port = free_port()
    server = runserver(addrport=form.format(port=port), port=port)
    assert f"Starting development server at {shown.format(port=port)}" in server.proc.log()


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback on this machine")
@pytest.mark.parametrize("form", ["[::1]:{port}", "-6 {port}"])
def test_ipv6_addrport_forms(runserver, form):
    port = free_port("::1")
    args = form.format(port=port).split()
    server = runserver(*args[:-1], addrport=args[-1], host="::1", port=port)
    assert f"Starting development server at http://[::1]:{port}/" in server.proc.log()
    assert "Catalog" in server.get("/").text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["abc"], 'CommandError: "abc" is not a valid port number or address:port pair.'),
        (["1.2.3.4:99999"], "CommandError: '99999' is not a valid port number."),
        (["[::1"], 'CommandError: "[::1" is not a valid port number or address:port pair.'),
        ([":8000"], 'CommandError: ":8000" is not a valid port number or address:port pair.'),
        (["-6", "127.0.0.1:8000"], 'CommandError: "127.0.0.1" is not a valid IPv6 address.'),
        (
            ["--adminmedia=/no/such/dir", "8000"],
            "CommandError: The --adminmedia directory '/no/such/dir' does not exist.",
        ),
    ],
)
def test_bad_command_lines_are_one_line_errors(site, args, message):
    result = run_manage(site, "runserver", *args)
    assert result.returncode == 1
    assert result.stderr.strip() == message
    assert result.stdout == ""


def test_allowed_hosts_is_required_without_debug(site):
    (site / "mysite" / "settings.py").write_text(
        (site / "mysite" / "settings.py").read_text() + "\nALLOWED_HOSTS = []\n"
    )
    result = run_manage(site, "runserver", "8000", env={"MYSITE_DEBUG": "0"})
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "CommandError: You must set settings.ALLOWED_HOSTS if DEBUG is False."
    )


def test_port_in_use_is_reported_in_djangos_words(site):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_manage(site, "runserver", f"127.0.0.1:{port}")
    assert result.returncode == 1
    assert result.stderr.strip() == "Error: That port is already in use."


# ------------------------------------------------------------------ serving


def test_banner_and_request_log(runserver):
    server = runserver()
    # The checks run once the new server serves (issue 11).
    log = server.proc.wait_for_log("System check identified no issues (0 silenced).")
    assert (
        "Watching for file changes with inotify; workers start by fork "
        "(this one cold: the fork template starts once it serves)" in log
    )
    assert "Performing system checks...\n\nSystem check identified no issues (0 silenced)." in log
    assert "Django version " in log and "using settings 'mysite.settings'" in log
    assert "Quit the server with CONTROL-C." in log
    assert "WARNING: This is a development server." in log
    resp = server.get("/")
    server.proc.wait_for_log(f'"GET / HTTP/1.1" 200 {len(resp.body)}')
    server.get("/nothing-here/")
    server.proc.wait_for_log('"GET /nothing-here/ HTTP/1.1" 404')


def test_keep_alive_and_http11(runserver):
    import http.client

    server = runserver()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        for _ in range(3):
            conn.request("GET", "/static/css/site.css")
            resp = conn.getresponse()
            assert resp.status == 200 and resp.version == 11
            resp.read()
    finally:
        conn.close()


def test_static_files_with_conditional_get_and_range(runserver):
    server = runserver()
    resp = server.get("/static/css/site.css")
    assert resp.status == 200
    assert resp.headers["content-type"] == "text/css; charset=utf-8"
    assert resp.body == (server.site / "static" / "css" / "site.css").read_bytes()
    etag, modified = resp.headers["etag"], resp.headers["last-modified"]
    assert server.get("/static/css/site.css", headers={"If-None-Match": etag}).status == 304
    assert server.get("/static/css/site.css", headers={"If-Modified-Since": modified}).status == 304
    partial = server.get("/static/css/site.css", headers={"Range": "bytes=0-9"})
    assert partial.status == 206 and partial.body == resp.body[:10]
    assert partial.headers["content-range"].startswith("bytes 0-9/")
    # An app's static directory and the installed admin's, through the finders.
    assert (
        server.get("/static/catalog/logo.svg").headers["content-type"].startswith("image/svg+xml")
    )
    assert server.get("/static/admin/css/base.css").status == 200


def test_static_changes_show_at_once(runserver):
    server = runserver()
    assert "v1" not in server.get("/static/js/site.js").text
    (server.site / "static" / "js" / "site.js").write_text("// v1\n")
    assert server.get("/static/js/site.js").text == "// v1\n"


def test_adminmedia_serves_the_admin_static_files_from_a_directory(runserver, tmp_path):
    admin = tmp_path / "admin-media"
    (admin / "css").mkdir(parents=True)
    (admin / "css" / "base.css").write_text("/* our admin */\n")
    server = runserver(f"--adminmedia={admin}")
    assert server.get("/static/admin/css/base.css").text == "/* our admin */\n"
    assert server.get("/static/admin/css/forms.css").status == 404
    assert server.get("/static/css/site.css").status == 200


@pytest.mark.parametrize(
    "path",
    [
        "/static/../mysite/settings.py",
        "/static/%2e%2e/mysite/settings.py",
        "/static/css/..%2f..%2f..%2fmysite%2fsettings.py",
        "/static/css/%2e%2e/%2e%2e/manage.py",
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
        "/static/css/site.css%00.png",
        "/static/css/",
        "/static/outside",
        "/static/outside-dir/passwd",
        "/media/../manage.py",
        "/media/%2e%2e/manage.py",
    ],
)
def test_nothing_outside_the_static_roots_is_served(runserver, path):
    server = runserver(wait=False)
    (server.site / "static" / "outside").symlink_to("/etc/passwd")
    (server.site / "static" / "outside-dir").symlink_to("/etc")
    (server.site / "media").mkdir()
    server.proc.wait_for_log("Quit the server with CONTROL-C.")
    resp = http_request("127.0.0.1", server.port, path)
    assert resp.status == 404
    assert b"root:" not in resp.body and b"SECRET_KEY" not in resp.body


def test_media_is_served_in_debug(runserver):
    server = runserver(wait=False)
    (server.site / "media" / "uploads").mkdir(parents=True)
    (server.site / "media" / "uploads" / "photo.txt").write_text("a photo\n")
    server.wait_status("/", 200)
    assert server.get("/media/uploads/photo.txt").text == "a photo\n"


def test_nostatic_leaves_static_urls_to_django(runserver):
    server = runserver("--nostatic")
    assert server.get("/static/css/site.css").status == 404


@pytest.mark.parametrize(("insecure", "status"), [(False, 404), (True, 200)])
def test_static_without_debug_needs_insecure(runserver, insecure, status):
    server = runserver(*(["--insecure"] if insecure else []), env={"MYSITE_DEBUG": "0"})
    assert server.get("/static/css/site.css").status == status
    assert server.get("/media/anything.txt").status == 404


def test_noreload_serves_in_the_process_started(runserver):
    server = runserver("--noreload")
    assert server.pid() == server.proc.pid
    assert "Watching for file changes" not in server.proc.log()


def test_nothreading_serves(runserver):
    server = runserver("--nothreading")
    assert server.get("/").status == 200


# ------------------------------------------------------------------ reloads


def test_python_change_restarts_and_template_change_does_not(runserver):
    server = runserver()
    first = server.pid()
    server.edit("catalog/templates/catalog/index.html", "<h1>Catalog</h1>", "<h1>Catalog v2</h1>")
    server.wait_status("/", 200, contains="Catalog v2")
    assert server.pid() == first  # the cached loaders were reset in place
    server.edit("catalog/views.py", "def index(request):", "X = 2\n\n\ndef index(request):")
    server.proc.wait_for_log("catalog/views.py changed, reloading.")
    server.proc.wait_for_log("Quit the server with CONTROL-C.", count=2)
    assert server.pid() != first


def test_syntax_error_shows_the_error_page_then_recovers(runserver):
    server = runserver()
    server.edit("catalog/views.py", "def index(request):", "def index(request) oops:")
    resp = server.wait_status("/", 500, contains="SyntaxError")
    assert "catalog/views.py" in resp.text
    server.edit("catalog/views.py", "def index(request) oops:", "def index(request):")
    server.wait_status("/", 200, contains="Catalog")


def test_check_errors_appear_and_clear_on_reload(runserver):
    server = runserver()
    server.edit(
        "catalog/models.py",
        "    in_stock = models.BooleanField(default=True)",
        "    in_stock = models.BooleanField(default=True)\n    weight = models.DecimalField()",
    )
    resp = server.wait_status("/", 500, contains="fields.E130")
    assert "System check identified" in resp.text
    assert "\x1b[" not in resp.text
    assert "SystemCheckError" in server.proc.log()
    server.edit("catalog/models.py", "\n    weight = models.DecimalField()", "")
    server.wait_status("/", 200, contains="Catalog")


def test_broken_settings_after_start_show_on_the_error_page(runserver):
    server = runserver()
    server.edit("mysite/settings.py", "DEBUG = ", "DEBUG = = ")
    server.wait_status("/", 500, contains="SyntaxError")
    server.edit("mysite/settings.py", "DEBUG = = ", "DEBUG = ")
    server.wait_status("/", 200, contains="Catalog")


def test_broken_models_at_start_still_run_our_server(runserver, site):
    # Django's ManagementUtility swallows this failure and would run its own runserver.
    (site / "catalog" / "models.py").write_text(
        (site / "catalog" / "models.py").read_text() + "\nraise RuntimeError('models are broken')\n"
    )
    server = runserver(wait=False)
    resp = server.wait_status("/", 500, contains="models are broken")
    assert "Watching for file changes with inotify" in server.proc.log() or resp.headers.get(
        "x-reloader"
    )
    assert "StatReloader" not in server.proc.log()
    server.edit("catalog/models.py", "\nraise RuntimeError('models are broken')\n", "\n")
    server.wait_status("/", 200, contains="Catalog")


def test_poll_reloader_is_named_in_the_banner_and_reloads(runserver):
    server = runserver("--reloader=poll")
    assert "Watching for file changes with polling every 0.5s" in server.proc.log()
    first = server.pid()
    server.edit("catalog/views.py", "def index(request):", "X = 3\n\n\ndef index(request):")
    server.proc.wait_for_log("Quit the server with CONTROL-C.", count=2)
    assert server.pid() != first


def test_unapplied_migrations_are_reported(runserver, site):
    (site / "db.sqlite3").unlink()
    server = runserver(wait=False)
    # After the banner, with the system checks (issue 11; test_checks_after.py has the order).
    log = server.proc.wait_for_log("Run 'python manage.py migrate' to apply them.", timeout=30)
    assert "unapplied migration(s). Your project may not work properly until you apply" in log


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_stop_leaves_nothing_behind(runserver, signum):
    server = runserver()
    if signum == signal.SIGINT:
        os.killpg(server.proc.pid, signal.SIGINT)  # Ctrl-C in a terminal
    else:
        server.proc.signal(signum)
    assert server.proc.wait_exit(15) == 0
    assert port_is_free(server.port)
    assert session_members(server.proc.pid) == []
    log = server.proc.log()
    assert "Traceback" not in log, log


# ------------------------------------------------------------------ for projects


def test_call_command_runs_like_the_command_line(spawn, site):
    port = free_port()
    script = textwrap.dedent(
        f"""
        import os, django
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
        django.setup()
        from django.core.management import call_command
        call_command("runserver", "127.0.0.1:{port}", use_reloader=False)
        """
    )
    proc = spawn([PYTHON, "-c", script], cwd=site, env=base_env())
    proc.wait_for_log(f"Starting development server at http://127.0.0.1:{port}/")
    assert http_request("127.0.0.1", port, "/diag/pid/").text == str(proc.pid)


def test_call_command_with_the_reloader_supervises_in_process(spawn, site):
    port = free_port()
    script = textwrap.dedent(
        f"""
        import os, django
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
        django.setup()
        from django.core.management import call_command
        call_command("runserver", "127.0.0.1:{port}")
        """
    )
    proc = spawn([PYTHON, "-c", script], cwd=site, env=base_env())
    proc.wait_for_log("Quit the server with CONTROL-C.")
    first = int(http_request("127.0.0.1", port, "/diag/pid/").text)
    assert first != proc.pid
    views = site / "catalog" / "views.py"
    views.write_text(views.read_text() + "\nY = 1\n")
    proc.wait_for_log("Quit the server with CONTROL-C.", count=2)
    proc.signal(signal.SIGTERM)
    assert proc.wait_exit(15) == 0


def test_a_project_subclass_keeps_djangos_hooks(runserver, site):
    # A project app listed first (Django: the first app listed wins) overrides runserver.
    commands = site / "localserver" / "management" / "commands"
    commands.mkdir(parents=True)
    for package in ("localserver", "localserver/management", "localserver/management/commands"):
        (site / package / "__init__.py").write_text("")
    settings = site / "mysite" / "settings.py"
    settings.write_text(
        settings.read_text().replace(
            "INSTALLED_APPS = [\n", 'INSTALLED_APPS = [\n    "localserver",\n'
        )
    )
    port = free_port()
    (commands / "runserver.py").write_text(
        textwrap.dedent(
            f"""
            from devserver.management.commands.runserver import Command as Base


            class Command(Base):
                default_port = "{port}"

                def get_handler(self, *args, **options):
                    handler = super().get_handler(*args, **options)

                    def tagged(environ, start_response):
                        def tag(status, headers, exc_info=None):
                            headers = headers + [("X-Project", "yes")]
                            return start_response(status, headers, exc_info)
                        return handler(environ, tag)

                    return tagged

                def on_bind(self, server_port):
                    super().on_bind(server_port)
                    self.stdout.write(f"project banner on {{self.addr}}:{{server_port}}")
            """
        )
    )
    server = runserver(addrport="", port=port)
    assert server.get("/").headers["x-project"] == "yes"
    assert f"project banner on 127.0.0.1:{port}" in server.proc.log()
    check = run_manage(site, "check")
    assert "devserver.W001" not in check.stdout + check.stderr


def test_check_warns_when_staticfiles_comes_first(site):
    settings = site / "mysite" / "settings.py"
    text = settings.read_text().replace('    "devserver",\n', "")
    text = text.replace(
        '    "django.contrib.staticfiles",\n',
        '    "django.contrib.staticfiles",\n    "devserver",\n',
    )
    settings.write_text(text)
    result = run_manage(site, "check")
    assert "devserver.W001" in result.stderr
    assert "List 'devserver' before 'django.contrib.staticfiles'" in result.stderr


def test_no_request_fails_while_a_client_loops_through_restarts(runserver):
    import http.client
    import threading

    server = runserver()
    errors: list[str] = []
    served = [0]
    stop = threading.Event()

    def client():
        while not stop.is_set():
            try:
                resp = server.get("/diag/version/", timeout=20)
                if resp.status != 200:
                    errors.append(f"HTTP {resp.status}")
                served[0] += 1
            except (OSError, http.client.HTTPException) as exc:
                errors.append(repr(exc))

    threads = [threading.Thread(target=client) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for n in range(1, 6):
            (server.site / "diagnostics" / "version.py").write_text(f"VERSION = {n}\n")
            server.wait_status("/diag/version/", 200, contains=str(n))
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert errors == []
    assert served[0] > 50


@pytest.mark.parametrize("start", ["fork", "auto"])
def test_the_fork_template_never_imports_the_project(runserver, site, start):
    # With checkpoints (auto), builders import it: forks of the template, never the template.
    marker = site / "imported-by.log"
    record = (
        f'\nimport os as _os\nopen(r"{marker}", "a").write(f"{{_os.getpid()}} {{__name__}}\\n")\n'
    )
    for relative in ("mysite/settings.py", "catalog/models.py", "catalog/views.py"):
        path = site / relative
        path.write_text(path.read_text() + record)
    server = runserver(f"--start={start}")
    workers = [server.pid()]
    reload_until_forked(server, workers)
    template = template_of(server.proc.pid)
    assert "workers start by fork" in server.proc.log()
    importers = {int(line.split()[0]) for line in marker.read_text().splitlines()}
    assert template not in importers
    # The process the user started imported settings before it became the supervisor.
    if start == "fork":
        assert importers <= {*workers, server.proc.pid}


def template_of(supervisor: int) -> int:
    """The fork template: the supervisor's child that runs ``reloader._template``."""
    from tests.support import child_pids

    for pid in child_pids(supervisor):
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if b"reloader._template" in f.read():
                return pid
    raise AssertionError("no fork template")


def test_spawn_start_is_honoured(runserver, site):
    server = runserver("--start=spawn")
    (site / "diagnostics" / "version.py").write_text("VERSION = 7\n")
    server.wait_status("/diag/version/", 200, contains="7")
    assert parent_of(server.pid()) == server.proc.pid
    assert "workers start by fork" not in server.proc.log()
    assert server.proc.log().count("workers start by spawn\n") == 2


def test_devserver_preload_adds_trusted_packages_to_the_template(runserver, site, tmp_path):
    # A library outside site-packages (an editable install, say) is never preloaded on its own:
    # it could be project code. DEVSERVER_PRELOAD vouches for it: the modules of that package
    # that the workers import are preloaded too, not only the package itself.
    lib = tmp_path / "lib" / "vouched"
    lib.mkdir(parents=True)
    marker = tmp_path / "vouched.log"
    record = f'import os\nopen(r"{marker}", "a").write(f"{{__name__}} {{os.getpid()}}\\n")\n'
    (lib / "__init__.py").write_text(record)
    (lib / "widgets.py").write_text(record + "WIDGET = 1\n")
    views = site / "catalog" / "views.py"
    views.write_text("import vouched.widgets  # noqa\n" + views.read_text())
    settings = site / "mysite" / "settings.py"
    settings.write_text(settings.read_text() + '\nDEVSERVER_PRELOAD = ["vouched"]\n')
    server = runserver("-v", "2", env={"PYTHONPATH": str(tmp_path / "lib")})
    reload_until_forked(server)
    template = template_of(server.proc.pid)
    imported = [line.split() for line in marker.read_text().splitlines()]
    assert ["vouched", str(template)] in imported, "the template did not import the package"
    assert ["vouched.widgets", str(template)] in imported, "nor the module the workers import"
    log = server.proc.wait_for_log("Fork template preloaded")
    line = next(line for line in log.splitlines() if "Fork template preloaded" in line)
    assert f"(pid {template})" in line and "django " in line, line


def reload_until_forked(server, workers: list[int] | None = None) -> int:
    """Edit a module until a worker forked from the template serves (the template warms up after
    the first worker is ready); return the template's PID."""
    edits = [0]

    def forked() -> int | None:
        edits[0] += 1
        (server.site / "diagnostics" / "version.py").write_text(f"VERSION = {edits[0]}\n")
        server.wait_status("/diag/version/", 200, contains=str(edits[0]))
        pid = server.pid()
        if workers is not None:
            workers.append(pid)
        parent = parent_of(pid)
        return parent if parent != server.proc.pid else None

    return wait_until(forked, 30, interval=0.2, what="a worker forked from the template")


@pytest.mark.parametrize("args", [[], ["--noreload"]], ids=["reloader", "noreload"])
def test_closing_the_terminal_stops_runserver_and_frees_the_port(spawn, site, args):
    from tests.devserver.conftest import Devserver

    port = free_port()
    argv = [PYTHON, "manage.py", "runserver", f"127.0.0.1:{port}", *args]
    proc = spawn(argv, cwd=site, env=base_env(), name="runserver", terminal=True)
    server = Devserver(proc, site, port)
    proc.wait_for_log("Quit the server with CONTROL-C.", timeout=30)
    server.wait_status("/", 200)
    proc.hang_up()
    assert proc.wait_exit(10) == 0
    assert port_is_free(port)
    wait_until(lambda: not session_members(proc.pid), 5, what="every process to be gone")


# A project whose interpreter teardown takes seconds, as a big one's does (about 2 s on NetBox:
# its heap is freed object by object): an object that takes 3 s to finalize.
SLOW_TEARDOWN = (
    "\n\nimport time as _time\n\n\n"
    "class _SlowToFinalize:\n"
    "    def __del__(self, sleep=_time.sleep):\n"
    "        sleep(3)\n\n\n"
    "_KEEP = _SlowToFinalize()\n"
)


@pytest.mark.parametrize("args", [[], ["--noreload"]], ids=["reloader", "noreload"])
def test_ctrl_c_frees_the_port_at_once_and_exits_without_tearing_the_heap_down(
    runserver, site, args
):
    import time

    views = site / "catalog" / "views.py"
    views.write_text(views.read_text() + SLOW_TEARDOWN)
    server = runserver(*args)
    stopped = time.monotonic()
    os.killpg(server.proc.pid, signal.SIGINT)
    wait_until(lambda: port_is_free(server.port), 5, what="the port to be free")
    freed = time.monotonic() - stopped
    assert server.proc.wait_exit(10) == 0
    exited = time.monotonic() - stopped
    assert freed < 0.5, f"the port was free {freed:.2f} s after Ctrl-C"
    assert exited < 2.0, f"runserver exited {exited:.2f} s after Ctrl-C"
