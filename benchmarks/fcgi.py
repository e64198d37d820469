"""runfcgi (prefork and threaded) next to gunicorn (sync and gthread), behind the same nginx.

    python benchmarks/fcgi.py [--seconds 8] [--reps 3] [--connections 16]

One nginx (worker_processes 1) fronts every backend on its own port: runfcgi over a unix socket
with FastCGI (the ``examples/nginx/fastcgi-unix.conf`` location), gunicorn over a unix socket
with ``proxy_pass``. All backends serve a private copy of examples/mysite (SQLite, DEBUG off)
and run at the same time; wrk measures each one right next to its peer, in interleaved
repetitions (ABBA order), and the table reports medians and the median of the per-repetition
ratios, which survive a noisy 2-core machine better than absolute figures. Same number of
processes: runfcgi prefork with 4 children against gunicorn sync with 4 workers; runfcgi
threaded with 16 threads against gunicorn gthread with 1 worker x 16 threads. A third runfcgi
prefork with ``maxrequests=100``, measured against the first, shows what recycling costs.

Pages: ``/`` (the catalog: a template and two SQLite queries) and ``/diag/path/x`` (a small
JSON answer: mostly server overhead). wrk is Debian's package; this script installs it when it
runs as root and it is missing, and falls back to a small Python client otherwise.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from common import ensure_wrk  # noqa: E402

from tests.fcgi import nginx as nginx_support  # noqa: E402
from tests.support import (  # noqa: E402
    EXAMPLE,
    PYTHON,
    ServerProcess,
    base_env,
    free_port,
    http_request,
    wait_until,
)

PAGES = ["/", "/diag/path/x"]
# (subject, peer): each subject is measured right next to its peer and reported as a ratio.
PAIRS = [
    ("runfcgi-prefork", "gunicorn-sync"),
    ("runfcgi-threaded", "gunicorn-gthread"),
    ("prefork-maxreq100", "runfcgi-prefork"),
]
GUNICORN = str(Path(PYTHON).with_name("gunicorn"))


@dataclass
class Backend:
    name: str
    argv: list[str]
    socket: Path
    kind: str  # "fastcgi" or "http"
    port: int = 0
    proc: ServerProcess | None = None
    results: dict[str, list[tuple[float, float]]] = field(default_factory=dict)


def prepare_site(root: Path) -> Path:
    site = root / "mysite"
    shutil.copytree(EXAMPLE, site, ignore=shutil.ignore_patterns("__pycache__", "db.sqlite3"))
    for command in (["migrate", "--noinput", "-v0"], ["loaddata", "-v0", "catalog"]):
        subprocess.run([PYTHON, "manage.py", *command], cwd=site, env=site_env(), check=True)
    return site


def site_env() -> dict[str, str]:
    env = base_env({"MYSITE_DEBUG": "0"})
    env.pop("PYTHONUNBUFFERED", None)
    return env


def backends(sockets: Path) -> list[Backend]:
    def runfcgi(name: str, *options: str) -> Backend:
        sock = sockets / f"{name}.sock"
        argv = [PYTHON, "manage.py", "runfcgi", f"socket={sock}", "umask=007", "daemonize=false"]
        return Backend(name, [*argv, *options], sock, "fastcgi")

    def gunicorn(name: str, *options: str) -> Backend:
        sock = sockets / f"{name}.sock"
        # gunicorn chowns its socket to its own group: let the setgid directory (group
        # www-data, no access for others) be the only guard.
        argv = [GUNICORN, "--bind", f"unix:{sock}", "--umask", "000", *options]
        return Backend(name, [*argv, "mysite.wsgi:application"], sock, "http")

    return [
        runfcgi("runfcgi-prefork", "method=prefork", "minspare=4", "maxspare=4", "maxchildren=4"),
        gunicorn("gunicorn-sync", "--workers", "4"),
        runfcgi(
            "runfcgi-threaded", "method=threaded", "minspare=16", "maxspare=16", "maxchildren=16"
        ),
        gunicorn(
            "gunicorn-gthread", "--workers", "1", "--worker-class", "gthread", "--threads", "16"
        ),
        runfcgi(
            "prefork-maxreq100",
            "method=prefork",
            "minspare=4",
            "maxspare=4",
            "maxchildren=4",
            "maxrequests=100",
        ),
    ]


def nginx_conf(all_backends: list[Backend]) -> str:
    """One nginx, one server per backend; the FastCGI location is examples/nginx's."""
    servers = []
    for backend in all_backends:
        if backend.kind == "fastcgi":
            location = f"""
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_NAME "";
            fastcgi_param PATH_INFO $uri;
            fastcgi_pass unix:{backend.socket};"""
        else:
            location = f"""
            proxy_set_header Host $host;
            proxy_pass http://unix:{backend.socket}:;"""
        servers.append(
            f"""
    server {{
        listen 127.0.0.1:{backend.port};
        location / {{{location}
        }}
    }}"""
        )
    example = (nginx_support.EXAMPLES / "fastcgi-unix.conf").read_text()
    assert 'fastcgi_param SCRIPT_NAME "";' in example and "fastcgi_param PATH_INFO $uri;" in example
    return f"""
user www-data;
worker_processes 1;
daemon off;
pid nginx.pid;
error_log error.log;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path client_body_temp;
    fastcgi_temp_path fastcgi_temp;
    proxy_temp_path proxy_temp;
    scgi_temp_path scgi_temp;
    uwsgi_temp_path uwsgi_temp;
    {"".join(servers)}
}}
"""


_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_P99 = re.compile(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_ERRORS = re.compile(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)")
_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def run_wrk(
    wrk: str, port: int, path: str, seconds: float, connections: int
) -> tuple[float, float]:
    argv = [wrk, "-t2", f"-c{connections}", f"-d{seconds:g}s", "--latency"]
    output = subprocess.run(
        [*argv, f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True, check=True
    ).stdout
    rps = float(_RPS.search(output).group(1))  # type: ignore[union-attr]
    p99 = _P99.search(output)
    errors = _ERRORS.search(output)
    if errors:
        print(f"  ! {path} on {port}: {errors.group(0)}", flush=True)
    return rps, float(p99.group(1)) * _UNIT[p99.group(2)] if p99 else float("nan")


def run_python_client(
    port: int, path: str, seconds: float, connections: int
) -> tuple[float, float]:
    """A fallback when wrk is not installed: keep-alive HTTP/1.1 clients in threads."""
    import http.client

    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = []
        while time.monotonic() < deadline:
            started = time.perf_counter()
            conn.request("GET", path)
            conn.getresponse().read()
            mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    latencies.sort()
    return len(latencies) / seconds, latencies[int(len(latencies) * 0.99)] * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--only", nargs="*", default=[], help="measure only these subjects (e.g. runfcgi-threaded)"
    )
    args = parser.parse_args()
    if nginx_support.NGINX is None:
        print("nginx is not installed: run scripts/system-setup.sh as root", file=sys.stderr)
        return 1
    wrk = ensure_wrk()
    print(f"load client: {wrk or 'python fallback (wrk not installed)'}", flush=True)

    run_dir = nginx_support.make_run_dir()
    work = Path(tempfile.mkdtemp(prefix="fcgi-bench-"))
    started: list[ServerProcess] = []
    try:
        site = prepare_site(work)
        all_backends = backends(run_dir / "sock")
        for backend in all_backends:
            backend.port = free_port()
            log = work / f"{backend.name}.log"
            backend.proc = ServerProcess(backend.argv, site, log, site_env()).start()
            started.append(backend.proc)
        conf = run_dir / "nginx" / "nginx.conf"
        conf.write_text(nginx_conf(all_backends))
        prefix = run_dir / "nginx"
        started.append(
            ServerProcess(
                nginx_support.command(prefix, conf), prefix, work / "nginx.log", {}
            ).start()
        )
        for backend in all_backends:
            wait_until(
                lambda b=backend: http_request("127.0.0.1", b.port, "/").status == 200,  # type: ignore[misc]
                60,
                what=f"{backend.name} to answer through nginx",
                describe=backend.proc.describe if backend.proc else None,
            )
        print(
            f"{len(all_backends)} backends up; wrk -t2 -c{args.connections} -d{args.seconds:g}s, "
            f"{args.reps} interleaved repetitions",
            flush=True,
        )
        by_name = {b.name: b for b in all_backends}
        ratios: dict[tuple[str, str], list[float]] = {}
        for rep in range(args.reps):
            for path in PAGES:
                for subject, peer in PAIRS:
                    if args.only and subject not in args.only:
                        continue
                    # Each pair back to back (ABBA over the repetitions), so that the machine's
                    # load drifts the same way for both; the ratio is taken per repetition.
                    pair = (by_name[subject], by_name[peer])
                    measured = {}
                    for backend in pair if rep % 2 == 0 else pair[::-1]:
                        result = measure(wrk, backend.port, path, args)
                        backend.results.setdefault(path, []).append(result)
                        measured[backend.name] = result[0]
                        print(
                            f"  rep {rep + 1} {backend.name:18} {path:14} "
                            f"{result[0]:8.0f} req/s  p99 {result[1]:7.2f} ms",
                            flush=True,
                        )
                    ratios.setdefault((subject, path), []).append(
                        measured[subject] / measured[peer]
                    )
        report(all_backends, ratios, args)
    finally:
        for proc in reversed(started):
            proc.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    return 0


def measure(wrk: str | None, port: int, path: str, args: argparse.Namespace) -> tuple[float, float]:
    if wrk:
        run_wrk(wrk, port, path, 1, args.connections)  # warm up
        return run_wrk(wrk, port, path, args.seconds, args.connections)
    run_python_client(port, path, 1, args.connections)
    return run_python_client(port, path, args.seconds, args.connections)


def report(
    all_backends: list[Backend],
    ratios: dict[tuple[str, str], list[float]],
    args: argparse.Namespace,
) -> None:
    by_name = {b.name: b for b in all_backends}
    peer_of = dict(PAIRS)
    print()
    print("| backend | page | req/s (median) | p99 ms (median) | ratio (median of reps) | vs |")
    print("| --- | --- | ---: | ---: | ---: | --- |")
    summary = []
    for path in PAGES:
        for backend in all_backends:
            runs = by_name[backend.name].results.get(path, [])
            if not runs:
                continue
            rps = statistics.median(r[0] for r in runs)
            p99 = statistics.median(r[1] for r in runs)
            peer = peer_of.get(backend.name, "")
            ratio = statistics.median(ratios[(backend.name, path)]) if peer else 1.0
            shown = f"{ratio:.2f}" if peer else ""
            print(f"| {backend.name} | `{path}` | {rps:.0f} | {p99:.1f} | {shown} | {peer} |")
            summary.append({"backend": backend.name, "page": path, "rps": rps, "p99_ms": p99,
                            "ratio": ratio, "vs": peer, "runs": runs})  # fmt: skip
    results = REPO / "benchmarks" / "results"
    results.mkdir(exist_ok=True)
    (results / "fcgi.json").write_text(json.dumps({"args": vars(args), "rows": summary}, indent=1))


if __name__ == "__main__":
    raise SystemExit(main())
