"""Who sees a traceback on runserver's error pages: only where Django would show its technical
500 page (DEBUG on, a Host that ALLOWED_HOSTS accepts); everyone else gets a page that says
nothing, and the terminal still has it all."""

from __future__ import annotations

import pytest

from devserver.audience import declared_debug
from reloader.audience import Audience
from tests.support import http_get

SECRET = "s3cr3t-password-1234"
OTHER_HOSTS = ("anything.invalid", "attacker.example:8000", "")

BROKEN_SETTINGS = f'\nEMAIL_HOST_PASSWORD = "{SECRET}" + TYPO\n'
BROKEN_MODELS = f'\nraise RuntimeError("boom " + "{SECRET}")\n'
CHECK_ERROR = (
    "    in_stock = models.BooleanField(default=True)",
    "    in_stock = models.BooleanField(default=True)\n    weight = models.DecimalField()",
)


def get(server, host: str):
    return http_get(server.port, "/", headers={"Host": host} if host is not None else None)


def assert_generic(resp) -> None:
    assert resp.status == 500
    assert SECRET not in resp.text and "fields.E130" not in resp.text
    assert "Traceback" not in resp.text and "Error:" not in resp.text
    assert "Server Error (500)" in resp.text


def append(server, relative: str, text: str) -> None:
    path = server.site / relative
    path.write_text(path.read_text() + text)


@pytest.mark.parametrize(
    ("relative", "text", "shown"),
    [
        ("mysite/settings.py", BROKEN_SETTINGS, "NameError"),
        ("catalog/models.py", BROKEN_MODELS, "RuntimeError: boom"),
    ],
    ids=["settings", "models"],
)
def test_with_debug_the_traceback_is_for_allowed_hosts_only(runserver, relative, text, shown):
    server = runserver()
    append(server, relative, text)
    resp = server.wait_status("/", 500, contains=SECRET)
    assert shown in resp.text
    for host in OTHER_HOSTS:
        assert_generic(get(server, host))
    for host in (f"localhost:{server.port}", "127.0.0.1", "[::1]"):
        assert SECRET in get(server, host).text, host
    assert SECRET in server.proc.log()


@pytest.mark.parametrize(
    ("relative", "text"),
    [("mysite/settings.py", BROKEN_SETTINGS), ("catalog/models.py", BROKEN_MODELS)],
    ids=["settings", "models"],
)
def test_without_debug_nobody_sees_the_traceback(runserver, relative, text):
    server = runserver(env={"MYSITE_DEBUG": "0"})
    append(server, relative, text)
    server.proc.wait_for_log(SECRET, timeout=30)
    resp = server.wait_status("/", 500)
    assert_generic(resp)
    for host in (*OTHER_HOSTS, "localhost", "127.0.0.1"):
        assert_generic(get(server, host))


def test_check_errors_follow_the_same_rules(runserver):
    server = runserver()
    server.edit("catalog/models.py", *CHECK_ERROR)
    server.wait_status("/", 500, contains="fields.E130")
    for host in OTHER_HOSTS:
        assert_generic(get(server, host))


def test_check_errors_without_debug_are_shown_to_nobody(runserver):
    server = runserver(env={"MYSITE_DEBUG": "0"})
    server.edit("catalog/models.py", *CHECK_ERROR)
    server.proc.wait_for_log("fields.E130", timeout=30)
    for host in ("localhost", "127.0.0.1", *OTHER_HOSTS):
        assert_generic(get(server, host))


def test_debug_written_in_a_broken_settings_file_is_obeyed(runserver, site):
    # The settings cannot be imported; DEBUG = False is written there: no details for anyone.
    server = runserver()
    settings = site / "mysite" / "settings.py"
    text = settings.read_text().replace(
        'DEBUG = os.environ.get("MYSITE_DEBUG", "1") == "1"', "DEBUG = False"
    )
    settings.write_text(text + BROKEN_SETTINGS)
    server.proc.wait_for_log(SECRET, timeout=30)
    for host in ("localhost", "127.0.0.1", *OTHER_HOSTS):
        assert_generic(server.wait_status("/", 500) and get(server, host))


def test_declared_debug_reads_a_literal_only(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    cases = {
        "literal_off": ("DEBUG = True\nX = 1\nDEBUG = False\n", False),
        "literal_on": ("DEBUG: bool = True\nSECRET = TYPO\n", True),
        "computed": ("import os\nDEBUG = os.environ.get('D') == '1'\n", None),
        "unparsable": ("DEBUG = True\nDEBUG = = 1\n", None),
        "missing": ("X = 1\n", None),
    }
    for name, (source, expected) in cases.items():
        (tmp_path / f"{name}.py").write_text(source)
        assert declared_debug(name) is expected, name
    assert declared_debug("no_such_settings_module") is None


def test_the_supervisors_rules_are_djangos():
    debug = Audience.for_debug(True, [])
    assert debug.hosts == (".localhost", "127.0.0.1", "[::1]")
    assert debug.allows("localhost:8000", "127.0.0.1")
    assert debug.allows("a.b.localhost", "10.0.0.2")
    assert debug.allows("LOCALHOST.", "127.0.0.1")
    assert not debug.allows("localhost.evil.com", "127.0.0.1")
    assert not debug.allows(None, "127.0.0.1")
    assert not debug.allows("bad host", "127.0.0.1")
    assert not Audience.for_debug(False, ["*"]).allows("localhost", "127.0.0.1")
    shared = Audience.for_debug(True, [".example.com", "10.0.0.5"])
    assert shared.allows("www.example.com", "10.0.0.9")
    assert shared.allows("example.com:8000", "10.0.0.9")
    assert shared.allows("10.0.0.5:8000", "10.0.0.9")
    assert not shared.allows("localhost", "127.0.0.1")
    loopback = Audience(True, ("*",), loopback_only=True)
    assert loopback.allows("anything", "127.0.0.1")
    assert loopback.allows("anything", "::1")
    assert loopback.allows("anything", "::ffff:127.0.0.1")
    assert not loopback.allows("anything", "192.168.1.20")
    assert not loopback.allows("anything", "::ffff:10.1.1.1")
    assert Audience.from_dict({"details": None, "loopback_only": True}, debug).details
    assert not Audience.from_dict({"details": None}, Audience.for_debug(False, ["x"])).details
