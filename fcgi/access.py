"""``FCGI_WEB_SERVER_ADDRS``: the FastCGI specification's list of web servers allowed to connect.

FastCGI 1.0, section 3.2: when the variable is set (comma-separated IP addresses), the
application checks the peer address of each new connection and closes the connection when it is
not in the list, "including the possibility that the connection didn't use TCP/IP transport".
flup 1.0.3 honoured it in the accept loops this package replaces (and only for IPv4); it is
checked here for IPv4 and IPv6 peers alike.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Mapping
from typing import Any

log = logging.getLogger("fcgi")

ENV = "FCGI_WEB_SERVER_ADDRS"


def web_server_addrs(environ: Mapping[str, str] = os.environ) -> frozenset[str] | None:
    """The allowed addresses (normalised), or None when any peer may connect."""
    value = environ.get(ENV)
    if value is None:
        return None
    allowed = set()
    for item in value.split(","):
        item = item.strip()
        if item:
            allowed.add(_normal(item))
    return frozenset(allowed)


def allowed(addr: Any, addrs: frozenset[str] | None) -> bool:
    """Whether a connection from ``addr`` (what ``accept()`` returned) may be served."""
    if addrs is None:
        return True
    if not isinstance(addr, tuple) or not addr:  # a unix socket: not TCP/IP
        log.warning("connection on a unix socket refused: %s is set", ENV)
        return False
    if _normal(str(addr[0])) in addrs:
        return True
    log.warning("connection from %s refused: not in %s", addr[0], ENV)
    return False


def _normal(address: str) -> str:
    try:
        return str(ipaddress.ip_address(address.split("%", 1)[0]))
    except ValueError:
        return address
