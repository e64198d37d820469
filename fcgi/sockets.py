"""Open the listening socket once, before anything else happens: unix, TCP or inherited fd 0.

flup's own ``_setupSocket`` (``flup/server/fcgi_base.py:1043-1066``, the same in ``scgi_base.py``)
unlinks the socket path unconditionally, so a second instance silently steals the path from a live
one; it changes the process umask around ``bind()`` and never removes the socket at exit. Here:

- a socket path that a live server still answers on is refused; a stale one (nobody answers) is
  removed; something else at that path (a file, a directory) is refused;
- the socket file gets mode ``0777 & ~umask`` with ``chmod`` between ``bind()`` and ``listen()``
  (nobody can connect before ``listen()``), so the umask applies to that file and the process
  umask is never touched;
- :meth:`Listener.remove` unlinks the path at exit only if it is still the socket we created.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
from dataclasses import dataclass

from .options import OptionError

# The listen backlog: as deep as the kernel allows (nginx retries nothing on a refused connect).
BACKLOG = socket.SOMAXCONN


@dataclass
class Listener:
    """The listening socket and, for a unix socket, how to recognise the file we created."""

    sock: socket.socket
    path: str | None = None
    identity: tuple[int, int] | None = None
    stale_removed: bool = False

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()

    def remove(self) -> None:
        """Unlink our unix socket file, unless another server has replaced it since."""
        if self.path is None or self.identity is None:
            return
        with contextlib.suppress(OSError):
            st = os.lstat(self.path)
            if (st.st_dev, st.st_ino) == self.identity:
                os.unlink(self.path)


def open_listener(bind: str | tuple[str, int] | None, umask: int = 0o022) -> Listener:
    """Bind and listen; raise :class:`OptionError` with a one-line reason when we cannot."""
    if bind is None:
        return _inherited()
    if isinstance(bind, str):
        return _unix(bind, umask)
    return _tcp(*bind)


def _unix(path: str, umask: int) -> Listener:
    stale = False
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISSOCK(st.st_mode):
            raise OptionError(
                f"socket={path}: exists and is not a socket; remove it or choose another path"
            )
        if _answers(path):
            raise OptionError(
                f"socket={path}: another server is listening on it; "
                "stop it first or choose another path"
            )
        os.unlink(path)  # left behind by a server that died
        stale = True
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        try:
            os.chmod(path, 0o777 & ~umask)
            sock.listen(BACKLOG)
            st = os.lstat(path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise
    except OSError as exc:
        sock.close()
        raise OptionError(f"socket={path}: cannot listen there ({exc.strerror or exc})") from None
    return Listener(sock, path, (st.st_dev, st.st_ino), stale)


def _answers(path: str) -> bool:
    """Whether a live server accepts connections on the unix socket ``path``."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(2.0)
    try:
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    except BlockingIOError:
        return True  # EAGAIN: a live server whose backlog is full
    except OSError as exc:
        if exc.errno == errno.ECONNREFUSED:
            return False
        raise OptionError(
            f"socket={path}: cannot tell whether a server uses it ({exc.strerror})"
        ) from None
    else:
        return True
    finally:
        probe.close()


def _tcp(host: str, port: int) -> Listener:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise OptionError(f"host={host}: cannot resolve it ({exc.strerror})") from None
    except UnicodeError:  # the idna codec: a label longer than 63 characters (issue 10)
        raise OptionError(f"host={host}: not a valid host name or address") from None
    family, socktype, proto, _, address = infos[0]
    sock = socket.socket(family, socktype, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise OptionError(
                f"port {port} on {host} is already in use: "
                "stop that program or choose another port="
            ) from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise OptionError(f"host={host}: not an address of this machine") from None
        if exc.errno == errno.EACCES:
            raise OptionError(
                f"port={port}: permission denied (ports below 1024 need root)"
            ) from None
        raise OptionError(f"{host}:{port}: cannot listen there ({exc.strerror or exc})") from None
    return Listener(sock)


def _inherited() -> Listener:
    """The socket a web server handed us on fd 0 (FastCGI's FCGI_LISTENSOCK_FILENO)."""
    try:
        sock = socket.socket(fileno=os.dup(0))
    except OSError:
        raise OptionError(
            "no socket= or host=/port= given and stdin is not a socket: give socket=PATH or "
            "host=... port=..., or let the web server start this process"
        ) from None
    if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
        sock.close()
        raise OptionError(
            "no socket= or host=/port= given and stdin is not a listening socket: give socket=PATH "
            "or host=... port=..."
        )
    return Listener(sock)
