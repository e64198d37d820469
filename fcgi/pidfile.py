"""The pid file: refused if a live server owns it, written atomically, removed only if ours.

Django 1.8 wrote it with ``open(path, "w")`` (a reader could see an empty file) and never
removed it. Here it is written to a temporary file in the same directory and renamed into place,
and removed at exit only if it still holds our pid (a successor may have taken it over).
"""

from __future__ import annotations

import contextlib
import os
import tempfile

from .options import OptionError


def read_pid(path: str) -> int | None:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return int(f.read().strip() or "0") or None
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check(path: str) -> None:
    """Refuse to start when the pid file names a live process other than us."""
    pid = read_pid(path)
    if pid is not None and pid != os.getpid() and _alive(pid):
        raise OptionError(
            f"pidfile={path}: already running on PID {pid} (or the pid file is stale)"
        )


def write(path: str, pid: int | None = None) -> None:
    """Write ``pid`` (default: ours) as ``"%d\\n"``, atomically (mkstemp + rename)."""
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".pid-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(f"{pid if pid is not None else os.getpid()}\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def remove(path: str, pid: int | None = None) -> None:
    """Remove the pid file if it still holds ``pid`` (default: ours)."""
    if read_pid(path) == (pid if pid is not None else os.getpid()):
        with contextlib.suppress(OSError):
            os.unlink(path)
