"""ASGI reloads: devserver's runserver next to Daphne's runserver and ``uvicorn --reload``, in one
interleaved run, on the same project.

All three serve a temp copy of examples/mysite with ``MYSITE_ASGI=channels`` (Channels' router:
Django for HTTP, an echo consumer on ``/ws/echo/``): ours is ``manage.py runserver`` (ASGI by
itself, since ``ASGI_APPLICATION`` is set), Daphne's is ``manage.py runserver`` with ``daphne``
first in INSTALLED_APPS (``MYSITE_RUNSERVER=daphne``), uvicorn is
``uvicorn mysite.routing:application --reload``. For each server, in turn:

- save to first new response: ``diagnostics/version.py`` is rewritten and the async view
  ``/diag/async/`` polled (a new connection every 5 ms) until it shows the new version;
- failed requests: a client loops (a new connection per request) through 5 more reloads and
  counts refused, reset or 5xx answers;
- WebSocket: a client connected to the echo consumer when the save is made; from the save until
  a new connection's greeting shows the new version (the close code seen is reported too).

    python benchmarks/asgi.py [--edits 10]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from common import PYTHON, REPO, Proc, free_port, median, p90, table, wait_until
from reload import Looper, env_for, get, save_and_wait

SERVERS = {
    "ours": ("devserver runserver (ASGI)", {}, "manage"),
    "daphne": ("Daphne's runserver", {"MYSITE_RUNSERVER": "daphne"}, "manage"),
    "uvicorn": ("uvicorn --reload", {"MYSITE_RUNSERVER": "django"}, "uvicorn"),
}


def prepare(root: Path, name: str) -> Path:
    site = root / name
    shutil.copytree(
        REPO / "examples" / "mysite",
        site,
        ignore=shutil.ignore_patterns("__pycache__", "db.sqlite3", "media"),
    )
    subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v0"], cwd=site, check=True)
    return site


def start(key: str, site: Path, port: int, log: Path) -> Proc:
    _label, extra, how = SERVERS[key]
    env = env_for({"MYSITE_ASGI": "channels", "PYTHONPATH": str(REPO), **extra})
    if how == "uvicorn":
        argv = [PYTHON, "-m", "uvicorn", "mysite.routing:application", "--reload"]
        argv += ["--host", "127.0.0.1", "--port", str(port)]
    else:
        argv = [PYTHON, "manage.py", "runserver", f"127.0.0.1:{port}"]
    proc = Proc(argv, site, env, log=log)
    wait_until(lambda: get(port, "/diag/async/")[0] == 200, 60, f"{key} to serve")
    return proc


async def websocket_reload(port: int, version_file: Path, n: int) -> tuple[float, object]:
    """Seconds from the save to a new connection greeted with version n; the close code."""
    import websockets

    url = f"ws://127.0.0.1:{port}/ws/echo/"
    ws = await websockets.connect(url)
    await ws.recv()
    saved = time.monotonic()
    version_file.write_text(f"VERSION = {n}\n")
    code: object = None
    try:
        while True:
            await asyncio.wait_for(ws.recv(), 30)
    except websockets.ConnectionClosed as closed:
        code = closed.rcvd.code if closed.rcvd else "no close frame"
    except TimeoutError:
        code = "still open after 30 s"
        await ws.close()
    while time.monotonic() - saved < 30:
        try:
            again = await websockets.connect(url, open_timeout=5)
            hello = await again.recv()
            await again.close()
            if hello.startswith(f"hello {n} "):
                return time.monotonic() - saved, code
        except (OSError, websockets.WebSocketException, TimeoutError):
            pass
        await asyncio.sleep(0.005)
    return float("nan"), code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--edits", type=int, default=10)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-asgi-"))
    logs = root / "logs"
    logs.mkdir()
    print(f"servers' logs in {logs}", flush=True)
    sites = {key: prepare(root, key) for key in SERVERS}
    ports = {key: free_port() for key in SERVERS}
    procs = {}
    saves: dict[str, list[float]] = {key: [] for key in SERVERS}
    missed: dict[str, int] = dict.fromkeys(SERVERS, 0)
    sockets: dict[str, list[float]] = {key: [] for key in SERVERS}
    codes: dict[str, list[object]] = {key: [] for key in SERVERS}
    loops: dict[str, tuple[int, int]] = {}
    n = 100
    try:
        for key in SERVERS:
            procs[key] = start(key, sites[key], ports[key], logs / f"{key}.log")
        for i in range(args.edits):
            for key in SERVERS:
                n += 1
                version = sites[key] / "diagnostics" / "version.py"
                seconds = save_and_wait(ports[key], version, n, 30)
                if seconds is None:
                    missed[key] += 1
                else:
                    saves[key].append(seconds)
                print(f"[{i + 1}] {key:8} save -> response {seconds} s", flush=True)
                time.sleep(random.uniform(1.0, 1.5))
                n += 1
                seconds, code = asyncio.run(websocket_reload(ports[key], version, n))
                sockets[key].append(seconds)
                codes[key].append(code)
                print(
                    f"[{i + 1}] {key:8} websocket {seconds:.3f} s, closed with {code}", flush=True
                )
                time.sleep(random.uniform(1.0, 1.5))
        for key in SERVERS:
            looper = Looper(ports[key])
            looper.start()
            version = sites[key] / "diagnostics" / "version.py"
            for _ in range(5):
                n += 1
                save_and_wait(ports[key], version, n, 30)
                time.sleep(0.5)
            looper.stop.set()
            looper.join()
            loops[key] = (looper.failed, looper.ok + looper.failed)
            print(f"{key}: {looper.failed} failed of {looper.ok + looper.failed} {looper.errors}")
    finally:
        for proc in procs.values():
            proc.stop()
    best = min(median(saves[k]) for k in SERVERS if k != "ours" and saves[k])
    rows = []
    for key in SERVERS:
        label = SERVERS[key][0]
        closes = sorted({str(c) for c in codes[key]})
        rows.append(
            [
                label,
                median(saves[key]),
                p90(saves[key]),
                f"{median(saves[key]) / best:.2f}x",
                missed[key],
                f"{loops[key][0]} / {loops[key][1]}",
                median(sockets[key]),
                ", ".join(closes),
            ]
        )
    print()
    print(
        table(
            [
                "server",
                "save -> new response median s",
                "p90 s",
                "vs best peer",
                "missed",
                "failed / requests during reloads",
                "websocket back median s",
                "close codes",
            ],
            rows,
        )
    )
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
