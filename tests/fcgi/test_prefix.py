"""SCRIPT_NAME and PATH_INFO from what nginx sends (defect 9), as a pure function."""

from __future__ import annotations

import logging

import pytest

from fcgi import prefix


@pytest.fixture(autouse=True)
def _fresh_warnings():
    prefix._warned.clear()
    yield
    prefix._warned.clear()


def fixed(**environ: str) -> tuple[str, str]:
    env: dict[str, str] = dict(environ)
    prefix.fix_paths(env)
    return env["SCRIPT_NAME"], env["PATH_INFO"]


def test_the_web_servers_split_is_kept() -> None:
    assert fixed(SCRIPT_NAME="", PATH_INFO="/x/", DOCUMENT_URI="/x/") == ("", "/x/")
    assert fixed(SCRIPT_NAME="/app", PATH_INFO="/x/", DOCUMENT_URI="/app/x/") == ("/app", "/x/")
    assert fixed(SCRIPT_NAME="/app/", PATH_INFO="/x") == ("/app", "/x")


def test_stock_fastcgi_params_serve_the_app_at_the_root(caplog) -> None:
    """SCRIPT_NAME=$fastcgi_script_name (the whole URI) and no PATH_INFO: flup made PATH_INFO
    empty, so every URL was the app's '/'."""
    with caplog.at_level(logging.WARNING, logger="fcgi"):
        assert fixed(
            SCRIPT_NAME="/diag/echo/", DOCUMENT_URI="/diag/echo/", REQUEST_URI="/diag/echo/?a=1"
        ) == ("", "/diag/echo/")
        assert fixed(SCRIPT_NAME="/other/", DOCUMENT_URI="/other/") == ("", "/other/")
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1  # once per process
    assert "fastcgi_param PATH_INFO $fastcgi_path_info;" in warnings[0]


def test_an_empty_path_info_with_the_whole_uri_as_script_name_is_doubted() -> None:
    assert fixed(SCRIPT_NAME="/a/b", PATH_INFO="", DOCUMENT_URI="/a/b") == ("", "/a/b")
    # ...but an empty PATH_INFO at a mount point is the web server's word.
    assert fixed(SCRIPT_NAME="/app", PATH_INFO="", DOCUMENT_URI="/app/") == ("/app", "")


def test_a_prefix_given_as_script_name_alone() -> None:
    assert fixed(SCRIPT_NAME="/app", DOCUMENT_URI="/app/diag/") == ("/app", "/diag/")
    assert fixed(SCRIPT_NAME="/app/", DOCUMENT_URI="/app/diag/") == ("/app", "/diag/")


def test_no_script_name_no_path_info_as_with_scgi_params() -> None:
    assert fixed(DOCUMENT_URI="/caf\xc3\xa9/") == ("", "/caf\xc3\xa9/")
    # Without DOCUMENT_URI, REQUEST_URI is %-decoded to WSGI's latin-1 string.
    assert fixed(REQUEST_URI="/caf%C3%A9/?q=%20") == ("", "/caf\xc3\xa9/")
    assert fixed(REQUEST_URI="http://example.com/a/b?c") == ("", "/a/b")
    assert fixed() == ("", "")


def test_a_script_name_that_does_not_match_is_dropped_with_a_warning(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="fcgi"):
        assert fixed(SCRIPT_NAME="/app", DOCUMENT_URI="/elsewhere/") == ("", "/elsewhere/")
    assert "is not a prefix of the request path" in caplog.text


def test_query_string_from_request_uri() -> None:
    env = {"REQUEST_URI": "/a?x=1&y=2"}
    prefix.fix_query_string(env)
    assert env["QUERY_STRING"] == "x=1&y=2"
    env = {"REQUEST_URI": "/a", "QUERY_STRING": "kept=1"}
    prefix.fix_query_string(env)
    assert env["QUERY_STRING"] == "kept=1"
