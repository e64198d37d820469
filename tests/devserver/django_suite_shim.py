"""Run Django's own test runner with devserver's runserver ``Command`` in place of Django's.

``python tests/devserver/django_suite_shim.py DJANGO_TESTS_DIR [runtests.py arguments...]``

Django's tests take runserver as ``from django.core.management.commands.runserver import
Command as RunserverCommand``. Before ``runtests.py`` imports any test, this sets that one
attribute of Django's module to devserver's ``Command``, then runs ``runtests.py`` as
``python runtests.py`` would. Nothing else of Django is touched, with one exception, kept on
purpose: ``django.contrib.staticfiles``' runserver (a subclass of Django's) is imported first,
so it stays Django's. ``call_command("runserver")`` reaches it (Django's test settings list
staticfiles and not devserver), and only ``test_skip_checks`` makes that call. That test stubs
``django.core.servers.basehttp.run`` to keep the server from serving. Ours does not serve
through that function, so run as ours it would bind port 8000 and serve forever. The same
contract is tested on our command line in ``test_django_suite.py``.

The last line printed says which class the test module used; the exit status is 3 if it was not
ours, so a run that bypassed the shim cannot pass.
"""

from __future__ import annotations

import os
import runpy
import sys

NOT_OURS = 3


def main() -> int:
    tests_dir = os.path.abspath(sys.argv[1])
    import django.contrib.staticfiles.management.commands.runserver  # noqa: F401 - stays Django's
    import django.core.management.commands.runserver as django_runserver

    from devserver.management.commands.runserver import Command

    django_runserver.Command = Command  # type: ignore[misc]

    runtests = os.path.join(tests_dir, "runtests.py")
    sys.argv = [runtests, *sys.argv[2:]]
    sys.path.insert(0, tests_dir)  # what `python runtests.py` puts first
    status: int | str | None = 0
    try:
        runpy.run_path(runtests, run_name="__main__")
    except SystemExit as exc:
        status = exc.code
    module = sys.modules.get("admin_scripts.tests")
    used = getattr(module, "RunserverCommand", None)
    name = f"{used.__module__}.{used.__qualname__}" if used is not None else "nothing"
    print(f"runserver under test: {name}", flush=True)
    if used is not Command:
        return NOT_OURS
    return status if isinstance(status, int) else 1


if __name__ == "__main__":
    sys.exit(main())
