"""System checks off the critical path (issue 11): by default a new worker serves, then checks.

A project check that the test holds (it waits while a file exists) shows what waits for what:
under the default the first response after a reload comes while the check is still held, its
output then appears as Django prints it, and a failing check still puts up the check-error page;
``--checks=before`` (and ``--noreload``) keep Django's order. A stop or a restart never waits for
a check.
"""

from __future__ import annotations

import io
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from django.core.management.base import OutputWrapper

from devserver import checking
from tests.devserver.conftest import Devserver, run_manage
from tests.support import free_port, pid_alive, port_is_free, session_members, wait_until

HELD_CHECK = '''\
"""A project check the tests hold: it waits while the file hold-checks exists (60 s at most)."""

import os
import time
from pathlib import Path

from django.core import checks

SITE = Path(__file__).resolve().parent.parent
HOLD, FAIL, LOG = SITE / "hold-checks", SITE / "fail-checks", SITE / "checks.log"
RAISE = SITE / "raise-checks"


def _note(what):
    with LOG.open("a") as f:
        f.write(f"{what} {os.getpid()}\\n")


@checks.register()
def held_check(app_configs=None, **kwargs):
    _note("started")
    deadline = time.monotonic() + 60
    while HOLD.exists() and time.monotonic() < deadline:
        try:
            time.sleep(0.02)
        except KeyboardInterrupt:  # as a check stuck in a C call, or a bare except, would
            pass
    _note("finished")
    if RAISE.exists():
        raise RuntimeError("the held check raised")
    if FAIL.exists():
        return [checks.Error("the held check failed", id="held.E001")]
    return [checks.Warning("the held check ran", id="held.W001")]
'''

BANNER_END = "Quit the server with CONTROL-C."


class HeldCheck:
    """The check above, registered in a copy of examples/mysite (by the catalog app's ready())."""

    def __init__(self, site: Path) -> None:
        self.site = site
        (site / "catalog" / "heldcheck.py").write_text(HELD_CHECK)
        apps = site / "catalog" / "apps.py"
        apps.write_text(
            apps.read_text()
            + "\n    def ready(self):\n        from catalog import heldcheck  # noqa\n"
        )
        self.log = site / "checks.log"

    def hold(self) -> None:
        (self.site / "hold-checks").touch()

    def release(self) -> None:
        (self.site / "hold-checks").unlink()

    def fail(self, failing: bool = True) -> None:
        self._flag("fail-checks", failing)

    def raise_(self, raising: bool = True) -> None:
        self._flag("raise-checks", raising)

    def _flag(self, name: str, on: bool) -> None:
        if on:
            (self.site / name).touch()
        else:
            (self.site / name).unlink()

    def notes(self, what: str) -> list[int]:
        text = self.log.read_text() if self.log.exists() else ""
        return [int(line.split()[1]) for line in text.splitlines() if line.startswith(what)]

    def wait_started(self, pid: int) -> None:
        wait_until(lambda: pid in self.notes("started"), 15, what=f"the check to start in {pid}")


def set_version(server: Devserver, n: int) -> None:
    (server.site / "diagnostics" / "version.py").write_text(f"VERSION = {n}\n")


def last_worker_output(log: str) -> str:
    """What the newest worker printed: the log from its banner's first line on."""
    return log[log.rindex("Watching for file changes") :]


def test_the_first_response_after_a_reload_does_not_wait_for_the_checks(runserver, site):
    held = HeldCheck(site)
    server = runserver()
    server.proc.wait_for_log("System check identified 1 issue (0 silenced).")
    held.hold()
    set_version(server, 2)
    # Before issue 11 this response waited for the held check (and this wait timed out).
    server.wait_status("/diag/version/", 200, contains="2", timeout=15)
    pid = server.pid()
    held.wait_started(pid)  # the check started once the server was quiet, and is held
    assert pid not in held.notes("finished")
    assert server.proc.log().count("System check identified 1 issue") == 1
    # Pages are served while the check runs (URL resolver, templates, the database).
    for path in ("/", "/static/css/site.css", "/nothing-here/"):
        assert server.get(path).status == (404 if "nothing" in path else 200)
    held.release()
    log = server.proc.wait_for_log("System check identified 1 issue (0 silenced).", count=2)
    # Printed as Django prints it (the same text as `manage.py check`), in one piece, after
    # the banner of the worker that ran it.
    django_check = run_manage(site, "check")
    assert django_check.returncode == 0, django_check.stderr
    assert "(held.W001) the held check ran" in django_check.stderr
    block = "Performing system checks...\n\n" + django_check.stderr
    worker_output = last_worker_output(log)
    assert block in worker_output
    assert worker_output.index(BANNER_END) < worker_output.index(block)


def test_checks_before_keeps_djangos_order(runserver, site):
    held = HeldCheck(site)
    server = runserver("--checks=before")
    log = server.proc.log()
    assert log.index("System check identified") < log.index(BANNER_END)
    held.hold()
    set_version(server, 2)
    wait_until(lambda: len(held.notes("started")) == 2, 15, what="the new worker's check")
    answer: dict[str, object] = {}

    def get() -> None:
        answer["response"] = server.get("/diag/version/", timeout=30)
        answer["at"] = time.monotonic()

    client = threading.Thread(target=get)
    client.start()
    client.join(1.0)  # a window for a wrong order to show: the request waits in the backlog
    assert client.is_alive(), "answered while the new worker's checks were held"
    released = time.monotonic()
    held.release()
    client.join(30)
    assert answer["at"] > released  # type: ignore[operator]
    assert answer["response"].text == "2"  # type: ignore[attr-defined]
    worker_output = last_worker_output(server.proc.log())
    assert worker_output.index("System check identified") < worker_output.index(BANNER_END)


def test_a_failing_check_still_puts_up_the_error_page_after_a_reload(runserver, site):
    held = HeldCheck(site)
    server = runserver()
    server.proc.wait_for_log("System check identified 1 issue (0 silenced).")
    held.hold()
    held.fail()
    set_version(server, 2)
    # Served by the new worker while its (failing) check is held: the documented window.
    server.wait_status("/diag/version/", 200, contains="2", timeout=15)
    held.release()
    resp = server.wait_status("/", 500, contains="held.E001")
    assert "System check identified 1 issue (0 silenced)." in resp.text
    assert resp.headers["x-reloader"] == "error"
    # Every request now, and details only where Django would show its technical 500 page.
    assert "held.E001" in server.get("/diag/version/").text
    other = server.get("/", headers={"Host": "attacker.example"})
    assert other.status == 500 and "held.E001" not in other.text
    log = server.proc.log()
    assert "SystemCheckError: System check identified some issues:" in log
    assert log.index(BANNER_END, log.rindex("Watching for file")) < log.rindex("held.E001")
    held.fail(False)
    set_version(server, 3)
    server.wait_status("/diag/version/", 200, contains="3")


def test_a_check_that_raises_fails_the_worker_as_at_start(runserver, site):
    # Not new: before issue 11 the worker failed the same way, before serving. Deferred, the
    # checks' thread reports it to the supervisor and stops the worker: the supervisor's page
    # shows the traceback until a save.
    held = HeldCheck(site)
    server = runserver()
    server.proc.wait_for_log("System check identified 1 issue (0 silenced).")
    held.raise_()
    set_version(server, 2)
    resp = server.wait_status("/", 500, contains="RuntimeError: the held check raised")
    assert "heldcheck.py" in resp.text
    assert resp.headers["x-reloader"] == "error"
    failed_pid = held.notes("started")[-1]
    wait_until(lambda: not pid_alive(failed_pid), 10, what="the failed worker to exit")
    assert server.proc.log().count("RuntimeError: the held check raised") == 1
    held.raise_(False)
    set_version(server, 3)
    server.wait_status("/diag/version/", 200, contains="3")


def test_a_restart_or_a_stop_never_waits_for_the_checks(runserver, site):
    held = HeldCheck(site)
    server = runserver()
    server.proc.wait_for_log("System check identified 1 issue (0 silenced).")
    held.hold()  # from now on each check waits, deaf to KeyboardInterrupt
    set_version(server, 2)
    server.wait_status("/diag/version/", 200, contains="2", timeout=15)
    held.wait_started(server.pid())
    saved = time.monotonic()
    set_version(server, 3)
    server.wait_status("/diag/version/", 200, contains="3", timeout=15)
    restarted = time.monotonic() - saved
    # The worker whose check was held stopped at once (the supervisor's grace is 5 s).
    assert restarted < 3.0, f"the restart took {restarted:.2f} s"
    held.wait_started(server.pid())
    stopped = time.monotonic()
    os.killpg(server.proc.pid, signal.SIGINT)  # Ctrl-C in a terminal
    assert server.proc.wait_exit(10) == 0
    exited = time.monotonic() - stopped
    assert exited < 2.0, f"runserver exited {exited:.2f} s after Ctrl-C"
    assert port_is_free(server.port)
    assert session_members(server.proc.pid) == []
    assert "Traceback" not in server.proc.log()


@pytest.mark.parametrize(
    ("args", "notice_first"),
    [([], False), (["--checks=before"], True)],
    ids=["default", "before"],
)
def test_the_migrations_notice_follows_the_checks(runserver, site, args, notice_first):
    (site / "db.sqlite3").unlink()
    server = runserver(*args, wait=False)
    notice = "Run 'python manage.py migrate' to apply them."
    server.proc.wait_for_log(notice, timeout=30)
    log = server.proc.wait_for_log(BANNER_END)
    assert "unapplied migration(s). Your project may not work properly until you apply" in log
    assert log.index("System check identified") < log.index(notice)
    assert (log.index(notice) < log.index(BANNER_END)) is notice_first


@pytest.mark.parametrize("args", [[], ["--checks=after"]], ids=["default", "after"])
def test_noreload_checks_before_serving_and_errors_end_the_command(site, args):
    held = HeldCheck(site)
    held.fail()
    port = free_port()
    result = run_manage(site, "runserver", "--noreload", f"127.0.0.1:{port}", *args)
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("SystemCheckError: System check identified some issues:")
    assert "held.E001" in result.stderr
    assert "Starting development server" not in result.stdout


def test_a_bad_checks_value_is_djangos_usage_error(site):
    result = run_manage(site, "runserver", "--checks=never")
    assert result.returncode == 2
    assert "argument --checks: invalid choice: 'never'" in result.stderr
    assert "Traceback" not in result.stderr


# ------------------------------------------------------------------ the parts, in-process


def test_the_checks_wait_for_the_requests_in_flight():
    app = checking.Switch(lambda environ, start_response: [b"ok"])
    body = app({}, lambda *a: None)  # a request in flight until its body is closed
    opened = threading.Event()
    waiter = threading.Thread(target=lambda: (app.wait_quiet(0.05, 10), opened.set()))
    waiter.start()
    assert not opened.wait(0.3)
    finished = time.monotonic()
    body.close()  # type: ignore[attr-defined]
    assert opened.wait(5)
    waited = time.monotonic() - finished
    assert 0.04 < waited < 2, waited
    waiter.join(5)


def test_the_checks_start_at_the_latest_after_longest():
    app = checking.Switch(lambda environ, start_response: [b"ok"])
    app({}, lambda *a: None)  # never closed: a request that never ends
    started = time.monotonic()
    app.wait_quiet(0.05, 0.3)
    assert 0.29 < time.monotonic() - started < 2


def test_held_output_is_written_in_order_to_each_stream():
    class Command:
        stdout = OutputWrapper(io.StringIO())
        stderr = OutputWrapper(io.StringIO())

    command = Command()
    real_out, real_err = command.stdout, command.stderr
    held = checking._HeldOutput(command)  # type: ignore[arg-type]
    with held:
        command.stdout.write("Performing system checks...\n\n")
        command.stderr.write("a warning", lambda x: x)
        command.stdout.write("a notice")
        assert real_out._out.getvalue() == "" and real_err._out.getvalue() == ""
    assert command.stdout is real_out and command.stderr is real_err
    held.write()
    assert real_out._out.getvalue() == "Performing system checks...\n\na notice\n"
    assert real_err._out.getvalue() == "a warning\n"


@pytest.mark.parametrize("checks", ["after", "before"])
def test_the_check_error_page_leads_with_the_field_the_error_names(runserver, site, checks):
    server = runserver(f"--checks={checks}")
    server.edit(
        "catalog/models.py",
        "models.DecimalField(max_digits=8, decimal_places=2)",
        "models.DecimalField(decimal_places=2)",
    )
    page = server.wait_status("/", 500, contains="fields.E132").text
    focus = page[page.index('<section class="focus">') : page.index("SystemCheckError")]
    assert "catalog.Product.price: (fields.E132) DecimalFields must define" in focus
    line = next(
        n
        for n, text in enumerate((site / "catalog/models.py").read_text().splitlines(), 1)
        if "price = " in text
    )
    assert f"<b>catalog/models.py</b>, line {line}, in Product" in focus
    assert f'<div class="hit"><span class="n">{line}</span>    price = ' in focus
