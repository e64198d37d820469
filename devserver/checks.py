"""System checks: is ``runserver`` really ours?

Under ``python -m devserver`` the commands are routed to devserver in every process that runs
them (``devserver.entry.route_commands``), so the warning cannot fire there: it is about what
``manage.py runserver`` would run.
"""

from __future__ import annotations

from django.core import checks


@checks.register()
def runserver_resolves_to_devserver(app_configs=None, **kwargs):
    from django.core.management import get_commands, load_command_class

    from .management.commands.runserver import Command

    app = get_commands().get("runserver")
    try:
        command_class = type(load_command_class(app, "runserver")) if app else None
    except Exception:
        command_class = None
    if command_class is not None and issubclass(command_class, Command):
        return []
    return [
        checks.Warning(
            f"'manage.py runserver' runs {app or 'nothing'}'s runserver, not devserver's.",
            hint=(
                "List 'devserver' before 'django.contrib.staticfiles' (and before any other app "
                "that provides a runserver command) in INSTALLED_APPS, or run 'python -m devserver "
                "runserver', which needs no settings change."
            ),
            id="devserver.W001",
        )
    ]
