"""testserver: a throwaway test database with fixtures, served by runserver's machinery.

Django's command line (``testserver [fixture ...] [--addrport ADDRPORT] [--noinput] [--ipv6]``,
options before, after or between the fixture names). In one process, in this order: bind the
port (a port in use fails before any database exists, in runserver's words), create the test
databases (``devserver.testdb``), load the fixtures (``devserver.fixtures``), then serve with
runserver's werkzeug server, threaded. Python changes are not reloaded (the test database would
be lost); template edits show on the next request (``devserver.templates``) and a changed fixture
file is loaded again in place. However the process stops (Ctrl-C, SIGTERM, an error), the test
databases are destroyed.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections

from devserver import options as command_line
from devserver import testdb
from devserver.fixtures import Fixtures
from devserver.interrupts import Interrupts, Stopped
from devserver.management.commands import runserver
from devserver.static import StaticFilesApp
from devserver.templates import watch_templates
from devserver.watching import Watch


class Server(runserver.Command):
    """runserver's serving half; requests into Django one at a time when ``db_lock`` is set."""

    db_lock: threading.Lock | None = None
    interrupts: Interrupts | None = None
    serving = False
    watch: Watch | None = None
    live = None  # devserver.livereload.Live, once serving with it

    def live_feed(self):
        """Live reload hears of changes from testserver's own Watch (there is no supervisor)."""
        from devserver import livereload

        return livereload.WatchFeed(self.watch) if self.watch is not None else None

    def start_livereload(self, options):
        self.live = super().start_livereload(options)
        return self.live

    def fixtures_reloaded(self, names: str) -> None:
        if self.live is not None:
            self.live.reload(f"fixture(s) {names} reloaded")

    def on_bind(self, server_port):
        # The last step before serve() takes SIGINT/SIGTERM over: a stop that came and whose
        # exception was lost must not be served through.
        if self.interrupts is not None:
            self.interrupts.check()
        self.serving = True
        super().on_bind(server_port)

    def get_handler(self, *args, **options):
        app = super().get_handler(*args, **options)
        if self.db_lock is None:
            return app
        if isinstance(app, StaticFilesApp):  # static files need no database: not held up
            app.app = testdb.Serialized(app.app, self.db_lock)
            return app
        return testdb.Serialized(app, self.db_lock)


class Command(BaseCommand):
    help = "Runs a development server with data from the given fixture(s)."

    requires_system_checks: list[str] = []

    def add_arguments(self, parser):
        parser.add_argument(
            "args",
            metavar="fixture",
            nargs="*",
            help="Path(s) to fixtures to load before running the server.",
        )
        parser.add_argument(
            "--noinput",
            "--no-input",
            action="store_false",
            dest="interactive",
            help="Tells Django to NOT prompt the user for input of any kind.",
        )
        parser.add_argument(
            "--addrport",
            default="",
            help="Port number or ipaddr:port to run the server on.",
        )
        parser.add_argument(
            "--ipv6",
            "-6",
            action="store_true",
            dest="use_ipv6",
            help="Tells Django to use an IPv6 address.",
        )
        command_line.add_asgi_arguments(parser)
        command_line.add_insight_arguments(parser)
        command_line.add_https_arguments(parser)
        parser.add_argument(
            "--nolivereload",
            action="store_false",
            dest="livereload",
            help=(
                "Tells the browser NOT to follow template, static file and fixture edits (on by "
                "default with DEBUG on)."
            ),
        )

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        # Options anywhere among the fixture names (`a --addrport 7000 b` too).
        parser.parse_args = parser.parse_intermixed_args
        return parser

    def execute(self, *args, **options):
        if options["no_color"]:
            os.environ["DJANGO_COLORS"] = "nocolor"  # as runserver: the request log's colours
        return super().execute(*args, **options)

    def handle(self, *fixture_labels, **options):
        server = Server(
            stdout=self.stdout._out,
            stderr=self.stderr._out,
            no_color=options["no_color"],
            force_color=options["force_color"],
        )
        server.set_address(options["addrport"], options["use_ipv6"])
        from devserver import asgi

        if asgi.requested(options, settings) and not asgi.installed():
            raise CommandError(asgi.MISSING)
        server.choose_certificate(options)  # --https: before anything is created
        interrupts = server.interrupts = Interrupts().install()
        try:
            server._socket = server.bind()  # before the database: a busy port fails fast
            try:
                self.serve(server, fixture_labels, options, interrupts)
            finally:
                server._socket.close()
        except Stopped as stop:
            when = "" if server.serving else " before the server started"
            with contextlib.suppress(OSError):  # a closed terminal (SIGHUP) cannot be written to
                self.stderr.write(f"Stopped by {stop.name}{when}.")
            sys.exit(128 + stop.signum)
        finally:
            interrupts.restore()

    def serve(self, server: Server, labels, options, interrupts: Interrupts) -> None:
        verbosity = options["verbosity"]
        with testdb.test_databases(verbosity, options["interactive"], interrupts):
            interrupts.check()
            aliases = list(connections)
            # SQLite: requests and fixture reloads take turns (see devserver.testdb).
            server.db_lock = testdb.shared_lock(aliases)
            fixtures = Fixtures(labels, DEFAULT_DB_ALIAS, self.stdout, self.stderr, server.db_lock)
            fixtures.load(verbosity)
            interrupts.check()
            testdb.keep_open(aliases)
            watch = server.watch = Watch()
            watch_templates(watch)
            fixtures.watch(watch)
            fixtures.on_reload = server.fixtures_reloaded
            watch.start()
            try:
                server.inner_run(
                    None,
                    skip_checks=True,
                    use_threading=True,
                    use_static_handler=True,
                    insecure_serving=False,
                    livereload=options["livereload"],
                    asgi=options["asgi"],
                    sql_summary=options["sql_summary"],
                    print_sql=options["print_sql"],
                    print_sql_location=options["print_sql_location"],
                    pdb=options["pdb"],
                    https=options["https"],
                    cert_file=options["cert_file"],
                    key_file=options["key_file"],
                    tls_source=options.get("tls_source"),
                    verbosity=verbosity,
                    shutdown_message="\nServer stopped.\n",
                )
            finally:
                watch.stop()
