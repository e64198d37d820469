"""Django's own runserver tests, run against our ``Command`` (issue 10: drop-in fidelity).

A project that subclasses runserver, or tests it the way Django's own suite does, must see its
Django's contract. This runs the runserver classes of Django's ``tests/admin_scripts``, taken
from the sdist of the installed Django version, with Django's own test runner. The shim
(``django_suite_shim.py``) makes ``django.core.management.commands.runserver.Command`` ours.
The sdist is fetched once with pip, as an sdist (``--no-binary :all:``: wheels hold no tests),
and unpacked under ``.cache/django-sdist/`` (gitignored). ``make test-django-suite`` runs this
module under Django 5.2 and 4.2.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import django
import pytest

from tests.support import PYTHON, REPO, base_env

CACHE = REPO / ".cache" / "django-sdist"
SHIM = Path(__file__).with_name("django_suite_shim.py")
CLASSES = ("ManageRunserver", "ManageRunserverMigrationWarning")


def _sdist(version: str) -> Path | None:
    if CACHE.is_dir():
        for path in CACHE.iterdir():
            if path.name.lower() == f"django-{version}.tar.gz":
                return path
    return None


@pytest.fixture(scope="module")
def django_tests() -> Path:
    """The ``tests`` directory of the installed Django version's sdist."""
    version = django.__version__
    tests = CACHE / f"django-{version}" / "tests"
    if (tests / "runtests.py").exists():
        return tests
    CACHE.mkdir(parents=True, exist_ok=True)
    if _sdist(version) is None:
        fetch = subprocess.run(
            [
                *(PYTHON, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps"),
                *(f"Django=={version}", "--dest", str(CACHE), "--quiet"),
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert fetch.returncode == 0, f"pip could not fetch Django {version}'s sdist:\n" + (
            fetch.stdout + fetch.stderr
        )
    sdist = _sdist(version)
    assert sdist is not None, f"pip left no sdist of Django {version} in {CACHE}"
    # Unpack the tests only, beside the final place, then rename: a run stopped half-way
    # leaves nothing that looks complete.
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=CACHE))
    try:
        with tarfile.open(sdist) as tar:
            members = [m for m in tar.getmembers() if m.name.split("/")[1:2] == ["tests"]]
            if hasattr(tarfile, "data_filter"):  # Python 3.11.4+
                tar.extractall(staging, members, filter="data")
            else:
                tar.extractall(staging, members)  # Django's sdist, from pip
        (unpacked,) = staging.iterdir()
        tests.parent.mkdir(exist_ok=True)
        (unpacked / "tests").rename(tests)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return tests


def runserver_test_names(tests: Path) -> set[str]:
    """``Class.test_name`` of every test in the runserver classes, read from Django's source."""
    tree = ast.parse((tests / "admin_scripts" / "tests.py").read_text("utf-8"))
    return {
        f"{node.name}.{item.name}"
        for node in tree.body
        if isinstance(node, ast.ClassDef) and node.name in CLASSES
        for item in node.body
        if isinstance(item, ast.FunctionDef) and item.name.startswith("test_")
    }


def test_djangos_runserver_tests_pass_against_our_command(django_tests):
    labels = [f"admin_scripts.tests.{name}" for name in CLASSES]
    result = subprocess.run(
        [PYTHON, str(SHIM), str(django_tests), *labels, "--parallel=1", "--verbosity=2"],
        cwd=django_tests,
        # Our worktree's devserver, whatever the venv's editable install points at.
        env=base_env({"PYTHONPATH": str(REPO)}),
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    output = result.stdout + result.stderr
    # The proof that the tests ran against ours: without the shim this line names Django's.
    assert "runserver under test: devserver.management.commands.runserver.Command" in output, output
    assert result.returncode == 0, output
    expected = runserver_test_names(django_tests)
    # unittest's verbose lines: "test_x (admin_scripts.tests.Class.test_x) ... ok", the
    # docstring's first line before " ... ok" when there is one.
    ok = r"^(test_\w+) \(admin_scripts\.tests\.(\w+)\.\1\)(?:\n[^\n]*)? \.\.\. ok$"
    passed = {f"{cls}.{name}" for name, cls in re.findall(ok, output, re.M)}
    assert len(expected) >= 14  # 14 in Django 4.2, 16 in 5.2
    assert passed == expected, output
    print(f"Django {django.__version__}: {len(passed)} of Django's runserver tests pass on ours")
