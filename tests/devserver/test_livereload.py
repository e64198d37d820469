"""Live reload in a real browser (issue 12): the page follows the code, stylesheets swap in place.

Each test starts runserver on the example project, opens /diag/page/ (the site's stylesheet and
script, the serving process' pid) in headless Chromium, marks the page's JS state
(``window.marker``), edits a real file and waits, bounded, for what the browser must show. A
page that reloaded has lost the marker; one that swapped a stylesheet keeps it.
"""

from __future__ import annotations

import re
import socket
import time

import pytest

from tests.support import PYTHON, base_env, free_port, http_get, wait_until

PAGE = "/diag/page/"
WAIT_MS = 20_000
GREETED = "() => window.__devserverLiveReload?.events.includes('hello')"


def open_page(context, server, path: str = PAGE):
    page = context.new_page()
    page.goto(f"http://127.0.0.1:{server.port}{path}")
    page.wait_for_function(GREETED, timeout=WAIT_MS)
    page.evaluate("window.marker = 42")
    return page


def wait_text(page, selector: str, text: str) -> None:
    page.wait_for_function(
        "([s, t]) => document.querySelector(s)?.textContent.includes(t)",
        arg=[selector, text],
        timeout=WAIT_MS,
    )


def marker(page):
    return page.evaluate("window.marker")


def served_by(page) -> int:
    return int(re.search(r"process (\d+)", page.text_content("#text")).group(1))


def watch_responses(page) -> list[str]:
    """Every response the page received and every request that failed, as "STATUS URL"."""
    seen: list[str] = []
    page.on("response", lambda r: seen.append(f"{r.status} {r.url}"))
    page.on("requestfailed", lambda r: seen.append(f"failed {r.url} {r.failure}"))
    return seen


def test_a_view_edit_reloads_the_page_once_the_new_worker_serves(runserver, browser):
    server = runserver()
    page = open_page(browser, server)
    before = served_by(page)
    seen = watch_responses(page)
    page.evaluate("window.scrollTo(0, 1200)")
    server.edit("diagnostics/views.py", 'PAGE_HEADING = "A page"', 'PAGE_HEADING = "Edited view"')
    wait_text(page, "#heading", "Edited view")
    assert marker(page) is None  # reloaded
    assert served_by(page) != before  # by the new worker
    page.wait_for_function("window.scrollY > 1000", timeout=WAIT_MS)  # the scroll position is kept
    # Never a refused connection, never a 500 (a script aborted by the reload is no failure).
    bad = [s for s in seen if s.startswith("5") or "REFUSED" in s or "RESET" in s]
    assert not bad, seen


def test_a_template_edit_reloads_without_a_restart(runserver, browser):
    server = runserver()
    page = open_page(browser, server)
    before = served_by(page)
    server.edit(
        "diagnostics/templates/diagnostics/page.html", '<h1 id="heading">', '<h1 id="heading">New '
    )
    wait_text(page, "#heading", "New A page")
    assert marker(page) is None
    assert served_by(page) == before


def test_a_stylesheet_edit_swaps_in_place_without_a_reload(runserver, browser):
    server = runserver()
    page = open_page(browser, server)
    color = "getComputedStyle(document.querySelector('#heading')).color"
    assert page.evaluate(color) != "rgb(255, 0, 0)"
    with (server.site / "static/css/site.css").open("a") as css:
        css.write("#heading { color: rgb(255, 0, 0); }\n")
    page.wait_for_function(f"{color} === 'rgb(255, 0, 0)'", timeout=WAIT_MS)
    assert marker(page) == 42  # no navigation: the page's JS state survived
    assert page.evaluate("document.querySelectorAll('link[rel=stylesheet]').length") == 1


def test_a_script_edit_reloads_the_page_without_a_restart(runserver, browser):
    server = runserver()
    page = open_page(browser, server)
    before = served_by(page)
    with (server.site / "static/js/site.js").open("a") as js:
        js.write("window.edited = 'yes';\n")
    page.wait_for_function("window.edited === 'yes'", timeout=WAIT_MS)
    assert marker(page) is None
    assert served_by(page) == before


def test_a_syntax_error_shows_the_error_page_and_the_fix_brings_the_page_back(runserver, browser):
    server = runserver()
    page = open_page(browser, server)
    server.edit("diagnostics/views.py", 'PAGE_HEADING = "A page"', 'PAGE_HEADING = "Broken"(')
    page.wait_for_function("document.title.includes('SyntaxError')", timeout=WAIT_MS)
    # The first screen names the developer's file and line, the line itself and the caret.
    line = next(
        n
        for n, text in enumerate((server.site / "diagnostics/views.py").read_text().splitlines(), 1)
        if text.startswith("PAGE_HEADING")
    )
    where = page.locator(".focus .where")
    assert where.text_content() == f"diagnostics/views.py, line {line}"
    height = page.viewport_size["height"]
    caret = page.locator(".focus .caret")
    assert caret.bounding_box()["y"] + caret.bounding_box()["height"] < height
    assert page.locator(".focus .hit").text_content().endswith('PAGE_HEADING = "Broken"(')
    assert page.locator("details.folded").count() >= 1  # Django's and importlib's frames
    server.edit("diagnostics/views.py", 'PAGE_HEADING = "Broken"(', 'PAGE_HEADING = "Fixed"')
    wait_text(page, "#heading", "Fixed")
    page.wait_for_function(GREETED, timeout=WAIT_MS)  # the live page again, following the code


def test_eight_tabs_share_one_stream_and_all_follow(runserver, browser):
    server = runserver("-v", "2")
    pages = [open_page(browser, server) for _ in range(8)]
    assert {p.evaluate("window.__devserverLiveReload.mode") for p in pages} == {"shared"}
    opened = re.findall(r"a browser connected \((\d+) stream", server.proc.log())
    assert opened == ["1"], opened  # one stream for the eight tabs (a 7th would hang without)
    server.edit(
        "diagnostics/templates/diagnostics/page.html", '<h1 id="heading">', '<h1 id="heading">All '
    )
    for page in pages:
        wait_text(page, "#heading", "All A page")
    assert all(marker(page) is None for page in pages)


def test_a_strict_csp_page_gets_the_script_with_its_nonce_and_follows(runserver, browser):
    server = runserver()
    errors: list[str] = []
    page = browser.new_page()
    page.on("console", lambda m: errors.append(m.text) if "Content Security" in m.text else None)
    page.goto(f"http://127.0.0.1:{server.port}{PAGE}?csp=1")
    page.wait_for_function(GREETED, timeout=WAIT_MS)
    tag = page.locator("script[data-boot]")
    assert tag.evaluate("s => s.nonce") != ""  # the response's nonce
    server.edit(
        "diagnostics/templates/diagnostics/page.html", '<h1 id="heading">', '<h1 id="heading">CSP '
    )
    wait_text(page, "#heading", "CSP A page")
    assert not [e for e in errors if "client.js" in e], errors


def test_nolivereload_and_debug_off_inject_nothing(runserver, site):
    server = runserver("--nolivereload")
    page = server.get(PAGE)
    assert page.status == 200 and "__devserver__" not in page.text
    assert server.get("/__devserver__/client.js").status == 404  # the URLconf's 404
    server.proc.stop()
    off = runserver("--insecure", env={"MYSITE_DEBUG": "0"})
    page = off.get(PAGE)
    assert page.status == 200 and "__devserver__" not in page.text
    assert off.get("/__devserver__/events").status == 404


def test_only_full_html_pages_get_the_script(runserver):
    server = runserver()
    assert "__devserver__/client.js" in server.get(PAGE).text
    page = server.get(PAGE, headers={"Sec-Fetch-Dest": "document"})
    assert page.headers.get("content-length") == str(len(page.body))
    assert "etag" not in page.headers and "last-modified" not in page.headers
    assert "__devserver__" not in server.get(PAGE, headers={"Sec-Fetch-Dest": "empty"}).text
    assert "__devserver__" not in server.get(PAGE, headers={"HX-Request": "true"}).text
    assert "__devserver__" not in server.get("/diag/version/").text  # text/plain
    assert "__devserver__" not in server.get("/static/css/site.css").text
    assert "__devserver__" not in server.get("/diag/stream/?mb=0.01").text  # streaming


def test_the_old_worker_ends_its_streams_at_once(runserver):
    """A stream open on the old worker must not hold its restart: it ends when the worker stops
    accepting, and the next one serves."""
    server = runserver()
    sock = socket.create_connection(("127.0.0.1", server.port))
    try:
        sock.sendall(b"GET /__devserver__/events HTTP/1.1\r\nHost: localhost\r\n\r\n")
        sock.settimeout(10)
        data = b""
        while b"hello" not in data:
            chunk = sock.recv(4096)
            assert chunk, data
            data += chunk
        before = server.pid()
        server.edit("diagnostics/views.py", 'PAGE_HEADING = "A page"', 'PAGE_HEADING = "Next"')
        edited = time.monotonic()
        while sock.recv(4096):  # until the old worker ends the stream
            pass
        ended = time.monotonic() - edited
    finally:
        sock.close()
    server.wait_status(PAGE, 200, contains="Next")
    assert server.pid() != before
    assert ended < 2.0, ended  # DRAIN_TIMEOUT is 3 s: the stream did not wait for it


def test_testserver_pages_follow_fixture_template_and_stylesheet_edits(testserver, site, browser):
    server = testserver("catalog")
    page = browser.new_page()
    page.goto(f"http://127.0.0.1:{server.port}/")
    page.wait_for_function(GREETED, timeout=WAIT_MS)
    page.evaluate("window.marker = 42")
    fixture = site / "catalog" / "fixtures" / "catalog.json"
    fixture.write_text(fixture.read_text().replace("Espresso Blend", "Ristretto Blend"))
    wait_text(page, ".products", "Ristretto Blend")
    assert marker(page) is None
    page.wait_for_function(GREETED, timeout=WAIT_MS)
    page.evaluate("window.marker = 43")
    server.edit("catalog/templates/catalog/index.html", "<h1>Catalog</h1>", "<h1>Shop</h1>")
    wait_text(page, "h1", "Shop")
    assert marker(page) is None
    page.wait_for_function(GREETED, timeout=WAIT_MS)
    page.evaluate("window.marker = 44")
    with (site / "static/css/site.css").open("a") as css:
        css.write("h1 { color: rgb(0, 128, 0); }\n")
    page.wait_for_function(
        "getComputedStyle(document.querySelector('h1')).color === 'rgb(0, 128, 0)'",
        timeout=WAIT_MS,
    )
    assert marker(page) == 44


def test_with_django_browser_reload_installed_ours_steps_aside(spawn, site):
    """One script reloads, not two: django-browser-reload's, and the log says why ours is off."""
    port = free_port()
    env = base_env({"MYSITE_RUNSERVER": "browser-reload"})  # its app, middleware and URLs
    proc = spawn([PYTHON, "-m", "devserver", "runserver", f"127.0.0.1:{port}"], cwd=site, env=env)
    proc.wait_for_log("Quit the server with CONTROL-C.", timeout=30)
    page = wait_until(lambda: http_get(port, PAGE), 30, what="the page")
    assert "django-browser-reload" in page.text and "__devserver__" not in page.text
    proc.wait_for_log("django-browser-reload is installed: it reloads the pages")


def test_djangos_debug_page_for_a_view_that_raises_reloads_when_the_code_changes(
    runserver, browser
):
    server = runserver()
    page = browser.new_page()
    response = page.goto(f"http://127.0.0.1:{server.port}/diag/fail/")
    assert response.status == 500 and "RuntimeError" in page.title()  # Django's technical 500
    page.wait_for_function(GREETED, timeout=WAIT_MS)
    server.edit(
        "diagnostics/views.py", 'raise RuntimeError("diagnostics:', 'raise ValueError("diagnostics:'
    )
    page.wait_for_function("document.title.includes('ValueError')", timeout=WAIT_MS)


def read_events(sock: socket.socket, wanted: bytes, timeout: float = 15.0) -> bytes:
    sock.settimeout(timeout)
    data = b""
    while wanted not in data:
        chunk = sock.recv(4096)
        assert chunk, data
        data += chunk
    return data


def test_an_adminmedia_stylesheet_is_swapped_by_its_static_url(runserver, tmp_path):
    admin = tmp_path / "adminmedia"
    (admin / "css").mkdir(parents=True)
    (admin / "css" / "base.css").write_text("body { color: black; }\n")
    server = runserver(f"--adminmedia={admin}")
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"GET /__devserver__/events HTTP/1.1\r\nHost: localhost\r\n\r\n")
        read_events(sock, b'"hello"')
        (admin / "css" / "base.css").write_text("body { color: red; }\n")
        data = read_events(sock, b'"css"')
    assert b'"paths": ["/static/admin/css/base.css"]' in data
    assert server.get("/static/admin/css/base.css").text == "body { color: red; }\n"


def test_the_script_tag_goes_before_the_last_body_end_with_the_csp_nonce():
    from devserver.livereload import inject

    assert inject.insert(b"<p>a</p></BODY ></html>", b"<s>") == b"<p>a</p><s></BODY ></html>"
    assert inject.insert(b"<html><p>no end", b"<s>") == b"<html><p>no end<s>"
    assert inject.is_document(b"<!DOCTYPE html><p>") and inject.is_document(b"<body>")
    assert not inject.is_document(b"10045") and not inject.is_document(b"<p>a fragment</p>")
    headers = [("Content-Security-Policy", "default-src 'self'; script-src 'nonce-Ab+/9=' 'self'")]
    assert inject.nonce(headers) == "Ab+/9="
    assert inject.nonce([("Content-Security-Policy", "script-src 'self'")]) is None
    # script-src wins over default-src: a nonce only in default-src does not apply then.
    only_default = [("content-security-policy", "default-src 'nonce-x'; script-src 'self'")]
    assert inject.nonce(only_default) is None
    html = [("Content-Type", "text/html; charset=utf-8")]
    assert inject.injectable(html, [b"<p>"])
    assert not inject.injectable([*html, ("Content-Encoding", "gzip")], [b"<p>"])
    assert not inject.injectable([("Content-Type", "application/json")], [b"{}"])
    assert not inject.injectable(html, iter([b"<p>"]))  # a generator: maybe endless


def test_the_answer_to_a_post_is_reloaded_with_a_get(runserver, browser):
    """Reloading it would post the form again (Chrome's "Confirm Form Resubmission")."""
    server = runserver()
    page = open_page(browser, server)
    page.evaluate(
        "document.body.insertAdjacentHTML('beforeend',"
        " '<form id=f method=post action=\"/diag/page/\"><input name=a value=1></form>');"
        "document.getElementById('f').submit()"
    )
    page.wait_for_function("document.title.includes('403')", timeout=WAIT_MS)  # no CSRF token
    page.wait_for_function(GREETED, timeout=WAIT_MS)
    seen = watch_responses(page)
    server.edit("diagnostics/views.py", 'PAGE_HEADING = "A page"', 'PAGE_HEADING = "After post"')
    wait_text(page, "#heading", "After post")
    assert not [s for s in seen if s.startswith("403 ")], seen


def test_under_asgi_pages_follow_view_edits_and_stylesheets_swap(runserver, browser):
    pytest.importorskip("uvicorn", reason="the asgi extra (uvicorn) is not installed")
    server = runserver("--asgi")
    assert "Starting ASGI development server" in server.proc.log()
    page = open_page(browser, server)
    before = served_by(page)
    server.edit("diagnostics/views.py", 'PAGE_HEADING = "A page"', 'PAGE_HEADING = "Async edit"')
    wait_text(page, "#heading", "Async edit")
    assert marker(page) is None and served_by(page) != before
    page.wait_for_function(GREETED, timeout=WAIT_MS)
    page.evaluate("window.marker = 7")
    with (server.site / "static/css/site.css").open("a") as css:
        css.write("#heading { color: rgb(0, 0, 255); }\n")
    color = "() => getComputedStyle(document.querySelector('#heading')).color"
    page.wait_for_function(f"() => ({color})() === 'rgb(0, 0, 255)'", timeout=WAIT_MS)
    assert marker(page) == 7
