"""The worker bootstrap: ``python -m reloader._boot KIND VALUE [ARGS...]``.

Connects to the supervisor (``worker.attach``), then runs the target as Python's own command line
would (``-m``, a script, ``-c``, or a ``module:function`` call). An exception escaping the program
is reported to the supervisor (which prints it once and shows the error page) instead of printed
here. SIGTERM and SIGHUP (the terminal closed) become KeyboardInterrupt, the exception servers
already treat as "stop".
"""

from __future__ import annotations

import contextlib
import importlib
import os
import runpy
import signal
import sys
import traceback
from collections.abc import Iterable
from types import FrameType, TracebackType
from typing import NoReturn

from . import builder, protocol, worker
from .config import ConfigError, Target
from .modules import exception_files

_BOOT_FILES = (os.path.abspath(__file__), os.path.abspath(runpy.__file__), "<frozen runpy>")


def _stop(signum: int, frame: FrameType | None) -> None:
    worker.stop_requested()  # noted, should the exception be lost all the same
    if worker.defer_if_unraisable(signum, frame) is None:
        raise KeyboardInterrupt


def run_target(target: Target) -> int:
    """Run the target in this process; return the exit status it ended with."""
    try:
        _run(target)
    except SystemExit as exc:
        return _exit_status(exc.code)
    except KeyboardInterrupt:
        return protocol.EXIT_OK
    except BaseException as exc:
        report_failure(exc)
        return protocol.EXIT_ERROR
    return protocol.EXIT_OK


def _run(target: Target) -> None:
    if target.kind == "call":
        sys.argv = [target.value, *target.args]
        module_name, _, function_name = target.value.partition(":")
        function = getattr(importlib.import_module(module_name), function_name)
        function()
    elif target.kind == "module":
        sys.argv = [target.value, *target.args]
        runpy.run_module(target.value, run_name="__main__", alter_sys=True)
    elif target.kind == "path":
        sys.argv = [target.value, *target.args]
        sys.path[0] = os.path.dirname(os.path.abspath(target.value))
        worker.watch_files([target.value])
        runpy.run_path(target.value, run_name="__main__")
    elif target.kind == "code":
        sys.argv = ["-c", *target.args]
        sys.path[0] = ""
        code = compile(target.value, "<string>", "exec")
        exec(code, {"__name__": "__main__", "__builtins__": __builtins__})
    else:
        raise ConfigError(f"the bootstrap cannot run a {target.kind!r} target")


def _exit_status(code: object) -> int:
    if code is None:
        return protocol.EXIT_OK
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return protocol.EXIT_ERROR


def _user_traceback(tb: TracebackType | None) -> TracebackType | None:
    """Drop the bootstrap's own frames from the top of a traceback."""
    while tb is not None and _is_boot_frame(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    return tb


def _is_boot_frame(filename: str) -> bool:
    return filename in _BOOT_FILES or os.path.abspath(filename) in _BOOT_FILES


def report_failure(exc: BaseException) -> None:
    """Send the failure to the supervisor, or print it when there is none."""
    if builder.active():
        builder.failed(exc)
        return
    tb = _user_traceback(exc.__traceback__)
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    title = traceback.format_exception_only(type(exc), exc)[-1].strip()
    if worker.under_supervisor():
        worker.failed(title, text, exception_files(exc), exception=exc, tb=tb)
    else:
        sys.stderr.write(text)


def parse(argv: list[str]) -> Target:
    if len(argv) < 2:
        raise ConfigError("usage: python -m reloader._boot KIND VALUE [ARGS...]")
    kind, value, *args = argv
    return Target(kind, value, tuple(args))  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> None:
    inherited = protocol.Inherited.from_environ()
    try:
        target = parse(sys.argv[1:] if argv is None else argv)
    except ConfigError as exc:
        print(f"reloader: {exc}", file=sys.stderr)
        sys.exit(protocol.EXIT_USAGE)
    boot(target, inherited)


def boot(
    target: Target,
    inherited: protocol.Inherited,
    known_files: Iterable[str] = (),
    known_modules: Iterable[str] = (),
) -> None:
    """Attach to the supervisor, run the target, exit with its status (also used after fork,
    with what the template already reported)."""
    attach_worker(inherited, known_files, known_modules)
    finish(run_target(target))


def attach_worker(
    inherited: protocol.Inherited,
    known_files: Iterable[str] = (),
    known_modules: Iterable[str] = (),
) -> None:
    """Connect this process to the supervisor as a worker: its channel, its stop signals
    (also for a worker forked from a checkpoint, in the middle of the program's start-up)."""
    worker.attach(inherited, known_files, known_modules)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, _stop)


def build(target: Target, inherited: protocol.Inherited) -> None:
    """Run the target's start-up as a builder (``reloader.builder``): checkpoints, no serving.
    A worker later forked from one of its checkpoints comes back through here when its program
    ends, and exits as any worker does."""
    assert inherited.control is not None
    builder.start(inherited.control, inherited.listen_fds, inherited.info)
    status = run_target(target)
    if builder.active():  # the start-up ended in the builder: it raised, or never paused
        os._exit(protocol.EXIT_OK)
    finish(status)


def finish(status: int) -> NoReturn:
    # The program is over: a stop signal now (the supervisor retiring us while Ctrl-C already
    # did) has nothing left to interrupt but our own exit.
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    worker.detach()
    sys.exit(status)


if __name__ == "__main__":
    main()
