"""The supervisor's configuration: frozen dataclasses built once at the edge and passed down."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import socket
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .audience import Audience

TargetKind = Literal["call", "module", "path", "code", "command"]
Backend = Literal["auto", "inotify", "observer", "poll"]
StartMode = Literal["auto", "spawn", "fork"]

TARGET_KINDS: tuple[TargetKind, ...] = ("call", "module", "path", "code", "command")
BACKENDS: tuple[Backend, ...] = ("auto", "inotify", "observer", "poll")
START_MODES: tuple[StartMode, ...] = ("auto", "spawn", "fork")


class ConfigError(ValueError):
    """A configuration the supervisor cannot run, with a message meant for the user."""


@dataclass(frozen=True)
class Target:
    """What a worker runs, in the words of Python's own command line.

    ``call``: ``value`` is ``"package.module:function"``, called with no arguments after
    ``sys.argv`` is set to ``[value, *args]``. ``module``, ``path`` and ``code`` are ``-m``, a
    script path and ``-c``. ``command`` runs ``[value, *args]`` as a program that is not Python
    (it cannot report its imports: watch paths are given with ``--watch``).
    """

    kind: TargetKind
    value: str
    args: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in TARGET_KINDS:
            raise ConfigError(f"unknown target kind {self.kind!r}")
        if not self.value:
            raise ConfigError("the target is empty")
        if self.kind == "call" and ":" not in self.value:
            raise ConfigError(f"{self.value!r} is not of the form 'package.module:function'")

    @property
    def is_python(self) -> bool:
        return self.kind != "command"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "value": self.value, "args": list(self.args)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Target:
        return cls(data["kind"], data["value"], tuple(data.get("args", ())))


@dataclass(frozen=True)
class SocketSpec:
    """A listening socket the supervisor holds for its workers.

    Either an address to bind (``host``/``port``, or ``path`` for a unix socket), or ``fd``: a
    socket the caller already bound and put in listening state. ``http`` says the socket speaks
    HTTP, so the supervisor may answer on it with its error page while no worker can serve.
    ``tls_cert`` (and ``tls_key``, unless the certificate file holds the key): the socket speaks
    HTTPS (PEM files; ``reloader.tls``): the error page goes over TLS, plain HTTP is redirected.
    The workers are told nothing: they serve TLS with the same files on their own.
    """

    host: str = "127.0.0.1"
    port: int = 0
    path: str | None = None
    fd: int | None = None
    ipv6: bool = False
    http: bool = True
    backlog: int = socket.SOMAXCONN
    tls_cert: str | None = None
    tls_key: str | None = None

    def describe(self) -> str:
        if self.path is not None:
            return f"unix:{self.path}"
        if self.fd is not None:
            return f"fd {self.fd}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class SupervisorConfig:
    """Everything the supervisor needs; it reads nothing else (no settings, no environment).

    target          what each worker runs.
    sockets         listening sockets held across restarts and passed to every worker.
    watch           extra files or directories (directories are watched recursively).
    ignore          extra ignore globs, on top of ``ignore.DEFAULT_IGNORES``.
    backend         ``auto`` (inotify on Linux, watchdog's native observer elsewhere, polling when
                    those are unavailable or out of watches), ``inotify``, ``observer``, ``poll``.
    poll_interval   seconds between two sweeps of the polling backend.
    start           ``spawn`` (fresh interpreter), ``fork`` (from a pre-imported template), or
                    ``auto`` (fork where ``os.fork`` exists, else spawn).
    preload         modules the fork template imports on top of those it learns from workers;
                    their packages are trusted even outside site-packages (never list project
                    code here: the template must not hold what you edit).
    quiet_period    a burst of changes ends after this many quiet seconds ...
    max_wait        ... or this long after its first change, whichever comes first.
    grace           seconds a stopping worker gets before SIGKILL.
    python          the interpreter for Python targets; ``interpreter_flags`` go before ``-m``.
    cwd, env        the workers' working directory and environment (``None``: the supervisor's).
    template_env    the fork template's environment (``None``: ``env``); leave out what would
                    make a library load project code at import (a framework's settings module).
    name            how messages name the program.
    announce        print which watcher and start are used (a program may prefer to say it).
    audience        who may see the error page's details until a worker says otherwise
                    (``reloader.audience``; the default: localhost, as Django in debug mode).
    verbose         also print debug messages (what each fork template preloaded, how each
                    worker started).
    checkpoints     with the fork start, also keep the program's start-up paused at the points
                    it declares (``reloader.worker.checkpoint``) and before its modules' imports,
                    and fork workers from the deepest one an edit did not make stale. Only for a
                    program that calls ``checkpoint(..., final=True)`` before it serves.
    """

    target: Target
    sockets: tuple[SocketSpec, ...] = ()
    watch: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    backend: Backend = "auto"
    poll_interval: float = 0.5
    start: StartMode = "spawn"
    preload: tuple[str, ...] = ()
    quiet_period: float = 0.02
    max_wait: float = 2.0
    grace: float = 5.0
    python: str = field(default_factory=lambda: sys.executable)
    interpreter_flags: tuple[str, ...] = ()
    cwd: str | None = None
    env: Mapping[str, str] | None = None
    template_env: Mapping[str, str] | None = None
    name: str = "worker"
    announce: bool = True
    audience: Audience = field(default_factory=Audience)
    verbose: bool = False
    checkpoints: bool = False

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(
                f"unknown watcher {self.backend!r}; choose one of {', '.join(BACKENDS)}"
            )
        if self.start not in START_MODES:
            raise ConfigError(
                f"unknown start {self.start!r}; choose one of {', '.join(START_MODES)}"
            )
        # `not (x >= 0)` and isfinite also refuse NaN, which every comparison lets through.
        times = (self.poll_interval, self.quiet_period, self.max_wait, self.grace)
        if not all(math.isfinite(t) for t in times):
            raise ConfigError(
                "the poll interval, quiet period, maximum wait and grace must be finite"
            )
        if not self.poll_interval > 0:
            raise ConfigError("the poll interval must be positive")
        if not (self.quiet_period >= 0 and self.max_wait >= self.quiet_period):
            raise ConfigError("the quiet period must be positive and at most the maximum wait")
        if not self.grace >= 0:
            raise ConfigError("the grace period must be 0 or more seconds")
        if self.start == "fork" and not self.target.is_python:
            raise ConfigError("the fork start runs Python targets only")

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        data["env"] = dict(self.env) if self.env is not None else None
        data["template_env"] = dict(self.template_env) if self.template_env is not None else None
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> SupervisorConfig:
        try:
            data: dict[str, Any] = json.loads(text)
            target = Target.from_dict(data.pop("target"))
            sockets = tuple(SocketSpec(**s) for s in data.pop("sockets"))
            audience = Audience.from_dict(data.pop("audience", {}))
            return cls(target=target, sockets=sockets, audience=audience, **_tuples(data))
        except (TypeError, ValueError, KeyError) as exc:
            raise ConfigError(f"invalid supervisor configuration: {exc}") from None


def _tuples(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}


_PYTHON_NAMES = {"python", "python3", f"python3.{sys.version_info.minor}"}
# Interpreter options that take a value as the next argument.
_OPTIONS_WITH_VALUE = {"-W", "-X", "--check-hash-based-pycs"}


def target_from_command(command: Sequence[str]) -> tuple[Target, tuple[str, ...]]:
    """Turn ``CMD ARGS...`` into a target and the interpreter flags it needs.

    A command run by this interpreter (``python``, ``python3``, or the path of
    ``sys.executable``) becomes a Python target, so that the worker can report what it imports;
    anything else is a plain command.
    """
    if not command:
        raise ConfigError("no command given: put it after '--'")
    program, *rest = command
    if not _is_this_python(program):
        if shutil.which(program) is None and not os.path.exists(program):
            raise ConfigError(f"command not found: {program!r}")
        return Target("command", program, tuple(rest)), ()
    flags: list[str] = []
    i = 0
    while i < len(rest):
        arg = rest[i]
        if arg == "-m" or arg == "-c":
            if i + 1 >= len(rest):
                raise ConfigError(f"argument expected for the Python option {arg}")
            kind: TargetKind = "module" if arg == "-m" else "code"
            return Target(kind, rest[i + 1], tuple(rest[i + 2 :])), tuple(flags)
        if arg.startswith(("-m", "-c")) and len(arg) > 2:
            kind = "module" if arg[1] == "m" else "code"
            return Target(kind, arg[2:], tuple(rest[i + 1 :])), tuple(flags)
        if arg in _OPTIONS_WITH_VALUE:
            flags += rest[i : i + 2]
            i += 2
            continue
        if arg == "-":
            raise ConfigError("a Python program read from stdin cannot be restarted")
        if arg.startswith("-") and arg != "--":
            flags.append(arg)
            i += 1
            continue
        if arg == "--":
            i += 1
            if i >= len(rest):
                break
            arg = rest[i]
        return Target("path", arg, tuple(rest[i + 1 :])), tuple(flags)
    raise ConfigError("no Python program given: add a script, -m module or -c code")


def _is_this_python(program: str) -> bool:
    if program in _PYTHON_NAMES:
        return True
    found = shutil.which(program)
    return found is not None and os.path.abspath(found) == os.path.abspath(sys.executable)
