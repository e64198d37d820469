"""The local certificate authority of ``runserver --https``, and the certificates it issues.

As mkcert does: one CA per user, made the first time it is needed, trusted once (``manage.py
devserver_ca install``), then every certificate it issues is trusted by browsers without a
warning. Its directory is ``ca_dir()``: ``$DEVSERVER_CAROOT`` when set, else the user's data
directory (``$XDG_DATA_HOME/devserver/ca`` or ``~/.local/share/devserver/ca``; macOS
``~/Library/Application Support/devserver/ca``; Windows ``%LOCALAPPDATA%\\devserver\\ca``), mode
0700, private keys 0600 from their creation on. Files: ``rootCA.pem`` and ``rootCA-key.pem``
(the CA), ``localhost.pem`` and ``localhost-key.pem`` (the server's certificate).

The server's certificate names ``localhost``, ``127.0.0.1``, ``::1`` and the address served,
and, when serving on every interface, this machine's name and LAN addresses. It is kept while
its CA is the current one, it names exactly the addresses wanted and has 30 days left; otherwise
a new one is issued (at most 397 days, as browsers allow). Files are written to temporary names
and renamed, so that two servers starting at once never read half a file; two racing to make
the CA end with one (the second to finish takes the first one's).

``cryptography`` is imported only here, and only when a certificate is made or read: the
supervisor and the workers load the PEM files with ``ssl`` alone.
"""

from __future__ import annotations

import contextlib
import datetime
import getpass
import ipaddress
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from .addresses import machine_addresses
from .files import Certificate, TlsError

CA_CERT, CA_KEY = "rootCA.pem", "rootCA-key.pem"
LEAF_CERT, LEAF_KEY = "localhost.pem", "localhost-key.pem"
CA_DAYS = 3650
LEAF_DAYS = 397
RENEW_DAYS = 30
MISSING = (
    "runserver --https needs the cryptography package: pip install 'devserver[https]' "
    "(or pass --cert-file and --key-file)."
)


def ca_dir() -> Path:
    """Where the local CA lives (see the module's docstring)."""
    if os.environ.get("DEVSERVER_CAROOT"):
        return Path(os.environ["DEVSERVER_CAROOT"])
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "devserver" / "ca"


def _x509() -> Any:
    try:
        from cryptography import x509
    except ImportError:
        raise TlsError(MISSING) from None
    return x509


def ensure_ca() -> tuple[Path, bool]:
    """The CA's certificate file, and whether this call made the CA."""
    directory = ca_dir()
    cert = directory / CA_CERT
    if cert.exists() and (directory / CA_KEY).exists():
        return cert, False
    x509 = _x509()
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(directory, 0o700)
    except OSError as exc:
        where = str(directory)
        raise TlsError(f"Cannot make the local CA's directory {where!r}: {exc.strerror}.") from None
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "devserver local CA"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"devserver local CA {_owner()}"),
        ]
    )
    now = _now()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage("digital_signature", "key_cert_sign", "crl_sign"), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    # The key first: a certificate without its key is never taken for a CA (see above).
    won = _publish(directory / CA_KEY, _key_pem(key), private=True, replace=False)
    if not won:  # another process made it meanwhile: its certificate follows
        deadline = time.monotonic() + 5
        while not cert.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not cert.exists():
            raise TlsError(f"The local CA in {str(directory)!r} has a key but no certificate.")
        return cert, False
    _publish(cert, _cert_pem(certificate), private=False, replace=True)
    return cert, True


def local_certificate(addr: str, all_interfaces: bool) -> Certificate:
    """The server's certificate for ``addr`` (see the module's docstring), issued or renewed
    here when needed."""
    ca_cert, _ = ensure_ca()
    directory = ca_cert.parent
    wanted = wanted_names(addr, all_interfaces)
    source = f"the local CA ({ca_cert})"
    cert_file, key_file = directory / LEAF_CERT, directory / LEAF_KEY
    x509 = _x509()
    ca = _read_cert(ca_cert)
    current = _usable_leaf(cert_file, key_file, ca, wanted)
    if current:
        return Certificate(str(cert_file), str(key_file), str(ca_cert), wanted, source)
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_key = serialization.load_pem_private_key((directory / CA_KEY).read_bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "devserver development"),
                    x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
                ]
            )
        )
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=LEAF_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage("digital_signature"), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(_general_names(wanted)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    _publish(key_file, _key_pem(key), private=True, replace=True)
    _publish(cert_file, _cert_pem(certificate), private=False, replace=True)
    return Certificate(str(cert_file), str(key_file), str(ca_cert), wanted, source)


def wanted_names(addr: str, all_interfaces: bool) -> tuple[str, ...]:
    """The names a certificate for ``addr`` must hold, in a stable order."""
    names = ["localhost", "127.0.0.1", "::1"]
    extra = [addr.strip("[]")] if addr else []
    if all_interfaces:
        host = socket.gethostname()
        if host:
            extra += [host, f"{host.split('.')[0]}.local"]
        extra += machine_addresses()
    for name in extra:
        if name and name not in ("0", "0.0.0.0", "::") and _normal(name) not in names:
            names.append(_normal(name))
    return tuple(names)


def _normal(name: str) -> str:
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name.lower().rstrip(".")


def _general_names(names: tuple[str, ...]) -> list[Any]:
    x509 = _x509()
    out = []
    for name in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            out.append(x509.DNSName(name))
    return out


_USAGES = (
    "digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
    "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only",
)  # fmt: skip


def _key_usage(*granted: str) -> Any:
    return _x509().KeyUsage(**{usage: usage in granted for usage in _USAGES})


def names_of(certificate: Any) -> tuple[str, ...]:
    """The DNS names and IP addresses a certificate is valid for (its SAN, else its CN)."""
    x509 = _x509()
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        from cryptography.x509.oid import NameOID

        common = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return tuple(str(a.value) for a in common)
    return (
        *(str(n) for n in san.get_values_for_type(x509.DNSName)),
        *(str(ip) for ip in san.get_values_for_type(x509.IPAddress)),
    )


def _usable_leaf(cert_file: Path, key_file: Path, ca: Any, wanted: tuple[str, ...]) -> bool:
    if not (cert_file.exists() and key_file.exists()):
        return False
    try:
        leaf = _read_cert(cert_file)
    except (OSError, ValueError):
        return False
    x509 = _x509()
    try:
        authority = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        ours = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.public_key())
    except x509.ExtensionNotFound:
        return False
    left = _not_after(leaf) - _now()
    return (
        authority.key_identifier == ours.key_identifier
        and left > datetime.timedelta(days=RENEW_DAYS)
        and sorted(map(_normal, names_of(leaf))) == sorted(wanted)
    )


def _read_cert(path: Path) -> Any:
    return _x509().load_pem_x509_certificate(path.read_bytes())


def _not_after(certificate: Any) -> datetime.datetime:
    value = getattr(certificate, "not_valid_after_utc", None)  # cryptography >= 42
    return value if value is not None else certificate.not_valid_after.replace(tzinfo=datetime.UTC)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _owner() -> str:
    with contextlib.suppress(Exception):
        return f"{getpass.getuser()}@{socket.gethostname()}"
    return socket.gethostname()


def _key_pem(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _cert_pem(certificate: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return bytes(certificate.public_bytes(serialization.Encoding.PEM))


def _publish(path: Path, data: bytes, private: bool, replace: bool) -> bool:
    """Write ``path`` whole or not at all (a temporary file, then a rename or a link); a private
    file is 0600 from its creation. Without ``replace``, False when the path exists already."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o644)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        if replace:
            os.replace(temporary, path)
            return True
        try:
            os.link(temporary, path)
        except FileExistsError:
            return False
        return True
    except OSError as exc:
        raise TlsError(f"Cannot write {str(path)!r}: {exc.strerror}.") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
