"""The options: 1.8's names, defaults and help wording, both spellings, one-line errors."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from fcgi import OptionError, Options
from tests.support import EXAMPLE, PYTHON, REPO, base_env


def test_defaults_are_django_18s() -> None:
    options = Options.parse([])
    assert (options.protocol, options.method) == ("fcgi", "prefork")
    assert (options.maxspare, options.minspare, options.maxchildren) == (5, 2, 50)
    assert options.maxrequests == 0
    assert options.workdir == "/"
    assert options.debug is False
    assert options.daemonize is None
    assert options.bind is None and options.detach is False  # fd 0: no detaching
    assert options.socket_umask == 0o022


def test_key_value_and_dashed_spellings_mean_the_same(tmp_path: Path) -> None:
    sock = str(tmp_path / "a.sock")
    words = ["protocol=scgi", "method=threaded", f"socket={sock}", "maxchildren=7", "umask=007"]
    dashed = ["--protocol", "scgi", "--method=threaded", "--socket", sock, "--maxchildren", "7"]
    dashed += ["--umask", "007"]
    assert Options.parse(words) == Options.parse(dashed)
    options = Options.parse(words)
    assert (options.protocol, options.method, options.maxchildren) == ("scgi", "threaded", 7)
    assert options.socket == sock and options.socket_umask == 0o007
    assert options.detach is True  # 1.8: a bound server detaches unless told otherwise


def test_keys_are_case_insensitive_and_fork_thread_are_aliases() -> None:
    assert Options.parse(["METHOD=fork"]).method == "prefork"
    assert Options.parse(["Method=thread"]).method == "threaded"


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["debug=false"], False),  # 1.8 turned debug on for any value
        (["debug=true"], True),
        (["debug"], True),
        (["--debug"], True),
        (["--debug", "no"], False),
    ],
)
def test_debug_false_means_off(words: list[str], expected: bool) -> None:
    assert Options.parse(words).debug is expected


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["daemonize"], True),  # 1.8 crashed on a bare daemonize
        (["--daemonize"], True),
        (["daemonize=false"], False),
        (["daemonize=Yes"], True),
        (["--daemonize", "f"], False),
    ],
)
def test_bare_daemonize_means_true(words: list[str], expected: bool) -> None:
    assert Options.parse(words).daemonize is expected


def test_help_word_asks_for_help() -> None:
    assert Options.parse(["help"]).help
    assert Options.parse(["--help", "method=threaded"]).help


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["method=forked"], "method=forked: must be prefork or threaded"),
        (["port=http", "host=127.0.0.1"], "port=http: not a port number (1-65535)"),
        (["port=70000"], "port=70000: not a port number"),
        (["maxspare=1", "minspare=3"], "maxspare=1 is below minspare=3"),
        (
            ["socket=/no/such/dir/x.sock"],
            "socket=/no/such/dir/x.sock: directory /no/such/dir does not exist",
        ),
        (["bogus=1"], "unknown option 'bogus=1'"),
        (["--bogus", "1"], "unknown option '--bogus'"),
        (["protocol=http"], "protocol=http: must be one of fcgi, scgi, ajp"),
        (["daemonize=maybe"], "daemonize=maybe: not a boolean"),
        (["umask=999"], "umask=999: not an octal umask"),
        (["maxchildren=0"], "maxchildren=0: must be at least 1"),
        (["maxrequests=-1"], "maxrequests=-1: must be at least 0"),
        (["host=127.0.0.1"], "host=127.0.0.1 needs a port= too"),
        (["port=8000"], "port=8000 needs a host= too"),
        (
            ["socket=/tmp/x.sock", "port=1", "host=a"],
            "socket= cannot be combined with host= or port=",
        ),
        (["workdir=/no/such/dir"], "workdir=/no/such/dir: not an existing directory"),
        (
            ["pidfile=/no/such/dir/p"],
            "pidfile=/no/such/dir/p: directory /no/such/dir does not exist",
        ),
        (["port=1", "port=2"], "port given twice"),
        (["--port"], "--port needs a value"),
        (["maxspare"], "maxspare needs a value"),
        (["module:app"], "'module:app' is not a key=value option"),
    ],
)
def test_bad_input_is_a_one_line_error(words: list[str], message: str) -> None:
    with pytest.raises(OptionError) as excinfo:
        Options.parse(words)
    text = str(excinfo.value)
    assert message in text
    assert "\n" not in text


def test_socket_path_too_long_for_a_unix_socket(tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="path too long for a unix socket"):
        Options.parse([f"socket={tmp_path / ('x' * 120)}"])


def test_relative_paths_are_made_absolute_at_parse_time(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    options = Options.parse(["socket=a.sock", "daemonize=false", "pidfile=p", "outlog=o"])
    assert options.socket == str(tmp_path / "a.sock")
    assert options.pidfile == str(tmp_path / "p") and options.outlog == str(tmp_path / "o")


def test_help_lists_every_option_with_18s_wording() -> None:
    text = Options.help_text("manage.py runfcgi")
    for name in Options.names():
        if name != "help":
            assert f"  {name}=" in text
    for phrase in (
        "fcgi, scgi, ajp, ... (default fcgi)",
        "prefork or threaded (default fork).",
        "number of requests a child handles before it is",
        "max number of spare processes / threads (default 5).",
        "min number of spare processes / threads (default 2).",
        "hard limit number of processes / threads (default 50).",
        "whether to detach from terminal.",
        "write the spawned process-id to this file.",
        "change to this directory when daemonizing (default /).",
        "set to true to enable flup tracebacks.",
        "umask to use when daemonizing, in octal notation (default 022).",
        "$ manage.py runfcgi protocol=scgi method=prefork host=127.0.0.1 port=8025",
    ):
        assert phrase in text


# -- the two command lines: exit status, one line, nothing bound ----------------------------------
BAD = [
    ["method=forked"],
    ["--port", "http", "--host", "127.0.0.1"],
    ["maxspare=1", "minspare=2"],
    ["bogus=1"],
]


@pytest.mark.parametrize("words", BAD, ids=lambda w: " ".join(w))
def test_python_m_fcgi_bad_input_exits_2_with_one_line(words: list[str], tmp_path: Path) -> None:
    sock = tmp_path / "s.sock"
    result = subprocess.run(
        [PYTHON, "-m", "fcgi", "tests.fcgi.wsgiapp:app", f"socket={sock}", *words],
        cwd=REPO,
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("Error: ")
    assert "Traceback" not in result.stderr
    assert not sock.exists()


def test_python_m_fcgi_with_a_missing_socket_dir_or_app(tmp_path: Path) -> None:
    for argv, message in (
        (["tests.fcgi.wsgiapp:app", "socket=/no/such/dir/s.sock"], "directory /no/such/dir"),
        (["no_such_module:app", f"socket={tmp_path / 's'}"], "no module named 'no_such_module'"),
        (["tests.fcgi.wsgiapp:nope", f"socket={tmp_path / 's'}"], "has no 'nope'"),
        ([f"socket={tmp_path / 's'}"], "no app given"),
    ):
        result = subprocess.run(
            [PYTHON, "-m", "fcgi", *argv],
            cwd=REPO,
            env=base_env(),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 2, result.stderr
        assert message in result.stderr and len(result.stderr.splitlines()) == 1


def test_python_m_fcgi_help() -> None:
    for word in ("help", "--help"):
        result = subprocess.run(
            [PYTHON, "-m", "fcgi", word], cwd=REPO, capture_output=True, text=True, timeout=30
        )
        assert result.returncode == 0
        assert "maxchildren=NUMBER" in result.stdout


@pytest.mark.parametrize("words", [*BAD, ["--bogus", "1"], ["socket=/no/such/dir/x.sock"]])
def test_runfcgi_bad_input_is_a_command_error(words: list[str], tmp_path: Path) -> None:
    result = subprocess.run(
        [PYTHON, "manage.py", "runfcgi", "daemonize=false", *words],
        cwd=EXAMPLE,
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("CommandError: ")
    assert len(result.stderr.splitlines()) == 1, result.stderr


def test_runfcgi_help_prints_every_option() -> None:
    result = subprocess.run(
        [PYTHON, "manage.py", "runfcgi", "help"],
        cwd=EXAMPLE,
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "manage.py runfcgi method=prefork socket=/tmp/fcgi.sock" in result.stdout
    for name in Options.names():
        if name != "help":
            assert f"  {name}=" in result.stdout
    dashed = subprocess.run(
        [PYTHON, "manage.py", "runfcgi", "--help"],
        cwd=EXAMPLE,
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert dashed.returncode == 0 and "maxrequests=NUMBER" in dashed.stdout
    assert "--settings" in dashed.stdout  # Django's own options are still there


def test_runfcgi_is_a_thin_shell_over_fcgi_serve(tmp_path: Path) -> None:
    """runfcgi hands fcgi.serve the project's WSGI app and the parsed options, with
    settings.LANGUAGE_CODE active (as 1.8 did), and a warm-up that leaves no DB connection."""
    sock = tmp_path / "s.sock"
    script = f"""
import django, json, os, sys
os.environ["DJANGO_SETTINGS_MODULE"] = "mysite.settings"
django.setup()
from django.conf import settings
settings.LANGUAGE_CODE = "fr"
import fcgi
from django.utils import translation
seen = {{}}
def fake_serve(app, options, warm_up):
    seen.update(app=type(app).__name__, language=translation.get_language(),
                options=[options.method, options.socket, options.maxrequests, options.debug])
    from django.db import connections
    warm_up()  # a request through the app in the parent, then no connection left open
    seen["connection_after_warm_up"] = connections["default"].connection
fcgi.serve = fake_serve
from django.core.management import call_command
call_command("runfcgi", "method=threaded", "--socket", {str(sock)!r}, "maxrequests=3",
             "debug=false", "-v", "0")
print(json.dumps(seen))
"""
    result = subprocess.run(
        [PYTHON, "-c", script],
        cwd=EXAMPLE,
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    import json

    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen == {
        "app": "WSGIHandler",
        "language": "fr",
        "options": ["threaded", str(sock), 3, False],
        "connection_after_warm_up": None,
    }


def test_fcgi_imports_only_the_stdlib_and_flup() -> None:
    script = (
        "import sys, fcgi, fcgi.cli, fcgi.server;"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('django', 'werkzeug', 'devserver', 'reloader', 'watchdog')];"
        "print(bad)"
    )
    result = subprocess.run(
        [PYTHON, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=30, check=True
    )
    assert result.stdout.strip() == "[]"
    assert os.path.exists(REPO / "fcgi" / "py.typed")
