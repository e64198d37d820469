"""``manage.py runfcgi`` serving examples/mysite behind a real nginx, from examples/nginx/.

Every request goes through nginx on a free loopback port; nginx's workers run unprivileged
(www-data when the tests run as root), so the unix sockets are reached the documented way.
"""

from __future__ import annotations

import collections
import hashlib
import json
import signal
import socket
from pathlib import Path

import pytest

from tests.fcgi.clients import reset
from tests.support import free_port, http_request, wait_until

pytestmark = pytest.mark.nginx

MB = 1024 * 1024

CONFIGS = [
    ("fastcgi-unix.conf", "fcgi", "prefork", "unix"),
    ("fastcgi-unix.conf", "fcgi", "threaded", "unix"),
    ("fastcgi-tcp.conf", "fcgi", "prefork", "tcp"),
    ("fastcgi-tcp.conf", "fcgi", "threaded", "tcp"),
    ("scgi.conf", "scgi", "prefork", "unix"),
    ("scgi.conf", "scgi", "threaded", "unix"),
]


def _start(fcgi_server, nginx, site: Path, run_dir: Path, conf: str, *options: str, **render):  # type: ignore[no-untyped-def]
    """runfcgi on the socket (or port) the config names, then nginx in front of it."""
    if "fastcgi-tcp" in conf:
        upstream = free_port()
        server = fcgi_server(
            "host=127.0.0.1", f"port={upstream}", *options, site=site, name="runfcgi"
        )
        render["upstream_port"] = upstream
    else:
        name = "scgi.sock" if conf == "scgi.conf" else "fcgi.sock"
        server = fcgi_server(
            f"socket={run_dir / 'sock' / name}", "umask=007", *options, site=site, name="runfcgi"
        )
    return server, nginx(conf, **render)


def _get(port: int, path: str, **kw: object):  # type: ignore[no-untyped-def]
    return http_request("127.0.0.1", port, path, timeout=30, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("conf", "protocol", "method", "transport"), CONFIGS, ids=["-".join(c[1:]) for c in CONFIGS]
)
def test_the_site_through_nginx(
    fcgi_server,
    nginx,
    site: Path,
    run_dir: Path,
    conf: str,
    protocol: str,
    method: str,
    transport: str,
) -> None:
    server, web = _start(
        fcgi_server, nginx, site, run_dir, conf, f"protocol={protocol}", f"method={method}"
    )
    port = web.port

    page = _get(port, "/")
    assert page.status == 200, web.error_log()
    assert "<h1>Catalog</h1>" in page.text and "The Django Book" in page.text

    body = bytes(range(256)) * 4096  # 1 MB
    echo = _get(port, "/diag/echo/?q=1", method="POST", body=body)
    assert echo.status == 200
    data = json.loads(echo.body)
    assert data["body_length"] == MB and data["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert data["query"] == {"q": "1"} and data["path"] == "/diag/echo/"

    stream = _get(port, "/diag/stream/?mb=10")
    assert stream.status == 200 and stream.body == b"x" * (10 * MB)
    big = _get(port, "/diag/big/?mb=10")
    assert big.status == 200 and big.body == b"y" * (10 * MB)

    unicode_path = _get(port, "/diag/path/caf%C3%A9/%E2%9C%93")
    assert unicode_path.status == 200
    assert json.loads(unicode_path.body) == {
        "path": "/diag/path/café/✓",
        "path_info": "/diag/path/café/✓",
        "rest": "café/✓",
    }
    headers = _get(
        port,
        "/diag/echo/",
        headers={"X-Latin": "café", "X-Utf8": "✓ café".encode()},  # type: ignore[dict-item]
    )
    seen = json.loads(headers.body)["headers"]
    assert seen["X-Latin"] == "café"
    assert seen["X-Utf8"] == "✓ café".encode().decode("latin-1")  # WSGI: bytes as latin-1

    redirect = _get(port, "/diag/redirect/")
    assert redirect.status == 302 and redirect.headers["location"] == "/"
    assert _get(port, "/no/such/page/").status == 404
    assert _get(port, "/diag/fail/").status == 500

    server.proc.signal(signal.SIGTERM)
    assert server.proc.wait_exit(15) == 0
    assert not (run_dir / "sock" / "fcgi.sock").exists()
    assert not (run_dir / "sock" / "scgi.sock").exists()
    log = server.log()  # the only traceback is Django's own log of /diag/fail/
    assert log.count("Traceback") == log.count("Internal Server Error: /diag/fail/") == 1


def test_the_site_under_a_prefix_location(fcgi_server, nginx, site: Path, run_dir: Path) -> None:
    _, web = _start(fcgi_server, nginx, site, run_dir, "prefix.conf", "method=threaded")
    path = json.loads(_get(web.port, "/app/diag/path/caf%C3%A9").body)
    assert path == {"path": "/app/diag/path/café", "path_info": "/diag/path/café", "rest": "café"}
    echo = json.loads(_get(web.port, "/app/diag/echo/").body)
    assert echo["script_name"] == "/app" and echo["echo_url"] == "/app/diag/echo/"
    redirect = _get(web.port, "/app/diag/redirect/")
    assert redirect.status == 302 and redirect.headers["location"] == "/app/"
    page = _get(web.port, "/app/")
    assert page.status == 200 and 'href="/app/products/' in page.text


def test_stock_fastcgi_params_do_not_route_everything_to_the_root(
    fcgi_server, nginx, site: Path, run_dir: Path
) -> None:
    """With only `include fastcgi_params` (SCRIPT_NAME = the URI, no PATH_INFO), flup answered
    every URL with the home page and a 200 (defect 9)."""
    server, web = _start(
        fcgi_server,
        nginx,
        site,
        run_dir,
        "fastcgi-unix.conf",
        "method=threaded",
        drop=['fastcgi_param SCRIPT_NAME "";', "fastcgi_param PATH_INFO $uri;"],
    )
    echo = _get(web.port, "/diag/echo/")
    assert echo.status == 200
    assert json.loads(echo.body)["path"] == "/diag/echo/"
    assert _get(web.port, "/no/such/page/").status == 404
    assert _get(web.port, "/").status == 200
    log = server.log()
    assert log.count("Debian's stock fastcgi_params") == 1
    assert "fastcgi_split_path_info ^(/prefix)(/.*)$;" in log


def test_maxrequests_recycling_through_nginx(fcgi_server, nginx, site: Path, run_dir: Path) -> None:
    _, web = _start(
        fcgi_server,
        nginx,
        site,
        run_dir,
        "fastcgi-unix.conf",
        "maxrequests=3",
        "minspare=2",
        "maxspare=2",
        "maxchildren=2",
    )
    responses = [_get(web.port, "/diag/pid/") for _ in range(30)]
    assert {r.status for r in responses} == {200}
    counts = collections.Counter(r.text for r in responses)
    assert max(counts.values()) <= 3
    assert len(counts) >= 10


def test_a_client_reset_through_nginx_is_one_log_line(
    fcgi_server, nginx, site: Path, run_dir: Path
) -> None:
    server, web = _start(
        fcgi_server, nginx, site, run_dir, "fastcgi-unix.conf", "maxchildren=1", "maxspare=1",
        "minspare=1",
    )  # fmt: skip
    pid = _get(web.port, "/diag/pid/").text

    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.settimeout(10)
    client.connect(("127.0.0.1", web.port))
    client.sendall(b"GET /diag/stream/?mb=64 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert client.recv(4096).startswith(b"HTTP/1.1 200")
    reset(client)

    server.proc.wait_for_log("client went away", timeout=30)
    wait_until(lambda: _get(web.port, "/diag/pid/").text == pid, 10, what="the same child")
    log = server.log()
    assert log.count("client went away") == 1
    assert "Traceback" not in log
