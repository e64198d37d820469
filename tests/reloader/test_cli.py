"""``python -m reloader``: bad command lines are one line and exit 2 (or 1 for a socket that
cannot be bound), before any worker starts (issue 10: each of these gave a traceback, a wrong
message, or was accepted)."""

from __future__ import annotations

import math
import socket
import subprocess

import pytest

from reloader.config import ConfigError, SocketSpec, SupervisorConfig, Target
from reloader.sockets import BindError, bind
from tests.support import PYTHON, base_env

LONG_LABEL = "a" * 300  # DNS allows 63 characters a label: the idna codec raises UnicodeError


def reloader_cli(*args: str, cwd=None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "reloader", *args],
        cwd=cwd,
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize(
    ("bind_to", "message"),
    [
        (
            f"{LONG_LABEL}:8123",
            f"reloader: error: '{LONG_LABEL}:8123': '{LONG_LABEL}' is not a valid host name",
        ),
        (
            f"{LONG_LABEL}.example:8123",
            f"reloader: error: '{LONG_LABEL}.example:8123': '{LONG_LABEL}.example' is not a "
            "valid host name",
        ),
    ],
    ids=["label", "first label"],
)
def test_a_host_label_too_long_is_one_line(bind_to, message):
    result = reloader_cli("--bind", bind_to, "--", "true")
    assert result.returncode == 2
    assert result.stderr.strip() == message
    assert "Watching" not in result.stderr


def test_the_library_refuses_a_host_label_too_long_too():

    with pytest.raises(BindError, match="is not a valid host name"):
        bind(SocketSpec(host=LONG_LABEL, port=0))


@pytest.mark.parametrize("kind", ["file", "directory"])
def test_binding_a_unix_path_that_is_not_a_socket_says_so(tmp_path, kind):
    path = tmp_path / "taken"
    if kind == "file":
        path.write_text("precious\n")
    else:
        path.mkdir()
    what = "a directory" if kind == "directory" else "a file that is not a socket"
    result = reloader_cli("--bind", f"unix:{path}", "--", "true")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"reloader: error: Cannot listen on unix:{path}: it is {what}. "
        "Remove it, or use another path."
    )
    assert path.exists() and (kind == "directory" or path.read_text() == "precious\n")


def test_a_unix_path_in_use_by_something_else_names_the_path(tmp_path):
    # A dangling symlink: stat() finds nothing, bind() says EADDRINUSE.
    path = tmp_path / "link"
    path.symlink_to(tmp_path / "nowhere")
    result = reloader_cli("--bind", f"unix:{path}", "--", "true")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"reloader: error: Cannot listen on unix:{path}: something else is at that path."
    )


def test_a_stale_unix_socket_is_still_replaced(tmp_path):
    path = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX) as old:
        old.bind(str(path))  # bound, never listening, then closed: nobody answers

    sock = bind(SocketSpec(path=str(path)))
    try:
        assert sock.getsockname() == str(path)
    finally:
        sock.close()


@pytest.mark.parametrize(
    ("option", "value", "bound"),
    [
        ("--grace", "-5", "0 or more"),
        ("--grace", "nan", "0 or more"),
        ("--grace", "inf", "0 or more"),
        ("--grace", "soon", "0 or more"),
        ("--debounce", "-1", "0 or more"),
        ("--debounce", "nan", "0 or more"),
        ("--debounce", "inf", "0 or more"),
        ("--poll-interval", "-1", "more than 0"),
        ("--poll-interval", "0", "more than 0"),
        ("--poll-interval", "nan", "more than 0"),
        ("--poll-interval", "inf", "more than 0"),
    ],
)
def test_times_must_be_finite_and_not_negative(option, value, bound):
    result = reloader_cli(f"{option}={value}", "--", "true")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"reloader: error: argument {option}: '{value}' is not a number of seconds ({bound})"
    )


@pytest.mark.parametrize(("option", "value"), [("--grace", "0"), ("--debounce", "0")])
def test_zero_is_a_valid_grace_and_debounce(option, value):
    from reloader.cli import build_parser

    args = build_parser().parse_args([f"{option}={value}", "--", "true"])
    assert getattr(args, option[2:]) == 0.0


@pytest.mark.parametrize(
    "field",
    [
        {"grace": -5.0},
        {"grace": math.nan},
        {"grace": math.inf},
        {"quiet_period": math.nan},
        {"quiet_period": math.inf, "max_wait": math.inf},
        {"max_wait": math.nan},
        {"poll_interval": math.nan},
        {"poll_interval": math.inf},
    ],
    ids=str,
)
def test_the_config_refuses_times_that_are_negative_or_not_finite(field):
    with pytest.raises(ConfigError):
        SupervisorConfig(target=Target("command", "true"), **field)
