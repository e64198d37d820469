"""``python -m fcgi module:app [key=value | --key value]...``: serve any WSGI callable.

A thin shell over the library: argv → :class:`~fcgi.Options` → :func:`~fcgi.serve`. Every user
mistake is one line on stderr and exit status 2; ``help`` (or ``--help``) prints the options.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Any

from .options import OptionError, Options
from .server import serve

_PROG = "python -m fcgi module:app"


def load(target: str) -> Any:
    """Import ``module:attribute`` (``module`` alone means ``module:application``)."""
    module_name, _, attribute = target.partition(":")
    attribute = attribute or "application"
    if not module_name:
        raise OptionError(
            f"{target!r}: give the app as module:attribute, e.g. mysite.wsgi:application"
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise OptionError(f"{target!r}: no module named {exc.name!r}") from None
        raise
    app = module
    for part in attribute.split("."):
        try:
            app = getattr(app, part)
        except AttributeError:
            raise OptionError(f"{target!r}: module {module_name!r} has no {attribute!r}") from None
    if not callable(app):
        raise OptionError(f"{target!r} is not callable")
    return app


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if any(arg in ("-h", "--help") for arg in args):
        sys.stdout.write(Options.help_text(_PROG))
        return 0
    try:
        options, targets = Options.parse_known(args)
        if options.help:
            sys.stdout.write(Options.help_text(_PROG))
            return 0
        if len(targets) != 1:
            what = (
                "no app given" if not targets else f"more than one app given: {' '.join(targets)}"
            )
            raise OptionError(f"{what}; usage: {_PROG} [key=value ...]")
        if "." not in sys.path and "" not in sys.path:
            sys.path.insert(0, "")
        app = load(targets[0])
        serve(app, options)
    except OptionError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
