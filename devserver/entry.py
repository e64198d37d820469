"""``python -m devserver runserver|testserver|runfcgi``: ours, on a project that does not list us.

Many projects build INSTALLED_APPS in code (NetBox does, and its configuration cannot add an
app), so trying devserver would mean editing their settings (issue 10, item 8). Run from the
directory of manage.py, this reads the settings manage.py would read: ``--settings``, else
DJANGO_SETTINGS_MODULE from the environment, else the module manage.py names in its
``os.environ.setdefault("DJANGO_SETTINGS_MODULE", ...)``, read with ``ast`` (manage.py is not
executed). Then it runs Django's own ``ManagementUtility``, as manage.py does (the same options,
``--pythonpath``, the same handling of a broken ``django.setup()``), except that our three
commands are the ones found: in this process, and in each worker the supervisor starts, which
runs ``Command`` below (the worker re-imports the command's module, see devserver/worker.py).
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import os
import sys
from collections.abc import Callable, Mapping, Sequence

from django.core import management
from django.core.management import ManagementUtility
from django.core.management.base import BaseCommand, CommandParser

from devserver.management.commands import runserver

COMMANDS = ("runserver", "testserver", "runfcgi")
PROG = "python -m devserver"
SETTINGS_VARIABLE = "DJANGO_SETTINGS_MODULE"
USAGE = f"""\
usage: {PROG} {{runserver,testserver,runfcgi}} [options] [args]

Run devserver's runserver, testserver or runfcgi on a Django project without adding devserver
to its INSTALLED_APPS. Run it from the directory of manage.py: the settings are those of
--settings, else of DJANGO_SETTINGS_MODULE, else the module manage.py sets.

  {PROG} runserver [addrport] [options]   as manage.py runserver
  {PROG} testserver [fixture ...] [options]
  {PROG} runfcgi [KEY=value ...]
  {PROG} help runserver                   a command's options
"""

_MARK = "_devserver_entry"


class NoSettings(Exception):
    """No settings module to run with; the message says what to do."""


def settings_from_manage_py(path: str) -> str | None:
    """The module a manage.py sets DJANGO_SETTINGS_MODULE to, read without executing it.

    Finds ``os.environ.setdefault("DJANGO_SETTINGS_MODULE", "<module>")`` (what
    ``startproject`` writes) or ``os.environ["DJANGO_SETTINGS_MODULE"] = "<module>"``, anywhere
    in the file; None when there is no such line or the file cannot be read or parsed."""
    try:
        with open(path, "rb") as f:
            tree = ast.parse(f.read(), path)
    except (OSError, SyntaxError, ValueError):
        return None
    for node in ast.walk(tree):
        value = None
        if isinstance(node, ast.Call) and _is_environ(node.func, "setdefault"):
            if len(node.args) == 2 and _is_text(node.args[0], SETTINGS_VARIABLE):
                value = node.args[1]
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if (
                isinstance(target, ast.Subscript)
                and _is_environ(target.value)
                and _is_text(target.slice, SETTINGS_VARIABLE)
            ):
                value = node.value
        if isinstance(value, ast.Constant) and isinstance(value.value, str) and value.value:
            return value.value
    return None


def _is_environ(node: ast.expr, method: str | None = None) -> bool:
    """``os.environ`` (or ``environ``), or its ``method`` attribute when one is named."""
    if method is not None:
        if not (isinstance(node, ast.Attribute) and node.attr == method):
            return False
        node = node.value
    if isinstance(node, ast.Attribute):
        return node.attr == "environ"
    return isinstance(node, ast.Name) and node.id == "environ"


def _is_text(node: ast.expr, text: str) -> bool:
    return isinstance(node, ast.Constant) and node.value == text


def find_settings(args: Sequence[str], environ: Mapping[str, str], cwd: str) -> tuple[str, str]:
    """(settings module, where it comes from), in manage.py's order of precedence.

    Raises ``NoSettings`` when none is given, or when the module cannot be found from here."""
    parser = CommandParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--settings")
    parser.add_argument("--pythonpath")
    options, _ = parser.parse_known_args(list(args))
    manage_py = os.path.join(cwd, "manage.py")
    if options.settings:
        module, source = options.settings, "--settings"
    elif environ.get(SETTINGS_VARIABLE):
        module, source = environ[SETTINGS_VARIABLE], SETTINGS_VARIABLE
    elif os.path.exists(manage_py):
        found = settings_from_manage_py(manage_py)
        if found is None:
            raise NoSettings(
                f"{manage_py} does not set {SETTINGS_VARIABLE}: pass --settings or set "
                f"{SETTINGS_VARIABLE}."
            )
        module, source = found, "manage.py"
    else:
        raise NoSettings(
            f"No Django settings found: run this from the directory of manage.py, or pass "
            f"--settings or set {SETTINGS_VARIABLE}."
        )
    if not _findable(module, [options.pythonpath] if options.pythonpath else []):
        raise NoSettings(
            f"No module named {module!r} (the settings module, from {source}): run this from "
            "the directory of manage.py."
        )
    return module, source


def _findable(module: str, extra_path: list[str]) -> bool:
    """Whether ``module`` can be imported (its parent packages are imported to find out, as
    Django would import them). Anything but the module missing counts as findable: Django will
    report it as manage.py would."""
    saved = sys.path[:]
    sys.path[:0] = [p for p in extra_path if p not in sys.path]
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError as exc:
        return not (exc.name and (module == exc.name or module.startswith(exc.name + ".")))
    except Exception:
        return True
    finally:
        sys.path[:] = saved


def route_commands() -> None:
    """Make Django find devserver's runserver, testserver and runfcgi in this process, as if
    devserver were first in INSTALLED_APPS (``call_command`` and the devserver.W001 check
    included). Idempotent."""
    if getattr(management.get_commands, _MARK, False):
        return
    original: Callable[[], dict[str, str]] = management.get_commands

    @functools.wraps(original)
    def get_commands() -> dict[str, str]:
        return {**original(), **dict.fromkeys(COMMANDS, "devserver")}

    setattr(get_commands, _MARK, True)
    management.get_commands = get_commands  # type: ignore[assignment]


class Command(runserver.Command):
    """devserver's runserver, as ``python -m devserver`` runs it.

    The same command; only its module differs, and the worker re-imports that module (it is the
    ``command`` of the worker's spec): so each worker, too, routes the commands to devserver
    before its system checks run."""

    def inner_run(self, *args, **options):
        route_commands()
        return super().inner_run(*args, **options)


class _Utility(ManagementUtility):
    def fetch_command(self, subcommand: str) -> BaseCommand:
        if subcommand == "runserver":
            return Command()
        return super().fetch_command(subcommand)


def main(argv: Sequence[str]) -> int:
    """Run one of our commands as manage.py would run it; the exit status."""
    args = list(argv)
    if not args or args in (["help"], ["-h"], ["--help"]):
        sys.stdout.write(USAGE)
        return 0
    name = args[1] if args[0] == "help" and len(args) > 1 else args[0]
    if name not in COMMANDS:
        sys.stderr.write(
            f"Unknown command: {name!r}. {PROG} runs runserver, testserver or runfcgi; "
            "use manage.py for the others.\n"
        )
        return 1
    try:
        module, source = find_settings(args[1:], os.environ, os.getcwd())
    except NoSettings as exc:
        if args[0] != "help":  # a command's options need no settings
            sys.stderr.write(f"CommandError: {exc}\n")
            return 1
    else:
        if source == "manage.py":
            # What manage.py does itself; the workers read it from the environment too.
            os.environ[SETTINGS_VARIABLE] = module
    route_commands()
    _Utility([PROG, *args]).execute()
    return 0
