"""runserver on werkzeug and the reloader: Django's command line, a better server.

In the process the user started, the command parses its options, binds the socket (so a port in
use is reported once, in Django's words) and hands over to the reloader's supervisor: from the
command line it replaces itself with ``python -m reloader`` (same PID, without Django or the
project loaded); from ``call_command`` it runs the supervisor in-process. Each worker runs
``inner_run`` of this same command class (a project's subclass keeps its hooks): system checks,
the migrations notice, the banner, and werkzeug serving on the inherited socket.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import subprocess
import sys
from datetime import datetime
from importlib import import_module

import django
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.core.servers.basehttp import get_internal_wsgi_application
from django.utils.version import get_docs_version

import reloader
from devserver import addrport, checking, stack
from devserver import options as command_line
from devserver.static import StaticFilesApp, url_prefix
from reloader import worker

WATCHERS, STARTS = command_line.WATCHERS, command_line.STARTS

# What the fork template imports on top of what it learns from the workers: devserver's own
# worker side (not learned: an editable install is outside site-packages) and Django's core.
# All of it imports without settings.
PRELOAD = (
    "devserver.worker",
    "devserver.management.commands.runserver",
    "devserver.autoreload",
    "django.core.handlers.wsgi",
    "django.db.models",
    "django.template.backends.django",
    "django.contrib.staticfiles.finders",
    "django.core.management.base",
    "werkzeug.serving",
    "werkzeug.utils",
)

# Django's words for the errors of binding (django/core/management/commands/runserver.py).
BIND_ERRORS = {
    errno.EACCES: "You don't have permission to access that port.",
    errno.EADDRINUSE: "That port is already in use.",
    errno.EADDRNOTAVAIL: "That IP address can't be assigned to.",
}


class Error(CommandError):
    """Printed by Django as ``Error: <message>``, as runserver prints a failed bind."""


class Command(BaseCommand):
    help = "Starts a lightweight web server for development and also serves static files."

    stealth_options = ("shutdown_message",)
    suppressed_base_arguments = {"--verbosity", "--traceback"}
    # The system checks run in each worker, on every (re)start (see inner_run), not when the
    # command starts. Each Django says so in its own way, and a project's subclass expects its
    # own Django's (issue 10): 5.2 keeps requires_system_checks at its default (so BaseCommand
    # adds --skip-checks, and a subclass may name tags) and runs none in execute() through
    # get_check_kwargs(); 4.2 has no get_check_kwargs, and its runserver sets
    # requires_system_checks = [] and adds --skip-checks itself.
    if not hasattr(BaseCommand, "get_check_kwargs"):
        requires_system_checks: list[str] = []

    default_addr = "127.0.0.1"
    default_addr_ipv6 = "::1"
    default_port = "8000"
    protocol = "http"

    _from_command_line = False
    _socket: socket.socket | None = None

    def add_arguments(self, parser):
        command_line.add_runserver_arguments(parser, self)

    def execute(self, *args, **options):
        if options["no_color"]:
            # Django's way to reach the request log's formatter (see Django's runserver).
            os.environ["DJANGO_COLORS"] = "nocolor"
        super().execute(*args, **options)

    def get_check_kwargs(self, options):
        """Validation is called explicitly each time the server reloads (Django 5.2's words)."""
        return {"tags": set()}

    def _worker_check_kwargs(self, options) -> dict:
        """What inner_run checks: the tags ``requires_system_checks`` names (BaseCommand's
        get_check_kwargs, as Django 5.2's inner_run asks it); every check on Django 4.2."""
        base = getattr(super(), "get_check_kwargs", None)
        kwargs = dict(base(options)) if base is not None else {}
        kwargs["display_num_errors"] = True
        return kwargs

    def run_from_argv(self, argv):
        self._from_command_line = True
        super().run_from_argv(argv)

    def get_handler(self, *args, **options):
        """The WSGI application: Django's, behind the static and media files when served."""
        handler = get_internal_wsgi_application()
        return self.static_files(handler, options) or handler

    def static_files(self, handler, options) -> StaticFilesApp | None:
        """``handler`` behind the static and media files, or None where they are not served."""
        serve_static = options.get("use_static_handler", True) and (
            settings.DEBUG or options.get("insecure_serving", False)
        )
        if not serve_static:
            return None
        media = url_prefix(settings.MEDIA_URL) if settings.DEBUG else None
        return StaticFilesApp(
            handler,
            static_prefix=url_prefix(settings.STATIC_URL),
            admin_dir=options.get("admin_media_path") or None,
            media_prefix=media,
            media_root=str(settings.MEDIA_ROOT) if media and settings.MEDIA_ROOT else None,
        )

    # ----------------------------------------------------------------- the user's process
    def set_address(self, text: str | None, use_ipv6: bool) -> None:
        """What Django's handle() does first: refuse DEBUG off without ALLOWED_HOSTS, then parse
        ``addrport`` into ``addr``, ``port`` and ``use_ipv6`` (CommandError, Django's wording)."""
        if not settings.DEBUG and not settings.ALLOWED_HOSTS:
            raise CommandError("You must set settings.ALLOWED_HOSTS if DEBUG is False.")
        address = addrport.parse(
            text, use_ipv6, self.default_addr, self.default_addr_ipv6, self.default_port
        )
        self.addr, self.port = address.addr, address.port
        self.use_ipv6, self._raw_ipv6 = address.use_ipv6, address.raw_ipv6

    def handle(self, *args, **options):
        self.set_address(options["addrport"], options["use_ipv6"])
        admin_dir = options.get("admin_media_path")
        if admin_dir and not os.path.exists(admin_dir):
            raise CommandError(f"The --adminmedia directory {admin_dir!r} does not exist.")
        if admin_dir and not os.path.isdir(admin_dir):
            raise CommandError(f"The --adminmedia path {admin_dir!r} is not a directory.")
        if admin_dir:
            options["admin_media_path"] = os.path.abspath(admin_dir)
        from devserver import asgi

        if asgi.requested(options, settings) and not asgi.installed():
            raise CommandError(asgi.MISSING)
        self.choose_certificate(options)
        self.run(**options)

    def choose_certificate(self, options) -> None:
        """--https: the certificate the supervisor and every worker serve with, put in
        ``options`` (``cert_file``, ``key_file``, ``tls_source``): the given files, checked, or
        one from the local CA for the addresses served (made or renewed here, once)."""
        if options.get("key_file") and not options.get("cert_file"):
            raise CommandError("--key-file needs --cert-file.")
        if not (options.get("https") or options.get("cert_file")):
            return
        from devserver import tls

        try:
            if options.get("cert_file"):
                certificate = tls.own_certificate(options["cert_file"], options.get("key_file"))
            else:
                everywhere = self.addr in ("0", "0.0.0.0", "::")
                certificate = tls.local_certificate(self.addr, all_interfaces=everywhere)
        except tls.TlsError as exc:
            raise CommandError(str(exc)) from None
        options.update(
            https=True,
            cert_file=certificate.cert_file,
            key_file=certificate.key_file,
            tls_source=certificate.source,
        )

    def run(self, **options):
        """Bind, then run the server with the reloader or, with --noreload, in this process
        (where, as in Django's, inner_run binds after the checks)."""
        if not options["use_reloader"]:
            try:
                self.inner_run(None, **options)
            finally:
                if self._socket is not None:
                    self._socket.close()
            if self._from_command_line:
                worker.exit_now()  # without tearing the project's heap down (seconds)
            return
        self._socket = self.bind()
        config = self.supervisor_config(options)
        if self._from_command_line:
            reloader.exec_supervisor(config, shown_as=sys.argv)
        try:
            reloader.Supervisor(config).run()
        finally:
            self._socket.close()

    def bind(self) -> socket.socket:
        spec = reloader.SocketSpec(
            host="0.0.0.0" if self.addr == "0" else self.addr,
            port=int(self.port),
            ipv6=self.use_ipv6,
        )
        try:
            return reloader.bind(spec)
        except reloader.BindError as exc:
            raise Error(BIND_ERRORS.get(exc.errno or 0, str(exc))) from None

    def supervisor_config(self, options) -> reloader.SupervisorConfig:
        from devserver.worker import ENV_SPEC, spec_for

        assert self._socket is not None
        fd = self._socket.fileno() if self._from_command_line else os.dup(self._socket.fileno())
        os.set_inheritable(fd, True)
        shown_as = tuple(sys.argv) if self._from_command_line else ("runserver",)
        # The template must not be able to load the project: no settings module to find.
        template_env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
        return reloader.SupervisorConfig(
            target=reloader.Target("call", "devserver.worker:main", shown_as),
            env={**os.environ, ENV_SPEC: spec_for(self, options)},
            template_env=template_env,
            start=options.get("start", "auto"),  # type: ignore[arg-type]
            # The fork start keeps checkpoints along Django's start-up (issue 11); --start=fork
            # forks from the library template only.
            checkpoints=options.get("start", "auto") == "auto",
            preload=(*PRELOAD, *getattr(settings, "DEVSERVER_PRELOAD", ())),
            sockets=(
                reloader.SocketSpec(
                    fd=fd, tls_cert=options.get("cert_file"), tls_key=options.get("key_file")
                ),
            ),
            backend=WATCHERS[options.get("reloader", "auto")],  # type: ignore[arg-type]
            interpreter_flags=tuple(subprocess._args_from_interpreter_flags()),  # type: ignore[attr-defined]
            cwd=os.getcwd(),
            name="server",
            announce=False,
            audience=reloader.Audience.for_debug(settings.DEBUG, settings.ALLOWED_HOSTS),
            verbose=int(options.get("verbosity", 1)) >= 2,
        )

    # ----------------------------------------------------------------- each worker
    def inner_run(self, *args, **options):
        shutdown_message = options.get("shutdown_message", "")
        # Issue 11: under the reloader the checks run by default while the new worker already
        # serves (devserver.checking); --noreload keeps Django's order, where errors end the
        # command. A builder (the fork start's checkpoints) takes the supervised path too.
        supervised = worker.under_supervisor() or worker.building()
        after = supervised and options.get("checks", checking.AFTER) == checking.AFTER
        self.stack = stack.for_options(options, settings)  # WSGI or ASGI
        handler = None
        if after:
            # Every worker loads the WSGI handler (middleware) and the URLconf the same way before
            # it serves: done here, they are in the final checkpoint below. Only the URLconf's
            # module (and its views): a resolver would hold them, and keep a fast reload from
            # importing them again (reloader.refresh).
            handler = self.stack.application(self, options)
            import_module(settings.ROOT_URLCONF)
        # With the fork start's checkpoints (reloader.builder), workers are forked from here for
        # an edit that nothing above read; everything below happens in each worker.
        worker.checkpoint("serve", final=True)
        supervised = worker.under_supervisor()
        if supervised:
            self.announce_start()
        check_errors = None
        if not after:
            check_errors = checking.run_checks(self, options, supervised)
            # Need to check migrations here, so can't use the requires_migrations_check attribute.
            checking.notice_migrations(self)
        if check_errors is not None:
            handler = self.stack.error_page(checking.check_error_page(check_errors))
        elif handler is None:
            handler = self.stack.application(self, options)
        if check_errors is None:
            handler = self.request_insight(handler, options)
        if after:
            handler = switch = self.stack.switch(handler)
        live = self.start_livereload(options)
        if live is not None:
            handler = self.stack.live(handler, live)
        if self._socket is not None:  # testserver's, bound before its database
            sock = self._socket
        elif supervised:
            sock = socket.socket(fileno=worker.listen_fds()[0])
        else:
            sock = self._socket = self.bind()
        context = self.tls_context(options)
        threading = options.get("use_threading", True)
        server = self.stack.make_server(sock, handler, threading, context)
        if live is not None:
            server.stop_callbacks.append(live.close)  # streams end at once: never hold a restart
        self.on_bind(server.server_address[1])
        worker.ready()
        if after:
            checking.check_after_serving(self, options, switch, server.request_stop)
        self.stack.serve(server)
        if shutdown_message and not supervised:
            with contextlib.suppress(OSError):  # a closed terminal (SIGHUP) cannot be written to
                self.stdout.write(shutdown_message)

    def tls_context(self, options):
        """--https: the TLS context this worker serves with (None for HTTP)."""
        if not options.get("https") or not options.get("cert_file"):
            return None
        from reloader import tls

        self.protocol = "https"
        self.certificate_source = options.get("tls_source") or options["cert_file"]
        try:
            return tls.context_for(options["cert_file"], options.get("key_file"))
        except ValueError as exc:
            raise CommandError(str(exc)) from None

    def request_insight(self, handler, options):
        """``handler`` with what each request cost (devserver.insight): the SQL summary at the
        end of its log line, --print-sql, --pdb."""
        from devserver import insight

        return insight.wrap(handler, self.stack.name, options)

    def live_feed(self):
        """Where live reload hears of changes: the supervisor (none with --noreload)."""
        from devserver import livereload

        return livereload.SupervisorFeed() if worker.under_supervisor() else None

    def start_livereload(self, options):
        """Live reload (devserver.livereload) for this worker, or None where it is off."""
        from devserver import livereload

        return livereload.for_worker(self.live_feed(), options)

    def announce_start(self) -> None:
        """Tell Django's reloader receivers we run, and say how this worker started."""
        from devserver import autoreload

        info = worker.info()
        autoreload.start()
        start = str(info.get("start", "?"))
        mode = info.get("mode", start)
        if start.startswith("fork from "):
            detail = f" (this one {start[len('fork ') :]})"
        elif mode != start:
            detail = " (this one cold: the fork template starts once it serves)"
        else:
            detail = ""
        autoreload.logger.info(
            "Watching for file changes with %s; workers start by %s%s",
            info.get("watcher", "?"),
            mode,
            detail,
        )

    def on_bind(self, server_port):
        quit_command = "CTRL-BREAK" if sys.platform == "win32" else "CONTROL-C"
        host = addrport.display_host(self.addr, self._raw_ipv6)
        now = datetime.now().strftime("%B %d, %Y - %X")
        version = self.get_version()
        source = getattr(self, "certificate_source", None) if self.protocol == "https" else None
        served = getattr(self, "stack", None)
        if served is not None and served.name == "ASGI":
            starting = "Starting ASGI development server at"
        elif django.VERSION >= (6, 1):
            starting = "Starting WSGI development server at"
        else:
            starting = "Starting development server at"
        print(
            f"{now}\n"
            f"Django version {version}, using settings {settings.SETTINGS_MODULE!r}\n"
            f"{starting} {self.protocol}://{host}:{server_port}/\n"
            + (f"Using the certificate of {source}\n" if source else "")
            + f"Quit the server with {quit_command}.",
            file=self.stdout,
        )
        if os.environ.get("DJANGO_RUNSERVER_HIDE_WARNING") != "true":
            self.stdout.write(
                self.style.WARNING(
                    "WARNING: This is a development server. Do not use it in a "
                    "production setting. Use a production WSGI or ASGI server "
                    "instead.\nFor more information on production servers see: "
                    f"https://docs.djangoproject.com/en/{get_docs_version()}/howto/"
                    "deployment/"
                )
            )
