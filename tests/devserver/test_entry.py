"""``python -m devserver``: our commands on a project whose settings do not list devserver."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

from devserver.entry import settings_from_manage_py
from tests.devserver.conftest import Devserver, run_manage
from tests.support import PYTHON, base_env, free_port, parent_of, wait_until

# Built in code, as NetBox builds it; devserver is not among them.
UNLISTED = """
_DJANGO_APPS = [app for app in INSTALLED_APPS if app.startswith("django.")]
_PROJECT_APPS = [app for app in INSTALLED_APPS if not app.startswith(("django.", "devserver"))]
INSTALLED_APPS = _DJANGO_APPS + _PROJECT_APPS
"""

# devserver listed, but after django.contrib.staticfiles: manage.py runserver is not ours.
LISTED_LATE = """
INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "devserver"] + ["devserver"]
"""


@pytest.fixture
def unlisted(site) -> Path:
    settings = site / "mysite" / "settings.py"
    settings.write_text(settings.read_text() + UNLISTED)
    return site


def entry(site: Path, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    """A one-shot ``python -m devserver``; returns the CompletedProcess."""
    return subprocess.run(
        [PYTHON, "-m", "devserver", *args],
        cwd=cwd or site,
        env=base_env(env),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def start(spawn, site: Path, *args: str, env: dict[str, str] | None = None) -> Devserver:
    port = free_port()
    argv = [PYTHON, "-m", "devserver", "runserver", f"127.0.0.1:{port}", *args]
    proc = spawn(argv, cwd=site, env=base_env(env), name="entry")
    server = Devserver(proc, site, port)
    proc.wait_for_log("Quit the server with CONTROL-C.", timeout=30)
    server.wait_status("/", 200)
    return server


def test_the_example_settings_really_leave_devserver_out(unlisted):
    result = run_manage(
        unlisted,
        "shell",
        "-c",
        "from django.conf import settings as s; print('devserver' in s.INSTALLED_APPS)",
    )
    assert result.stdout.strip().endswith("False"), result.stderr


@pytest.mark.parametrize("start_by", ["fork", "spawn"])
def test_runserver_serves_reloads_and_shows_our_banner(spawn, unlisted, start_by):
    server = start(spawn, unlisted, f"--start={start_by}")
    log = server.proc.wait_for_log("System check identified no issues (0 silenced).")
    assert f"Watching for file changes with inotify; workers start by {start_by}" in log
    assert "StatReloader" not in log
    assert "Django version " in log and "using settings 'mysite.settings'" in log
    assert server.get("/static/css/site.css").status == 200  # static files, as runserver
    first = server.pid()
    server.edit("diagnostics/views.py", "slept {seconds}", "rested {seconds}")
    server.proc.wait_for_log("diagnostics/views.py changed, reloading.")
    server.wait_status("/diag/slow/?s=0", 200, contains="rested 0.0")
    assert server.pid() != first
    if start_by == "fork":
        # The next workers are forks of the template: it works without devserver listed too.
        def forked() -> bool:
            version = server.site / "diagnostics" / "version.py"
            version.write_text(f"VERSION = {forked.n}\n")  # type: ignore[attr-defined]
            server.wait_status("/diag/version/", 200, contains=str(forked.n))  # type: ignore[attr-defined]
            forked.n += 1  # type: ignore[attr-defined]
            return parent_of(server.pid()) != server.proc.pid

        forked.n = 1  # type: ignore[attr-defined]
        wait_until(forked, 30, interval=0.2, what="a worker forked from the template")
        assert server.get("/").status == 200


def test_w001_stays_quiet_under_the_entry_point(spawn, site):
    settings = site / "mysite" / "settings.py"
    settings.write_text(settings.read_text() + LISTED_LATE)
    assert "devserver.W001" in run_manage(site, "check").stderr
    server = start(spawn, site)  # the checks run in the worker
    log = server.proc.wait_for_log("System check identified no issues (0 silenced).")
    assert "W001" not in log
    result = entry(site, "runfcgi", "help")  # runfcgi runs the checks in this process
    assert result.returncode == 0, result.stderr
    assert "W001" not in result.stdout + result.stderr


def test_testserver_serves_the_fixture(spawn, unlisted, tmp_path):
    fixture = tmp_path / "entry.json"
    catalog = (unlisted / "catalog" / "fixtures" / "catalog.json").read_text()
    fixture.write_text(catalog.replace("The Django Book", "The Entry Point Book"))
    port = free_port()
    argv = [PYTHON, "-m", "devserver", "testserver", "--addrport", str(port), str(fixture)]
    proc = spawn(argv, cwd=unlisted, name="testserver")
    server = Devserver(proc, unlisted, port)
    proc.wait_for_log("Quit the server with CONTROL-C.", timeout=60)
    assert "Creating test database for alias 'default'..." in proc.log()
    assert "Installed 8 object(s) from 1 fixture(s)" in proc.log()
    server.wait_status("/", 200, contains="The Entry Point Book")


def test_runfcgi_help(unlisted):
    result = entry(unlisted, "runfcgi", "help")
    assert result.returncode == 0, result.stderr
    assert "maxrequests" in result.stdout


def test_no_settings_is_one_line(tmp_path):
    result = entry(tmp_path, "runserver")
    assert result.returncode == 1
    assert result.stderr == (
        "CommandError: No Django settings found: run this from the directory of manage.py, "
        "or pass --settings or set DJANGO_SETTINGS_MODULE.\n"
    )
    assert result.stdout == ""


def test_a_settings_module_that_is_not_there_is_one_line(unlisted, tmp_path):
    result = entry(unlisted, "runserver", env={"DJANGO_SETTINGS_MODULE": "mysite.nowhere"})
    assert result.returncode == 1
    assert result.stderr == (
        "CommandError: No module named 'mysite.nowhere' (the settings module, from "
        "DJANGO_SETTINGS_MODULE): run this from the directory of manage.py.\n"
    )
    (tmp_path / "manage.py").write_text("import sys\nprint(sys.argv)\n")
    result = entry(tmp_path, "testserver")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "manage.py does not set DJANGO_SETTINGS_MODULE" in result.stderr


def test_unknown_command_is_one_line(unlisted):
    result = entry(unlisted, "migrate")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "Unknown command: 'migrate'" in result.stderr


def test_usage_and_a_commands_help(unlisted, tmp_path):
    result = entry(unlisted)
    assert result.returncode == 0 and result.stdout.startswith("usage: python -m devserver")
    result = entry(tmp_path, "help", "runserver")  # no settings needed for that
    assert result.returncode == 0, result.stderr
    assert "usage: python -m devserver runserver" in result.stdout
    assert "--reloader" in result.stdout


def test_settings_option_and_environment_win_over_manage_py(unlisted):
    other = unlisted / "mysite" / "other_settings.py"
    other.write_text("from .settings import *\nDEBUG = False\nALLOWED_HOSTS = []\n")
    for args, env in (
        (["--settings=mysite.other_settings"], None),
        ([], {"DJANGO_SETTINGS_MODULE": "mysite.other_settings"}),
    ):
        result = entry(unlisted, "runserver", str(free_port()), *args, env=env)
        assert result.returncode == 1
        assert result.stderr == (
            "CommandError: You must set settings.ALLOWED_HOSTS if DEBUG is False.\n"
        )


@pytest.mark.parametrize(
    ("source", "module"),
    [
        (
            'import os\nos.environ.setdefault("DJANGO_SETTINGS_MODULE", "a.settings")\n',
            "a.settings",
        ),
        (
            textwrap.dedent(
                """\
                import os, sys
                def main():
                    os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'netbox.settings')
                    from django.core.management import execute_from_command_line
                    execute_from_command_line(sys.argv)
                if __name__ == '__main__':
                    main()
                """
            ),
            "netbox.settings",
        ),
        ('from os import environ\nenviron["DJANGO_SETTINGS_MODULE"] = "b.dev"\n', "b.dev"),
        ('import os\nos.environ.setdefault("OTHER", "x")\n', None),
        ('import os\nos.environ.setdefault("DJANGO_SETTINGS_MODULE", name)\n', None),
        ("this is not python(\n", None),
    ],
)
def test_settings_read_from_manage_py_without_running_it(tmp_path, source, module):
    path = tmp_path / "manage.py"
    path.write_text(source)
    assert settings_from_manage_py(str(path)) == module
