"""testserver with 10,000 fixture objects: start to first response, ours and Django's.

A fixture of ``--objects`` objects of examples/mysite's models (1 category per 100 products) is
generated into a temporary FIXTURE_DIRS at run time. Each run starts ``manage.py testserver bench
--noinput`` on a free port and polls a product page (one query through the whole Django stack, a
new connection every 10 ms) until it answers 200 with that product: the time from the process
start to that response is what the developer waits for. Ours (devserver's testserver) and
Django's own (the example project with ``MYSITE_RUNSERVER=django``, which takes devserver out of
INSTALLED_APPS) run interleaved, in ABBA order, for ``--rounds`` rounds each.

    python benchmarks/testserver.py [--rounds 5] [--objects 10000] [--db sqlite|postgresql|mysql]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from common import PYTHON, REPO, Proc, free_port, median, table

SERVERS = {
    "ours": ("devserver testserver", {}),
    "django": ("Django testserver", {"MYSITE_RUNSERVER": "django"}),
}


def write_fixture(directory: Path, objects: int) -> str:
    """``objects`` objects: one category per 100 products. Returns the slug of a product."""
    categories = max(1, objects // 101)
    data: list[dict[str, object]] = [
        {"model": "catalog.category", "pk": c, "fields": {"name": f"C{c}", "slug": f"c{c}"}}
        for c in range(1, categories + 1)
    ]
    for p in range(1, objects - categories + 1):
        data.append(
            {
                "model": "catalog.product",
                "pk": p,
                "fields": {
                    "category": 1 + (p - 1) % categories,
                    "name": f"Product {p}",
                    "slug": f"product-{p}",
                    "description": "A generated product for the testserver benchmark.",
                    "price": f"{p % 1000}.99",
                    "in_stock": p % 7 != 0,
                    "created": "2026-01-01T12:00:00Z",
                },
            }
        )
    (directory / "bench.json").write_text(json.dumps(data))
    return f"product-{(objects - categories) // 2}"


def answers(port: int, path: str, expect: bytes) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status == 200 and expect in resp.read()
    finally:
        conn.close()


def measure(kind: str, site: Path, env: dict[str, str], slug: str, timeout: float) -> float:
    label, extra = SERVERS[kind]
    port = free_port()
    log = site.parent / f"{kind}.log"
    path = f"/products/{slug}/"
    expect = slug.replace("product-", "Product ").encode()
    argv = [PYTHON, "manage.py", "testserver", "bench", "--noinput", "--addrport", str(port)]
    started = time.monotonic()
    proc = Proc(argv, site, {**env, **extra}, log)
    try:
        while True:
            try:
                if answers(port, path, expect):
                    return time.monotonic() - started
            except (OSError, http.client.HTTPException):
                pass
            if proc.popen.poll() is not None or time.monotonic() - started > timeout:
                tail = log.read_text(errors="replace")[-3000:]
                raise SystemExit(f"{label} did not answer {path}:\n{tail}")
            time.sleep(0.01)
    finally:
        proc.stop()


def drop_test_database(db: str, name: str) -> None:
    """Django's testserver leaves its test database behind ("You can explore it on your own")."""
    if db == "postgresql":
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    elif db == "mysql":
        import MySQLdb

        conn = MySQLdb.connect(host="127.0.0.1", user="root")
        try:
            conn.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
        finally:
            conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "mysql"], default="sqlite")
    parser.add_argument("--timeout", type=float, default=180.0)
    args = parser.parse_args()
    times: dict[str, list[float]] = {kind: [] for kind in SERVERS}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        site = root / "mysite"
        shutil.copytree(
            REPO / "examples" / "mysite",
            site,
            ignore=shutil.ignore_patterns("__pycache__", "db.sqlite3", "media"),
        )
        fixtures = root / "fixtures"
        fixtures.mkdir()
        slug = write_fixture(fixtures, args.objects)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "RELOADER_"))}
        env.update(
            {
                "MYSITE_FIXTURE_DIRS": str(fixtures),
                "MYSITE_DB": args.db,
                "MYSITE_DB_NAME": f"bench_{uuid.uuid4().hex[:8]}",  # never touched
                "MYSITE_TEST_DB_NAME": f"test_bench_{uuid.uuid4().hex[:8]}",
                "DJANGO_RUNSERVER_HIDE_WARNING": "true",
            }
        )
        if args.db == "sqlite":
            del env["MYSITE_TEST_DB_NAME"]  # Django's default: in memory
        order = list(SERVERS)
        try:
            for n in range(args.rounds):
                for kind in order if n % 2 == 0 else order[::-1]:  # ABBA
                    took = measure(kind, site, env, slug, args.timeout)
                    times[kind].append(took)
                    print(f"  round {n + 1}: {SERVERS[kind][0]}: {took:.3f} s", flush=True)
        finally:
            if args.db != "sqlite":
                drop_test_database(args.db, env["MYSITE_TEST_DB_NAME"])
    ours, django = median(times["ours"]), median(times["django"])
    print(
        f"\nexamples/mysite on {args.db}, a {args.objects:,}-object fixture, {args.rounds} rounds "
        "each, interleaved (ABBA); start to the first 200 of a product page"
    )
    print(
        table(
            ["server", "median s", "min s", "max s", "vs Django"],
            [
                (
                    SERVERS[kind][0],
                    f"{median(times[kind]):.3f}",
                    f"{min(times[kind]):.3f}",
                    f"{max(times[kind]):.3f}",
                    f"{median(times[kind]) / django:.2f}x",
                )
                for kind in SERVERS
            ],
        )
    )
    print(f"\nratio ours / Django (median): {ours / django:.3f} (target: at most 1.0)")


if __name__ == "__main__":
    main()
