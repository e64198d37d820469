"""The 500 page the supervisor answers with, on the held sockets, while no worker can serve.

It leads with what to fix: the exception, then the program's file and line with the source
around it (a SyntaxError's caret under its columns), then the traceback with the library and
import-machinery frames folded (``<details>``, expandable), then the traceback as text, folded
too. Light or dark as the browser prefers. Everything shown is escaped, and the page reloads
itself once the server answers with something else. It comes in two forms: with the failure
(for those ``reloader.audience`` lets see it), and generic, saying nothing of it (for everyone
else). ``reloader.responder`` serves it; ``reloader.failure`` says what ``focus`` and
``frames`` hold.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass
from typing import Any

HEADER = "X-Reloader"
HEADER_VALUE = "error"

_STYLE = """
:root{color-scheme:light dark;--fg:#1d1d1d;--muted:#5b5b5b;--bg:#fafafa;--panel:#fff;
--line:#ddd;--head:#ffc;--head-line:#dd8;--mark:#fde2e1;--caret:#c00;--link:#0b57d0}
@media (prefers-color-scheme:dark){:root{--fg:#e6e6e6;--muted:#a8a8a8;--bg:#161616;
--panel:#1f1f1f;--line:#3a3a3a;--head:#3b3414;--head-line:#6b5d1f;--mark:#4a1f1f;
--caret:#ff7b72;--link:#8ab4f8}}
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:var(--fg);background:var(--bg)}
header{background:var(--head);border-bottom:1px solid var(--head-line);padding:16px 24px}
h1{font-size:20px;margin:0 0 4px;word-break:break-word} h2{font-size:15px;margin:0 0 8px}
p{margin:4px 0} section{margin:16px 24px} .note{font-weight:600;margin-bottom:8px}
.where{font:14px ui-monospace,monospace} .where b{font-weight:600} .muted{color:var(--muted)}
pre,.source{background:var(--panel);border:1px solid var(--line);overflow:auto;
font:13px/1.45 ui-monospace,monospace;margin:0}
pre{padding:12px 16px;white-space:pre-wrap}
.source{padding:8px 0}.source div{white-space:pre;padding:0 16px}
.source .n{display:inline-block;min-width:3.5em;color:var(--muted);user-select:none}
.source .hit{background:var(--mark)} .source .caret{color:var(--caret);font-weight:700}
.frame{font:13px/1.45 ui-monospace,monospace;padding:6px 12px;border:1px solid var(--line);
border-top:none;background:var(--panel)} .frame:first-child{border-top:1px solid var(--line)}
.frame code{display:block;color:var(--muted);white-space:pre-wrap}
.frame.project{border-left:3px solid var(--caret)}
details>summary{cursor:pointer;color:var(--link);padding:6px 12px;font-size:13px}
details.folded{border:1px solid var(--line);border-top:none;background:var(--bg)}
footer{margin:0 24px 24px;color:var(--muted)}
"""

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>{title}</title>
<style>{style}</style></head><body>
<header><h1>{title}</h1><p>{summary}</p></header>
{body}
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

_KIND_WORDS = {"library": "library", "machinery": "import machinery"}


@dataclass
class Failure:
    """What the page shows: ``detail`` is the traceback (or the check messages) as text;
    ``focus`` and ``frames`` are ``reloader.failure``'s, when the program sent them."""

    title: str
    detail: str
    summary: str = ""
    hint: str = "The server is waiting for a file change to restart. This page reloads itself."
    focus: dict[str, Any] | None = None
    frames: list[dict[str, Any]] | None = None


def shown_path(path: str) -> str:
    """A path as the developer knows it: relative to the current directory when inside it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return path
    return path if relative.startswith("..") else relative


def _e(value: object) -> str:
    return html.escape(str(value))


def _focus(focus: dict[str, Any]) -> str:
    line = int(focus.get("line") or 0)
    first = int(focus.get("first") or line)
    where = f"<b>{_e(shown_path(str(focus.get('file', '?'))))}</b>, line {line}"
    if focus.get("function"):
        where += f", in {_e(focus['function'])}"
    rows = []
    for number, text in enumerate(focus.get("source") or [], start=first):
        hit = ' class="hit"' if number == line else ""
        rows.append(f'<div{hit}><span class="n">{number}</span>{_e(text)}</div>')
        offset = focus.get("offset")
        if number == line and isinstance(offset, int) and offset > 0:
            end = focus.get("end_offset")
            width = max(1, end - offset) if isinstance(end, int) and end > offset else 1
            caret = " " * (offset - 1) + "^" * width
            rows.append(f'<div class="caret"><span class="n"></span>{_e(caret)}</div>')
    source = f'<div class="source">{"".join(rows)}</div>' if rows else ""
    note = f'<p class="note">{_e(focus["note"])}</p>' if focus.get("note") else ""
    return f'<section class="focus">{note}<p class="where">{where}</p>{source}</section>'


def _frame(frame: dict[str, Any]) -> str:
    kind = str(frame.get("kind", "project"))
    where = f"{_e(shown_path(str(frame.get('file', '?'))))}, line {_e(frame.get('line', '?'))}"
    code = f"<code>{_e(frame['code'])}</code>" if frame.get("code") else ""
    return f'<div class="frame {_e(kind)}">{where}, in {_e(frame.get("function", "?"))}{code}</div>'


def _frames(frames: list[dict[str, Any]]) -> str:
    """The program's frames open; each run of library and machinery frames folded in one."""
    parts: list[str] = []
    run: list[dict[str, Any]] = []

    def fold() -> None:
        if not run:
            return
        kinds = sorted({_KIND_WORDS.get(str(f.get("kind")), "library") for f in run})
        noun = "frame" if len(run) == 1 else "frames"
        summary = f"{len(run)} {noun} of the {' and the '.join(kinds)}"
        inner = "".join(_frame(f) for f in run)
        parts.append(f'<details class="folded"><summary>{summary}</summary>{inner}</details>')
        run.clear()

    for frame in frames:
        if frame.get("kind") == "project":
            fold()
            parts.append(_frame(frame))
        else:
            run.append(frame)
    fold()
    return (
        '<section class="frames"><h2>Traceback <span class="muted">(most recent call last)'
        f"</span></h2>{''.join(parts)}</section>"
    )


def render(failure: Failure) -> bytes:
    sections = []
    if failure.focus:
        sections.append(_focus(failure.focus))
    if failure.frames:
        sections.append(_frames(failure.frames))
        if failure.detail:
            sections.append(
                "<section><details><summary>The traceback as text</summary>"
                f"<pre>{_e(failure.detail)}</pre></details></section>"
            )
    elif failure.detail:
        sections.append(f"<section><pre>{_e(failure.detail)}</pre></section>")
    return _PAGE.format(
        title=_e(failure.title),
        style=_STYLE,
        summary=_e(failure.summary),
        body="\n".join(sections),
        hint=_e(failure.hint),
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
    return render(GENERIC)


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
