"""What the SQL summary and TLS cost: req/s of the example's catalog page under runserver.

    python benchmarks/requests.py [--seconds 5] [--rounds 3] [--connections 8]

Servers (``--noreload``: one process each), all at once on a private copy of examples/mysite
(SQLite, DEBUG on, the catalog page ``/``: a template and two queries), each measured by wrk in
turn, round after round (the order rotates each round): devserver's runserver with
``--nosqlsummary`` (the baseline), with the SQL summary (the default), with ``--print-sql`` into
a file (each query formatted: what it costs when you look at it), with ``--https`` (the local
CA's certificate; wrk keeps its connections, so this is TLS's cost per request, not the
handshake's), and Django's own runserver, the peer.
The table gives the median req/s of the rounds and its ratio to the baseline; the machine has
2 cores and is noisy: read the ratios. wrk is Debian's package, installed when missing (root).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from common import ensure_wrk, median, table  # noqa: E402

from tests.support import EXAMPLE, PYTHON, ServerProcess, base_env, free_port, wait_until  # noqa: E402

_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_ERRORS = re.compile(r"Non-2xx or 3xx responses: \d+|Socket errors: .*")


@dataclass
class Server:
    name: str
    args: list[str]
    scheme: str = "http"
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    proc: ServerProcess | None = None
    rps: list[float] = field(default_factory=list)


def servers(caroot: Path) -> list[Server]:
    return [
        Server("devserver --nosqlsummary", ["--nosqlsummary"]),
        Server("devserver (SQL summary)", []),
        Server("devserver --print-sql", ["--print-sql"]),
        Server("devserver --https", ["--https"], "https", {"DEVSERVER_CAROOT": str(caroot)}),
        Server("Django's runserver", [], env={"MYSITE_RUNSERVER": "django"}),
    ]


def prepare_site(root: Path) -> Path:
    site = root / "mysite"
    shutil.copytree(EXAMPLE, site, ignore=shutil.ignore_patterns("__pycache__", "db.sqlite3"))
    for command in (["migrate", "--noinput", "-v0"], ["loaddata", "-v0", "catalog"]):
        subprocess.run([PYTHON, "manage.py", *command], cwd=site, env=base_env(), check=True)
    return site


def run_wrk(wrk: str, url: str, seconds: float, connections: int) -> float:
    argv = [wrk, "-t2", f"-c{connections}", f"-d{seconds:g}s", url]
    output = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    errors = _ERRORS.search(output)
    if errors:
        print(f"  ! {url}: {errors.group(0)}", flush=True)
    return float(_RPS.search(output).group(1))  # type: ignore[union-attr]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    wrk = ensure_wrk()
    if wrk is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        site = prepare_site(root)
        chosen = servers(root / "caroot")
        try:
            for server in chosen:
                server.port = free_port()
                argv = [PYTHON, "manage.py", "runserver", f"127.0.0.1:{server.port}"]
                argv += ["--noreload", *server.args]
                log = root / f"{len(server.name)}-{server.port}.log"
                env = base_env({"DJANGO_RUNSERVER_HIDE_WARNING": "true", **server.env})
                server.proc = ServerProcess(argv, site, log, env).start()
            for server in chosen:
                assert server.proc is not None
                wait_until(
                    lambda s=server: "Quit the server" in s.proc.log(),  # type: ignore[union-attr]
                    60,
                    what=f"{server.name} to start",
                    describe=server.proc.describe,
                )
            print(
                f"{len(chosen)} servers up; wrk -t2 -c{args.connections} -d{args.seconds:g}s on /,"
                f" {args.rounds} rounds",
                flush=True,
            )
            for server in chosen:  # warm up (and check each one answers)
                run_wrk(wrk, url(server), 1, args.connections)
            for round_ in range(args.rounds):
                shift = round_ % len(chosen)
                for server in chosen[shift:] + chosen[:shift]:
                    server.rps.append(run_wrk(wrk, url(server), args.seconds, args.connections))
                    print(f"  round {round_ + 1}: {server.name}: {server.rps[-1]:.0f} req/s")
        finally:
            for server in chosen:
                if server.proc is not None:
                    server.proc.stop()
    baseline = median(chosen[0].rps)
    rows = [[s.name, f"{median(s.rps):.0f}", f"{median(s.rps) / baseline:.2f}x"] for s in chosen]
    print()
    print(table(["server", "req/s, median", "vs --nosqlsummary"], rows))
    return 0


def url(server: Server) -> str:
    return f"{server.scheme}://127.0.0.1:{server.port}/"


if __name__ == "__main__":
    raise SystemExit(main())
