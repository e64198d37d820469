"""Each watcher backend, in-process, on real files."""

from __future__ import annotations

import os
import queue

import pytest

from reloader.ignore import IgnoreRules
from reloader.watch import make_watcher
from tests.support import wait_until


@pytest.fixture(params=["inotify", "observer", "poll"])
def watcher(request):
    events: queue.SimpleQueue[str] = queue.SimpleQueue()

    def on_change(paths):
        for p in paths:
            events.put(p)

    w = make_watcher(request.param, on_change, IgnoreRules(), poll_interval=0.05)
    w.events = events
    yield w
    w.stop()


def drain(events):
    seen = []
    while True:
        try:
            seen.append(events.get_nowait())
        except queue.Empty:
            return seen


def wait_for(watcher, path, seen):
    def found():
        seen.extend(drain(watcher.events))
        return str(path) in seen

    wait_until(found, 5, what=f"an event for {path}")


def test_write_rename_delete_and_create_are_seen(watcher, tmp_path):
    target = tmp_path / "mod.py"
    target.write_text("a = 1\n")
    watcher.watch([str(target)])
    watcher.start()
    seen: list[str] = []
    target.write_text("a = 2\n")
    wait_for(watcher, target, seen)
    seen.clear()
    tmp = tmp_path / "mod.py.new"
    tmp.write_text("a = 3\n")
    os.replace(tmp, target)
    wait_for(watcher, target, seen)
    seen.clear()
    new = tmp_path / "other.py"
    new.write_text("b = 1\n")
    wait_for(watcher, new, seen)
    seen.clear()
    target.unlink()
    wait_for(watcher, target, seen)


def test_trees_are_recursive_and_follow_new_directories(watcher, tmp_path):
    root = tmp_path / "templates"
    (root / "a").mkdir(parents=True)
    (root / "node_modules").mkdir()
    watcher.watch(trees=[str(root)])
    watcher.start()
    seen: list[str] = []
    (root / "a" / "x.html").write_text("1")
    wait_for(watcher, root / "a" / "x.html", seen)
    (root / "b" / "c").mkdir(parents=True)
    (root / "b" / "c" / "y.html").write_text("2")
    wait_for(watcher, root / "b" / "c" / "y.html", seen)
    (root / "node_modules" / "z.js").write_text("3")
    (root / "a" / "last.html").write_text("4")
    wait_for(watcher, root / "a" / "last.html", seen)
    assert str(root / "node_modules" / "z.js") not in seen
