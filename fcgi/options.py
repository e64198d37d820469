"""The options of ``runfcgi`` and ``python -m fcgi``: one table, two spellings, one help text.

Every option of Django 1.8's ``runfcgi`` is here with its 1.8 default and help wording
(``django/core/servers/fastcgi.py`` in 1.8: ``FASTCGI_OPTIONS`` and ``FASTCGI_HELP``). The table
below generates the parser for both spellings (``key=value`` and ``--key value``/``--key=value``)
and the ``help`` text. 1.8's bugs are not kept: ``debug=false`` means off (1.8 turned debug on for
any value), a bare ``daemonize`` means true (1.8 crashed), unknown keys and bad values are refused
with a one-line :class:`OptionError` instead of being ignored or crashing later.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

__all__ = ["OptionError", "Options"]

# sockaddr_un.sun_path holds 108 bytes including the terminating NUL.
_UNIX_PATH_MAX = 107
_TRUE = frozenset({"true", "yes", "t", "y", "1", "on"})
_FALSE = frozenset({"false", "no", "f", "n", "0", "off"})


class OptionError(ValueError):
    """An option is unknown or its value is unusable; the message is one line for the user."""


def _bool(name: str, value: str) -> bool:
    word = value.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise OptionError(f"{name}={value}: not a boolean (use true or false)")


def _protocol(name: str, value: str) -> str:
    word = value.strip().lower()
    if word not in ("fcgi", "scgi", "ajp"):
        raise OptionError(f"{name}={value}: must be one of fcgi, scgi, ajp")
    return word


def _method(name: str, value: str) -> str:
    word = value.strip().lower()
    if word in ("prefork", "fork"):
        return "prefork"
    if word in ("threaded", "thread"):
        return "threaded"
    raise OptionError(f"{name}={value}: must be prefork or threaded")


def _host(name: str, value: str) -> str:
    host = value.strip()
    if not host:
        raise OptionError(f"{name}=: give a host name or address, e.g. {name}=127.0.0.1")
    if not _is_host(host):
        raise OptionError(f"{name}={value}: not a valid host name or address")
    return host


def _is_host(host: str) -> bool:
    """Whether ``getaddrinfo`` can take ``host`` at all: a name longer than DNS allows (63
    characters a label, 253 in all) makes it raise a UnicodeError from the idna codec instead
    of an error about the name (issue 10). An IPv6 address has no labels to check."""
    if ":" in host:
        return True
    try:
        host.encode("idna")
    except UnicodeError:
        return False
    return len(host.rstrip(".")) <= 253


def _port(name: str, value: str) -> int:
    try:
        number = int(value, 10)
    except ValueError:
        number = -1
    if not 1 <= number <= 65535:
        raise OptionError(f"{name}={value}: not a port number (1-65535)")
    return number


def _count(minimum: int) -> Callable[[str, str], int]:
    def parse(name: str, value: str) -> int:
        try:
            number = int(value, 10)
        except ValueError:
            raise OptionError(f"{name}={value}: not a whole number") from None
        if number < minimum:
            raise OptionError(f"{name}={value}: must be at least {minimum}")
        return number

    return parse


def _umask(name: str, value: str) -> int:
    try:
        number = int(value, 8)
    except ValueError:
        number = -1
    if not 0 <= number <= 0o777:
        raise OptionError(f"{name}={value}: not an octal umask (e.g. 007 or 022)")
    return number


def _file(name: str, value: str) -> str:
    """A file we will create: made absolute now, its directory must exist."""
    if not value:
        raise OptionError(f"{name}=: give a file path")
    path = os.path.abspath(value)
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        raise OptionError(f"{name}={value}: directory {directory} does not exist")
    if os.path.isdir(path):
        raise OptionError(f"{name}={value}: is a directory, give a file name")
    return path


def _unix_socket(name: str, value: str) -> str:
    if value and os.path.isdir(value):
        raise OptionError(f"{name}={value}: is a directory, give the socket's file name")
    path = _file(name, value)
    if len(os.fsencode(path)) > _UNIX_PATH_MAX:
        raise OptionError(f"{name}={value}: path too long for a unix socket (max 107 bytes)")
    return path


def _directory(name: str, value: str) -> str:
    path = os.path.abspath(value or ".")
    if not os.path.isdir(path):
        raise OptionError(f"{name}={value}: not an existing directory")
    return path


@dataclass(frozen=True)
class _Option:
    name: str
    default: Any
    parse: Callable[[str, str], Any]
    metavar: str
    help: str
    is_bool: bool = False


# The one table. Help wording is 1.8's; ``%(default)s`` is filled from the default column.
_TABLE: tuple[_Option, ...] = (
    _Option(
        "protocol", "fcgi", _protocol, "PROTOCOL", "fcgi, scgi, ajp, ... (default %(default)s)"
    ),
    _Option("host", None, _host, "HOSTNAME", "hostname to listen on."),
    _Option("port", None, _port, "PORTNUM", "port to listen on."),
    _Option("socket", None, _unix_socket, "FILE", "UNIX socket to listen on."),
    _Option("method", "fork", _method, "IMPL", "prefork or threaded (default %(default)s)."),
    _Option(
        "maxrequests",
        0,
        _count(0),
        "NUMBER",
        "number of requests a child handles before it is\n"
        "killed and a new child is forked (0 = no limit).",
    ),
    _Option(
        "maxspare",
        5,
        _count(1),
        "NUMBER",
        "max number of spare processes / threads (default %(default)s).",
    ),
    _Option(
        "minspare",
        2,
        _count(1),
        "NUMBER",
        "min number of spare processes / threads (default %(default)s).",
    ),
    _Option(
        "maxchildren",
        50,
        _count(1),
        "NUMBER",
        "hard limit number of processes / threads (default %(default)s).",
    ),
    _Option("daemonize", None, _bool, "BOOL", "whether to detach from terminal.", is_bool=True),
    _Option("pidfile", None, _file, "FILE", "write the spawned process-id to this file."),
    _Option(
        "workdir",
        "/",
        _directory,
        "DIRECTORY",
        "change to this directory when daemonizing (default %(default)s).",
    ),
    _Option("debug", False, _bool, "BOOL", "set to true to enable flup tracebacks.", is_bool=True),
    _Option("outlog", None, _file, "FILE", "write stdout to this file."),
    _Option("errlog", None, _file, "FILE", "write stderr to this file."),
    _Option(
        "umask",
        None,
        _umask,
        "UMASK",
        "umask to use when daemonizing, in octal notation (default 022).\n"
        "It applies to the unix socket file only, not to the process.",
    ),
    _Option("help", False, _bool, "", "print this help and exit.", is_bool=True),
)
_BY_NAME = {option.name: option for option in _TABLE}

_HELP_HEAD = """\
  Run this project as a fastcgi (or some other protocol supported
  by flup) application. To do this, the flup package from
  http://www.saddi.com/software/flup/ is required.

   {prog} [options] [fcgi settings]

Optional Fcgi settings: (setting=value, or --setting value)
"""

_HELP_TAIL = """
Without daemonize=, the server detaches when it listens on host/port or socket
(1.8's default); give daemonize=false to stay in the foreground. Signals: TERM and
INT stop gracefully (requests in progress finish), HUP reopens outlog/errlog and
replaces the prefork children, USR1 replaces the prefork children.

Examples:
  Run a "standard" fastcgi process on a file-descriptor
  (for Web servers which spawn your processes for you)
    $ {prog} method=threaded

  Run a scgi server on a TCP host/port
    $ {prog} protocol=scgi method=prefork host=127.0.0.1 port=8025

  Run a fastcgi server on a UNIX domain socket (posix platforms only)
    $ {prog} method=prefork socket=/tmp/fcgi.sock

  Run a fastCGI as a daemon and write the spawned PID in a file
    $ {prog} socket=/tmp/fcgi.sock method=prefork \\
        daemonize=true pidfile=/var/run/django-fcgi.pid
"""


@dataclass(frozen=True)
class Options:
    """What to serve on and how: every option of Django 1.8's ``runfcgi``, validated.

    Build it with :meth:`parse` from command-line words, or directly with keyword arguments
    (then call :meth:`validated`). ``method`` is normalised to ``"prefork"`` or ``"threaded"``;
    paths are absolute; ``umask`` is an int (``None`` means 022 for the socket).
    """

    protocol: str = "fcgi"
    host: str | None = None
    port: int | None = None
    socket: str | None = None
    method: str = "prefork"
    maxrequests: int = 0
    maxspare: int = 5
    minspare: int = 2
    maxchildren: int = 50
    daemonize: bool | None = None
    pidfile: str | None = None
    workdir: str = "/"
    debug: bool = False
    outlog: str | None = None
    errlog: str | None = None
    umask: int | None = None
    help: bool = False

    @classmethod
    def parse(cls, words: Sequence[str]) -> Options:
        """Parse ``key=value``, ``--key value``, ``--key=value`` and bare boolean words."""
        options, rest = cls.parse_known(words)
        if rest:
            raise OptionError(f"{rest[0]!r} is not a key=value option (see 'help' for the list)")
        return options

    @classmethod
    def parse_known(cls, words: Sequence[str]) -> tuple[Options, list[str]]:
        """Like :meth:`parse`, but return the words that are not options (e.g. ``module:app``)."""
        given: dict[str, Any] = {}
        rest: list[str] = []
        i = 0
        while i < len(words):
            word = words[i]
            i += 1
            if word.startswith("--"):
                key, eq, value = word[2:].partition("=")
                option = _lookup(key, word)
                if not eq:
                    if option.is_bool:
                        if i < len(words) and words[i].strip().lower() in _TRUE | _FALSE:
                            value, i = words[i], i + 1
                        else:
                            value = "true"
                    elif i < len(words):
                        value, i = words[i], i + 1
                    else:
                        raise OptionError(f"--{option.name} needs a value")
            elif "=" in word:
                key, _, value = word.partition("=")
                option = _lookup(key, word)
            elif word.lower() in _BY_NAME and _BY_NAME[word.lower()].is_bool:
                option, value = _BY_NAME[word.lower()], "true"
            elif word.lower() in _BY_NAME:
                raise OptionError(f"{word.lower()} needs a value: {word.lower()}=...")
            else:
                rest.append(word)
                continue
            if option.name in given:
                raise OptionError(f"{option.name} given twice")
            given[option.name] = option.parse(option.name, value)
        if given.get("help"):
            return cls(help=True), rest
        return cls(**given).validated(), rest

    def validated(self) -> Options:
        """Check the options against each other; raise :class:`OptionError` or return self."""
        if self.help:
            return self
        if self.maxspare < self.minspare:
            raise OptionError(
                f"maxspare={self.maxspare} is below minspare={self.minspare}: "
                "maxspare must be at least minspare"
            )
        if self.socket is not None and (self.host is not None or self.port is not None):
            raise OptionError("socket= cannot be combined with host= or port=: choose one")
        if self.host is not None and self.port is None:
            raise OptionError(f"host={self.host} needs a port= too")
        if self.port is not None and self.host is None:
            raise OptionError(f"port={self.port} needs a host= too (e.g. host=127.0.0.1)")
        if self.method not in ("prefork", "threaded"):
            _method("method", self.method)
        return self

    @property
    def bind(self) -> str | tuple[str, int] | None:
        """The unix socket path, the (host, port) pair, or None for an inherited fd 0."""
        if self.socket is not None:
            return self.socket
        if self.host is not None and self.port is not None:
            return (self.host, self.port)
        return None

    @property
    def detach(self) -> bool:
        """Whether to daemonize: as given, else 1.8's rule (detach when we open our own socket)."""
        if self.daemonize is None:
            return self.bind is not None
        return self.daemonize

    @property
    def socket_umask(self) -> int:
        return 0o022 if self.umask is None else self.umask

    def describe_bind(self) -> str:
        bind = self.bind
        if bind is None:
            return "the socket inherited on fd 0"
        if isinstance(bind, str):
            return f"unix:{bind}"
        host, port = bind
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    @staticmethod
    def help_text(prog: str = "runfcgi") -> str:
        """The ``help`` output, generated from the table (1.8's layout and wording)."""
        lines = [_HELP_HEAD.format(prog=prog)]
        for option in _TABLE:
            if option.name == "help":
                continue
            left = f"  {option.name}={option.metavar}"
            text = option.help % {"default": option.default}
            first, *more = text.split("\n")
            lines.append(f"{left:<23}{first}\n")
            lines.extend(f"{'':<23}{line}\n" for line in more)
        lines.append(_HELP_TAIL.format(prog=prog))
        return "".join(lines)

    @staticmethod
    def names() -> tuple[str, ...]:
        """Every option name, in the help's order."""
        return tuple(option.name for option in _TABLE)


def _lookup(key: str, word: str) -> _Option:
    option = _BY_NAME.get(key.strip().lower())
    if option is None:
        known = ", ".join(o.name for o in _TABLE)
        raise OptionError(f"unknown option {word!r}; known options: {known}")
    return option


# The dataclass and the table must list the same names (a cheap guard against drift).
assert tuple(f.name for f in fields(Options)) == tuple(o.name for o in _TABLE)
