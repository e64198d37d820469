"""A WSGI app whose start-up has stages, for the checkpoint tests (``--checkpoints``).

It imports ``proj.a``, declares a checkpoint, imports ``proj.b`` and ``proj.c`` (each takes a
moment, so the builder pauses a checkpoint before each), takes a moment more (the rest of a
start-up, ``STAGED_TAIL`` seconds), declares its final checkpoint, then
serves ``"<a.V> <b.V> <c.V> <proj.EXTRA> <pid>"``. Every import of a ``proj`` module appends
``"<module> <pid>"`` to ``imports.log``; each worker appends ``"serve <pid>"`` when it serves.
With ``STAGED_INSPECT=1`` it imports ``inspect``, and each worker appends to ``inspect.log``, as
it serves, how many files ``inspect``'s module table knows and whether ``inspect.getmodule``
finds ``proj.c`` from one of its code objects, ``"<files> <found> <pid>"``.
"""

import os
import signal
import sys
import time

import proj.a
from werkzeug.serving import ThreadedWSGIServer

from reloader import worker

if os.environ.get("STAGED_INSPECT") == "1":
    import inspect  # noqa: F401 - the program's, as django-debug-toolbar's is

worker.checkpoint("after a")
import proj.b  # noqa: E402
import proj.c  # noqa: E402

# The rest of a start-up (a URLconf, a handler): what a refresh saves compared to a replay.
time.sleep(float(os.environ.get("STAGED_TAIL", "0.6")))

if os.environ.get("STAGED_FINAL", "1") == "1":
    worker.checkpoint("serve", final=True)


def app(environ, start_response):
    extra = getattr(proj, "EXTRA", "-")
    body = f"{proj.a.V} {proj.b.V} {proj.c.V} {extra} {os.getpid()}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def inspected():
    import inspect

    files = len(inspect.modulesbyfile)  # before this worker asks anything
    f = getattr(proj.c, "f", None)
    found = "-" if f is None else inspect.getmodule(f.__code__) is sys.modules["proj.c"]
    with open("inspect.log", "a") as f:
        f.write(f"{files} {found} {os.getpid()}\n")


def main():
    if os.environ.get("STAGED_INSPECT") == "1":
        inspected()
    server = ThreadedWSGIServer("127.0.0.1", 0, app, fd=worker.listen_fds()[0])

    def stop(signum, frame):
        server._BaseServer__shutdown_request = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    worker.ready()
    with open("imports.log", "a") as f:
        f.write(f"serve {os.getpid()}\n")
    server.serve_forever(poll_interval=0.02)


main()
