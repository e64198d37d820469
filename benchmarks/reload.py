"""Reloads of examples/mysite under this project's runserver and its peers, in one run.

Peers: Django's own runserver (StatReloader) and Django's runserver with django-watchfiles.
Rounds are interleaved (ours, Django, watchfiles, ours, ...). For each server:

- save to new response: the benchmark rewrites ``diagnostics/version.py`` 1.5 to 2.5 s (random)
  after the previous change was served, and polls ``/diag/version/`` (a new connection every
  5 ms) until it answers with the new value; a save not served within 10 s is missed (and saved
  again);
- quick saves: 5 saves made 0.3 s after the previous change was served, as when a developer fixes
  a typo right after a reload; those not served within 5 s are missed;
- failed requests: then a client loops (a new connection per request) through 5 more reloads and
  counts refused, reset or 5xx answers (the latencies above are measured without it, on an
  otherwise idle server);
- start to first response: from starting ``manage.py runserver`` to the first 200;
- requests/s with keep-alive (wrk, 1 thread, 4 connections) on the template page ``/`` and on a
  1 MB static file.

    python benchmarks/reload.py [--rounds 3] [--edits 10] [--only ours,django,watchfiles]

With ``--projects``, it measures instead, per project, server and kind of edit, the time from a
save to the first response showing it (see ``projects.py`` for the projects and how an edit is
seen, ``bigproject.py`` for the generated ones):

    python benchmarks/reload.py --projects mysite,big-ready,big-view,netbox
        [--kinds view,form,template,models] [--rounds 2] [--edits 5] [--edits-per-kind view=7]
        [--servers ours,django,watchfiles] [--netbox DIR] [--netbox-copy] [--log-dir DIR]

- servers, interleaved round by round: ours (``manage.py runserver 127.0.0.1:PORT -v 2``,
  default options), Django's runserver (StatReloader) and django-watchfiles, from the same tree;
- edits: each a real save of a real file (its original content plus ``BENCH_VERSION = N``, or a
  template with ``<!-- bench N -->``), the kinds taken in turn (view, form, template, models,
  view, ...), ``--edits`` of each kind per server and round;
- save -> first response showing N: the page is polled on a new connection every 20 ms, one
  request in flight; a save not shown within the project's timeout (30-90 s; 20 s for a
  template) is saved again with N+1, and after two such saves the edit counts as missed;
- pacing: after an edit is served, the benchmark waits until the server's whole process tree is
  idle (under 5 % of one core over a 0.5 s window, at most 30 s), then 1-2 s (random), as a
  developer looks at the result;
- memory: PSS of the whole process tree (the server and all its descendants), after the edits;
- for ours, which start served each edit, from its ``-v 2`` log.
"""

from __future__ import annotations

import argparse
import http.client
import random
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from common import PYTHON, REPO, Proc, ensure_wrk, free_port, median, p90, table, wait_until

SERVERS: dict[str, tuple[str, dict[str, str], tuple[str, ...]]] = {
    "fork": ("devserver runserver (fork start)", {}, ("--start=fork",)),
    "spawn": ("devserver runserver (spawn start)", {}, ("--start=spawn",)),
    "django": ("Django runserver (StatReloader)", {"MYSITE_RUNSERVER": "django"}, ()),
    "watchfiles": ("django-watchfiles", {"MYSITE_RUNSERVER": "watchfiles"}, ()),
}


def get(port: int, path: str, timeout: float = 10.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def prepare(root: Path) -> Path:
    site = root / "mysite"
    shutil.copytree(
        REPO / "examples" / "mysite",
        site,
        ignore=shutil.ignore_patterns("__pycache__", "db.sqlite3", "media"),
    )
    for args in (["migrate", "--noinput", "-v0"], ["loaddata", "-v0", "catalog"]):
        subprocess.run([PYTHON, "manage.py", *args], cwd=site, check=True)
    (site / "static" / "bench").mkdir()
    (site / "static" / "bench" / "1mb.bin").write_bytes(bytes(range(256)) * 4096)
    return site


def env_for(extra: dict[str, str]) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "RELOADER_"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as on a developer's machine
    env.update(extra)
    return env


class Looper(threading.Thread):
    """Requests in a loop, each on a new connection; counts what failed."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.stop = threading.Event()
        self.ok = 0
        self.failed = 0
        self.errors: dict[str, int] = {}

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                status, _ = get(self.port, "/diag/version/")
                if status == 200:
                    self.ok += 1
                else:
                    self._fail(f"HTTP {status}")
            except (OSError, http.client.HTTPException) as exc:
                self._fail(type(exc).__name__)
                time.sleep(0.005)

    def _fail(self, what: str) -> None:
        self.failed += 1
        self.errors[what] = self.errors.get(what, 0) + 1


def wrk(binary: str | None, port: int, path: str, seconds: int) -> float:
    if binary is None:
        return float("nan")
    out = subprocess.run(
        [binary, "-t1", "-c4", f"-d{seconds}s", f"http://127.0.0.1:{port}{path}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return float(match.group(1)) if match else 0.0


def save_and_wait(port: int, version_file: Path, n: int, timeout: float) -> float | None:
    """Save version n; seconds until the server answers with it, or None if it never did."""
    saved = time.monotonic()
    version_file.write_text(f"VERSION = {n}\n")
    deadline = saved + timeout
    while time.monotonic() < deadline:
        try:
            status, body = get(port, "/diag/version/", 10)
            if status == 200 and body == str(n).encode():
                return time.monotonic() - saved
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.005)
    return None


def measure(
    kind: str, site: Path, edits: int, wrk_binary: str | None, wrk_seconds: int
) -> dict[str, object]:
    label, extra, args = SERVERS[kind]
    version_file = site / "diagnostics" / "version.py"
    version_file.write_text("VERSION = 0\n")
    port = free_port()
    log = site.parent / f"{kind}.log"
    started = time.monotonic()
    argv = [PYTHON, "manage.py", "runserver", f"127.0.0.1:{port}", *args]
    proc = Proc(argv, site, env_for(extra), log)
    n = 0
    try:
        wait_until(lambda: get(port, "/diag/version/", 2)[0] == 200, 60, f"{label} to answer")
        start_to_first = time.monotonic() - started
        time.sleep(2.0)  # let the reloaders settle (Django's checks, watchfiles' first scan)
        latencies, missed, quick_missed = [], 0, 0
        # Saves at a human pace, 1.5-2.5 s after the previous change was served (random, so that
        # no reloader's polling phase is favoured).
        for _ in range(edits):
            time.sleep(random.uniform(1.5, 2.5))
            n += 1
            took = save_and_wait(port, version_file, n, 10)
            while took is None:  # missed: save again, as a developer would, and count it
                missed += 1
                n += 1
                took = save_and_wait(port, version_file, n, 10)
            latencies.append(took)
        # Quick saves: 0.3 s after the previous change was served (a fix right after a reload).
        for _ in range(5):
            time.sleep(0.3)
            n += 1
            if save_and_wait(port, version_file, n, 5) is None:
                quick_missed += 1
                n += 1
                while save_and_wait(port, version_file, n, 10) is None:
                    n += 1
        # Failed requests: a client loops (a new connection per request) through 5 more reloads.
        looper = Looper(port)
        looper.start()
        for _ in range(5):
            time.sleep(random.uniform(1.5, 2.5))
            n += 1
            while save_and_wait(port, version_file, n, 10) is None:
                n += 1
        time.sleep(0.3)
        looper.stop.set()
        looper.join(15)
        if looper.errors:
            print(f"  {label}: failed requests: {looper.errors}", flush=True)
        page = wrk(wrk_binary, port, "/", wrk_seconds)
        static = wrk(wrk_binary, port, "/static/bench/1mb.bin", wrk_seconds)
        return {
            "latencies": latencies,
            "missed": missed,
            "quick_missed": quick_missed,
            "failed": looper.failed,
            "requests": looper.ok + looper.failed,
            "start": start_to_first,
            "page": page,
            "static": static,
        }
    finally:
        proc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, help="3 (mysite's table), 2 (--projects)")
    parser.add_argument(
        "--edits", type=int, help="paced saves per round: 10; with --projects, of each kind: 5"
    )
    parser.add_argument("--wrk-seconds", type=int, default=5)
    parser.add_argument("--only", default=",".join(SERVERS))
    group = parser.add_argument_group("save to first response by project and kind of edit")
    group.add_argument("--projects", help="mysite,big-ready,big-view,netbox (any of them)")
    group.add_argument("--kinds", default="view,form,template,models", help="kinds of edits")
    group.add_argument(
        "--edits-per-kind", default="", help="per-kind counts overriding --edits: view=7,models=3"
    )
    group.add_argument("--servers", default="ours,django,watchfiles")
    group.add_argument("--netbox", type=Path, help="NetBox set up by setup_netbox.sh")
    group.add_argument(
        "--netbox-copy", action="store_true", help="run a temporary copy of NetBox's tree"
    )
    group.add_argument("--modules", type=int, default=2000, help="of the generated projects")
    group.add_argument("--log-dir", type=Path, help="servers' logs (default: a new /tmp dir)")
    group.add_argument("--seed", type=int)
    group.add_argument(
        "--live-code",
        action="store_true",
        help="run ours from the checkout as it is (default: a snapshot taken at the start)",
    )
    group.add_argument(
        "--code-from", type=Path, help="run ours from this snapshot (LOG_DIR/code of a run)"
    )
    args = parser.parse_args()
    if args.projects:
        import projectbench

        projectbench.run(args)
        return
    args.rounds = 3 if args.rounds is None else args.rounds
    args.edits = 10 if args.edits is None else args.edits
    wrk_binary = ensure_wrk()
    if wrk_binary is None:
        print("wrk not found (Debian's package wrk): requests/s not measured", flush=True)
    kinds = [k for k in args.only.split(",") if k]
    results: dict[str, list[dict[str, object]]] = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory() as tmp:
        site = prepare(Path(tmp))
        for _ in range(args.rounds):
            for kind in kinds:
                results[kind].append(measure(kind, site, args.edits, wrk_binary, args.wrk_seconds))
    summary = {}
    for kind in kinds:
        runs = results[kind]
        latencies = [x for r in runs for x in r["latencies"]]  # type: ignore[attr-defined]
        summary[kind] = {
            "median": median(latencies),
            "p90": p90(latencies),
            "failed": sum(r["failed"] for r in runs),  # type: ignore[misc]
            "requests": sum(r["requests"] for r in runs),  # type: ignore[misc]
            "missed": sum(r["missed"] for r in runs),  # type: ignore[misc]
            "quick_missed": sum(r["quick_missed"] for r in runs),  # type: ignore[misc]
            "start": median([r["start"] for r in runs]),  # type: ignore[misc]
            "page": median([r["page"] for r in runs]),  # type: ignore[misc]
            "static": median([r["static"] for r in runs]),  # type: ignore[misc]
        }

    def ratio(kind: str, peer: str, key: str = "median") -> str:
        if peer not in summary:
            return "-"
        return f"{summary[kind][key] / summary[peer][key]:.2f}x"

    rows = [
        (
            SERVERS[kind][0],
            f"{row['median']:.3f}",
            f"{row['p90']:.3f}",
            ratio(kind, "django"),
            ratio(kind, "watchfiles"),
            f"{row['failed']} / {row['requests']}",
            f"{row['missed']} / {row['quick_missed']} of {5 * len(results[kind])}",
            f"{row['start']:.2f}",
            f"{row['page']:.0f} ({ratio(kind, 'django', 'page')})",
            f"{row['static']:.0f} ({ratio(kind, 'django', 'static')})",
        )
        for kind, row in summary.items()
    ]
    print(
        f"examples/mysite, {args.rounds} rounds x {args.edits} paced saves + 5 quick saves, "
        "interleaved; medians"
    )
    print(
        table(
            [
                "server",
                "save->new response, median s",
                "p90 s",
                "median vs Django",
                "median vs watchfiles",
                "failed / requests during reloads",
                "missed saves: paced / quick",
                "start->first response s",
                "template page req/s (vs Django)",
                "1 MB static req/s (vs Django)",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
