"""``python -m reloader --tls-cert``: the supervisor's error page over TLS, plain HTTP redirected,
a certificate that cannot be used refused in one line. (The program serves TLS itself; runserver's
side is in tests/devserver/test_https.py.)"""

from __future__ import annotations

import http.client
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from tests.support import PYTHON, free_port, http_get, wait_until


@pytest.fixture
def certificate(tmp_path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-days", "2", "-subj", "/CN=localhost", "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def https_get(port: int, cafile: Path, path: str = "/") -> tuple[int, str]:
    context = ssl.create_default_context(cafile=str(cafile))
    conn = http.client.HTTPSConnection("localhost", port, timeout=10, context=context)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode("utf-8", "replace")
    finally:
        conn.close()


def test_the_error_page_goes_over_tls_and_plain_http_is_redirected(spawn, app_dir, certificate):
    cert, key = certificate
    (app_dir / "appmod.py").write_text('VERSION = "v1" + NOT_DEFINED\n')
    port = free_port()
    argv = [PYTHON, "-m", "reloader", "--bind", f"127.0.0.1:{port}"]
    argv += ["--tls-cert", str(cert), "--tls-key", str(key), "--", PYTHON, "server.py"]
    proc = spawn(argv, cwd=app_dir, name="reloader")
    _, body = wait_until(
        lambda: r if (r := https_get(port, cert))[0] == 500 else None,
        20,
        what="the error page over TLS",
        describe=proc.describe,
    )
    assert "NameError" in body and "appmod.py" in body
    resp = http_get(port, "/some/where?x=1")
    assert resp.status == 307
    assert resp.headers["location"] == f"https://127.0.0.1:{port}/some/where?x=1"
    # A client that does not trust the certificate is dropped, and the supervisor goes on.
    with pytest.raises(ssl.SSLError):
        https_get(port, Path(ssl.get_default_verify_paths().cafile or "/nonexistent"))
    # A connection that never sends a byte does not hold the others up (non-blocking).
    idle = socket.create_connection(("127.0.0.1", port))
    try:
        started = time.monotonic()
        assert https_get(port, cert)[0] == 500
        assert time.monotonic() - started < 2
    finally:
        idle.close()
    assert "Traceback" not in proc.log().split("NameError")[-1]  # nothing raised since


@pytest.mark.parametrize("case", ["missing", "mismatch", "key-without-cert"])
def test_a_certificate_that_cannot_be_used_is_one_line(tmp_path, certificate, case):
    cert, key = certificate
    other = tmp_path / "other-key.pem"
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-out", str(other)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    args = {
        "missing": ["--tls-cert", str(tmp_path / "nope.pem")],
        "mismatch": ["--tls-cert", str(cert), "--tls-key", str(other)],
        "key-without-cert": ["--tls-key", str(key)],
    }[case]
    port = free_port()
    done = subprocess.run(
        [PYTHON, "-m", "reloader", "--bind", f"127.0.0.1:{port}", *args, "--", PYTHON, "-c", "1"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("reloader: error: "), done.stderr
