"""runserver --https: the local CA's certificate verified by curl, Python's ssl and Chromium; the
user's own files; plain HTTP redirected (by the worker and by the supervisor's error page);
reloads, static files, the error page and ASGI over TLS.

Every test points DEVSERVER_CAROOT at a directory of its own, and HOME too where NSS is used:
nothing here touches this machine's trust stores.
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import ssl
import subprocess
from pathlib import Path

import pytest

from tests.devserver.conftest import BANNER_END, run_manage
from tests.support import free_port, http_get, wait_until

pytest.importorskip("cryptography", reason="runserver --https needs cryptography")


@pytest.fixture
def caroot(tmp_path) -> Path:
    return tmp_path / "caroot"


def https_get(port: int, path: str = "/", cafile: Path | None = None, host: str = "localhost"):
    """GET over TLS, verifying the certificate against ``cafile`` and the host name."""
    context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    conn = http.client.HTTPSConnection(host, port, timeout=10, context=context)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read().decode("utf-8", "replace")
    finally:
        conn.close()


def start_https(runserver, caroot: Path, *args: str, host: str = "127.0.0.1", **kw):
    env = {"DEVSERVER_CAROOT": str(caroot), **kw.pop("env", {})}
    server = runserver("--https", *args, env=env, wait=False, host=host, **kw)
    server.proc.wait_for_log(BANNER_END, timeout=30)
    return server


def ca_file(caroot: Path) -> Path:
    return caroot / "rootCA.pem"


def wait_https(server, path: str, status: int, cafile: Path | None, contains: str = ""):
    def check():
        got = https_get(server.port, path, cafile)
        return got if got[0] == status and contains in got[2] else None

    return wait_until(check, 30, what=f"https {path} -> {status}", describe=server.proc.describe)


def curl(*args: str) -> subprocess.CompletedProcess:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    return subprocess.run(
        ["curl", "-sS", "--max-time", "10", *args], capture_output=True, text=True, timeout=30
    )


def test_the_local_cas_certificate_is_verified_for_localhost_and_127_0_0_1(runserver, caroot):
    server = start_https(runserver, caroot)
    log = server.proc.log()
    assert f"Starting development server at https://127.0.0.1:{server.port}/" in log
    assert "local CA" in log and str(caroot) in log, log
    body = wait_https(server, "/", 200, ca_file(caroot))[2]
    assert "Catalog" in body
    for host in ("localhost", "127.0.0.1"):
        done = curl("--cacert", str(ca_file(caroot)), f"https://{host}:{server.port}/")
        assert done.returncode == 0, done.stderr
        assert "Catalog" in done.stdout
    # Not trusted without the CA: the verification is real.
    done = curl(f"https://localhost:{server.port}/")
    assert done.returncode == 60, (done.returncode, done.stderr)  # CURLE_PEER_FAILED_VERIFICATION
    # The request log is Django's, over TLS too.
    server.proc.wait_for_log('"GET / HTTP/1.1" 200')


def test_ipv6_loopback_is_in_the_certificate(runserver, caroot):
    try:
        socket.socket(socket.AF_INET6).bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    server = start_https(runserver, caroot, "-6", host="::1")
    done = wait_until(
        lambda: (
            r
            if (
                r := curl("--cacert", str(ca_file(caroot)), f"https://[::1]:{server.port}/")
            ).returncode
            == 0
            else None
        ),
        30,
        what="curl https://[::1]",
        describe=server.proc.describe,
    )
    assert "Catalog" in done.stdout


def test_plain_http_on_the_https_port_is_redirected(runserver, caroot):
    server = start_https(runserver, caroot)
    wait_https(server, "/", 200, ca_file(caroot))
    resp = http_get(server.port, "/catalog/?page=2", host="127.0.0.1")
    assert resp.status == 307, resp.text
    assert resp.headers["location"] == f"https://127.0.0.1:{server.port}/catalog/?page=2"
    server.proc.wait_for_log('"GET /catalog/?page=2 HTTP/1.1" 307')
    # The Host the browser asked for is kept; one that is not a host name is not.
    asked = {"Host": f"localhost:{server.port}"}
    resp = http_get(server.port, "/x", host="127.0.0.1", headers=asked)
    assert resp.headers["location"] == f"https://localhost:{server.port}/x"
    resp = http_get(server.port, "//evil.example/", host="127.0.0.1", headers={"Host": "a b"})
    assert resp.headers["location"] == f"https://127.0.0.1:{server.port}/evil.example/"
    # And the server still serves TLS after all that.
    wait_https(server, "/", 200, ca_file(caroot))


def test_reloads_static_files_and_the_error_page_over_tls(runserver, caroot):
    server = start_https(runserver, caroot)
    cafile = ca_file(caroot)
    wait_https(server, "/diag/version/", 200, cafile, contains="0")
    (server.site / "diagnostics" / "version.py").write_text("VERSION = 41\n")
    wait_https(server, "/diag/version/", 200, cafile, contains="41")
    status, headers, body = https_get(server.port, "/static/css/site.css", cafile)
    assert status == 200 and headers["Content-Type"].startswith("text/css"), (status, headers)
    # Broken code: the supervisor answers, over TLS, with the error page; plain HTTP is still
    # redirected (by the supervisor now).
    server.edit("catalog/views.py", "def index(request):", "def index(request) oops:")
    status, _, body = wait_https(server, "/", 500, cafile, contains="SyntaxError")
    assert "catalog/views.py" in body
    resp = http_get(server.port, "/", host="127.0.0.1")
    assert resp.status == 307 and resp.headers["location"].startswith("https://")
    done = curl("--cacert", str(cafile), f"https://localhost:{server.port}/")
    assert done.returncode == 0 and "SyntaxError" in done.stdout, done.stderr
    server.edit("catalog/views.py", "def index(request) oops:", "def index(request):")
    wait_https(server, "/", 200, cafile, contains="Catalog")


def test_asgi_over_tls(runserver, caroot):
    pytest.importorskip("uvicorn")
    server = start_https(runserver, caroot, "--asgi")
    log = server.proc.log()
    assert f"Starting ASGI development server at https://127.0.0.1:{server.port}/" in log
    wait_https(server, "/diag/async/", 200, ca_file(caroot))
    resp = http_get(server.port, "/diag/async/?a=1", host="127.0.0.1")
    assert resp.status == 307
    assert resp.headers["location"] == f"https://127.0.0.1:{server.port}/diag/async/?a=1"
    (server.site / "diagnostics" / "version.py").write_text("VERSION = 9\n")
    wait_https(server, "/diag/async/", 200, ca_file(caroot), contains="9 ")
    done = curl("--cacert", str(ca_file(caroot)), f"https://localhost:{server.port}/")
    assert done.returncode == 0 and "Catalog" in done.stdout, done.stderr


def make_self_signed(directory: Path, name: str = "localhost") -> tuple[Path, Path]:
    cert, key = directory / f"{name}.pem", directory / f"{name}-key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-days", "2", "-subj", f"/CN={name}", "-addext",
            f"subjectAltName=DNS:{name},IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def test_own_certificate_and_key_files(runserver, tmp_path, caroot):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = make_self_signed(tmp_path)
    server = runserver(
        "--cert-file", str(cert), "--key-file", str(key),
        env={"DEVSERVER_CAROOT": str(caroot)}, wait=False,
    )  # fmt: skip
    server.proc.wait_for_log(BANNER_END, timeout=30)
    assert f"https://127.0.0.1:{server.port}/" in server.proc.log()
    assert str(cert) in server.proc.log()
    wait_https(server, "/", 200, cert)
    assert not caroot.exists()  # no CA made when the user brings a certificate
    # The key in the certificate's own file works too.
    both = tmp_path / "both.pem"
    both.write_text(cert.read_text() + key.read_text())
    other = runserver("--cert-file", str(both), wait=False)
    other.proc.wait_for_log(BANNER_END, timeout=30)
    wait_https(other, "/", 200, cert)


@pytest.mark.parametrize(
    "case", ["missing-cert", "missing-key", "mismatch", "garbage", "key-without-cert"]
)
def test_bad_certificate_files_are_one_line_and_exit_1(site, tmp_path, case):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = make_self_signed(tmp_path)
    _, other_key = make_self_signed(tmp_path, "other")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    args = {
        "missing-cert": ["--cert-file", str(tmp_path / "nope.pem"), "--key-file", str(key)],
        "missing-key": ["--cert-file", str(cert), "--key-file", str(tmp_path / "nope.pem")],
        "mismatch": ["--cert-file", str(cert), "--key-file", str(other_key)],
        "garbage": ["--cert-file", str(garbage), "--key-file", str(key)],
        "key-without-cert": ["--key-file", str(key)],
    }[case]
    port = free_port()
    done = run_manage(site, "runserver", f"127.0.0.1:{port}", *args, timeout=60)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    assert len(lines) == 1 and lines[0].startswith("CommandError: "), done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_chromium_trusts_the_page_once_the_ca_is_installed(site, runserver, caroot, tmp_path):
    """The whole path a developer takes: ``devserver_ca install`` (into this test's own NSS
    database: HOME is a temporary directory), then Chromium opens the page with no warning."""
    if shutil.which("certutil") is None:
        pytest.skip("certutil is not installed (apt-get install libnss3-tools)")
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed")
    from tests.browser import CHROMIUM, FLAGS

    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM}")
    home = tmp_path / "home"
    home.mkdir()
    env = {"DEVSERVER_CAROOT": str(caroot), "HOME": str(home), "DEVSERVER_CA_SYSTEM_DIR": ""}
    server = start_https(runserver, caroot, env=env)
    wait_https(server, "/", 200, ca_file(caroot))
    url = f"https://localhost:{server.port}/"
    driver = sync_playwright().start()
    try:

        def visit() -> tuple[bool, str]:
            browser = driver.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=FLAGS, env={**os.environ, **env}
            )
            try:
                page = browser.new_page()
                try:
                    page.goto(url, timeout=15000)
                except Error as exc:
                    return False, str(exc).splitlines()[0]
                return True, page.content()
            finally:
                browser.close()

        trusted, detail = visit()
        assert not trusted and "ERR_CERT_AUTHORITY_INVALID" in detail, detail
        done = run_manage(site, "devserver_ca", "install", env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        trusted, detail = visit()
        assert trusted, detail
        assert "Catalog" in detail
    finally:
        driver.stop()


def test_testserver_over_https(testserver, caroot):
    server = testserver("catalog", "--https", env={"DEVSERVER_CAROOT": str(caroot)}, wait=False)
    server.proc.wait_for_log(BANNER_END, timeout=60)
    assert f"https://127.0.0.1:{server.port}/" in server.proc.log()
    body = wait_https(server, "/", 200, ca_file(caroot))[2]
    assert "Espresso Blend" in body  # the fixture's data, over TLS
    assert http_get(server.port, "/", host="127.0.0.1").status == 307
