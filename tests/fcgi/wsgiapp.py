"""A plain WSGI app for the defect tests, served with ``python -m fcgi tests.fcgi.wsgiapp:app``.

No Django: it starts in a few milliseconds and each route measures one thing. With
``FCGI_TEST_HOG_FDS=N`` in the environment it opens N file descriptors at import, so every socket
the server opens afterwards has a number above 1023 (where ``select()`` fails).
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import sys
import threading
import time
from urllib.parse import parse_qs

_HOG: list[int] = []
if os.environ.get("FCGI_TEST_HOG_FDS"):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = int(os.environ["FCGI_TEST_HOG_FDS"])
    if soft < wanted + 256:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, wanted + 1024), hard))
    _HOG = [os.open(os.devnull, os.O_RDONLY) for _ in range(wanted)]

_barriers: dict[int, threading.Barrier] = {}
_lock = threading.Lock()
_MB = 1024 * 1024


def _text(start_response, body: str, status: str = "200 OK", headers=()):
    data = body.encode("utf-8")
    start_response(
        status,
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(data))),
            *headers,
        ],
    )
    return [data]


def app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    if path == "/pid":
        return _text(start_response, str(os.getpid()))
    if path == "/env":
        keys = ("SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "REQUEST_METHOD", "CONTENT_LENGTH")
        data = {k: environ.get(k) for k in keys}
        data["headers"] = {k: v for k, v in environ.items() if k.startswith("HTTP_X_")}
        data["multithread"] = environ["wsgi.multithread"]
        data["multiprocess"] = environ["wsgi.multiprocess"]
        data["pid"] = os.getpid()
        return _text(start_response, json.dumps(data))
    if path == "/echo":
        body = environ["wsgi.input"].read()  # no size: must stop at CONTENT_LENGTH
        answer = {"length": len(body), "sha256": hashlib.sha256(body).hexdigest()}
        return _text(start_response, json.dumps(answer))
    if path == "/big":
        data = b"y" * int(float(query.get("mb", "10")) * _MB)
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [data]
    if path == "/chunks":
        total = int(float(query.get("mb", "10")) * _MB)
        size = int(query.get("kb", "64")) * 1024
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return (b"z" * min(size, total - i) for i in range(0, total, size))
    if path == "/stream":
        total = int(float(query.get("mb", "64")) * _MB)
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return (b"s" * 65536 for _ in range(0, total, 65536))
    if path == "/sleep":
        print(f"sleep start {os.getpid()}", file=sys.stderr, flush=True)
        time.sleep(float(query.get("s", "1")))
        return _text(start_response, str(os.getpid()))
    if path == "/barrier":
        # All ``n`` requests must be running at the same time for any of them to succeed.
        n = int(query["n"])
        with _lock:
            barrier = _barriers.setdefault(n, threading.Barrier(n))
        try:
            barrier.wait(float(query.get("timeout", "20")))
        except threading.BrokenBarrierError:
            return _text(start_response, "not concurrent", "503 Service Unavailable")
        return _text(start_response, "together")
    if path == "/fail":
        raise RuntimeError("wsgiapp: this route fails on purpose")
    if path == "/latin":
        return _text(start_response, "ok", headers=[("X-Latin", "café")])
    if path == "/print":
        print("app says hello on stdout", flush=True)
        print("app says hello on stderr", file=sys.stderr, flush=True)
        return _text(start_response, "printed")
    return _text(start_response, f"no route {path}", "404 Not Found")
