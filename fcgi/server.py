"""``serve(app, options)``: take the pid file, bind, detach, write our pid, serve, clean up.

The order matters: the pid file is taken, then the socket is bound (and every error reported)
*before* detaching, so a bad address is a one-line error on the terminal, not a silent daemon
death; the daemon then writes its own pid; at exit the socket file and the pid file are removed
if they are still ours. Prefork children never return here (they ``_exit``), so only the parent
cleans up.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import daemon, pidfile, sockets
from .ajp import AJPServer
from .fastcgi import FastCGIServer
from .options import OptionError, Options
from .prefork import PreforkLoop
from .scgi import SCGIServer
from .threaded import ThreadedLoop

if TYPE_CHECKING:
    from wsgiref.types import WSGIApplication

log = logging.getLogger("fcgi")

# How long a graceful stop waits for the requests in progress (gunicorn's graceful_timeout).
GRACE = 30.0

_PROTOCOLS: dict[str, type[Any]] = {"fcgi": FastCGIServer, "scgi": SCGIServer, "ajp": AJPServer}


def serve(
    app: WSGIApplication, options: Options, *, warm_up: Callable[[], None] | None = None
) -> None:
    """Serve the WSGI callable ``app`` as ``options`` say, until SIGTERM or SIGINT.

    ``app``: any WSGI application. ``options``: an :class:`~fcgi.Options`, e.g. from
    ``Options.parse(["socket=/run/app.sock", "method=threaded"])``. ``warm_up``: called once
    in the serving process before the first prefork child is forked, so that what an app
    loads lazily on its first request is loaded once and shared by every child instead of
    being paid again by each new child (``maxrequests``); it must leave no open connection
    and no thread behind. Raises
    :class:`~fcgi.OptionError` (one line, for the user) when the options cannot be served: an
    address in use, a live server on the socket path, a pid file held by a running server...
    With ``options.help`` set, prints the help and returns.
    """
    if options.help:
        sys.stdout.write(Options.help_text())
        return
    options = options.validated()
    threaded = options.method == "threaded"
    protocol = _PROTOCOLS[options.protocol](
        app, threaded=threaded, debug=options.debug, concurrency=options.maxchildren
    )
    # The pid file is taken before the socket is bound: of two servers started at once with
    # the same one, the second is refused (issue 10). Until the daemon writes its own pid, the
    # file holds the starting process's, which waits for the daemon: both count as ours.
    ours = {os.getpid()}
    if options.pidfile:
        pidfile.acquire(options.pidfile)
    try:
        listener = sockets.open_listener(options.bind, options.socket_umask)
    except BaseException:
        if options.pidfile:
            pidfile.remove(options.pidfile, ours)
        raise
    report = None
    try:
        if options.detach:
            report = daemon.detach(options.workdir)
        stdio = daemon.Stdio(options.outlog, options.errlog, options.detach)
        stdio.apply()
        _setup_logging(options.debug)
        if options.pidfile:
            pidfile.write(options.pidfile)
        loop: PreforkLoop | ThreadedLoop
        if threaded:
            loop = ThreadedLoop(
                protocol.serve_connection,
                protocol.live,
                minspare=options.minspare,
                maxspare=options.maxspare,
                maxthreads=options.maxchildren,
                grace=GRACE,
                on_hup=stdio.apply,
            )
        else:
            loop = PreforkLoop(
                protocol.serve_connection,
                protocol.live,
                minspare=options.minspare,
                maxspare=options.maxspare,
                maxchildren=options.maxchildren,
                maxrequests=options.maxrequests,
                grace=GRACE,
                on_hup=stdio.apply,
            )
        if listener.stale_removed:
            log.info("removed the stale socket %s left by a server that is gone", listener.path)
        log.info(
            "serving %s (%s) on %s, pid %d",
            options.protocol,
            options.method,
            options.describe_bind(),
            os.getpid(),
        )
        # From here a SIGTERM stops the server through ``finally`` below (the pid file and the
        # socket removed), even one sent the moment the starter has returned.
        loop.listen_for_signals()
        if warm_up is not None:
            warm_up()
        if report is not None:
            report(None)
        loop.run(listener)
    except OptionError as exc:
        if report is not None:
            report(str(exc))
        raise
    except BaseException as exc:
        if report is not None:
            report(f"{type(exc).__name__}: {exc}")
        raise
    finally:
        listener.close()
        listener.remove()
        if options.pidfile:
            pidfile.remove(options.pidfile, ours | {os.getpid()})
    log.info("stopped")


class _Formatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(
            "[%(asctime)s] fcgi %(process)d %(levelname)s: %(message)s", "%Y-%m-%d %H:%M:%S"
        )


def _setup_logging(debug: bool) -> None:
    """One handler on the ``fcgi`` logger, writing to whatever fd 2 is (it follows SIGHUP)."""
    logger = logging.getLogger("fcgi")
    logger.setLevel(logging.DEBUG if debug else logging.INFO)
    logger.propagate = False
    if not any(getattr(h, "_fcgi", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_Formatter())
        handler._fcgi = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
