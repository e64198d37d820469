"""``manage.py runfcgi``: Django 1.8's command on current Django, served by the ``fcgi`` package.

A thin shell: Django's words (``key=value``, or ``--key value``) → :class:`fcgi.Options` →
:func:`fcgi.serve` with the project's ``WSGI_APPLICATION``. Like 1.8 it activates
``settings.LANGUAGE_CODE`` first; ``runfcgi help`` prints every option.
"""

from __future__ import annotations

import argparse
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.servers.basehttp import get_internal_wsgi_application
from django.utils import translation

import fcgi
from devserver.warmup import warm_up


class Command(BaseCommand):
    help = (
        "Runs this project as a FastCGI (or SCGI, AJP) application, on flup. "
        "Options are KEY=value words (or --key value); `runfcgi help` lists them."
    )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        kwargs.setdefault("epilog", fcgi.Options.help_text(f"{prog_name} {subcommand}"))
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        django_options = dict(parser._option_string_actions)
        parse_args = parser.parse_args

        def parse(args: Any = None, namespace: Any = None) -> argparse.Namespace:
            # Django's own options (--settings, -v 2, --traceback...) go to argparse; every other
            # word, in order, to fcgi.Options, which knows ours and refuses others in one line.
            ours: list[str] = []
            theirs: list[str] = []
            words = list(args or [])
            i = 0
            while i < len(words):
                word = words[i]
                action = django_options.get(word.partition("=")[0])
                if action is None and not word.startswith("--"):
                    action = django_options.get(word[:2])  # -v2: a short option and its value
                if action is None or not word.startswith("-"):
                    ours.append(word)
                else:
                    theirs.append(word)
                    attached = "=" in word or (not word.startswith("--") and len(word) > 2)
                    if not attached and action.nargs != 0 and i + 1 < len(words):
                        theirs.append(words[i + 1])
                        i += 1
                i += 1
            result = parse_args(theirs, namespace)
            result.args = ours
            return result

        parser.parse_args = parse  # type: ignore[method-assign]
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("args", nargs="*", metavar="KEY=value", help="fcgi settings")

    def handle(self, *args: str, **options: Any) -> None:
        try:
            fcgi_options = fcgi.Options.parse(args)
        except fcgi.OptionError as exc:
            raise CommandError(str(exc)) from None
        if fcgi_options.help:
            self.stdout.write(fcgi.Options.help_text("manage.py runfcgi"), ending="")
            return
        # Activate the current language, because it won't get activated later (as 1.8 did).
        translation.activate(settings.LANGUAGE_CODE)
        application = get_internal_wsgi_application()
        try:
            fcgi.serve(application, fcgi_options, warm_up=lambda: warm_up(application))
        except fcgi.OptionError as exc:
            raise CommandError(str(exc)) from None
