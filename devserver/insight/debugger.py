"""``--pdb``: a post-mortem debugger in the terminal for each exception a view did not handle.

On Django's ``got_request_exception`` (sent for unhandled exceptions only, inside the ``except``
that caught it), before the 500 response is made: the debugger opens on the exception's
traceback, in the worker's terminal (workers keep it: ``reloader.protocol``). One session at a
time: a second request that fails waits for the first session to end. ``c`` (or ``q``) ends it,
and the request gets Django's 500 page. Without a terminal (stdin redirected), the traceback is
printed with one line saying so, and nothing waits.
"""

from __future__ import annotations

import contextlib
import pdb
import sys
import threading
import traceback
from typing import Any

_lock = threading.Lock()


def install() -> None:
    from django.core.signals import got_request_exception

    got_request_exception.connect(post_mortem, weak=False, dispatch_uid="devserver.insight.pdb")


def post_mortem(sender: Any = None, request: Any = None, **_: Any) -> None:
    exc = sys.exc_info()[1]
    if exc is None or exc.__traceback__ is None:
        return
    where = "a request"
    if request is not None:
        with contextlib.suppress(Exception):
            where = f"{request.method} {request.get_full_path()}"
    with _lock:
        stdin = sys.stdin
        if stdin is None or not stdin.isatty():
            traceback.print_exception(exc, file=sys.stderr)
            sys.stderr.write(f"--pdb needs a terminal (stdin is not one): {where} gets its 500.\n")
            sys.stderr.flush()
            return
        sys.stdout.write(
            f"\n{type(exc).__name__} in {where}: post-mortem debugger "
            "('c' continues; the request then gets the 500 page).\n"
        )
        sys.stdout.flush()
        debugger = pdb.Pdb()
        debugger.reset()
        debugger.interaction(None, exc.__traceback__)
