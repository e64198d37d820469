"""devserver.static through a real ``manage.py runserver``: Range (RFC 9110 section 14), 404s.

Issue 10: a bad Range header was a 500 with a traceback in the log, and a missing static file a
64-byte page of our own instead of Django's 404.
"""

from __future__ import annotations

import html
import re

import pytest

from tests.support import http_request, wait_until

ALPHABET = b"abcdefghijklmnopqrstuvwxyz"  # 26 bytes
HUGE = "9" * 5000  # past int()'s 4,300-digit limit
TECHNICAL_404 = re.compile(r"Page not found <(small|span)>\(404\)</")  # Django 5.x, 4.2
# Django's request line, and the SQL summary that ends it when the view ran queries.
REQUEST_LINE = re.compile(
    r'\[[^\]]+\] "(GET|HEAD) \S+ HTTP/1\.1" \d{3} \S+'
    r"( \(\d+ quer(y|ies), \d+\.\d ms(, \d+ duplicates?)?\))?"
)

# (Range header, status, body, Content-Range) for a GET of the 26-byte file.
RANGES = [
    # One satisfiable range: 206.
    ("bytes=0-3", 206, ALPHABET[:4], "bytes 0-3/26"),
    ("bytes=-3", 206, ALPHABET[-3:], "bytes 23-25/26"),
    ("bytes=20-", 206, ALPHABET[20:], "bytes 20-25/26"),
    ("bytes=20-100", 206, ALPHABET[20:], "bytes 20-25/26"),
    ("bytes=-100", 206, ALPHABET, "bytes 0-25/26"),
    ("bytes=25-25", 206, b"z", "bytes 25-25/26"),
    (f"bytes=0-{HUGE}", 206, ALPHABET, "bytes 0-25/26"),
    ("Bytes=1-1, ", 206, b"b", "bytes 1-1/26"),  # unit names ignore case; empty list elements
    # A valid byte range past the end: 416 with the size.
    ("bytes=100-200", 416, None, "bytes */26"),
    ("bytes=26-", 416, None, "bytes */26"),
    ("bytes=-0", 416, None, "bytes */26"),
    (f"bytes={HUGE}-", 416, None, "bytes */26"),
    # Invalid, another unit, several ranges: the header is ignored, the whole file sent.
    ("bytes=5-2", 200, ALPHABET, None),
    ("abc", 200, ALPHABET, None),
    ("items=0-3", 200, ALPHABET, None),
    ("bytes=", 200, ALPHABET, None),
    ("bytes=-", 200, ALPHABET, None),
    ("bytes=a-b", 200, ALPHABET, None),
    ("bytes=+1-2", 200, ALPHABET, None),
    ("bytes=1_0-20", 200, ALPHABET, None),
    ("bytes=0-1,5-6", 200, ALPHABET, None),
    ("bytes=" + ",".join(f"{i}-{i}" for i in range(2000)), 200, ALPHABET, None),
    ("bytes=100-200,300-400", 200, ALPHABET, None),
]


def lines_under_test(lines: list[str]) -> list[str]:
    """Request lines, but for the fixture's polls of "/" (logged when their response is closed,
    which can be after the test has started)."""
    return [line for line in lines if REQUEST_LINE.fullmatch(line) and '"GET / ' not in line]


def assert_one_line_each(server, start: int, requests: int) -> None:
    """The log since ``start`` holds a request line per request, and nothing else."""

    def complete():
        lines = server.proc.log()[start:].splitlines()
        return lines if len(lines_under_test(lines)) >= requests else None

    lines = wait_until(complete, 10, what=f"{requests} lines", describe=server.proc.describe)
    assert "Traceback" not in "\n".join(lines), server.proc.describe()
    others = [line for line in lines if not REQUEST_LINE.fullmatch(line)]
    assert not others, others
    assert len(lines_under_test(lines)) == requests, lines


@pytest.fixture
def alphabet_server(runserver, site, tmp_path):
    """runserver with the 26-byte file as a static file, a media file and an --adminmedia file."""
    admin = tmp_path / "admin-media"
    admin.mkdir()
    (admin / "alphabet.txt").write_bytes(ALPHABET)
    (site / "static" / "alphabet.txt").write_bytes(ALPHABET)
    (site / "static" / "empty.txt").write_bytes(b"")
    (site / "media").mkdir()
    (site / "media" / "alphabet.txt").write_bytes(ALPHABET)
    return runserver(f"--adminmedia={admin}")


URLS = ["/static/alphabet.txt", "/media/alphabet.txt", "/static/admin/alphabet.txt"]


def test_range_headers_get_206_416_or_the_whole_file(alphabet_server):
    server = alphabet_server
    start = len(server.proc.log())
    for url in URLS:
        for header, status, body, content_range in RANGES:
            resp = server.get(url, headers={"Range": header})
            what = f"{url} Range: {header[:40]}"
            assert resp.status == status, what
            assert resp.headers.get("content-range") == content_range, what
            if body is not None:
                assert resp.body == body, what
                assert resp.headers["content-length"] == str(len(body)), what
            assert resp.headers["accept-ranges"] == "bytes", what
    assert_one_line_each(server, start, len(URLS) * len(RANGES))


def test_conditional_get_if_range_and_head(alphabet_server):
    server = alphabet_server
    start = len(server.proc.log())
    requests = 0

    def get(url, method="GET", **headers):
        nonlocal requests
        requests += 1
        return http_request("127.0.0.1", server.port, url, method=method, headers=headers)

    for url in URLS:
        whole = get(url)
        assert whole.status == 200 and whole.body == ALPHABET
        etag, modified = whole.headers["etag"], whole.headers["last-modified"]
        assert etag.startswith('"')
        # Preconditions come before the range (RFC 9110 section 13.2.2).
        assert get(url, **{"If-None-Match": etag}).status == 304
        assert get(url, **{"If-Modified-Since": modified}).status == 304
        assert get(url, **{"If-None-Match": etag, "Range": "bytes=0-3"}).status == 304
        assert get(url, **{"If-None-Match": etag, "Range": "bytes=100-200"}).status == 304
        assert get(url, **{"If-None-Match": '"other"', "Range": "bytes=0-3"}).status == 206
        # If-Range: the range if the client's copy is current, else the whole file.
        for if_range, status in [
            (etag, 206),
            (modified, 206),
            ('"other"', 200),
            ("W/" + etag, 200),  # a weak tag never matches (strong comparison)
            ("Mon, 01 Jan 2001 00:00:00 GMT", 200),
            ("garbage", 200),
        ]:
            resp = get(url, Range="bytes=0-3", **{"If-Range": if_range})
            assert resp.status == status, (url, if_range)
            assert resp.body == (ALPHABET[:4] if status == 206 else ALPHABET), (url, if_range)
        assert get(url, Range="bytes=100-", **{"If-Range": etag}).status == 416
        assert get(url, Range="bytes=100-", **{"If-Range": '"other"'}).status == 200
        # HEAD: the headers of the whole file; Range is for GET only (RFC 9110 section 14.2).
        for headers in [{}, {"Range": "bytes=0-3"}, {"Range": "bytes=100-200"}]:
            head = get(url, "HEAD", **headers)
            assert head.status == 200 and head.body == b"", (url, headers)
            assert head.headers["content-length"] == "26" and head.headers["etag"] == etag
    # An empty file has no byte to send: its (empty) whole.
    empty = get("/static/empty.txt", Range="bytes=0-")
    assert (empty.status, empty.body) == (200, b"")
    assert_one_line_each(server, start, requests)


def exception_value(body: str) -> str:
    match = re.search(r'<pre class="exception_value">(.*?)</pre>', body, re.S)
    assert match, body[:500]
    return html.unescape(match.group(1))


STATIC_MISSES = [
    "/static/nope.css",
    "/static/css/nope.css",
    "/static/css/",
    "/static/css",
    "/static/",
    "/static/css/site.css%00.png",
    "/static/caf%C3%A9.css",
]


LIVE_SCRIPT = re.compile(r'<script src="/__devserver__/client\.js"[^>]*></script>')


def test_static_404_is_djangos_technical_404_with_debug(runserver, tmp_path):
    admin = tmp_path / "admin-media"
    admin.mkdir()
    ours = runserver(f"--adminmedia={admin}")
    django = runserver(env={"MYSITE_RUNSERVER": "django"})
    assert "StatReloader" in django.proc.log()  # Django's own runserver
    start = len(ours.proc.log())
    for url in STATIC_MISSES:
        mine, theirs = ours.get(url), django.get(url)
        assert mine.status == theirs.status == 404, url
        assert mine.headers["content-type"] == theirs.headers["content-type"], url
        assert TECHNICAL_404.search(mine.text)
        # The same page, but for the port in "Request URL" and live reload's script tag.
        same = LIVE_SCRIPT.sub("", mine.text).replace(f":{ours.port}/", ":PORT/")
        assert same == theirs.text.replace(f":{django.port}/", ":PORT/"), url
        assert mine.headers["content-length"] == str(len(mine.body))
    assert exception_value(ours.get("/static/nope.css").text) == "'nope.css' could not be found"
    assert (
        exception_value(ours.get("/static/css/").text) == "Directory indexes are not allowed here."
    )
    admin_miss = ours.get("/static/admin/nope.css")
    assert admin_miss.status == 404
    assert exception_value(admin_miss.text) == "'admin/nope.css' could not be found"
    assert_one_line_each(ours, start, len(STATIC_MISSES) + 3)


def test_media_404_is_what_djangos_serve_view_says(runserver, site):
    # Django's runserver serves media only through the project's static() URL patterns.
    urls = site / "mysite" / "urls.py"
    urls.write_text(
        urls.read_text()
        + "\nfrom django.conf import settings\nfrom django.conf.urls.static import static\n\n"
        + "urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)\n"
    )
    (site / "media" / "uploads").mkdir(parents=True)
    ours = runserver()
    django = runserver(env={"MYSITE_RUNSERVER": "django"})
    for url in ["/media/nope.txt", "/media/uploads/nope.txt", "/media/uploads/", "/media/"]:
        mine, theirs = ours.get(url), django.get(url)
        assert mine.status == theirs.status == 404, url
        assert TECHNICAL_404.search(mine.text)
        assert exception_value(mine.text) == exception_value(theirs.text), url


@pytest.mark.parametrize("prefix", ["/static/", "/media/"])
def test_refused_paths_are_404s_that_name_no_file(runserver, site, prefix):
    """Django answers these with SuspiciousFileOperation, a 500 (or 400) that names both paths."""
    (site / "static" / "outside").symlink_to("/etc/passwd")
    (site / "media").mkdir()
    (site / "media" / "outside").symlink_to("/etc/passwd")
    server = runserver()
    start = len(server.proc.log())
    paths = [
        "%2e%2e/mysite/settings.py",
        "css/..%2f..%2f..%2fmanage.py",
        "%2fetc%2fpasswd",
        "outside",
    ]
    for path in paths:
        resp = server.get(prefix + path)
        assert resp.status == 404, path
        assert TECHNICAL_404.search(resp.text), path
        assert str(site) not in resp.text, path
        assert "root:" not in resp.text and "SECRET_KEY" not in resp.text, path
    # The symlink's target is named nowhere either.
    assert "/etc/passwd" not in server.get(prefix + "outside").text
    assert_one_line_each(server, start, len(paths) + 1)


def test_static_404_without_debug_is_the_projects_404(runserver, site):
    (site / "templates" / "404.html").write_text("mysite 404: {{ request_path }}\n")
    env = {"MYSITE_DEBUG": "0"}
    ours = runserver("--insecure", env=env)
    django = runserver("--insecure", env={**env, "MYSITE_RUNSERVER": "django"})
    for url, path in [
        ("/static/nope.css", "/static/nope.css"),
        ("/static/css/", "/static/css/"),
        ("/static/%2e%2e/manage.py", "/static/../manage.py"),
    ]:
        resp = ours.get(url)
        assert (resp.status, resp.text) == (404, f"mysite 404: {path}\n"), url
    assert django.get("/static/nope.css").text == ours.get("/static/nope.css").text
    # The example project has no 404.html: Django's own short page, as for any other URL.
    (site / "templates" / "404.html").unlink()
    plain = runserver("--insecure", env=env)
    resp = plain.get("/static/nope.css")
    assert resp.status == 404 and resp.body == plain.get("/no-such-page/").body
    assert "<h1>Not Found</h1>" in resp.text


def test_a_disallowed_host_gets_djangos_400_not_a_500(runserver):
    server = runserver()
    resp = server.get("/static/nope.css", headers={"Host": "evil.example"})
    assert resp.status == server.get("/nope/", headers={"Host": "evil.example"}).status == 400
    assert "DisallowedHost" in resp.text
