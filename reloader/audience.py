"""Who may see why the program failed: the rest get a page that says nothing.

The error page shows a traceback, and a traceback shows source lines, settings and secrets. It
is shown only where Django would show its technical 500 page: the program runs in debug mode,
and the request's ``Host`` is one the program allows (Django's ``ALLOWED_HOSTS`` rules, with its
debug defaults for localhost; this also stops DNS rebinding against a server on 127.0.0.1).
When the program could not even read its settings, only clients on a loopback address may see
it. The full traceback always goes to the terminal.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

# Django's debug defaults (django.http.request.HttpRequest.get_host) when ALLOWED_HOSTS is empty.
LOCAL_HOSTS = (".localhost", "127.0.0.1", "[::1]")

# As django.utils.http.split_domain_port: a domain (or bracketed IPv6) and an optional port.
_HOST = re.compile(r"([a-z0-9.-]+|\[[a-f0-9]*:[a-f0-9.:]+\])(?::([0-9]+))?")


def split_domain_port(host: str) -> tuple[str, str]:
    """``("example.com", "8000")`` from ``"Example.com.:8000"``; ``("", "")`` if invalid."""
    match = _HOST.fullmatch(host.lower())
    if not match:
        return "", ""
    domain, port = match.groups(default="")
    return domain.removesuffix("."), port


def host_allowed(domain: str, patterns: Iterable[str]) -> bool:
    """Django's ``validate_host``: ``*``, ``.example.com`` (itself and subdomains), or exact."""
    for pattern in patterns:
        pattern = pattern.lower()
        if pattern == "*":
            return True
        if pattern.startswith(".") and (domain.endswith(pattern) or domain == pattern[1:]):
            return True
        if pattern == domain:
            return True
    return False


def is_loopback(address: str) -> bool:
    """127.0.0.0/8, ::1 and ::ffff:127.x; a unix socket's peer (no address) counts too."""
    if not address:
        return True
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool(ip.is_loopback or (mapped is not None and mapped.is_loopback))


@dataclass(frozen=True)
class Audience:
    """Who sees a failure's details.

    details        show them at all (the program's debug mode).
    hosts          the ``Host`` values allowed to see them, with Django's ``ALLOWED_HOSTS``
                   patterns; the default is Django's debug default (localhost only).
    loopback_only  only to clients on a loopback address (the settings could not be read).
    """

    details: bool = True
    hosts: tuple[str, ...] = LOCAL_HOSTS
    loopback_only: bool = False

    def allows(self, host: str | None, client: str) -> bool:
        """Whether a request with this ``Host`` header, from this client address, may see the
        details. No ``Host`` header: no details."""
        if not self.details or host is None:
            return False
        if self.loopback_only and not is_loopback(client):
            return False
        domain, _port = split_domain_port(host.strip())
        return bool(domain) and host_allowed(domain, self.hosts)

    def to_dict(self) -> dict[str, object]:
        return {
            "details": self.details,
            "hosts": list(self.hosts),
            "loopback_only": self.loopback_only,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object], last: Audience | None = None) -> Audience:
        """From an ``audience`` message; ``details`` missing (the program could not tell)
        keeps what ``last`` said."""
        details = data.get("details")
        if not isinstance(details, bool):
            details = last.details if last is not None else cls.details
        raw_hosts = data.get("hosts")
        hosts: tuple[str, ...]
        if isinstance(raw_hosts, list):
            hosts = tuple(str(h) for h in raw_hosts)
        else:
            hosts = last.hosts if last is not None else LOCAL_HOSTS
        return cls(details, hosts, bool(data.get("loopback_only", False)))

    @classmethod
    def for_debug(cls, debug: bool, allowed_hosts: Iterable[str]) -> Audience:
        """As Django decides: ``DEBUG`` and ``ALLOWED_HOSTS`` (empty: localhost in debug)."""
        hosts = tuple(allowed_hosts)
        return cls(bool(debug), hosts or (LOCAL_HOSTS if debug else ()), False)
