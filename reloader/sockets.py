"""Bind the listening sockets once, for the life of the supervisor, and make them inheritable."""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat

from .config import SocketSpec


class BindError(OSError):
    """A socket could not be bound; ``str()`` is the message for the user."""

    def __init__(self, code: int, message: str, spec: SocketSpec) -> None:
        super().__init__(code, message)
        self.spec = spec

    def __str__(self) -> str:
        return str(self.strerror)


def is_host_name(host: str) -> bool:
    """Whether ``getaddrinfo`` can take ``host`` at all: a name longer than DNS allows (63
    characters a label, 253 in all) makes it raise a UnicodeError from the idna codec, not an
    error about the name (issue 10). An IPv6 address has no labels to check."""
    if ":" in host:
        return True
    try:
        host.encode("idna")
    except UnicodeError:
        return False
    return len(host.rstrip(".")) <= 253


def family_for(host: str, ipv6: bool) -> socket.AddressFamily:
    return socket.AF_INET6 if ipv6 or ":" in host else socket.AF_INET


def bind(spec: SocketSpec) -> socket.socket:
    """A listening, inheritable socket for ``spec``; raises ``BindError`` with a clear message."""
    if spec.fd is not None:
        sock = socket.socket(fileno=spec.fd)
    elif spec.path is not None:
        sock = _bind_unix(spec)
    else:
        sock = _bind_tcp(spec)
    sock.set_inheritable(True)
    return sock


def _bind_tcp(spec: SocketSpec) -> socket.socket:
    family = family_for(spec.host, spec.ipv6)
    try:
        infos = socket.getaddrinfo(
            spec.host or None, spec.port, family, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
        )
    except socket.gaierror:
        raise BindError(
            errno.EADDRNOTAVAIL, f"Cannot resolve the host name {spec.host!r}.", spec
        ) from None
    except UnicodeError:  # the idna codec: a label longer than 63 characters (issue 10)
        raise BindError(errno.EINVAL, f"{spec.host!r} is not a valid host name.", spec) from None
    sockaddr = infos[0][4]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr)
        sock.listen(spec.backlog)
    except OSError as exc:
        sock.close()
        raise BindError(exc.errno or 0, _message(exc, spec), spec) from None
    return sock


def _bind_unix(spec: SocketSpec) -> socket.socket:
    assert spec.path is not None
    path = spec.path
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and not stat.S_ISSOCK(mode):
        # bind() would fail with EADDRINUSE, which reads as a port in use (issue 10).
        what = "a directory" if stat.S_ISDIR(mode) else "a file that is not a socket"
        raise BindError(
            errno.EEXIST,
            f"Cannot listen on unix:{path}: it is {what}. Remove it, or use another path.",
            spec,
        )
    if mode is not None:
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except OSError:  # nobody answers: a stale socket left by a dead server
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        else:
            raise BindError(
                errno.EADDRINUSE,
                f"Another server is listening on {path}. Stop it, or use another path.",
                spec,
            )
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        sock.listen(spec.backlog)
    except OSError as exc:
        sock.close()
        raise BindError(exc.errno or 0, _message(exc, spec), spec) from None
    return sock


def _message(exc: OSError, spec: SocketSpec) -> str:
    where = spec.describe()
    if exc.errno == errno.EADDRINUSE and spec.path is not None:
        return f"Cannot listen on {where}: something else is at that path."
    if exc.errno == errno.EADDRINUSE:
        return (
            f"Port {spec.port} is in use by another program. Either identify and stop that"
            " program, or start the server with a different port."
        )
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"You don't have permission to listen on {where}."
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"The address of {where} can't be assigned to on this machine."
    return f"Cannot listen on {where}: {exc.strerror}."


def close(sock: socket.socket, spec: SocketSpec) -> None:
    """Close a held socket; remove the file of a unix socket we created."""
    sock.close()
    if spec.path is not None and spec.fd is None:
        with contextlib.suppress(OSError):
            os.unlink(spec.path)
