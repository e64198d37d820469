"""Idle cost of watching: CPU of the reloader over 20 s with 2,000 watched modules.

One run, interleaved: this project's supervisor (``python -m reloader``, inotify) and Django's
StatReloader (``django.utils.autoreload``, what ``runserver`` uses without watchman) watch the same
2,000 generated modules while the program they run does nothing. Reported: the CPU % of the
watching process (our supervisor; Django's reloader runs as a thread in its child) and of the
whole process tree. Target: our supervisor under 0.5 %.

    python benchmarks/idle.py [--seconds 20] [--rounds 3] [--modules 2000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import PYTHON, Proc, cpu_seconds, median, table, tree, wait_until

PROGRAM = """\
import importlib, os, sys, time
here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "pkgs"))
for package in sorted(os.listdir(os.path.join(here, "pkgs"))):
    for name in sorted(os.listdir(os.path.join(here, "pkgs", package))):
        if name.endswith(".py") and name != "__init__.py":
            importlib.import_module(f"{package}.{name[:-3]}")
open(os.path.join(here, "ready"), "w").write(str(len(sys.modules)))
while True:
    time.sleep(3600)
"""

# Django's own reloader, as runserver runs it: parent re-executes this script with RUN_MAIN=true
# and the child runs the program in a thread while the StatReloader ticks every second.
DJANGO_STAT = """\
from django.conf import settings
settings.configure()
from django.utils import autoreload


def main():
    import idle_program  # noqa: F401


autoreload.run_with_reloader(main)
"""


def make_project(root: Path, modules: int) -> None:
    per_package = 50
    (root / "pkgs").mkdir()
    for i in range(0, modules, per_package):
        package = root / "pkgs" / f"pkg{i // per_package:03d}"
        package.mkdir()
        (package / "__init__.py").write_text("")
        for j in range(min(per_package, modules - i)):
            (package / f"mod{j:02d}.py").write_text(f"VALUE = {i + j}\n")
    (root / "idle_program.py").write_text(PROGRAM)
    (root / "django_stat.py").write_text(DJANGO_STAT)


def measure(proc: Proc, watcher_pid: int, seconds: float) -> tuple[float, float]:
    pids = tree(proc.pid)
    start_one = cpu_seconds(watcher_pid)
    start_all = sum(cpu_seconds(p) for p in pids)
    started = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - started
    one = cpu_seconds(watcher_pid) - start_one
    total = sum(cpu_seconds(p) for p in pids) - start_all
    return 100 * one / elapsed, 100 * total / elapsed


def run_ours(root: Path, seconds: float) -> tuple[float, float]:
    (root / "ready").unlink(missing_ok=True)
    proc = Proc([PYTHON, "-m", "reloader", "-q", "--", PYTHON, "idle_program.py"], root)
    try:
        wait_until(lambda: (root / "ready").exists(), 60, "our worker to import the modules")
        time.sleep(2)  # let the worker's report reach the supervisor and the watches settle
        return measure(proc, proc.pid, seconds)
    finally:
        proc.stop()


def run_django(root: Path, seconds: float) -> tuple[float, float]:
    (root / "ready").unlink(missing_ok=True)
    proc = Proc([PYTHON, "django_stat.py"], root)
    try:
        wait_until(lambda: (root / "ready").exists(), 60, "Django's child to import the modules")
        time.sleep(2)
        child = tree(proc.pid)[-1]  # the StatReloader ticks in the child (RUN_MAIN=true)
        return measure(proc, child, seconds)
    finally:
        proc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--modules", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_project(root, args.modules)
        results: dict[str, list[tuple[float, float]]] = {
            "reloader (inotify)": [],
            "Django StatReloader": [],
        }
        for _ in range(args.rounds):
            results["reloader (inotify)"].append(run_ours(root, args.seconds))
            results["Django StatReloader"].append(run_django(root, args.seconds))
        modules = int((root / "ready").read_text()) if (root / "ready").exists() else args.modules
    rows = []
    for name, values in results.items():
        watcher = median([v[0] for v in values])
        rows.append(
            (
                name,
                f"{watcher:.4f}",
                f"{watcher * args.seconds * 10:.1f}",
                f"{median([v[1] for v in values]):.4f}",
            )
        )
    print(
        f"Idle CPU, {args.modules} generated modules ({modules} in sys.modules with the stdlib), "
        f"{args.seconds:g} s x {args.rounds} rounds, interleaved; medians"
    )
    print(
        table(
            [
                "watching with",
                "watcher CPU %",
                f"watcher CPU ms / {args.seconds:g} s",
                "whole tree CPU %",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
