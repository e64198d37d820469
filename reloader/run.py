"""Hand the current process over to a supervisor, keeping its PID."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from . import protocol
from .config import SupervisorConfig


def exec_supervisor(config: SupervisorConfig, shown_as: Sequence[str] = ()) -> NoReturn:
    """Replace this process by ``python -m reloader`` running ``config``.

    The sockets of ``config`` given by ``fd`` must be inheritable. Whatever this process imported
    (a framework, the user's settings) is gone afterwards: the supervisor starts light.
    ``shown_as`` (e.g. the original ``sys.argv``) only decorates the command line ``ps`` shows.
    """
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    argv = [sys.executable, "-m", "reloader", "--config-env", "--", *shown_as]
    os.execve(sys.executable, argv, protocol.supervisor_env(os.environ, config.to_json()))
