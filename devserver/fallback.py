"""Keep devserver's commands when manage.py pretends a failed ``django.setup()`` did not happen.

For a command named ``runserver``, Django's ``ManagementUtility.execute`` swallows an exception
raised by ``django.setup()`` (a broken models.py, say), empties the app registry and runs the
command it then finds: its own runserver, since no app is loaded any more. The user would get
Django's server and Django's reloader instead of ours, silently. This guard, installed while the
registry is being populated (before any model module is imported), adds devserver's commands back
in exactly that state: registry marked ready, no app config, devserver listed in INSTALLED_APPS
before django.contrib.staticfiles.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable

_MARK = "_devserver_fallback"


def _listed_first(installed: list[str]) -> bool:
    names = [
        entry.split(".")[0] if entry.startswith("devserver.") else entry for entry in installed
    ]
    if "devserver" not in names:
        return False
    static = "django.contrib.staticfiles"
    statics = [i for i, n in enumerate(installed) if n == static or n.startswith(static + ".apps")]
    return not statics or names.index("devserver") < statics[0]


def install() -> None:
    from django.core import management

    if getattr(management.get_commands, _MARK, False):
        return
    original: Callable[[], dict[str, str]] = management.get_commands

    @functools.wraps(original)
    def get_commands() -> dict[str, str]:
        commands = original()
        from django.apps import apps
        from django.conf import settings

        if apps.ready and not apps.app_configs and settings.configured:
            try:
                installed = list(settings.INSTALLED_APPS)
            except Exception:
                return commands
            if _listed_first(installed):
                ours = os.path.join(os.path.dirname(__file__), "management")
                commands = {
                    **commands,
                    **dict.fromkeys(management.find_commands(ours), "devserver"),
                }
        return commands

    setattr(get_commands, _MARK, True)
    management.get_commands = get_commands  # type: ignore[assignment]
