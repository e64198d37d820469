"""The import contract between the packages, checked on the source and on a live import."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest

from tests.support import PYTHON, REPO

FORBIDDEN = {
    "reloader": {"django", "werkzeug", "devserver", "fcgi", "flup"},
    "fcgi": {"django", "werkzeug", "devserver", "reloader", "watchdog"},
}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_stay_in_their_layer(package):
    offenders = {}
    for path in sorted((REPO / package).rglob("*.py")):
        bad = imported_roots(path) & FORBIDDEN[package]
        if bad:
            offenders[str(path.relative_to(REPO))] = sorted(bad)
    assert offenders == {}


def test_the_supervisor_side_imports_no_framework_and_no_user_code():
    code = (
        "import sys, reloader, reloader.cli, reloader.supervisor, reloader.run\n"
        "from reloader.watch import make_watcher\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'django', 'werkzeug', 'devserver', 'fcgi', 'flup'})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_worker_side_stays_light():
    code = "import sys, reloader.worker\nprint('reloader.supervisor' in sys.modules)\n"
    out = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_only_the_protocol_module_spells_the_protocol_names():
    names = ["RELOADER_CONTROL_FD", "RELOADER_LISTEN_FDS", "RELOADER_INFO"]
    offenders = [
        str(p.relative_to(REPO))
        for package in ("reloader", "fcgi", "devserver", "examples")
        for p in (REPO / package).rglob("*.py")
        if p.name != "protocol.py" and any(n in p.read_text() for n in names)
    ]
    assert offenders == []
