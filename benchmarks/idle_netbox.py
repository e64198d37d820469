"""Idle cost of watching NetBox: CPU of each reloader while the server waits for requests.

NetBox is a big real Django project (2,500 modules, 41 template and locale trees); it is not
part of this repository: set it up beside it (its requirements in a venv at NETBOX/venv with this
project installed, a configuration.py, PostgreSQL, Redis, ``manage.py migrate``) and pass its
directory. One run, interleaved, rounds x contenders, each started from NetBox's manage.py
directory with NetBox's interpreter, asked for /login/ once (so that the URLconf is imported and
watched), given a few seconds to settle, then measured:

- Django's ``manage.py runserver`` (its StatReloader, in the child it restarts);
- ``python -m devserver runserver --reloader=poll`` from this checkout (our supervisor);
- the same with ``--before DIR``: DIR holds an older ``reloader`` package, put first on the
  path (``git archive <commit> reloader | tar x -C DIR``): the poller before a change;
- ``python -m devserver runserver`` (inotify), for scale.

Reported: CPU % of the watching process, from the scheduler (``schedstat``, nanoseconds) and
from the kernel's utime+stime ticks (``/proc/PID/stat``), and of the whole process tree.

    python benchmarks/idle_netbox.py NETBOX [--python PY] [--before DIR]
        [--seconds 30] [--rounds 3] [--settle 5]
"""

from __future__ import annotations

import argparse
import os
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from common import REPO, Proc, cpu_seconds, free_port, median, table, tree, wait_until

TICKS = os.sysconf("SC_CLK_TCK")


def ticks_seconds(pid: int) -> float:
    """utime + stime of one process, in seconds (10 ms resolution)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def manage_dir(path: Path) -> Path:
    for candidate in (path, path / "netbox"):
        if (candidate / "manage.py").exists():
            return candidate
    raise SystemExit(f"no manage.py in {path} or {path / 'netbox'}")


def answers(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=30) as resp:
        return bool(resp.status == 200)


class Contender:
    def __init__(
        self,
        name: str,
        argv: Callable[[int], list[str]],
        pythonpath: list[str],
        watcher: Callable[[Proc], int],
    ) -> None:
        self.name = name
        self.argv = argv
        self.pythonpath = pythonpath
        self.watcher = watcher

    def run(self, cwd: Path, seconds: float, settle: float, log: Path) -> tuple[float, ...]:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "RELOADER_"))}
        env.pop("PYTHONPATH", None)
        if self.pythonpath:
            env["PYTHONPATH"] = os.pathsep.join(self.pythonpath)
        proc = Proc(self.argv(port), cwd, env, log=log)
        try:
            wait_until(lambda: answers(port), 120, f"{self.name} to serve /login/")
            time.sleep(settle)  # the worker reports the modules the request imported
            pid = self.watcher(proc)
            pids = tree(proc.pid)
            before = (cpu_seconds(pid), ticks_seconds(pid), sum(cpu_seconds(p) for p in pids))
            started = time.monotonic()
            time.sleep(seconds)
            elapsed = time.monotonic() - started
            after = (cpu_seconds(pid), ticks_seconds(pid), sum(cpu_seconds(p) for p in pids))
            return tuple(100 * (b - a) / elapsed for a, b in zip(before, after, strict=True))
        finally:
            proc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("netbox", type=Path, help="NetBox's checkout (or its manage.py directory)")
    parser.add_argument("--python", help="NetBox's interpreter (default: NETBOX/venv/bin/python)")
    parser.add_argument("--before", type=Path, help="a directory holding an older reloader package")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--settle", type=float, default=5.0)
    parser.add_argument("--log-dir", type=Path, default=Path("/tmp"))
    args = parser.parse_args()
    cwd = manage_dir(args.netbox.resolve())
    python = args.python or str(args.netbox.resolve() / "venv" / "bin" / "python")
    addr = "127.0.0.1:{}".format

    def ours(*options: str) -> Callable[[int], list[str]]:
        return lambda port: [python, "-m", "devserver", "runserver", addr(port), *options]

    def supervisor(proc: Proc) -> int:
        return proc.pid  # the process started becomes the supervisor (same PID)

    def djangos_child(proc: Proc) -> int:
        return tree(proc.pid)[-1]  # the StatReloader ticks in the child (RUN_MAIN=true)

    contenders = [
        Contender(
            "Django StatReloader",
            lambda port: [python, "manage.py", "runserver", addr(port)],
            [],
            djangos_child,
        ),
        Contender("devserver --reloader=poll", ours("--reloader=poll"), [str(REPO)], supervisor),
    ]
    if args.before:
        contenders.append(
            Contender(
                "devserver --reloader=poll (before)",
                ours("--reloader=poll"),
                [str(args.before.resolve()), str(REPO)],
                supervisor,
            )
        )
    contenders.append(Contender("devserver (inotify)", ours(), [str(REPO)], supervisor))
    results: dict[str, list[tuple[float, ...]]] = {c.name: [] for c in contenders}
    for round_ in range(args.rounds):
        for c in contenders:
            log = args.log_dir / f"idle_netbox-{round_}-{c.name.split()[0]}.log"
            results[c.name].append(c.run(cwd, args.seconds, args.settle, log))
            print(f"round {round_ + 1}: {c.name}: {results[c.name][-1][0]:.2f} %", flush=True)
    rows = [
        (
            name,
            f"{median([v[0] for v in values]):.2f}",
            f"{median([v[1] for v in values]):.2f}",
            f"{median([v[2] for v in values]):.2f}",
        )
        for name, values in results.items()
    ]
    print(
        f"\nIdle CPU on NetBox ({cwd}), {args.seconds:g} s x {args.rounds} rounds after one "
        "request, interleaved; medians"
    )
    print(
        table(
            ["watching with", "watcher CPU % (schedstat)", "watcher CPU % (ticks)", "tree CPU %"],
            rows,
        )
    )


if __name__ == "__main__":
    main()
