"""A framework-agnostic reloader: a supervisor that restarts a worker process on change.

The supervisor holds the listening sockets (no connection is refused during a restart), watches
the files the worker imported (watchdog/inotify, or polling), and shows the error while the new
code does not even import. ``reloader.worker`` is the side a program calls. The process protocol
is specified in ``reloader.protocol``.

Public API (loaded lazily, so that a worker pays only for what it uses)::

    Supervisor(config).run()            run until SIGINT/SIGTERM
    exec_supervisor(config)             replace this process with a supervisor (keeps the PID)
    SupervisorConfig, SocketSpec, Target, target_from_command
    Audience                            who may see the error page's details
    bind(spec)                          bind a listening socket as the supervisor would
    ConfigError, BindError
    Failure, render_error_page          the error page, for a worker that shows its own errors
    render_generic_error_page           the same page saying nothing of the failure
    source_focus(file, line, ...)       a Failure's focus: a file's line with the source around
    make_watcher, Watcher, IgnoreRules  watch files in-process, without a supervisor
    Debouncer                           bursts of changes into batches (pure, clock passed in)
    worker                              the worker-side functions
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import worker
    from .audience import Audience
    from .config import ConfigError, SocketSpec, SupervisorConfig, Target, target_from_command
    from .debounce import Debouncer
    from .errorpage import Failure
    from .errorpage import render as render_error_page
    from .errorpage import render_generic as render_generic_error_page
    from .failure import focus_at as source_focus
    from .ignore import IgnoreRules
    from .run import exec_supervisor
    from .sockets import BindError, bind
    from .supervisor import Supervisor
    from .watch import Watcher, make_watcher

__all__ = [
    "Audience",
    "BindError",
    "ConfigError",
    "Debouncer",
    "Failure",
    "IgnoreRules",
    "SocketSpec",
    "Supervisor",
    "SupervisorConfig",
    "Target",
    "Watcher",
    "bind",
    "exec_supervisor",
    "make_watcher",
    "render_error_page",
    "render_generic_error_page",
    "source_focus",
    "target_from_command",
    "worker",
]

_WHERE = {
    "Audience": "audience",
    "BindError": "sockets",
    "ConfigError": "config",
    "Debouncer": "debounce",
    "Failure": "errorpage",
    "IgnoreRules": "ignore",
    "SocketSpec": "config",
    "Supervisor": "supervisor",
    "SupervisorConfig": "config",
    "Target": "config",
    "Watcher": "watch",
    "bind": "sockets",
    "exec_supervisor": "run",
    "make_watcher": "watch",
    "target_from_command": "config",
}


def __getattr__(name: str) -> Any:
    if name == "worker":
        return importlib.import_module(".worker", __name__)
    if name == "render_error_page":
        return importlib.import_module(".errorpage", __name__).render
    if name == "render_generic_error_page":
        return importlib.import_module(".errorpage", __name__).render_generic
    if name == "source_focus":
        return importlib.import_module(".failure", __name__).focus_at
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
