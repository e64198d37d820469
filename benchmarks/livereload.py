"""From a save to the new content painted in the browser: devserver's live reload next to
django-browser-reload on Django's runserver, in one interleaved run.

Both serve a temp copy of examples/mysite (``MYSITE_RUNSERVER=browser-reload`` adds
django-browser-reload's app, middleware and URLs to Django's runserver). A headless Chromium
(Debian's, driven by Playwright) shows ``/diag/page/``; for each edit the benchmark saves a
real file and waits, with Playwright polling on every animation frame, until the page shows it:

- view: ``diagnostics/views.py``'s ``PAGE_HEADING`` (a Python change: a restart, then a reload);
- template: the last paragraph of ``diagnostics/page.html`` (a page reload, no restart);
- css: the heading's colour in ``static/css/site.css`` (ours swaps the stylesheet in place;
  django-browser-reload reloads the page).

Servers take turns edit by edit (ours, peer, ours, ...); between edits, the page has shown the
previous one (or missed it: not shown within 10 s) and 1 to 1.5 s (random) pass. Prints median
and p90 per server and kind, the edits missed, and the ratio peer / ours.

    python benchmarks/livereload.py [--edits 10] [--kinds view,template,css]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from common import PYTHON, REPO, Proc, free_port, median, p90, table, wait_until
from reload import env_for, get

sys.path.insert(0, str(REPO))
from tests.browser import CHROMIUM, FLAGS  # the way the tests start Chromium

SERVERS = {
    "ours": ("devserver runserver (live reload)", {}),
    "peer": ("Django runserver + django-browser-reload", {"MYSITE_RUNSERVER": "browser-reload"}),
}
PAGE = "/diag/page/"
TIMEOUT_MS = 10_000  # an edit not shown by then is missed


def prepare(root: Path, name: str) -> Path:
    site = root / name
    shutil.copytree(
        REPO / "examples" / "mysite",
        site,
        ignore=shutil.ignore_patterns("__pycache__", "db.sqlite3", "media"),
    )
    import subprocess

    subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v0"], cwd=site, check=True)
    return site


class Server:
    def __init__(self, key: str, root: Path, logs: Path) -> None:
        self.key = key
        self.label, extra = SERVERS[key]
        self.site = prepare(root, key)
        self.port = free_port()
        env = env_for({**extra, "PYTHONPATH": str(REPO)})
        self.proc = Proc(
            [PYTHON, "manage.py", "runserver", f"127.0.0.1:{self.port}"],
            self.site,
            env,
            log=logs / f"{key}.log",
        )
        wait_until(lambda: get(self.port, PAGE)[0] == 200, 60, f"{key} to serve")
        self.n = 0

    def edit(self, kind: str) -> tuple[str, str]:
        """Save the next edit of ``kind``; (JS condition that shows it, its argument)."""
        self.n += 1
        n = self.n
        if kind == "view":
            path = self.site / "diagnostics/views.py"
            text = path.read_text()
            start = text.index('PAGE_HEADING = "')
            end = text.index('"', start + len('PAGE_HEADING = "'))
            path.write_text(text[:start] + f'PAGE_HEADING = "View {n}' + text[end:])
            return "t => document.querySelector('#heading')?.textContent === t", f"View {n}"
        if kind == "template":
            path = self.site / "diagnostics/templates/diagnostics/page.html"
            text = path.read_text()
            start = text.index('<p id="bottom">') + len('<p id="bottom">')
            end = text.index("</p>", start)
            path.write_text(text[:start] + f"Template {n}" + text[end:])
            return "t => document.querySelector('#bottom')?.textContent === t", f"Template {n}"
        path = self.site / "static/css/site.css"
        text = path.read_text().split("/* bench */")[0]
        colour = f"rgb({n % 256}, {(n * 7) % 256}, 1)"
        path.write_text(f"{text}/* bench */\n#heading {{ color: {colour}; }}\n")
        return (
            "c => { const h = document.querySelector('#heading');"
            " return h && getComputedStyle(h).color === c; }",
            colour,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--edits", type=int, default=10, help="edits of each kind per server")
    parser.add_argument("--kinds", default="view,template,css")
    args = parser.parse_args()
    kinds = args.kinds.split(",")
    try:
        from playwright.sync_api import TimeoutError as PlaywrightTimeout
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("playwright is not installed: pip install playwright", file=sys.stderr)
        return 2
    if not os.path.exists(CHROMIUM):
        print(f"no Chromium at {CHROMIUM}: apt-get install chromium", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="bench-livereload-"))
    logs = root / "logs"
    logs.mkdir()
    print(f"servers' logs in {logs}", flush=True)
    results: dict[tuple[str, str], list[float]] = {}
    missed: dict[tuple[str, str], int] = {}
    servers: list[Server] = []
    try:
        servers = [Server(key, root, logs) for key in SERVERS]
        with sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            pages = {}
            for server in servers:
                page = browser.new_context().new_page()
                page.goto(f"http://127.0.0.1:{server.port}{PAGE}")
                page.wait_for_timeout(1500)  # its script connected, the stream greeted it
                pages[server.key] = page
            for i in range(args.edits):
                for kind in kinds:
                    for server in servers:
                        page = pages[server.key]
                        condition, value = server.edit(kind)
                        saved = time.monotonic()
                        try:
                            page.wait_for_function(
                                condition, arg=value, polling="raf", timeout=TIMEOUT_MS
                            )
                        except PlaywrightTimeout:
                            missed[(server.key, kind)] = missed.get((server.key, kind), 0) + 1
                            print(f"[{i + 1}] {server.key:5} {kind:9} missed", flush=True)
                            continue
                        seconds = time.monotonic() - saved
                        results.setdefault((server.key, kind), []).append(seconds)
                        print(f"[{i + 1}] {server.key:5} {kind:9} {seconds:.3f} s", flush=True)
                        time.sleep(random.uniform(1.0, 1.5))
            browser.close()
    finally:
        for server in servers:
            server.proc.stop()
    rows = []
    for kind in kinds:
        ours = results.get(("ours", kind), [])
        peer = results.get(("peer", kind), [])
        rows.append(
            [
                kind,
                median(ours),
                p90(ours),
                missed.get(("ours", kind), 0),
                median(peer),
                p90(peer),
                missed.get(("peer", kind), 0),
                f"{median(peer) / median(ours):.1f}x" if ours and peer else "-",
            ]
        )
    print()
    print(
        table(
            [
                "edit",
                "ours median s",
                "ours p90 s",
                "missed",
                "django-browser-reload median s",
                "its p90 s",
                "missed",
                "ratio",
            ],
            rows,
        )
    )
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
