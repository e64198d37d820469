"""The stat poller's cost and edge cases, counted in calls rather than timed.

An idle sweep must cost one ``stat`` per watched entry (reported files, files under the trees,
their directories) and nothing else: no listing, no walk, no ignore matching (issue 10, item 8:
walking NetBox's trees twice a second cost 5 % of a core).
"""

from __future__ import annotations

import os
import shutil
import time
from collections import Counter
from pathlib import Path

import pytest

from reloader.ignore import IgnoreRules
from reloader.watch.polling import PollingWatcher

HOUR_AGO = time.time() - 3600


def age(root: Path) -> None:
    """Date every directory under root an hour back: no directory is 'racy' (just modified)."""
    for dirpath, _dirnames, _filenames in os.walk(root):
        os.utime(dirpath, (HOUR_AGO, HOUR_AGO))


def make_project(root: Path, packages: int, modules: int = 50) -> list[Path]:
    files = []
    for p in range(packages):
        package = root / "project" / f"pkg{p:03d}"
        package.mkdir(parents=True)
        for m in range(modules):
            files.append(package / f"mod{m:02d}.py")
            files[-1].write_text(f"VALUE = {m}\n")
    return files


def make_templates(root: Path, dirs: int = 4, per_dir: int = 5) -> Path:
    templates = root / "templates"
    for d in range(dirs):
        sub = templates / f"app{d}" / "includes"
        sub.mkdir(parents=True)
        for n in range(per_dir):
            (sub / f"t{n}.html").write_text(str(n))
    return templates


@pytest.fixture
def calls(monkeypatch) -> Counter[str]:
    """Count the file system calls and the ignore-rule matches of the code under test."""
    counter: Counter[str] = Counter()
    for name in ("stat", "lstat", "scandir", "listdir"):
        original = getattr(os, name)

        def counted(*args, _name=name, _original=original, **kwargs):
            counter[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(os, name, counted)
    name_ignored = IgnoreRules.name_ignored

    def counted_ignore(self, name):
        counter["name_ignored"] += 1
        return name_ignored(self, name)

    monkeypatch.setattr(IgnoreRules, "name_ignored", counted_ignore)
    return counter


def idle_sweep_calls(watcher: PollingWatcher, calls: Counter[str]) -> Counter[str]:
    assert watcher.sweep() == []
    calls.clear()
    assert watcher.sweep() == []
    return Counter(calls)


@pytest.mark.parametrize("packages", [4, 40])
def test_an_idle_sweep_stats_what_is_watched_whatever_the_tree_size(tmp_path, calls, packages):
    files = make_project(tmp_path, packages)
    templates = make_templates(tmp_path)
    age(tmp_path)
    watcher = PollingWatcher(lambda paths: None, IgnoreRules())
    reported = [str(f) for f in files[:10]]  # one package's worth: what a worker imported
    watcher.watch(reported, [str(templates)])
    template_dirs = 1 + 4 * 2  # the root, app0..app3, each with includes/
    expected = len(reported) + 1 + template_dirs + 4 * 5
    assert idle_sweep_calls(watcher, calls) == Counter({"stat": expected})


def test_a_new_file_deep_in_a_tree_lists_only_its_directory(tmp_path, calls):
    templates = make_templates(tmp_path, dirs=20)
    age(tmp_path)
    seen: list[str] = []
    watcher = PollingWatcher(seen.extend, IgnoreRules())
    watcher.watch(trees=[str(templates)])
    idle_sweep_calls(watcher, calls)
    new = templates / "app7" / "includes" / "new.html"
    new.write_text("new")
    calls.clear()
    assert watcher.sweep() == [str(new)]
    assert calls["scandir"] == 1
    assert calls["name_ignored"] == 6  # the names of that one directory, listed again


def test_a_tree_file_written_in_place_is_seen(tmp_path):
    templates = make_templates(tmp_path)
    age(tmp_path)
    watcher = PollingWatcher(lambda paths: None, IgnoreRules())
    watcher.watch(trees=[str(templates)])
    target = templates / "app2" / "includes" / "t3.html"
    with open(target, "a") as f:  # in place: the directory's mtime does not move
        f.write(" more")
    assert watcher.sweep() == [str(target)]
    assert watcher.sweep() == []


def test_an_entry_made_in_the_same_clock_tick_as_the_listing_is_not_missed(tmp_path):
    # A coarse clock stamps the directory with the same mtime for both changes: the poller
    # lists a recently modified directory again until its mtime is safely old.
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "a.html").write_text("a")
    watcher = PollingWatcher(lambda paths: None, IgnoreRules())
    watcher.watch(trees=[str(templates)])
    stamp = os.stat(templates).st_mtime_ns
    (templates / "b.html").write_text("b")
    os.utime(templates, ns=(stamp, stamp))
    assert watcher.sweep() == [str(templates / "b.html")]


def test_a_removed_subtree_is_reported_and_no_longer_stated(tmp_path, calls):
    templates = make_templates(tmp_path)
    age(tmp_path)
    watcher = PollingWatcher(lambda paths: None, IgnoreRules())
    watcher.watch(trees=[str(templates)])
    before = idle_sweep_calls(watcher, calls)["stat"]
    shutil.rmtree(templates / "app1")
    changed = watcher.sweep()
    assert str(templates / "app1") in changed
    assert str(templates / "app1" / "includes" / "t0.html") in changed
    age(tmp_path)
    assert idle_sweep_calls(watcher, calls)["stat"] == before - 2 - 5


def test_a_new_subtree_is_walked_and_its_files_reported(tmp_path):
    templates = make_templates(tmp_path, dirs=1)
    age(tmp_path)
    watcher = PollingWatcher(lambda paths: None, IgnoreRules())
    watcher.watch(trees=[str(templates)])
    (templates / "new" / "deeper").mkdir(parents=True)
    (templates / "new" / "deeper" / "x.html").write_text("x")
    (templates / "new" / "node_modules").mkdir()
    (templates / "new" / "node_modules" / "y.js").write_text("y")
    changed = watcher.sweep()
    assert str(templates / "new" / "deeper" / "x.html") in changed
    assert not any("node_modules" in p for p in changed)
    (templates / "new" / "deeper" / "x.html").write_text("xx")
    assert str(templates / "new" / "deeper" / "x.html") in watcher.sweep()


def test_a_link_to_a_directory_in_a_tree_is_not_walked(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "o.html").write_text("o")
    templates = make_templates(tmp_path, dirs=1)
    (templates / "link").symlink_to(outside)
    watcher = PollingWatcher(lambda paths: None, IgnoreRules())
    watcher.watch(trees=[str(templates)])
    watcher.sweep()
    (outside / "o.html").write_text("changed")
    assert watcher.sweep() == []


def test_a_reported_file_inside_a_tree_keeps_its_directory_watched(tmp_path):
    templates = make_templates(tmp_path, dirs=1)
    module = templates / "app0" / "helpers.py"
    module.write_text("x = 1\n")
    watcher = PollingWatcher(lambda paths: None, IgnoreRules())
    watcher.watch([str(module)], [str(templates)])
    watcher.sweep()
    shutil.rmtree(templates / "app0")
    assert str(module) in watcher.sweep()
    (templates / "app0").mkdir()
    module.write_text("x = 2\n")
    sibling = templates / "app0" / "new.py"
    sibling.write_text("")
    changed = watcher.sweep()
    assert str(module) in changed and str(sibling) in changed
