"""Run every benchmark, one after the other (``make bench``): each prints its own table.

python benchmarks/run_all.py [--quick]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

BENCHMARKS = {
    "idle.py": ([], ["--seconds", "5", "--rounds", "1"]),
    "reload.py": ([], ["--rounds", "1", "--edits", "4", "--wrk-seconds", "2"]),
    "fcgi.py": ([], []),
    "testserver.py": ([], []),
    "requests.py": ([], ["--rounds", "1", "--seconds", "2"]),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    args = parser.parse_args()
    failed = []
    for name, (full, quick) in BENCHMARKS.items():
        script = HERE / name
        if not script.exists():
            continue
        print(f"\n## {name}\n", flush=True)
        result = subprocess.run([sys.executable, str(script), *(quick if args.quick else full)])
        if result.returncode:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
