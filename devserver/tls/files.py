"""A certificate to serve with: the user's own files (``--cert-file``/``--key-file``), checked
before anything starts, or the local CA's (``devserver.tls.ca``)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path


class TlsError(Exception):
    """A certificate that cannot be used; ``str()`` is one line for the user."""


@dataclass(frozen=True)
class Certificate:
    cert_file: str
    key_file: str | None  # None: the certificate's file holds the key
    ca_file: str | None  # the local CA's certificate (None for the user's own files)
    names: tuple[str, ...]  # DNS names and IP addresses it is valid for
    source: str  # for the banner: "the local CA (/path/rootCA.pem)" or the file's path


def own_certificate(cert_file: str, key_file: str | None) -> Certificate:
    """The user's certificate, or a one-line ``TlsError`` saying what is wrong with it."""
    cert_pem = _read("--cert-file", cert_file)
    if b"-----BEGIN CERTIFICATE-----" not in cert_pem:
        raise TlsError(f"The --cert-file {cert_file!r} holds no PEM certificate.")
    if key_file is not None:
        key_pem = _read("--key-file", key_file)
        if b"PRIVATE KEY-----" not in key_pem:
            raise TlsError(f"The --key-file {key_file!r} holds no PEM private key.")
    elif b"PRIVATE KEY-----" not in cert_pem:
        raise TlsError(
            f"The --cert-file {cert_file!r} holds no private key: give it with --key-file."
        )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert_file, key_file)
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc) or "key values mismatch" in str(exc):
            key = key_file or cert_file
            raise TlsError(
                f"The key in {key!r} does not match the certificate in {cert_file!r}."
            ) from None
        raise TlsError(f"Cannot serve HTTPS with {cert_file!r}: {exc.reason or exc}.") from None
    return Certificate(cert_file, key_file, None, _names(cert_pem), cert_file)


def _read(option: str, path: str) -> bytes:
    file = Path(path)
    if not file.exists():
        raise TlsError(f"The {option} {path!r} does not exist.")
    if file.is_dir():
        raise TlsError(f"The {option} {path!r} is a directory, not a PEM file.")
    try:
        return file.read_bytes()
    except OSError as exc:
        raise TlsError(f"Cannot read the {option} {path!r}: {exc.strerror}.") from None


def _names(cert_pem: bytes) -> tuple[str, ...]:
    try:
        from cryptography import x509

        from .ca import names_of
    except ImportError:  # the user's own files need no cryptography: the names are for show
        return ()
    try:
        return names_of(x509.load_pem_x509_certificate(cert_pem))
    except ValueError:
        return ()
