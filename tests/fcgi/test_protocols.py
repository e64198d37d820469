"""FastCGI, SCGI and AJP spoken directly on the socket: defects 6, 7, 8 and 11, and AJP itself
(nginx cannot speak AJP, so these clients stand in for mod_jk)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import statistics
import struct
import time
from pathlib import Path

import pytest

from tests.fcgi.clients import (
    FCGI_BEGIN_REQUEST,
    FCGI_PARAMS,
    FCGI_STDOUT,
    ajp_get,
    base_params,
    connect,
    fcgi_get,
    fcgi_get_values,
    fcgi_pair,
    fcgi_read_record,
    fcgi_read_response,
    fcgi_record,
    fcgi_request_bytes,
    parse_cgi_response,
    reset,
    scgi_get,
    scgi_request_bytes,
)
from tests.support import free_port, wait_until

GETTERS = {"fcgi": fcgi_get, "scgi": scgi_get, "ajp": ajp_get}


def _address(protocol: str, run_dir: Path, name: str = "s") -> tuple[str, str | tuple[str, int]]:
    if protocol == "ajp":  # AJP is a TCP protocol (mod_jk)
        port = free_port()
        return f"host=127.0.0.1 port={port}", ("127.0.0.1", port)
    sock = str(run_dir / "sock" / f"{name}.sock")
    return f"socket={sock}", sock


def _closed_by_server(sock: socket.socket, within: float = 5.0) -> bool:
    sock.settimeout(within)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


# -- defect 11: malformed records and oversized params ---------------------------------------
MALFORMED = {
    "short BEGIN_REQUEST": fcgi_record(FCGI_BEGIN_REQUEST, 1, b"\x00\x01\x00"),
    "version 9": fcgi_record(FCGI_BEGIN_REQUEST, 1, struct.pack("!HB5x", 1, 0), version=9),
    "param longer than its record": (
        fcgi_record(FCGI_BEGIN_REQUEST, 1, struct.pack("!HB5x", 1, 0))
        + fcgi_record(FCGI_PARAMS, 1, b"\x04\x7fPATH/x")
        + fcgi_record(FCGI_PARAMS, 1)
    ),
}


@pytest.mark.parametrize("method", ["prefork", "threaded"])
def test_malformed_records_close_the_connection_and_nothing_else(
    fcgi_server, run_dir: Path, method: str
) -> None:
    sock = str(run_dir / "sock" / "s.sock")
    extra = ["maxchildren=1", "maxspare=1", "minspare=1"] if method == "prefork" else []
    server = fcgi_server(f"socket={sock}", f"method={method}", *extra)
    pid = fcgi_get(sock, "/pid").text
    for name, data in MALFORMED.items():
        with connect(sock) as conn:
            conn.sendall(data)
            assert _closed_by_server(conn), f"{name}: connection left hanging"
        assert fcgi_get(sock, "/pid").text == pid, f"{name}: the worker died"
    log = server.log()
    assert log.count("protocol error from") == len(MALFORMED)
    assert "Traceback" not in log


def test_params_over_the_bound_are_refused(fcgi_server, run_dir: Path) -> None:
    sock = str(run_dir / "sock" / "s.sock")
    server = fcgi_server(f"socket={sock}", "method=threaded")
    params = base_params("/env")
    params["HTTP_X_HUGE"] = "h" * (2 * 1024 * 1024)  # flup accepted 64 MB
    started = time.monotonic()
    with connect(sock) as conn:
        # The server may stop reading once it has refused.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            conn.sendall(fcgi_request_bytes(params))
        response = fcgi_read_response(conn)
    assert response.status == 431
    assert time.monotonic() - started < 10
    assert "request params over" in server.log()
    assert fcgi_get(sock, "/pid").status == 200


def test_a_param_split_across_records_is_decoded(fcgi_server, run_dir: Path) -> None:
    sock = str(run_dir / "sock" / "s.sock")
    fcgi_server(f"socket={sock}", "method=threaded")
    params = base_params("/env")
    encoded = b"".join(fcgi_pair(k.encode(), v.encode()) for k, v in params.items())
    encoded += fcgi_pair(b"HTTP_X_SPLIT", b"across")
    middle = len(encoded) - 3  # cut inside the last pair's value
    data = (
        fcgi_record(FCGI_BEGIN_REQUEST, 1, struct.pack("!HB5x", 1, 0))
        + fcgi_record(FCGI_PARAMS, 1, encoded[:middle])
        + fcgi_record(FCGI_PARAMS, 1, encoded[middle:])
        + fcgi_record(FCGI_PARAMS, 1)
        + fcgi_record(5, 1)
    )
    with connect(sock) as conn:
        conn.sendall(data)
        response = fcgi_read_response(conn)
    assert json.loads(response.body)["headers"] == {"HTTP_X_SPLIT": "across"}


def test_get_values_is_answered(fcgi_server, run_dir: Path) -> None:
    sock = str(run_dir / "sock" / "s.sock")
    fcgi_server(f"socket={sock}", "maxchildren=7")
    values = fcgi_get_values(sock, ["FCGI_MAX_CONNS", "FCGI_MAX_REQS", "FCGI_MPXS_CONNS", "X"])
    assert values == {"FCGI_MAX_CONNS": "7", "FCGI_MAX_REQS": "7", "FCGI_MPXS_CONNS": "0"}


# -- defect 6: a big single-chunk response ---------------------------------------------------
@pytest.mark.parametrize("protocol", ["fcgi", "ajp"])
def test_a_big_single_chunk_costs_what_64k_chunks_cost(
    fcgi_server, run_dir: Path, protocol: str
) -> None:
    """flup cut records/packets off the front of the body: quadratic (0.54 s for 10 MB)."""
    option, address = _address(protocol, run_dir)
    fcgi_server(*option.split(), f"protocol={protocol}", "method=threaded")
    get = GETTERS[protocol]

    def timed(path: str) -> float:
        started = time.monotonic()
        response = get(address, path, query="mb=20", timeout=60)
        assert len(response.body) == 20 * 1024 * 1024
        return time.monotonic() - started

    timed("/big")  # warm up
    single = statistics.median(timed("/big") for _ in range(3))
    chunked = statistics.median(timed("/chunks") for _ in range(3))
    assert single < 3 * chunked + 0.2, f"one chunk {single:.3f}s, 64 KB chunks {chunked:.3f}s"


# -- defect 7: a client that resets mid-response ---------------------------------------------
def _start_download(protocol: str, address) -> socket.socket:  # type: ignore[no-untyped-def]
    conn = socket.socket(socket.AF_UNIX if isinstance(address, str) else socket.AF_INET)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    conn.settimeout(10)
    conn.connect(address)
    params = base_params("/stream", query="mb=64")
    if protocol == "fcgi":
        conn.sendall(fcgi_request_bytes(params))
    elif protocol == "scgi":
        conn.sendall(scgi_request_bytes(params))
    else:
        from tests.fcgi.clients import ajp_forward_request

        conn.sendall(ajp_forward_request("GET", "/stream", {"Host": "x"}, query="mb=64"))
    assert conn.recv(4096)
    return conn


@pytest.mark.parametrize("protocol", ["fcgi", "scgi", "ajp"])
def test_a_client_reset_costs_one_log_line(fcgi_server, run_dir: Path, protocol: str) -> None:
    option, address = _address(protocol, run_dir)
    server = fcgi_server(
        *option.split(),
        f"protocol={protocol}",
        "maxchildren=1",
        "maxspare=1",
        "minspare=1",
    )
    get = GETTERS[protocol]
    pid = get(address, "/pid").text

    reset(_start_download(protocol, address))

    server.proc.wait_for_log("client went away")
    assert get(address, "/pid").text == pid  # same worker: it did not die
    log = server.log()
    assert log.count("client went away") == 1
    assert "client went away during GET /stream" in log
    assert "Traceback" not in log


# -- defect 8: SCGI's wsgi.input.read() without a size ---------------------------------------
@pytest.mark.parametrize("method", ["prefork", "threaded"])
def test_scgi_read_without_size_stops_at_content_length(
    fcgi_server, run_dir: Path, method: str
) -> None:
    sock = str(run_dir / "sock" / "s.sock")
    server = fcgi_server(f"socket={sock}", "protocol=scgi", f"method={method}")
    body = bytes(range(256)) * 4096  # 1 MB
    response = scgi_get(sock, "/echo", method="POST", body=body, timeout=10)
    assert json.loads(response.body) == {
        "length": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
    }
    assert scgi_get(sock, "/pid").status == 200
    assert " GET /pid" not in server.log()  # no per-request INFO line (flup logged each)


# -- AJP, which nginx cannot test ------------------------------------------------------------
@pytest.mark.parametrize("method", ["prefork", "threaded"])
def test_ajp_requests(fcgi_server, method: str) -> None:
    port = free_port()
    address = ("127.0.0.1", port)
    fcgi_server("protocol=ajp", "host=127.0.0.1", f"port={port}", f"method={method}")

    env = json.loads(ajp_get(address, "/env", query="a=1", headers={"X-Name": "café"}).body)
    assert env["PATH_INFO"] == "/env" and env["QUERY_STRING"] == "a=1"
    assert env["headers"]["HTTP_X_NAME"] == "café"

    body = b"ajp-body " * 30000  # several GET_BODY round trips
    echo = json.loads(ajp_get(address, "/echo", method="POST", body=body).body)
    assert echo == {"length": len(body), "sha256": hashlib.sha256(body).hexdigest()}

    failed = ajp_get(address, "/fail")
    assert failed.status == 500  # flup's AJP error page said 200
    assert b"Internal Server Error" in failed.body

    assert ajp_get(address, "/latin").headers["x-latin"] == "café"
    assert ajp_get(address, "/nope").status == 404

    with connect(address) as conn:  # AJP connections are persistent
        first = ajp_get(address, "/pid", sock=conn).text
        assert ajp_get(address, "/pid", sock=conn).text == first


@pytest.mark.parametrize("protocol", ["fcgi", "scgi", "ajp"])
def test_app_exception_is_a_500_page_with_the_traceback_only_in_debug(
    fcgi_server, run_dir: Path, protocol: str
) -> None:
    option, address = _address(protocol, run_dir)
    server = fcgi_server(*option.split(), f"protocol={protocol}", "method=threaded", "debug")
    get = GETTERS[protocol]
    response = get(address, "/fail")
    assert response.status == 500
    assert b"RuntimeError: wsgiapp: this route fails on purpose" in response.body
    wait_until(lambda: "unhandled exception in the application for GET /fail" in server.log())

    option2, address2 = _address(protocol, run_dir, "quiet")
    fcgi_server(*option2.split(), f"protocol={protocol}", "method=threaded", "debug=false")
    quiet = get(address2, "/fail")
    assert quiet.status == 500 and b"RuntimeError" not in quiet.body


def test_fcgi_stdout_is_sent_in_big_records(fcgi_server, run_dir: Path) -> None:
    """Records of up to 64 KB, not flup's 8 KB (fewer records for nginx to parse)."""
    sock = str(run_dir / "sock" / "s.sock")
    fcgi_server(f"socket={sock}", "method=threaded")
    sizes = []
    with connect(sock) as conn:
        conn.sendall(fcgi_request_bytes(base_params("/big", query="mb=1")))
        while True:
            rtype, _, content = fcgi_read_record(conn)
            if rtype == FCGI_STDOUT:
                sizes.append(len(content))
            elif rtype == 3:
                break
    assert max(sizes) > 60000
    assert parse_cgi_response(b"HTTP: x\r\n\r\n").status == 200  # the helper itself
