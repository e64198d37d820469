"""When a worker runs Django's system checks and the migrations notice (issue 11).

Django's runserver checks, then prints the migrations notice, then serves: on a big project that
sits between a save and the first response (Zulip reported about 3 s). ``--checks=after``, the
default under the reloader, serves first and checks in a thread of the new worker. On NetBox a
save's first response came in 5.79 s instead of 6.09 s: of the 4.4 s its checks took in a
reload, about 4.2 s import the URLconf, which the first request now does, and the checks proper
and the migrations notice (0.3 s) leave the critical path. ``--checks=before`` keeps Django's
order, and so does ``--noreload`` (there, check errors end the command, as in Django). Either
way the checks run on every (re)start, print what Django prints, and once they fail every
request gets the check-error page (``devserver.errors``).

Deferred, they wait for a quiet moment (``Switch.wait_quiet``): the requests that were waiting for
the new worker are served first, without sharing the GIL with the checks, and without the checks
and those requests importing the URLconf and the views side by side (Django's resolver is built
on first use; it copes with concurrent requests, but imports in two threads at once can meet a
partially initialised module). Their output is held and written in one piece, so the request log
never cuts through it. The thread is a daemon: a worker told to stop while it checks stops at
once (``serving.serve`` returns, ``reloader.worker.exit_now`` does not wait for threads).
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from django.core.management.base import BaseCommand, OutputWrapper, SystemCheckError
from django.db import connections

from devserver.errors import error_app
from reloader import worker
from reloader.modules import exception_files

AFTER = "after"
BEFORE = "before"
CHOICES = (AFTER, BEFORE)

# The deferred checks start once no request has been in flight for QUIET seconds (the requests
# that queued during the restart are accepted within milliseconds of serving), and at the latest
# LONGEST seconds after serving began, however busy the server. The first request after a reload
# imports the URLconf: about 4.5 s on NetBox. With LONGEST at 2 s the checks ran beside it there,
# and the first response came no sooner than with --checks=before.
QUIET = 0.1
LONGEST = 10.0

ERROR_TITLE = "System check errors"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

App = Callable[..., Iterable[bytes]]


def run_checks(command: BaseCommand, options: dict[str, Any], supervised: bool) -> str | None:
    """Django's system checks as its runserver runs them; the errors as plain text (None when
    they pass or are skipped). Without a supervisor the SystemCheckError propagates: with
    ``--noreload`` nothing can fix them, and Django's command ends there."""
    if options.get("skip_checks"):
        return None
    command.stdout.write("Performing system checks...\n\n")
    try:
        # What runserver's inner_run checks: the tags a subclass's requires_system_checks names
        # (Django 5.2), everything on Django 4.2.
        command.check(**command._worker_check_kwargs(options))
    except SystemCheckError as exc:
        if not supervised:
            raise
        command.stderr.write(str(exc), lambda x: x)
        return _ANSI.sub("", str(exc))
    return None


def notice_migrations(command: BaseCommand) -> None:
    """Django's notice of unapplied migrations, then close the connections it opened (in this
    thread: Django's connections are per thread)."""
    command.check_migrations()
    for conn in connections.all(initialized_only=True):
        conn.close()


def check_error_page(errors: str) -> App:
    from devserver import checksource

    return error_app(ERROR_TITLE, errors, checksource.run_for_focus())


class Switch:
    """The WSGI app a worker serves when it checks after serving: the project's until the checks
    fail, the check-error page from then on. It also counts the requests in flight, for
    ``wait_quiet``."""

    def __init__(self, app: App) -> None:
        self.app = app
        self._in_flight = 0
        self._last = time.monotonic()
        self._changed = threading.Condition()

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., object]
    ) -> Iterable[bytes]:
        with self._changed:
            self._in_flight += 1
        try:
            body = self.app(environ, start_response)
        except BaseException:
            self._finished()
            raise
        return _Body(body, self._finished)

    def _finished(self) -> None:
        with self._changed:
            self._in_flight -= 1
            self._last = time.monotonic()
            self._changed.notify_all()

    def wait_quiet(self, quiet: float = QUIET, longest: float = LONGEST) -> None:
        """Return once no request has been in flight for ``quiet`` seconds (counted from now if
        none came yet), or after ``longest`` seconds whatever happens."""
        now = time.monotonic()
        deadline = now + longest
        with self._changed:
            self._last = max(self._last, now)
            while (now := time.monotonic()) < deadline:
                if self._in_flight == 0 and now - self._last >= quiet:
                    return
                wait = self._last + quiet - now if self._in_flight == 0 else deadline - now
                self._changed.wait(min(wait, deadline - now))


class _Body:
    """A response body that tells when the response is over (its ``close``, WSGI's end)."""

    def __init__(self, body: Iterable[bytes], finished: Callable[[], None]) -> None:
        self.body = body
        self.finished: Callable[[], None] | None = finished

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.body)

    def close(self) -> None:
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            finished, self.finished = self.finished, None
            if finished is not None:
                finished()


def check_after_serving(
    command: BaseCommand, options: dict[str, Any], app: Switch, stop: Callable[[], object]
) -> threading.Thread:
    """Start the checks and the migrations notice in a thread of this serving worker. Check
    errors switch ``app`` to the check-error page; any other exception (a URLconf that does not
    import, say) fails the worker as it would have failed before serving: reported to the
    supervisor, whose error page shows it, and ``stop()`` ends the serving."""
    thread = threading.Thread(
        target=_check, args=(command, options, app, stop), name="devserver-checks", daemon=True
    )
    thread.start()
    return thread


def _check(
    command: BaseCommand, options: dict[str, Any], app: Switch, stop: Callable[[], object]
) -> None:
    app.wait_quiet()
    output = _HeldOutput(command)
    try:
        with output:
            errors = run_checks(command, options, supervised=True)
            notice_migrations(command)
    except BaseException as exc:  # whatever the project's checks raise: SystemExit included
        output.write()
        text = "".join(traceback.format_exception(exc))
        title = traceback.format_exception_only(exc)[-1].strip()
        worker.failed(title, text, exception_files(exc), exception=exc)
        stop()
        return
    output.write()  # printed before the page changes: the terminal says why it did
    if errors is not None:
        app.app = check_error_page(errors)


class _HeldOutput:
    """While in the block, what the command writes to its stdout and stderr is held; ``write()``
    then writes it to each stream in order, a stream's consecutive pieces in one write. Django's
    check output is Django's to the character (colours included, where the stream is a
    terminal): the held wrappers style as the command's own do."""

    def __init__(self, command: BaseCommand) -> None:
        self.command = command
        self.records: list[tuple[OutputWrapper, str]] = []
        self._saved: tuple[OutputWrapper, OutputWrapper] | None = None

    def __enter__(self) -> _HeldOutput:
        command = self.command
        self._saved = (command.stdout, command.stderr)
        command.stdout = self._hold(command.stdout)
        command.stderr = self._hold(command.stderr)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._saved is not None
        self.command.stdout, self.command.stderr = self._saved

    def _hold(self, real: OutputWrapper) -> OutputWrapper:
        held = OutputWrapper(_Tape(real, self.records), ending=real.ending)
        held.style_func = real.style_func  # kept only where the real stream is a terminal
        return held

    def write(self) -> None:
        records = list(self.records)
        self.records.clear()  # the list the tapes append to
        while records:
            stream, text = records.pop(0)
            while records and records[0][0] is stream:
                text += records.pop(0)[1]
            with contextlib.suppress(OSError):  # a closed terminal (SIGHUP): we are stopping
                stream.write(text, style_func=lambda x: x, ending="")
                stream.flush()


class _Tape:
    """The stream under a held OutputWrapper: records what is written, for ``_HeldOutput``."""

    def __init__(self, real: OutputWrapper, records: list[tuple[OutputWrapper, str]]) -> None:
        self.real = real
        self.records = records

    def write(self, text: str) -> int:
        self.records.append((self.real, text))
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return bool(self.real.isatty())
