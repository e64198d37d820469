"""Defects 1, 4 and 5: the pools grow to what was asked, recycle without stalls, and work with
more than 1,024 open files."""

from __future__ import annotations

import collections
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.fcgi.clients import fcgi_get
from tests.support import wait_until


def test_prefork_grows_up_to_maxchildren_under_load(fcgi_server, run_dir: Path) -> None:
    """flup stopped at maxspare (2 here): every child looked idle (defect 1)."""
    sock = str(run_dir / "sock" / "s.sock")
    server = fcgi_server(f"socket={sock}", "minspare=1", "maxspare=2", "maxchildren=8")
    most = 0
    done = threading.Event()

    def watch() -> None:
        nonlocal most
        while not done.is_set():
            most = max(most, len(server.children()))
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with ThreadPoolExecutor(24) as pool:
            pids = list(pool.map(lambda _: fcgi_get(sock, "/sleep", query="s=0.5").text, range(24)))
    finally:
        done.set()
        watcher.join()
    assert len(set(pids)) >= 8, collections.Counter(pids)
    assert most <= 8, f"{most} children for maxchildren=8"


def test_prefork_maxrequests_recycles_children_without_stalling(fcgi_server, run_dir: Path) -> None:
    """Each child serves exactly maxrequests requests; its replacement is ready at once (flup
    reaped exited children only on a 2 s select() timeout: defect 4)."""
    sock = str(run_dir / "sock" / "s.sock")
    fcgi_server(f"socket={sock}", "minspare=1", "maxspare=1", "maxchildren=1", "maxrequests=5")
    started = time.monotonic()
    pids = [fcgi_get(sock, "/pid").text for _ in range(60)]
    elapsed = time.monotonic() - started

    counts = collections.Counter(pids)
    assert len(counts) == 12, counts
    assert set(counts.values()) == {5}
    assert elapsed < 8.0, f"60 requests with 11 recycles took {elapsed:.1f}s"


@pytest.mark.parametrize("protocol", ["fcgi", "scgi"])
def test_threaded_serves_100_concurrent_requests_in_parallel(
    fcgi_server, run_dir: Path, protocol: str
) -> None:
    """All 100 must be inside the app at the same time for any to succeed (a barrier); flup's
    pool ran a handful at a time (defect 5)."""
    sock = str(run_dir / "sock" / "s.sock")
    fcgi_server(f"socket={sock}", "method=threaded", "maxchildren=120", f"protocol={protocol}")
    from tests.fcgi.clients import scgi_get

    get = fcgi_get if protocol == "fcgi" else scgi_get
    started = time.monotonic()
    with ThreadPoolExecutor(100) as pool:
        responses = list(
            pool.map(
                lambda _: get(sock, "/barrier", query="n=100&timeout=20", timeout=30), range(100)
            )
        )
    assert [r.status for r in responses] == [200] * 100
    assert time.monotonic() - started < 20


def test_threaded_never_runs_more_than_maxchildren_threads(fcgi_server, run_dir: Path) -> None:
    sock = str(run_dir / "sock" / "s.sock")
    server = fcgi_server(f"socket={sock}", "method=threaded", "maxchildren=4", "maxspare=4")
    most = 0

    def threads() -> int:
        return len(os.listdir(f"/proc/{server.pid}/task"))

    with ThreadPoolExecutor(12) as pool:
        futures = [pool.submit(fcgi_get, sock, "/sleep", query="s=0.3") for _ in range(12)]
        while not all(f.done() for f in futures):
            most = max(most, threads())
            time.sleep(0.01)
    assert [f.result().status for f in futures] == [200] * 12
    assert most <= 5, f"{most} threads (main + at most 4 workers)"


@pytest.mark.parametrize("method", ["prefork", "threaded"])
def test_serving_with_more_than_1024_open_files(fcgi_server, run_dir: Path, method: str) -> None:
    """The app holds 1,100 fds, so every socket the server opens is above 1023, where select()
    fails (flup dropped those connections: defect 5)."""
    sock = str(run_dir / "sock" / "s.sock")
    server = fcgi_server(
        f"socket={sock}",
        f"method={method}",
        "maxspare=2",
        env={"FCGI_TEST_HOG_FDS": "1100"},
    )
    serving_pid = server.pid
    if method == "prefork":
        wait_until(lambda: server.children(), 10, what="a child")
        serving_pid = server.children()[0]
    assert len(os.listdir(f"/proc/{serving_pid}/fd")) > 1100
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: fcgi_get(sock, "/pid"), range(40)))
    assert [r.status for r in responses] == [200] * 40
    big = fcgi_get(sock, "/big", query="mb=2")
    assert len(big.body) == 2 * 1024 * 1024
