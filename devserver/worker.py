"""The worker side of runserver: the target the supervisor runs in each worker process.

``python -m reloader._boot call devserver.worker:main manage.py runserver ...`` (or a fork of the
template) lands here; the arguments only make ``ps`` readable. The worker's spec comes in
``DEVSERVER_WORKER_SPEC``, JSON that ``runserver`` wrote: the command class to use (so that a
project's subclass keeps its hooks), its parsed options, the address, and the ``sys.path`` of the
process the user started. Any exception before the server runs (a broken settings module
included) propagates to the bootstrap, which reports it to the supervisor for its error page.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
from typing import Any

from reloader import worker

ENV_SPEC = "DEVSERVER_WORKER_SPEC"


def spec_for(command: Any, options: dict[str, Any]) -> str:
    """The JSON a worker needs to run ``command`` (called in the process the user started)."""
    portable = {}
    for key, value in options.items():
        try:
            json.dumps(value)
        except TypeError:
            continue
        portable[key] = value
    for stream in ("stdout", "stderr"):
        portable.pop(stream, None)
    return json.dumps(
        {
            "command": type(command).__module__,
            "options": portable,
            "addr": command.addr,
            "port": command.port,
            "use_ipv6": command.use_ipv6,
            "raw_ipv6": command._raw_ipv6,
            "sys_path": sys.path,
        }
    )


def close_connections() -> None:
    """Before a checkpoint: forks must not share a database or cache connection. Never imports
    anything (a checkpoint may come before Django's settings are even loaded)."""
    conf = sys.modules.get("django.conf")
    if conf is None or not conf.settings.configured:
        return
    db = sys.modules.get("django.db")
    if db is not None:
        for connection in db.connections.all(initialized_only=True):
            connection.close()
    cache = sys.modules.get("django.core.cache")
    if cache is not None:
        cache.caches.close_all()
        # Forgotten, not only closed: each worker makes its own clients and pools, as a cold
        # one does (a redis pool draws a random id; django-redis's close() keeps connections).
        for backend in cache.caches.all(initialized_only=True):
            client = getattr(backend, "_client", None)
            with contextlib.suppress(Exception):
                client.do_close_clients()  # django-redis
        for alias in list(cache.caches.settings):
            with contextlib.suppress(AttributeError):
                delattr(cache.caches._connections, alias)
    pools = sys.modules.get("django_redis.pool")
    if pools is not None:
        for pool in list(pools.ConnectionFactory._pools.values()):
            with contextlib.suppress(Exception):
                pool.disconnect()
        pools.ConnectionFactory._pools.clear()


def main() -> None:
    spec = json.loads(os.environ.pop(ENV_SPEC))
    sys.path[:] = spec["sys_path"]
    import django

    from devserver import audience

    audience.report()  # before anything can fail: who may see the error page
    worker.library_code(os.path.dirname(audience.__file__))  # devserver's frames fold away
    worker.before_checkpoint(close_connections)
    worker.ignore_draws("redis.connection")  # a pool's id: close_connections() drops the pools
    django.setup()
    # With the fork start's checkpoints (reloader.builder), a worker may be forked from here
    # for an edit that django.setup() did not read (a view, a form, a template).
    worker.checkpoint("django.setup")
    module = importlib.import_module(spec["command"])
    options = spec["options"]
    command = module.Command(
        no_color=options.get("no_color", False), force_color=options.get("force_color", False)
    )
    command.addr = spec["addr"]
    command.port = spec["port"]
    command.use_ipv6 = spec["use_ipv6"]
    command._raw_ipv6 = spec["raw_ipv6"]
    # A stop signal after the one that stopped the server (Ctrl-C reaches the whole process
    # group, then the supervisor sends SIGTERM) can land once serving restored the handlers that
    # raise: it changes nothing, the server is stopping anyway.
    with contextlib.suppress(KeyboardInterrupt):
        command.inner_run(None, **options)
    # The server stopped: nothing is left to finalize, and tearing a big project's heap down
    # would only delay the exit by seconds.
    worker.exit_now()
