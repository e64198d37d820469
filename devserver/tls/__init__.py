"""Certificates for ``runserver --https`` (serving TLS itself is ``devserver.https``).

Public API::

    local_certificate(addr, all_interfaces)  the local CA's certificate for the addresses served
    own_certificate(cert_file, key_file)     the user's files, checked (TlsError: one line)
    ensure_ca(), ca_dir()                    the local CA (made once per user)
    machine_addresses()                      this machine's LAN addresses
    Certificate, TlsError

Importing this package imports neither ``cryptography`` nor Django.
"""

from __future__ import annotations

from .addresses import machine_addresses
from .ca import ca_dir, ensure_ca, local_certificate
from .files import Certificate, TlsError, own_certificate

__all__ = [
    "Certificate",
    "TlsError",
    "ca_dir",
    "ensure_ca",
    "local_certificate",
    "machine_addresses",
    "own_certificate",
]
