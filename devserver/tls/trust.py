"""Trusting the local CA once: the system's store and the browsers' NSS databases.

Where each platform keeps trusted CAs, and what ``manage.py devserver_ca install`` does there:

- Debian, Ubuntu: ``/usr/local/share/ca-certificates/<name>.crt`` and ``update-ca-certificates``;
  Fedora, RHEL: ``/etc/pki/ca-trust/source/anchors/<name>.crt`` and ``update-ca-trust``.
  As root it does it; otherwise it prints the ``sudo`` commands.
- NSS (Chromium on Linux: ``~/.pki/nssdb``, made if missing; every Firefox profile under
  ``~/.mozilla/firefox``): ``certutil -A``. Without certutil it prints how to install it and the
  command to run.
- macOS: ``security add-trusted-cert``; Windows: ``certutil -addstore``: printed, to be run by
  the user (they ask for a password or a confirmation).

For tests and unusual systems: ``DEVSERVER_CA_SYSTEM_DIR`` names the system's anchors directory
(empty: leave the system store alone); NSS databases are found under ``$HOME``.
Each step says in one line what it did or what to run; nothing raises.
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

STORES = (
    (Path("/usr/local/share/ca-certificates"), ["update-ca-certificates"]),
    (Path("/etc/pki/ca-trust/source/anchors"), ["update-ca-trust", "extract"]),
)


@dataclass
class Step:
    done: bool  # False: the line says what the user should run
    line: str


def nickname() -> str:
    """The name the CA has in every store (one per user: two users' CAs never collide)."""
    try:
        user = getpass.getuser()
    except Exception:
        user = "user"
    return f"devserver local CA ({user})"


def install(ca_file: Path) -> list[Step]:
    if sys.platform == "darwin":
        return [_printed(["sudo", "security", "add-trusted-cert", "-d", "-r", "trustRoot",
                          "-k", "/Library/Keychains/System.keychain", str(ca_file)])]  # fmt: skip
    if sys.platform == "win32":
        return [_printed(["certutil", "-addstore", "-f", "ROOT", str(ca_file)])]
    return [*_system(ca_file, add=True), *_nss(ca_file, add=True)]


def uninstall(ca_file: Path) -> list[Step]:
    if sys.platform == "darwin":
        return [_printed(["sudo", "security", "remove-trusted-cert", "-d", str(ca_file)])]
    if sys.platform == "win32":
        return [_printed(["certutil", "-delstore", "ROOT", nickname()])]
    return [*_system(ca_file, add=False), *_nss(ca_file, add=False)]


def _printed(command: list[str]) -> Step:
    return Step(False, "Run: " + " ".join(_quote(part) for part in command))


def _quote(part: str) -> str:
    return f'"{part}"' if " " in part or "(" in part else part


def _system_store() -> tuple[Path, list[str]] | None:
    if "DEVSERVER_CA_SYSTEM_DIR" in os.environ:
        given = os.environ["DEVSERVER_CA_SYSTEM_DIR"]
        return (Path(given), ["update-ca-certificates"]) if given else None
    for directory, update in STORES:
        if directory.is_dir() and shutil.which(update[0]):
            return directory, update
    return None


def _system(ca_file: Path, add: bool) -> list[Step]:
    store = _system_store()
    if store is None:
        return []
    directory, update = store
    target = directory / (nickname().replace(" ", "-").replace("(", "").replace(")", "") + ".crt")
    if not os.access(directory, os.W_OK):
        copy = ["sudo", "cp", str(ca_file), str(target)] if add else ["sudo", "rm", str(target)]
        return [_printed(copy), _printed(["sudo", *update])]
    try:
        if add:
            shutil.copyfile(ca_file, target)
            os.chmod(target, 0o644)
        elif target.exists():
            target.unlink()
        else:
            return [Step(True, f"The system store ({directory}) does not hold it.")]
    except OSError as exc:
        return [Step(False, f"Could not change {target}: {exc.strerror}.")]
    steps = [Step(True, f"{'Added to' if add else 'Removed from'} the system store: {target}")]
    if shutil.which(update[0]) and "DEVSERVER_CA_SYSTEM_DIR" not in os.environ:
        done = subprocess.run(update, capture_output=True, text=True)
        if done.returncode != 0:
            steps.append(Step(False, f"{' '.join(update)} failed: run it yourself."))
    return steps


def nss_databases() -> Iterator[Path]:
    """Chromium's NSS database (``~/.pki/nssdb``) and every Firefox profile's."""
    home = Path.home()
    yield home / ".pki" / "nssdb"
    for base in (
        home / ".mozilla" / "firefox",
        home / "snap" / "firefox" / "common" / ".mozilla" / "firefox",
    ):
        if base.is_dir():
            yield from sorted(p.parent for p in base.glob("*/cert9.db"))


def _nss(ca_file: Path, add: bool) -> list[Step]:
    databases = list(nss_databases())
    certutil = shutil.which("certutil")
    if certutil is None:
        package = "libnss3-tools" if shutil.which("apt-get") else "nss-tools"
        manager = "apt-get" if shutil.which("apt-get") else "dnf"
        return [
            Step(
                False, f"certutil is missing (browsers' NSS databases): {manager} install {package}"
            ),
            _printed(_certutil("certutil", databases[0], ca_file, add)),
        ]
    steps = []
    for database in databases:
        if not (database / "cert9.db").exists():
            if not add:
                continue
            database.mkdir(parents=True, exist_ok=True, mode=0o700)
            made = subprocess.run(
                [certutil, "-N", "--empty-password", "-d", f"sql:{database}"],
                capture_output=True, text=True,
            )  # fmt: skip
            if made.returncode != 0:
                steps.append(Step(False, f"Could not make the NSS database {database}."))
                continue
        done = subprocess.run(
            _certutil(certutil, database, ca_file, add), capture_output=True, text=True
        )
        if done.returncode == 0:
            steps.append(
                Step(True, f"{'Added to' if add else 'Removed from'} the NSS database {database}")
            )
        elif not add:
            steps.append(Step(True, f"The NSS database {database} does not hold it."))
        else:
            reason = (done.stderr.strip().splitlines() or ["failed"])[-1]
            steps.append(Step(False, f"Could not add it to {database}: {reason}"))
    return steps


def _certutil(certutil: str, database: Path, ca_file: Path, add: bool) -> list[str]:
    if add:
        return [
            certutil,
            "-A",
            "-d",
            f"sql:{database}",
            "-t",
            "C,,",
            "-n",
            nickname(),
            "-i",
            str(ca_file),
        ]
    return [certutil, "-D", "-d", f"sql:{database}", "-n", nickname()]
