"""What each request cost: the SQL summary on the request log line (SQLite, PostgreSQL, MariaDB;
WSGI and ASGI), --print-sql, --print-sql-location, and --pdb driven through a terminal."""

from __future__ import annotations

import os
import re
import threading

import pytest

from tests.devserver.conftest import BANNER_END
from tests.devserver.test_testserver import Backend, mysql_unavailable, postgres_unavailable
from tests.support import PYTHON, base_env, free_port, http_get, wait_until

SUMMARY = re.compile(r"\((\d+) quer(?:y|ies), (\d+\.\d) ms(?:, (\d+) duplicates?)?\)")


def summary_of(log: str, requestline: str) -> tuple[int, int] | None:
    """(queries, duplicates) at the end of the log line of ``requestline``; None: no suffix."""
    for line in log.splitlines():
        if f'"{requestline}"' in line:
            found = SUMMARY.search(line)
            return (int(found[1]), int(found[3] or 0)) if found else None
    raise AssertionError(f"no log line for {requestline!r} in:\n{log}")


def test_the_summary_counts_queries_and_duplicates(runserver):
    server = runserver()
    assert server.get("/diag/queries/?n=5").status == 200
    assert server.get("/static/css/site.css").status == 200
    log = server.proc.wait_for_log('"GET /static/css/site.css HTTP/1.1" 200')
    # 1 count, then 5 times the same lookup: 6 queries, 4 of them duplicates.
    assert summary_of(log, "GET /diag/queries/?n=5 HTTP/1.1") == (6, 4)
    assert summary_of(log, "GET /static/css/site.css HTTP/1.1") is None  # no query, no suffix
    # The catalog's page: its two queries, no duplicate; the line is Django's otherwise.
    assert summary_of(log, "GET / HTTP/1.1") == (2, 0)
    line = r'"GET /diag/queries/\?n=5 HTTP/1\.1" 200 10 \(6 queries, \d+\.\d ms, 4 duplicates\)$'
    assert re.search(line, log, re.M), log


def test_nosqlsummary_leaves_the_line_as_django_writes_it(runserver):
    server = runserver("--nosqlsummary")
    server.get("/diag/queries/?n=5")
    log = server.proc.wait_for_log('"GET /diag/queries/?n=5 HTTP/1.1" 200')
    assert summary_of(log, "GET /diag/queries/?n=5 HTTP/1.1") is None
    assert re.search(r'"GET /diag/queries/\?n=5 HTTP/1\.1" 200 10\s*$', log, re.M), log


def test_the_summary_under_asgi(runserver):
    pytest.importorskip("uvicorn")
    server = runserver("--asgi")
    server.get("/diag/queries/?n=3")
    log = server.proc.wait_for_log('"GET /diag/queries/?n=3 HTTP/1.1" 200')
    assert summary_of(log, "GET /diag/queries/?n=3 HTTP/1.1") == (4, 2)


@pytest.mark.parametrize("vendor", ["postgresql", "mysql"])
def test_the_summary_on_postgresql_and_mariadb(testserver, site, tmp_path, vendor):
    reason = postgres_unavailable() if vendor == "postgresql" else mysql_unavailable()
    if reason:
        pytest.skip(reason)
    backend = Backend(vendor, site, tmp_path)
    server = testserver("catalog", env=backend.env())
    try:
        server.get("/diag/queries/?n=5")
        log = server.proc.wait_for_log('"GET /diag/queries/?n=5 HTTP/1.1" 200')
        queries, duplicates = summary_of(log, "GET /diag/queries/?n=5 HTTP/1.1") or (0, 0)
        assert duplicates == 4, log
        # MariaDB: Django sets the isolation level on each new connection, with a query.
        assert queries == 6 or (vendor == "mysql" and queries == 7), log
    finally:
        server.proc.stop()
    assert not backend.test_db_exists()


def test_print_sql_and_its_location(runserver, site):
    server = runserver("--print-sql-location")
    server.get("/diag/queries/?n=2&big=1")
    log = server.proc.wait_for_log('"GET /diag/queries/?n=2&big=1 HTTP/1.1" 200')
    views = (site / "diagnostics" / "views.py").read_text().splitlines()
    line = 1 + next(i for i, text in enumerate(views) if "Category.objects.count()" in text)
    assert re.search(
        rf"-- default, \d+\.\d\d ms, diagnostics/views\.py:{line} in queries\r?\n"
        r'SELECT COUNT\(\*\) AS "__count"\r?\nFROM "catalog_category"',
        log,
    ), log
    # The parameters are in the SQL; a long one is cut, with its length.
    assert 'WHERE "catalog_product"."id" = 1' in log
    assert "'" + "x" * 60 + "…' /* 500 chars */" in log


def test_print_sql_without_location(runserver):
    server = runserver("--print-sql", "--nosqlsummary")
    server.get("/diag/queries/?n=1")
    log = server.proc.wait_for_log('"GET /diag/queries/?n=1 HTTP/1.1" 200')
    assert re.search(r'-- default, \d+\.\d\d ms\r?\nSELECT COUNT\(\*\) AS "__count"', log), log
    assert "in queries" not in log


def start_in_terminal(spawn, site, *args: str):
    port = free_port()
    argv = [PYTHON, "manage.py", "runserver", f"127.0.0.1:{port}", *args]
    proc = spawn(argv, cwd=site, env=base_env(), name="runserver", terminal=True)
    proc.wait_for_log(BANNER_END, timeout=30)
    wait_until(lambda: http_get(port, "/diag/pid/").status == 200, 30, describe=proc.describe)
    return proc, port


def debug_one_failure(proc, port: int, seen: int) -> None:
    """GET a failing view, answer the debugger in the terminal, check the 500 that follows."""
    result: dict[str, object] = {}

    def request() -> None:
        result["response"] = http_get(port, "/diag/fail/", timeout=60)

    client = threading.Thread(target=request)
    client.start()
    try:
        proc.wait_for_log("RuntimeError in GET /diag/fail/: post-mortem debugger", count=seen + 1)
        proc.wait_for_log("(Pdb)", count=seen + 1)
        assert "response" not in result  # the request waits for the debugger
        os.write(proc._master, b"p 'pdb' + 'works'\n")  # the echo is not the answer
        proc.wait_for_log("'pdbworks'", count=seen + 1)
        os.write(proc._master, b"c\n")
        client.join(30)
        assert not client.is_alive()
    finally:
        client.join(60)
    response = result["response"]
    assert response.status == 500  # type: ignore[attr-defined]
    assert "diagnostics: this view fails on purpose" in response.text  # type: ignore[attr-defined]


def test_pdb_opens_in_the_terminal_then_the_request_gets_its_500(spawn, site):
    proc, port = start_in_terminal(spawn, site, "--pdb")
    debug_one_failure(proc, port, seen=0)
    # After a reload (a forked worker), the debugger is in the same terminal.
    before = http_get(port, "/diag/pid/").text
    (site / "diagnostics" / "version.py").write_text("VERSION = 5\n")
    wait_until(lambda: http_get(port, "/diag/pid/").text != before, 30, describe=proc.describe)
    debug_one_failure(proc, port, seen=1)


def test_pdb_without_a_terminal_does_not_wait(runserver):
    server = runserver("--pdb")
    response = server.get("/diag/fail/", timeout=30)
    assert response.status == 500
    log = server.proc.wait_for_log("--pdb needs a terminal")
    assert "RuntimeError: diagnostics: this view fails on purpose" in log
