"""System checks: is ``runserver`` really ours?"""

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
                "that provides a runserver command) in INSTALLED_APPS."
            ),
            id="devserver.W001",
        )
    ]
