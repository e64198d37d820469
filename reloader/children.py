"""Child processes: reaping every one that ends, and tying a child's life to its parent's.

The supervisor may be PID 1 (``docker run`` without ``--init``), and it makes itself a *child
subreaper* on Linux: either way, a process whose parent dies is re-parented to it (a fork of a
fork template that restarted, a daemon a worker left behind). Nobody else will reap those: an
unreaped child stays a zombie, and ``kill(pid, 0)`` still succeeds on a zombie, so it would look
alive forever. ``Reaper.reap`` waits for them without stealing the exit status of the children
``subprocess.Popen`` owns (those are reaped by their own ``poll()``).

``set_parent_death_signal`` asks the kernel to signal a child when its parent dies, even by
SIGKILL: the fork template and plain commands use it, as they cannot notice otherwise.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import logging
import os
import subprocess
import sys
from collections.abc import Callable

logger = logging.getLogger("reloader")

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


@functools.lru_cache(maxsize=1)
def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None
    function: Callable[..., int] = libc.prctl
    return function


def _call_prctl(option: int, value: int) -> bool:
    prctl = _prctl()
    if prctl is None:
        return False
    return prctl(option, ctypes.c_ulong(value), 0, 0, 0) == 0


def set_parent_death_signal(signum: int) -> bool:
    """Have the kernel send ``signum`` to this process when its parent ends (Linux only).

    The parent may have ended already, before this call: the caller checks for that itself
    (its control socket is at end of file, or its parent PID changed)."""
    return _call_prctl(_PR_SET_PDEATHSIG, signum)


def become_subreaper() -> bool:
    """Have orphaned descendants re-parented to this process instead of init (Linux only)."""
    return _call_prctl(_PR_SET_CHILD_SUBREAPER, 1)


class Reaper:
    """Reap the children nobody else will, without touching those ``Popen`` objects own.

    ``own(proc)`` registers a ``Popen`` (its ``poll()`` reaps it); ``reap()`` reaps every other
    child that ended and returns their ``{pid: status}`` (``status`` as ``Popen.returncode``)."""

    def __init__(self) -> None:
        self._owned: dict[int, subprocess.Popen[bytes]] = {}

    def own(self, proc: subprocess.Popen[bytes]) -> None:
        self._owned[proc.pid] = proc

    def reap_owned(self) -> dict[int, int]:
        """Only collect the ``Popen`` children that ended (nothing else is ours to reap)."""
        for pid in [pid for pid, proc in self._owned.items() if proc.poll() is not None]:
            del self._owned[pid]
        return {}

    def reap(self) -> dict[int, int]:
        ended = self.reap_owned()
        if not hasattr(os, "waitid"):  # macOS: orphans go to launchd, which reaps them
            return ended
        while True:
            try:
                # WNOWAIT: only look. A Popen's child must stay for its poll() to collect.
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return ended
            if info is None or info.si_pid == 0:
                return ended
            pid = info.si_pid
            proc = self._owned.pop(pid, None)
            if proc is not None and proc.poll() is not None:
                continue
            try:
                _, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                continue
            with contextlib.suppress(ValueError):
                ended[pid] = os.waitstatus_to_exitcode(status)


# A plain command (not Python: it cannot read the control socket) is started through this
# stub, which asks for SIGKILL when the supervisor dies, then becomes the command. If the
# supervisor died before that, its parent is already another process: it does not start.
_GUARD = (
    "import ctypes,os,sys\n"
    "ctypes.CDLL(None).prctl(1,9,0,0,0)\n"
    "if os.getppid()!=int(sys.argv[1]):os._exit(1)\n"
    "try:os.execvp(sys.argv[2],sys.argv[2:])\n"
    "except OSError as e:print(f'reloader: cannot run {sys.argv[2]}: {e.strerror}',"
    "file=sys.stderr);os._exit(127)\n"
)


def guarded(argv: list[str], python: str) -> list[str]:
    """``argv`` run so that it dies with this process, even if this process is SIGKILLed."""
    if _prctl() is None:
        return argv
    return [python, "-S", "-E", "-c", _GUARD, str(os.getpid()), *argv]
