"""The 500 page the supervisor answers with, on the held sockets, while no worker can serve.

The page escapes everything it shows and reloads itself once the server answers with something
else. It comes in two forms: with the failure (for those ``reloader.audience`` lets see it), and
generic, saying nothing of it (for everyone else). ``reloader.responder`` serves it.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

HEADER = "X-Reloader"
HEADER_VALUE = "error"

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex">
<title>{title}</title>
<style>
body{{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d1d1d;background:#fafafa}}
header{{background:#ffc;border-bottom:1px solid #dd8;padding:16px 24px}}
h1{{font-size:20px;margin:0 0 4px}} p{{margin:4px 0}}
pre{{background:#fff;border:1px solid #ddd;margin:16px 24px;padding:12px 16px;overflow:auto;
font:13px/1.4 ui-monospace,monospace;white-space:pre-wrap}}
footer{{margin:0 24px 24px;color:#555}}
</style></head><body>
<header><h1>{title}</h1><p>{summary}</p></header>
<pre>{detail}</pre>
<footer><p>{hint}</p></footer>
<script>
(function poll() {{
  setTimeout(function () {{
    fetch(location.href, {{method: "HEAD", cache: "no-store"}}).then(function (r) {{
      if (r.headers.get("{header}") !== "{header_value}") {{ location.reload(); }}
      else {{ poll(); }}
    }}, poll);
  }}, 500);
}})();
</script>
</body></html>
"""


@dataclass
class Failure:
    """What the page shows."""

    title: str
    detail: str
    summary: str = ""
    hint: str = "The server is waiting for a file change to restart. This page reloads itself."


def render(failure: Failure) -> bytes:
    return _PAGE.format(
        title=html.escape(failure.title),
        summary=html.escape(failure.summary),
        detail=html.escape(failure.detail),
        hint=html.escape(failure.hint),
        header=HEADER,
        header_value=HEADER_VALUE,
    ).encode("utf-8")


# What everyone not allowed to see the failure gets: nothing of it (its title may hold a secret
# too: ``RuntimeError: boom s3cr3t``).
GENERIC = Failure(
    "Server Error (500)",
    "",
    summary="The server cannot answer right now. The reason is shown where it runs.",
    hint="This page reloads itself once the server answers again.",
)


def render_generic() -> bytes:
    return render(GENERIC).replace(b"<pre></pre>\n", b"")


def response(failure: Failure, head_only: bool, detailed: bool = True) -> bytes:
    body = render(failure) if detailed else render_generic()
    head = (
        "HTTP/1.1 500 Internal Server Error\r\n"
        "Content-Type: text/html; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Cache-Control: no-store\r\n"
        f"{HEADER}: {HEADER_VALUE}\r\n"
        "Connection: close\r\n\r\n"
    ).encode("ascii")
    return head if head_only else head + body
