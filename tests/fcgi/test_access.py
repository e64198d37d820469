"""FCGI_WEB_SERVER_ADDRS: only the listed web servers may talk FastCGI to the app (flup honoured
it in the accept loops we replaced)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fcgi.access import allowed, web_server_addrs
from tests.fcgi.clients import fcgi_get
from tests.support import free_port, wait_until


@pytest.mark.parametrize("method", ["prefork", "threaded"])
def test_a_peer_not_in_the_list_is_closed_on_and_a_listed_one_served(fcgi_server, method):
    refused_port, served_port = free_port(), free_port()
    refusing = fcgi_server(
        "host=127.0.0.1",
        f"port={refused_port}",
        f"method={method}",
        env={"FCGI_WEB_SERVER_ADDRS": "192.0.2.1"},
    )
    with pytest.raises((EOFError, ConnectionError)):
        fcgi_get(("127.0.0.1", refused_port), "/pid")
    wait_until(
        lambda: "connection from 127.0.0.1 refused: not in FCGI_WEB_SERVER_ADDRS" in refusing.log(),
        10,
        what="the refusal in the log",
    )
    serving = fcgi_server(
        "host=127.0.0.1",
        f"port={served_port}",
        f"method={method}",
        env={"FCGI_WEB_SERVER_ADDRS": "192.0.2.1, 127.0.0.1"},
    )
    assert fcgi_get(("127.0.0.1", served_port), "/pid").status == 200
    assert "refused" not in serving.log()


def test_a_unix_socket_is_refused_when_the_list_is_set(fcgi_server, run_dir: Path):
    sock = run_dir / "sock" / "listed.sock"
    server = fcgi_server(f"socket={sock}", env={"FCGI_WEB_SERVER_ADDRS": "127.0.0.1"})
    with pytest.raises((EOFError, ConnectionError)):
        fcgi_get(str(sock), "/pid")
    wait_until(lambda: "unix socket refused" in server.log(), 10, what="the refusal")


def test_addresses_are_compared_in_their_normal_form():
    addrs = web_server_addrs({"FCGI_WEB_SERVER_ADDRS": " 0:0::1 ,10.0.0.7,,"})
    assert addrs == frozenset({"::1", "10.0.0.7"})
    assert allowed(("::1", 9000, 0, 0), addrs)
    assert allowed(("10.0.0.7", 9000), addrs)
    assert not allowed(("10.0.0.8", 9000), addrs)
    assert not allowed("", addrs)  # what accept() gives for a unix socket
    assert web_server_addrs({}) is None and allowed("", None)
