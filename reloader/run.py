"""Hand the current process over to a supervisor, keeping its PID."""

from __future__ import annotations

import os
import sys
from typing import NoReturn

from .config import SupervisorConfig


def exec_supervisor(config: SupervisorConfig) -> NoReturn:
    """Replace this process by ``python -m reloader`` running ``config``.

    The sockets of ``config`` given by ``fd`` must be inheritable. Whatever this process imported
    (a framework, the user's settings) is gone afterwards: the supervisor starts light.
    """
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    argv = [sys.executable, "-m", "reloader", "--config-json", config.to_json()]
    os.execv(sys.executable, argv)
