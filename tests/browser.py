"""A real browser for the tests: Debian's Chromium driven by Playwright for Python.

``make test`` installs both (scripts/system-setup.sh installs chromium, the test extra
playwright); where either is missing the tests that need a browser are skipped, saying why.
Chromium runs headless with the flags this machine's closed network needs (no background
networking), in a fresh profile; Playwright's driver and the browser are stopped at the end of
the session.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

CHROMIUM = (
    os.environ.get("DEVSERVER_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
)
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """A headless Chromium (Playwright's Browser), shared by the session's tests."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install playwright)")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    driver = sync_playwright().start()
    try:
        browser = driver.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
    except Exception as exc:
        driver.stop()
        pytest.skip(f"Chromium does not start: {str(exc).splitlines()[0]}")
    try:
        yield browser
    finally:
        browser.close()
        driver.stop()


@pytest.fixture
def browser(chromium) -> Iterator[Any]:
    """A fresh browser context (its own cache, storage and SharedWorkers) for one test."""
    context = chromium.new_context()
    try:
        yield context
    finally:
        context.close()
