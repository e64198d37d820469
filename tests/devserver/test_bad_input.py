"""Bad command lines of runserver, testserver and runfcgi: one line in Django's words, exit 1,
nothing bound, no traceback (issue 10: each of these gave a traceback or a wrong message)."""

from __future__ import annotations

import pytest

from devserver.addrport import parse
from tests.devserver.conftest import run_manage
from tests.support import free_port, port_is_free

LONG_LABEL = "a" * 300  # DNS allows 63 characters a label: the idna codec raises UnicodeError


@pytest.mark.parametrize(
    "args",
    [[f"{LONG_LABEL}:8000"], ["-6", f"{LONG_LABEL}:8000"], [f"{LONG_LABEL}.example:8000"]],
    ids=["label", "ipv6 flag", "first of two labels"],
)
def test_runserver_with_a_host_label_too_long_is_djangos_bad_address_error(site, args):
    result = run_manage(site, "runserver", *args)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f'CommandError: "{args[-1]}" is not a valid port number or address:port pair.'
    )
    assert result.stdout == ""


def test_host_names_up_to_what_dns_allows_are_accepted():
    longest = ".".join(["a" * 63] * 3 + ["a" * 61])  # 253 characters, labels of 63 at most
    assert parse(f"{longest}:8000", False).addr == longest
    assert parse(f"{'a' * 63}:8000", False).addr == "a" * 63


def test_testserver_with_a_host_label_too_long_is_the_same_error(site):
    result = run_manage(site, "testserver", "--noinput", "--addrport", f"{LONG_LABEL}:8000")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f'CommandError: "{LONG_LABEL}:8000" is not a valid port number or address:port pair.'
    )


def test_adminmedia_naming_a_file_says_it_is_not_a_directory(site):
    port = free_port()
    result = run_manage(site, "runserver", "--adminmedia=/etc/passwd", f"127.0.0.1:{port}")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "CommandError: The --adminmedia path '/etc/passwd' is not a directory."
    )
    assert port_is_free(port)


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (
            [f"host={LONG_LABEL}", "port=8000"],
            f"CommandError: host={LONG_LABEL}: not a valid host name or address",
        ),
        (["host=127.0.0.1", "port={port}", "pidfile={dir}"], "pidfile={dir}: is a directory"),
        (["host=127.0.0.1", "port={port}", "outlog={dir}"], "outlog={dir}: is a directory"),
        (["host=127.0.0.1", "port={port}", "errlog={dir}"], "errlog={dir}: is a directory"),
    ],
    ids=["long host label", "pidfile", "outlog", "errlog"],
)
@pytest.mark.parametrize("daemonize", ["false", "true"])
def test_runfcgi_bad_paths_and_hosts_are_one_line(site, tmp_path, words, message, daemonize):
    port = free_port()
    words = [w.format(port=port, dir=tmp_path) for w in words]
    result = run_manage(site, "runfcgi", f"daemonize={daemonize}", *words)
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("CommandError: ")
    assert message.format(dir=tmp_path) in result.stderr
    assert port_is_free(port)
