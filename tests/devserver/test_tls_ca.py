"""The local CA (devserver.tls) on real files, checked with openssl and certutil; and
``manage.py devserver_ca`` against a throwaway HOME, CA directory and system store."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.devserver.conftest import run_manage
from tests.support import PYTHON, REPO, base_env

pytest.importorskip("cryptography", reason="the local CA needs cryptography")


@pytest.fixture
def caroot(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "caroot"
    monkeypatch.setenv("DEVSERVER_CAROOT", str(root))
    return root


def openssl(*args: str) -> str:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    done = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_ca_is_made_once_private_and_issues_what_openssl_verifies(caroot):
    from devserver import tls

    ca_file, made = tls.ensure_ca()
    assert made and ca_file == caroot / "rootCA.pem"
    assert stat.S_IMODE(os.stat(caroot).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(caroot / "rootCA-key.pem").st_mode) == 0o600
    assert tls.ensure_ca() == (ca_file, False)
    certificate = tls.local_certificate("127.0.0.1", all_interfaces=False)
    assert stat.S_IMODE(os.stat(certificate.key_file).st_mode) == 0o600
    assert openssl("verify", "-CAfile", str(ca_file), certificate.cert_file).strip().endswith("OK")
    text = openssl("x509", "-noout", "-text", "-in", certificate.cert_file)
    assert "DNS:localhost" in text and "IP Address:127.0.0.1" in text
    assert "IP Address:0:0:0:0:0:0:0:1" in text  # ::1
    assert "TLS Web Server Authentication" in text and "CA:FALSE" in text
    ca_text = openssl("x509", "-noout", "-text", "-in", str(ca_file))
    assert "CA:TRUE, pathlen:0" in ca_text and "Certificate Sign" in ca_text


def serial(path: str) -> str:
    return openssl("x509", "-noout", "-serial", "-in", path)


def test_the_certificate_is_kept_for_the_same_addresses_and_renewed_for_others(caroot):
    from devserver import tls

    first = tls.local_certificate("127.0.0.1", all_interfaces=False)
    assert tls.local_certificate("127.0.0.1", all_interfaces=False) == first
    kept = serial(first.cert_file)
    assert serial(tls.local_certificate("localhost", False).cert_file) == kept
    other = tls.local_certificate("myhost.test", all_interfaces=False)
    assert "myhost.test" in other.names
    assert serial(other.cert_file) != kept
    assert "DNS:myhost.test" in openssl("x509", "-noout", "-text", "-in", other.cert_file)
    everywhere = tls.local_certificate("0.0.0.0", all_interfaces=True)
    assert "0.0.0.0" not in everywhere.names
    for address in tls.machine_addresses():
        assert address in everywhere.names
    # A new CA: the old certificate is not taken for one of it.
    shutil.rmtree(caroot)
    again = tls.local_certificate("127.0.0.1", all_interfaces=False)
    ca = str(caroot / "rootCA.pem")
    assert openssl("verify", "-CAfile", ca, again.cert_file).strip().endswith("OK")


def test_two_servers_starting_at_once_end_with_one_ca(caroot):
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); from devserver import tls; "
        "c = tls.local_certificate('127.0.0.1', False); print(open(c.ca_file).read())"
    )
    env = base_env({"DEVSERVER_CAROOT": str(caroot)})
    procs = [
        subprocess.Popen(
            [PYTHON, "-c", code, str(REPO)], env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    try:
        outputs = [p.communicate(timeout=60)[0] for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert all(p.returncode == 0 for p in procs)
    assert len(set(outputs)) == 1 and "BEGIN CERTIFICATE" in outputs[0]
    assert sorted(os.listdir(caroot)) == sorted(
        ["rootCA.pem", "rootCA-key.pem", "localhost.pem", "localhost-key.pem"]
    )


def test_devserver_ca_path_install_uninstall(site, tmp_path):
    if shutil.which("certutil") is None:
        pytest.skip("certutil is not installed (apt-get install libnss3-tools)")
    home, anchors = tmp_path / "home", tmp_path / "anchors"
    home.mkdir()
    anchors.mkdir()
    caroot = tmp_path / "caroot"
    env = {"HOME": str(home), "DEVSERVER_CAROOT": str(caroot)}
    env["DEVSERVER_CA_SYSTEM_DIR"] = str(anchors)
    done = run_manage(site, "devserver_ca", "path", env=env)
    assert done.returncode == 0 and done.stdout.strip() == str(caroot / "rootCA.pem")
    done = run_manage(site, "devserver_ca", "install", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    nssdb = home / ".pki" / "nssdb"
    listed = subprocess.run(
        ["certutil", "-L", "-d", f"sql:{nssdb}"], capture_output=True, text=True, check=True
    ).stdout
    assert "devserver local CA" in listed
    installed = list(anchors.glob("*.crt"))
    assert len(installed) == 1
    assert installed[0].read_bytes() == (caroot / "rootCA.pem").read_bytes()
    done = run_manage(site, "devserver_ca", "uninstall", "--delete", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    listed = subprocess.run(
        ["certutil", "-L", "-d", f"sql:{nssdb}"], capture_output=True, text=True, check=True
    ).stdout
    assert "devserver local CA" not in listed
    assert not list(anchors.glob("*.crt")) and not caroot.exists()
    done = run_manage(site, "devserver_ca", "path", "--delete", env=env)
    assert done.returncode == 1 and done.stderr.strip().startswith("CommandError: ")
