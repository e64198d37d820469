"""Parse runserver's ``addrport`` exactly as Django does, with Django's error messages."""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass

from django.core.management.base import CommandError

# Django's naiveip_re (django/core/management/commands/runserver.py).
naiveip_re = re.compile(
    r"""^(?:
(?P<addr>
    (?P<ipv4>\d{1,3}(?:\.\d{1,3}){3}) |         # IPv4 address
    (?P<ipv6>\[[a-fA-F0-9:]+\]) |               # IPv6 address
    (?P<fqdn>[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*) # FQDN
):)?(?P<port>\d+)$""",
    re.X,
)


@dataclass(frozen=True)
class Address:
    addr: str
    port: str
    use_ipv6: bool
    raw_ipv6: bool

    @property
    def display(self) -> str:
        """The host part of the URL the banner shows."""
        return display_host(self.addr, self.raw_ipv6)

    @property
    def bind_host(self) -> str:
        return "0.0.0.0" if self.addr == "0" else self.addr


def display_host(addr: str, raw_ipv6: bool) -> str:
    """The host part of the URL the banner shows, from runserver's ``addr`` and ``_raw_ipv6``
    alone (Django's own tests call ``on_bind`` with only those two set)."""
    if raw_ipv6:
        return f"[{addr}]"
    if addr == "0":
        return "0.0.0.0"
    return addr


def is_host_name(name: str) -> bool:
    """Whether ``name`` (letters, digits, dashes and dots, as ``naiveip_re`` allows) can be
    resolved at all: DNS allows 63 characters a label and 253 in all. A longer one would make
    ``getaddrinfo`` fail with a UnicodeError from the idna codec, not a message (issue 10)."""
    try:
        name.encode("idna")
    except UnicodeError:
        return False
    return len(name) <= 253


def parse(
    addrport: str | None,
    use_ipv6: bool,
    default_addr: str = "127.0.0.1",
    default_addr_ipv6: str = "::1",
    default_port: str = "8000",
) -> Address:
    """``addrport`` as runserver accepts it: ``8000``, ``1.2.3.4:8000``, ``0:8000``,
    ``host.name:8000``, ``[::1]:8000``; raises CommandError with Django's wording."""
    if use_ipv6 and not socket.has_ipv6:
        raise CommandError("Your Python does not support IPv6.")
    raw_ipv6 = False
    if not addrport:
        addr, port = "", default_port
    else:
        m = naiveip_re.match(addrport)
        if m is None:
            raise CommandError(f'"{addrport}" is not a valid port number or address:port pair.')
        addr, _ipv4, _ipv6, _fqdn, port = m.groups()
        addr = addr or ""
        if not port.isdigit() or not 0 <= int(port) <= 65535:
            raise CommandError(f"{port!r} is not a valid port number.")
        if _ipv4 and any(int(part) > 255 for part in _ipv4.split(".")):
            raise CommandError(f'"{addrport}" is not a valid port number or address:port pair.')
        if addr:
            if _ipv6:
                addr = addr[1:-1]
                use_ipv6 = True
                raw_ipv6 = True
            elif use_ipv6 and not _fqdn:
                raise CommandError(f'"{addr}" is not a valid IPv6 address.')
            elif _fqdn and not is_host_name(addr):
                raise CommandError(f'"{addrport}" is not a valid port number or address:port pair.')
    if not addr:
        addr = default_addr_ipv6 if use_ipv6 else default_addr
        raw_ipv6 = use_ipv6
    return Address(addr, port, use_ipv6, raw_ipv6)
