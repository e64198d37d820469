"""This machine's LAN addresses, for a certificate a phone on the same network accepts.

Standard library only, and never raises: an address that cannot be read is skipped. On Linux
every interface's IPv4 address (``SIOCGIFADDR``) and the global IPv6 ones
(``/proc/net/if_inet6``); everywhere, the host name's addresses and the address the default
route leaves from (a UDP socket "connected" to a public address: no packet is sent).
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import struct
import sys

SIOCGIFADDR = 0x8915


def machine_addresses() -> list[str]:
    """LAN IP addresses of this machine: no loopback, no link-local, no wildcard."""
    found: list[str] = []
    for address in (*_interfaces_v4(), *_interfaces_v6(), *_host_name(), *_routes()):
        with contextlib.suppress(ValueError):
            ip = ipaddress.ip_address(address.split("%", 1)[0])
            usable = not (ip.is_loopback or ip.is_link_local or ip.is_unspecified)
            if usable and not ip.is_multicast and str(ip) not in found:
                found.append(str(ip))
    return found


def _interfaces_v4() -> list[str]:
    if not sys.platform.startswith("linux"):
        return []
    import fcntl

    addresses = []
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _, name in socket.if_nameindex():
            with contextlib.suppress(OSError):
                request = struct.pack("256s", name.encode()[:15])
                answer = fcntl.ioctl(s.fileno(), SIOCGIFADDR, request)
                addresses.append(socket.inet_ntoa(answer[20:24]))
    return addresses


def _interfaces_v6() -> list[str]:
    addresses = []
    with contextlib.suppress(OSError), open("/proc/net/if_inet6") as table:
        for line in table:
            fields = line.split()
            if len(fields) >= 4 and fields[3] == "00":  # scope 0: global
                raw = fields[0]
                text = ":".join(raw[i : i + 4] for i in range(0, 32, 4))
                addresses.append(str(ipaddress.IPv6Address(text)))
    return addresses


def _host_name() -> list[str]:
    with contextlib.suppress(OSError, UnicodeError):
        infos = socket.getaddrinfo(socket.gethostname(), None, type=socket.SOCK_STREAM)
        return [str(info[4][0]) for info in infos]
    return []


def _routes() -> list[str]:
    addresses = []
    for family, public in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
        with contextlib.suppress(OSError), socket.socket(family, socket.SOCK_DGRAM) as s:
            s.connect((public, 9))
            addresses.append(str(s.getsockname()[0]))
    return addresses
