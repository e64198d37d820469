"""The pid file: taken before anything is bound, written atomically, removed only if ours.

Django 1.8 wrote it with ``open(path, "w")`` (a reader could see an empty file) and never
removed it. Here it is written to a temporary file in the same directory and renamed into place,
and removed at exit only if it still holds our pid (a successor may have taken it over).

:func:`acquire` takes it when the server starts, before it binds: it refuses a pid file that
names a live process, and writes ours, as one step under an ``flock`` on the pid file's
directory. Two servers started at once with the same pid file both ran before, the file naming
one of them (issue 10); now the second is refused. A pid file left by a dead process is taken
over.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import tempfile
from collections.abc import Collection, Iterator

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


@contextlib.contextmanager
def _directory_locked(path: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the directory of ``path`` (every starter takes the same
    one). Where the file system has no flock for directories, go on without it."""
    try:
        fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:
            if exc.errno not in (errno.EBADF, errno.EINVAL, errno.ENOLCK, errno.EOPNOTSUPP):
                raise
        yield
    finally:
        os.close(fd)  # releases the lock


def acquire(path: str) -> None:
    """Refuse to start when the pid file names a live process; else write our pid in it."""
    with _directory_locked(path):
        check(path)
        write(path)


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


def remove(path: str, pids: Collection[int] | None = None) -> None:
    """Remove the pid file if it still holds one of ``pids`` (default: ours)."""
    if read_pid(path) in (pids if pids is not None else (os.getpid(),)):
        with contextlib.suppress(OSError):
            os.unlink(path)
