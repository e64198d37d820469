"""runserver's addrport, parsed as Django parses it (no server needed: some forms bind beyond
loopback, which tests never do)."""

from __future__ import annotations

import pytest
from django.core.management.base import CommandError

from devserver.addrport import Address, parse


@pytest.mark.parametrize(
    ("addrport", "ipv6", "expected", "display"),
    [
        (None, False, Address("127.0.0.1", "8000", False, False), "127.0.0.1"),
        ("", True, Address("::1", "8000", True, True), "[::1]"),
        ("8001", False, Address("127.0.0.1", "8001", False, False), "127.0.0.1"),
        ("1.2.3.4:8000", False, Address("1.2.3.4", "8000", False, False), "1.2.3.4"),
        ("0:8000", False, Address("0", "8000", False, False), "0.0.0.0"),
        ("localhost:8000", False, Address("localhost", "8000", False, False), "localhost"),
        ("localhost:8000", True, Address("localhost", "8000", True, False), "localhost"),
        ("[::1]:8000", False, Address("::1", "8000", True, True), "[::1]"),
        ("[2001:db8::1]:8000", False, Address("2001:db8::1", "8000", True, True), "[2001:db8::1]"),
        ("7000", True, Address("::1", "7000", True, True), "[::1]"),
    ],
)
def test_the_forms_django_accepts(addrport, ipv6, expected, display):
    address = parse(addrport, ipv6)
    assert address == expected
    assert address.display == display


def test_a_subclass_default_is_used():
    assert parse(None, False, default_addr="0.0.0.0", default_port="9000") == Address(
        "0.0.0.0", "9000", False, False
    )
    assert parse("0:8000", False).bind_host == "0.0.0.0"


@pytest.mark.parametrize(
    ("addrport", "ipv6", "message"),
    [
        ("abc", False, '"abc" is not a valid port number or address:port pair.'),
        (":8000", False, '":8000" is not a valid port number or address:port pair.'),
        ("[::1", False, '"[::1" is not a valid port number or address:port pair.'),
        ("::1:8000", False, '"::1:8000" is not a valid port number or address:port pair.'),
        ("1.2.3.4:99999", False, "'99999' is not a valid port number."),
        (
            "999.1.1.1:8000",
            False,
            '"999.1.1.1:8000" is not a valid port number or address:port pair.',
        ),
        ("1.2.3.4:8000", True, '"1.2.3.4" is not a valid IPv6 address.'),
    ],
)
def test_bad_forms_are_djangos_command_errors(addrport, ipv6, message):
    with pytest.raises(CommandError) as error:
        parse(addrport, ipv6)
    assert str(error.value) == message
