"""runserver's system checks: when they run, which ones, and what they do to the command.

They run in each worker, on every (re)start, never in the process the user started (issue 10:
the contract of the installed Django, which Django's own tests check in test_django_suite.py).
"""

from __future__ import annotations

import textwrap

import pytest
from django.core.management.base import BaseCommand

from tests.devserver.conftest import run_manage
from tests.support import free_port, port_is_free


def test_skip_checks_runs_no_check_in_any_worker(runserver):
    # Django's test_skip_checks runs Django's command (see django_suite_shim.py): this is ours.
    server = runserver("--skip-checks")
    first = server.pid()
    server.edit("catalog/views.py", "def index(request):", "X = 4\n\n\ndef index(request):")
    server.proc.wait_for_log("Quit the server with CONTROL-C.", count=2)
    assert server.pid() != first
    assert "Performing system checks" not in server.proc.log()
    assert "System check identified" not in server.proc.log()


def test_check_errors_with_noreload_end_the_command_as_djangos_do(site):
    # Without a reloader nothing can fix them: Django's --noreload raises SystemCheckError
    # before it binds, and so does ours (with the reloader they are served as a page instead).
    models = site / "catalog" / "models.py"
    models.write_text(
        models.read_text().replace(
            "    in_stock = models.BooleanField(default=True)",
            "    in_stock = models.BooleanField(default=True)\n    weight = models.DecimalField()",
        )
    )
    port = free_port()
    result = run_manage(site, "runserver", "--noreload", f"127.0.0.1:{port}")
    assert result.returncode == 1
    assert result.stderr.startswith("SystemCheckError: System check identified some issues:")
    assert "fields.E130" in result.stderr
    assert "Starting development server" not in result.stdout
    assert port_is_free(port)


@pytest.mark.skipif(
    not hasattr(BaseCommand, "get_check_kwargs"),
    reason="Django 4.2's runserver checks everything in inner_run (and refuses such a subclass)",
)
def test_a_subclass_naming_check_tags_runs_those_in_each_worker(runserver, site):
    # Django 5.2's contract: requires_system_checks names the tags inner_run checks.
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
    (commands / "runserver.py").write_text(
        textwrap.dedent(
            """
            from django.core.checks import Error, Tags, register

            from devserver.management.commands.runserver import Command as Base


            @register(Tags.signals)
            def signals_check(app_configs, **kwargs):
                return [Error("a signals check ran", id="local.E001")]


            @register(Tags.security)
            def security_check(app_configs, **kwargs):
                return [Error("a security check ran", id="local.E002")]


            class Command(Base):
                requires_system_checks = [Tags.signals]
            """
        )
    )
    server = runserver(wait=False)
    server.wait_status("/", 500, contains="local.E001")
    # The error page imports no view: change a module every worker imports.
    server.edit(
        "catalog/models.py", "from django.db import models", "from django.db import models\n\nX = 5"
    )
    server.proc.wait_for_log("Quit the server with CONTROL-C.", count=2)
    # The new worker checked again (after it started serving: issue 11).
    log = server.proc.wait_for_log("(local.E001) a signals check ran", count=2)
    assert "local.E002" not in log
