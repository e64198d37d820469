"""The process protocol between the supervisor, its workers, the fork template and checkpoints.

This docstring is the specification. Every name below is spelled in this module only; the other
modules import the constants and helpers from here.

Roles
-----
supervisor
    The long-lived process the user started (``python -m reloader``, or ``manage.py runserver``
    after it hands over). It binds the listening sockets once, watches files, starts a worker,
    restarts it on change, and answers on the held sockets with an error page while no worker
    can serve. It never imports the user's code and never serves the application.
worker
    Runs the program (the *target*). A fresh interpreter (the spawn start) or a fork of the
    template (the fork start). It serves on the inherited sockets, reports the files it imported,
    and tells the supervisor when it is ready or why it failed.
template
    Only with the fork start: a fresh interpreter that imported the libraries that do not change
    while you edit (stdlib, site-packages), never the project. It forks one worker per start.
builder
    Only with ``SupervisorConfig.checkpoints``: a fork of the template (or of a checkpoint) that
    runs the program's start-up, never serves, records what the start-up read and, per project
    module, who imported it and what its import made (``reloader.provenance``), and leaves
    checkpoints along it (``reloader.builder``). Before it pauses as the final checkpoint, it
    analyses ahead the refresh of the files edited last (``reloader.refresh``). Its
    ``RELOADER_INFO`` (in the ``fork`` message) says ``{"role": "builder", "hot": [path, ...],
    "seconds": float, "position": int, ...}``: the files edited lately (a checkpoint is kept
    just before their import) and where in the start-up it begins.
checkpoint
    A paused copy of a builder: the start-up up to a point, waiting to fork a worker (which goes
    on with the start-up from there) or a builder (to make the later checkpoints again). The
    template is the first of them: it forks the same way. A worker forked from the final one
    with ``refresh`` first imports again the modules those files reach, or says ``declined``.

Environment variables (set by the supervisor for the child, read once and popped by the child)
----------------------------------------------------------------------------------------------
``RELOADER_CONTROL_FD``
    The child's end of its control socket (an AF_UNIX SOCK_STREAM socketpair).
``RELOADER_LISTEN_FDS``
    Comma-separated fds of the listening sockets, in the order of the supervisor's config. Empty
    when the supervisor holds no socket.
``RELOADER_INFO``
    JSON object for the program's banner: ``{"generation": 1, "watcher": "inotify",
    "mode": "fork", "start": "spawn", "trusted": [package, ...]}`` (``mode``: how workers start;
    ``start``: how this one did, e.g. cold while the fork template was not ready yet;
    ``trusted``: packages whose modules the worker reports for the template wherever they are).
``RELOADER_CONFIG``
    Only for a supervisor started by ``exec_supervisor``: its whole configuration as JSON
    (``SupervisorConfig.to_json``), so that ``ps`` shows a readable command line instead.

File descriptors
----------------
Passed with ``pass_fds`` (never ``close_fds=False``): the control socket and the listening
sockets, at the numbers the variables above give. Nothing else is inherited, so nothing leaks to
grandchildren; the worker marks the fds non-inheritable as soon as it has read them. The fork
start receives the control socket of each new worker over the template's own control socket
(``SCM_RIGHTS``, one fd with each ``socket`` message); the listening sockets are inherited by the
template when it starts, and by its forks. The template is started with the same variables as a
worker (its ``RELOADER_INFO`` says ``{"role": "template", "pgid": <the supervisor's>,
"supervisor": <its pid>}``).

Control messages
----------------
One JSON object per line, UTF-8, with a ``"kind"`` key. Unknown kinds are ignored, so either side
can grow. Worker to supervisor:

``hello``      ``{"pid": int}`` first message of every worker.
``watch``      ``{"files": [path, ...], "trees": [[dir, glob], ...], "modules": [name, ...]}``:
               files whose change restarts the worker; trees (``glob`` relative to ``dir``, ``**``
               spans directories) whose changes are sent back to the worker as ``changed`` while
               it serves; the library modules (stdlib, site-packages) it imported, in import
               order, for the fork template to preload. The template sends ``watch`` too: its
               files, whose change restarts the template.
``ready``      the worker serves.
``failed``     ``{"title": str, "traceback": str, "files": [path, ...], "focus": {...} | null,
               "frames": [{...}, ...]}``: the program raised. Sent before the worker exits; the
               supervisor prints the traceback once, watches the files, and shows the error page
               until a change. ``focus`` (where to fix it first: file, line, source around it)
               and ``frames`` (the traceback, each frame the program's, a library's or the
               import machinery's) are optional; ``reloader.failure`` specifies them.
``stopping``   the worker stopped accepting connections (after SIGTERM); the next worker may
               start while this one finishes its requests.
``audience``   ``{"details": bool | null, "hosts": [pattern, ...] | null, "loopback_only": bool}``:
               who may see the details of the error page from now on (``reloader.audience``):
               the program's debug mode and allowed hosts (Django's ``ALLOWED_HOSTS`` patterns),
               or, when it could not read its settings, ``loopback_only`` (null: keep what was
               known).
``reload``     ``{"reason": str, "paths": [path, ...]}``: the worker asks to be replaced (e.g. a
               tree change it could not apply in place; ``paths`` may be empty).
``declined``   ``{"reason": str}``: a worker forked from the final checkpoint to import the
               edited modules again (``refresh`` in its ``fork`` message) found that it would
               not be the same as a cold start (``reloader.refresh``); it exits without serving,
               and the supervisor starts the next worker another way at once.

Supervisor to worker:

``changed``    ``{"paths": [path, ...]}``: files under a reported tree changed.

Template, checkpoints and builders to and from supervisor (the fork start):

``preload``    supervisor to template: ``{"modules": [name, ...], "trusted": [package, ...]}``: to
               import, between forks. Importing project code (a file outside the stdlib and
               site-packages) makes the template give up, except from the ``trusted`` packages
               (those of ``SupervisorConfig.preload``, which the caller vouches for).
``fork``       supervisor to template or checkpoint: ``{"generation": int, "role": "worker" |
               "builder", "target": {...}, "env": {name: value}, "cwd": str, "info": {...},
               "checkpoint": name | null, "refresh": [path, ...] | null, "budget": float |
               null}``: a worker (or a builder: negative generations) is wanted; ``refresh``
               (final checkpoint only): the worker imports the modules of these files again
               before it goes on, unless that would take more than half ``budget``, the seconds
               of start-up the supervisor would otherwise replay. No fd
               yet: the supervisor keeps the worker's control socket until the template
               answers, and starts the worker cold instead if it does not answer within
               ``FORK_PATIENCE`` seconds (a library slow to import), so the supervisor never
               waits for the template.
``forking``    template to supervisor: ``{"generation": int}``: the template read ``fork``
               between two of its imports and can fork now.
``socket``     supervisor to template, with one fd attached (the new worker's control socket,
               ``SCM_RIGHTS``): ``{"generation": int}``: fork it now.
``cancel``     supervisor to template: ``{"generation": int}``: forget that ``fork`` (the
               worker started cold meanwhile, or was stopped before it started).
``forked``     template to supervisor: ``{"pid": int, "generation": int}``, or
               ``{"error": str, "generation": int}`` when it cannot fork (a thread is running).
``exited``     template to supervisor: ``{"pid": int, "status": int}`` (a forked worker ended;
               ``status`` as in ``subprocess.Popen.returncode``).
``checkpoint`` builder to supervisor: ``{"name": str, "module": str | null, "position": int,
               "seconds": float, "final": bool, "shared": bool, "pid": int, "prepared": [path,
               ...], "declined": {path: reason}, "indexed": float, "deps": {"files": [[path,
               position], ...], "dirs": [[path, position, by_import, [name, ...]], ...],
               "modules": [path, ...], "since_ns": int}}``: a checkpoint is ready, with what the
               start-up read since the last one (``modules``: the files of project modules among
               ``files``; since ``since_ns``: a file modified after that may have been read in
               its old version). ``shared`` false: it forks one worker, then goes. Final only:
               ``prepared``, the files whose refresh it analysed ahead, ``declined``, those whose
               refresh it ruled out, ``indexed``, the seconds it took to find who references
               what each module's import made (``reloader.referrers``). With one fd attached
               (its control socket) unless ``final``: then the builder itself is the checkpoint,
               on its own control socket.
``refused``    builder to supervisor: ``{"reason": str, "shared": bool}``: it takes no more
               checkpoints (the start-up left something forks must not share: a thread, a
               socket), or, ``shared`` false, the checkpoints it takes from now on are not to
               be shared (a random value was drawn: each of them forks one worker, then goes).
``failed``     builder to supervisor: ``{"title": str}``: the start-up raised (the worker will
               show it; the builder just ends).
``preloaded``  template to supervisor: ``{"modules": int, "seconds": float, "packages": {name:
               int}}`` after (re)importing: the modules asked for, the time, and how many modules
               each top-level package gained.

Signals
-------
Supervisor: SIGINT, SIGTERM and SIGHUP (the terminal closed) stop everything: the listening
sockets are shut down at once (the port is free for the next server), the worker gets SIGTERM,
then SIGKILL after ``STOP_GRACE`` seconds, and the supervisor exits 0 without a traceback. A second
SIGINT/SIGTERM kills the workers at once. SIGUSR1 restarts the worker now. SIGCHLD only wakes
the loop: every child that ends is reaped, those of others too when the supervisor is PID 1 or a
child subreaper (``python -m reloader`` makes itself one on Linux: a fork whose template ended
is re-parented to it).
Worker: SIGTERM, SIGINT and SIGHUP mean stop: stop accepting, send ``stopping``, finish the
requests in flight for at most ``DRAIN_TIMEOUT`` seconds, exit 0. A worker told to stop before
it sent ``ready`` never sends it: it exits, even if the exception the signal raised was lost.
Workers stay in the supervisor's process group so that a debugger (``breakpoint()``) in a worker
keeps the terminal, and Ctrl-C reaches both; the supervisor kills a worker by its PID.
Template, builders and checkpoints: in a process group of their own (``RELOADER_INFO`` gives
the supervisor's ``pgid``, which each forked worker joins again), so signals sent to the
supervisor's group never reach them; the template and checkpoints also ignore SIGINT, SIGTERM
and SIGHUP sent to them directly, and exit when their control socket closes (their forks live
on, each tied to the supervisor by its own control socket). The supervisor SIGKILLs a template
it replaces or stops, and a builder it gives up, whatever they are importing. A fork server
reaps its forks on SIGCHLD and reports them. The template says ``hello`` when it can fork, and
forks between two of its imports.

Parent death
------------
A worker reads its control socket in a thread; end of file means the supervisor is gone (even
by SIGKILL). The worker then shuts its listening sockets down (the port is free at once: nobody
is left to serve on it), stops as on SIGTERM, and exits by ``ORPHAN_EXIT`` seconds at the latest.
The template and plain commands (not Python: they cannot read a control socket) get SIGKILL
from the kernel when the supervisor dies (``PR_SET_PDEATHSIG``, Linux); a builder gets it when
the process it was forked from ends. A checkpoint, always waiting on its control socket, exits at
its end.

Exit codes
----------
Only reported, never used to carry intent (which travels in messages): ``EXIT_OK`` after a stop,
``EXIT_ERROR`` when the program raised, ``EXIT_USAGE`` for a bad command line of the CLIs.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator, Mapping
from typing import Any

ENV_CONTROL_FD = "RELOADER_CONTROL_FD"
ENV_LISTEN_FDS = "RELOADER_LISTEN_FDS"
ENV_INFO = "RELOADER_INFO"
ENV_CONFIG = "RELOADER_CONFIG"
ENV_NAMES = (ENV_CONTROL_FD, ENV_LISTEN_FDS, ENV_INFO, ENV_CONFIG)

HELLO = "hello"
WATCH = "watch"
READY = "ready"
FAILED = "failed"
STOPPING = "stopping"
AUDIENCE = "audience"
RELOAD = "reload"
DECLINED = "declined"
CHANGED = "changed"
FORK = "fork"
FORKING = "forking"
SOCKET = "socket"
CANCEL = "cancel"
FORKED = "forked"
CHECKPOINT = "checkpoint"
REFUSED = "refused"
EXITED = "exited"
PRELOADED = "preloaded"
PRELOAD = "preload"

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2

STOP_GRACE = 5.0
DRAIN_TIMEOUT = 3.0
ORPHAN_EXIT = 0.5
FORK_PATIENCE = 0.3

MAX_MESSAGE = 64 * 1024 * 1024


def encode(kind: str, **fields: Any) -> bytes:
    """One message as a JSON line."""
    return json.dumps({"kind": kind, **fields}, separators=(",", ":")).encode() + b"\n"


class MessageReader:
    """Split a byte stream into messages; tolerate partial reads and skip garbage lines."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> Iterator[dict[str, Any]]:
        self._buffer += data
        if len(self._buffer) > MAX_MESSAGE:
            self._buffer.clear()
            return
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                return
            line = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict) and isinstance(message.get("kind"), str):
                yield message


def child_env(
    base: Mapping[str, str],
    control_fd: int,
    listen_fds: list[int],
    info: Mapping[str, Any],
) -> dict[str, str]:
    """The environment of a new child: ``base`` plus the protocol variables."""
    env = {k: v for k, v in base.items() if k not in ENV_NAMES}
    env[ENV_CONTROL_FD] = str(control_fd)
    env[ENV_LISTEN_FDS] = ",".join(str(fd) for fd in listen_fds)
    env[ENV_INFO] = json.dumps(dict(info))
    return env


def supervisor_env(base: Mapping[str, str], config_json: str) -> dict[str, str]:
    """The environment of a supervisor started by ``exec_supervisor``."""
    env = {k: v for k, v in base.items() if k not in ENV_NAMES}
    env[ENV_CONFIG] = config_json
    return env


def pop_supervisor_config(environ: dict[str, str] | os._Environ[str] | None = None) -> str | None:
    """The configuration ``exec_supervisor`` left for this process, removed from the
    environment so that no worker inherits it."""
    return (os.environ if environ is None else environ).pop(ENV_CONFIG, None)


class Inherited:
    """What a child inherited, read from (and removed from) its environment once."""

    def __init__(self, control: socket.socket | None, listen_fds: list[int], info: dict[str, Any]):
        self.control = control
        self.listen_fds = listen_fds
        self.info = info

    @classmethod
    def from_environ(cls, environ: dict[str, str] | os._Environ[str] | None = None) -> Inherited:
        env = os.environ if environ is None else environ
        raw_control = env.pop(ENV_CONTROL_FD, "")
        raw_fds = env.pop(ENV_LISTEN_FDS, "")
        raw_info = env.pop(ENV_INFO, "")
        control = None
        if raw_control:
            fd = int(raw_control)
            os.set_inheritable(fd, False)
            control = socket.socket(fileno=fd)
        listen_fds = [int(fd) for fd in raw_fds.split(",") if fd]
        for fd in listen_fds:
            os.set_inheritable(fd, False)
        try:
            info = json.loads(raw_info) if raw_info else {}
        except ValueError:
            info = {}
        return cls(control, listen_fds, info if isinstance(info, dict) else {})
