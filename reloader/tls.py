"""HTTPS on a held socket: one port that speaks TLS and redirects plain HTTP to it.

A listening socket whose ``SocketSpec`` has a certificate speaks HTTPS, for the supervisor's
error page and for the workers alike. Each accepted connection is looked at before anything is
read from it: a TLS handshake starts with a record of type 22 (``0x16``); anything else is taken
for plain HTTP, whose request gets a redirect to the same URL over https (a developer who typed
``http://localhost:8000/`` lands on the page, not on a garbled TLS error).

The redirect is a 307: never cached by browsers (a 301 would send this port's plain-HTTP
requests to https long after the server stopped serving HTTPS) and keeps the method.
Standard library only: the supervisor imports this.
"""

from __future__ import annotations

import re
import ssl

HANDSHAKE = 0x16  # TLS record type 22: every ClientHello starts with it
HANDSHAKE_TIMEOUT = 10.0
MAX_HEAD = 64 * 1024

_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$")


def is_handshake(first: bytes) -> bool:
    """Whether the first byte a client sent starts a TLS handshake."""
    return bool(first) and first[0] == HANDSHAKE


def server_context(cert_file: str, key_file: str | None = None) -> ssl.SSLContext:
    """A server context for this certificate (PEM; the chain may follow it; the key may be in
    the same file): TLS 1.2 and later, HTTP/1.1 offered over ALPN."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    context.set_alpn_protocols(["http/1.1"])
    return context


def context_for(cert_file: str | None, key_file: str | None) -> ssl.SSLContext | None:
    """``server_context`` for a socket's certificate (None: the socket speaks plain HTTP);
    ``ValueError`` with a one-line message when the files cannot be used."""
    if cert_file is None:
        return None
    try:
        return server_context(cert_file, key_file)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or exc
        raise ValueError(f"cannot serve HTTPS with {cert_file!r}: {reason}") from None


def request_line(head: bytes) -> str:
    """The first line of a request head, as the request log shows it."""
    return head.split(b"\r\n", 1)[0].split(b"\n", 1)[0].decode("latin-1", "replace").strip()


def redirect(head: bytes, fallback_host: str) -> bytes:
    """The whole response to a plain-HTTP request head on an HTTPS port: a 307 to the same
    target over https, on the Host the client asked for (``fallback_host`` when it sent none
    or an unusable one). Not a redirect anyone can steer elsewhere: the host must look like a
    host, the target must be a path."""
    parts = request_line(head).split(" ")
    target = parts[1] if len(parts) >= 2 and parts[1].startswith("/") else "/"
    target = re.sub(r"[^\x21-\x7e]", "", target)
    if target.startswith("//"):  # //evil.example/ would be another host
        target = "/" + target.lstrip("/")
    host = _host(head) or fallback_host
    location = f"https://{host}{target}"
    body = f"Use HTTPS: {location}\n".encode()
    return (
        "HTTP/1.1 307 Temporary Redirect\r\n"
        f"Location: {location}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n"
        "\r\n"
    ).encode("latin-1") + (b"" if parts[0] == "HEAD" else body)


def _host(head: bytes) -> str | None:
    values = []
    for line in head.split(b"\r\n\r\n", 1)[0].split(b"\n")[1:]:
        name, sep, value = line.partition(b":")
        if sep and name.strip().lower() == b"host":
            values.append(value.strip().decode("latin-1"))
    if len(values) != 1 or not _HOST.match(values[0]):
        return None
    return values[0]


def display_host(host: str, port: int) -> str:
    """``host:port`` for a Location header (IPv6 in brackets; the wildcard as localhost)."""
    if host in ("", "0.0.0.0", "::"):
        host = "localhost"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
