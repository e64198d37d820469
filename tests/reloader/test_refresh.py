"""Fast reloads (``reloader.refresh``): a worker forked from the last checkpoint imports again
only the edited modules and those that imported them, and is never different from a cold one."""

from __future__ import annotations

import re

from tests.reloader.staging import built, imports_of, serve, wait_rebuilt, write_module

# proj.EXTRA, which the app shows, is worked out at each request from what proj holds.
INIT = """\
import weakref

REGISTRY = []
WATCHERS = weakref.WeakSet()


def __getattr__(name):
    if name == "EXTRA":
        return ",".join(hook() for hook in REGISTRY) + f"/{len(WATCHERS)}"
    raise AttributeError(name)
"""
REGISTER = "import proj\ndef hook():\n    return V\nproj.REGISTRY.append(hook)"


def fast_only(server, since: int = 0) -> None:
    """Every reload (since that much of the log) came from the last checkpoint, importing
    again."""
    log = server.proc.log()[since:]
    assert "ruled out" not in log, log
    assert log.count("importing again what") == log.count("changed, reloading")


def test_an_edit_imports_again_only_that_module(staged):
    server = staged()
    before = built(server)
    write_module(server.app, "c", "c2")
    pid = serve(server, "a1 b1 c2")
    assert imports_of(server, pid) == ["c", "serve"]
    assert "importing again what c.py reach" in server.proc.log()
    # Its analysis looked the referrers up in the index the last checkpoint made.
    assert re.search(r"who references what indexed in \d+\.\d\ds\)", server.proc.log())
    # Made again after that reload, the last checkpoint analysed c ahead; the next edit of c
    # keeps it: its workers share its memory, and no build runs.
    wait_rebuilt(server, before)
    before = built(server)
    write_module(server.app, "c", "c3")
    pid = serve(server, "a1 b1 c3")
    assert imports_of(server, pid) == ["c", "serve"]
    wait_rebuilt(server, before)
    assert "The last checkpoint is kept: it analysed this edit ahead." in server.proc.log()
    fast_only(server)


def test_the_modules_that_imported_it_are_imported_again_after_it(staged):
    server = staged()
    before = built(server)
    write_module(server.app, "c", "c2", extra="from proj.b import V as BV")
    (server.app / "proj" / "c.py").write_text(
        (server.app / "proj" / "c.py").read_text().replace("V = 'c2'", "V = 'c2-' + BV")
    )
    serve(server, "a1 b1 c2-b1")
    wait_rebuilt(server, before)
    write_module(server.app, "b", "b2")
    pid = serve(server, "a1 b2 c2-b2")
    assert imports_of(server, pid) == ["b", "c", "serve"]


def test_an_importer_of_the_module_itself_gets_the_new_one(staged):
    # c is the first to import d (``from proj import d``): imported again first, it must not
    # find the old d as proj's attribute.
    server = staged()
    before = built(server)
    write_module(server.app, "d", "d1")
    write_module(server.app, "c", "c2", extra="from proj import d")
    path = server.app / "proj" / "c.py"
    path.write_text(path.read_text().replace("V = 'c2'", "V = 'c2-' + d.V"))
    serve(server, "a1 b1 c2-d1")
    wait_rebuilt(server, before)
    since = len(server.proc.log())
    write_module(server.app, "d", "d2")
    pid = serve(server, "a1 b1 c2-d2")
    assert imports_of(server, pid) == ["c", "d", "serve"]
    fast_only(server, since)


def test_a_module_holding_what_the_edited_one_made_is_imported_again_with_it(staged):
    # c puts a function of its own into b: b is imported again too, as in a cold start.
    server = staged()
    before = built(server)
    hold = "import sys\nsys.modules['proj.b'].HELD = lambda: V"
    write_module(server.app, "c", "c2", extra=hold)
    serve(server, "a1 b1 c2")
    wait_rebuilt(server, before)
    since = len(server.proc.log())
    write_module(server.app, "c", "c3", extra=hold)
    pid = serve(server, "a1 b1 c3")
    assert imports_of(server, pid) == ["b", "c", "serve"]
    fast_only(server, since)


def test_a_registration_is_undone_and_made_again_where_it_was(staged):
    server = staged()
    before = built(server)
    (server.app / "proj" / "__init__.py").write_text(INIT)
    write_module(server.app, "a", "a2", extra=REGISTER)
    write_module(server.app, "c", "c2", extra=REGISTER)
    serve(server, "a2 b1 c2 a2,c2/0")
    wait_rebuilt(server, before)  # (__main__ holds proj: its edit replayed the start-up)
    before = built(server)
    since = len(server.proc.log())
    write_module(server.app, "a", "a3", extra=REGISTER)
    pid = serve(server, "a3 b1 c2")
    # Importing a again registered its hook once, first, as a cold start does.
    assert server.get().text.split()[3] == "a3,c2/0"
    assert imports_of(server, pid) == ["a", "serve"]
    wait_rebuilt(server, before)
    write_module(server.app, "c", "c3", extra=REGISTER)
    pid = serve(server, "a3 b1 c3")
    assert server.get().text.split()[3] == "a3,c3/0"
    # The last checkpoint was kept after a's edit (it had analysed it ahead): a is among the
    # files edited since, and imported again with c.
    assert imports_of(server, pid) == ["a", "c", "serve"]
    fast_only(server, since)


def test_a_weak_registration_is_made_again_once(staged):
    server = staged()
    before = built(server)
    (server.app / "proj" / "__init__.py").write_text(INIT)
    watch = "import proj\ndef watcher():\n    pass\nproj.WATCHERS.add(watcher)"
    write_module(server.app, "c", "c2", extra=watch)
    serve(server, "a1 b1 c2 /1")
    since = len(server.proc.log())
    for n in (3, 4):
        wait_rebuilt(server, before)
        before = built(server)
        write_module(server.app, "c", f"c{n}", extra=watch)
        pid = serve(server, f"a1 b1 c{n} /1")
        assert imports_of(server, pid) == ["c", "serve"]
    fast_only(server, since)


def test_the_old_classes_leave_their_bases_subclasses(staged):
    server = staged()
    write_module(server.app, "a", "a1", extra="class Base:\n    pass")
    subclass = "from proj.a import Base\nclass Sub(Base):\n    pass\nN = len(Base.__subclasses__())"
    before = built(server)
    write_module(server.app, "c", "c2", extra=subclass)
    (server.app / "proj" / "c.py").write_text(
        (server.app / "proj" / "c.py").read_text().replace("V = 'c2'", "V = f'c2-{N}'")
    )
    serve(server, "a1 b1 c2-1")
    for n in (3, 4):
        wait_rebuilt(server, before)
        before = built(server)
        write_module(server.app, "c", f"c{n}", extra=subclass)
        path = server.app / "proj" / "c.py"
        path.write_text(path.read_text().replace(f"V = 'c{n}'", f"V = f'c{n}-{{N}}'"))
        pid = serve(server, f"a1 b1 c{n}-1")
        assert imports_of(server, pid) == ["c", "serve"]
    fast_only(server)


def test_a_broken_edit_shows_its_error_and_its_fix_imports_again(staged):
    server = staged()
    (server.app / "proj" / "c.py").write_text("V = (\n")
    assert "SyntaxError" in server.wait_status(500).text
    assert "proj/c.py" in server.proc.log()
    write_module(server.app, "c", "c2")
    pid = serve(server, "a1 b1 c2")
    assert imports_of(server, pid) == ["c", "serve"]


def test_a_refresh_that_costs_what_a_replay_does_is_not_tried(staged):
    # Nothing comes after c in this start-up: replaying from the checkpoint before c imports c
    # only, what importing it again would do, without the analysis.
    server = staged(env={"STAGED_TAIL": "0"})
    write_module(server.app, "c", "c2")
    pid = serve(server, "a1 b1 c2")
    assert imports_of(server, pid) == ["c", "serve"]
    log = server.proc.log()
    assert "importing 1 modules again would take about 0.2" in log
    assert "Reloading from checkpoint 'before proj.c'" in log


def test_a_worker_forked_from_the_last_checkpoint_finds_inspects_module_table_filled(staged):
    # inspect.getmodule's first walk over every module cost a new NetBox worker 0.5 s of its
    # first page (django-debug-toolbar records a stack per cache call): the last checkpoint makes
    # it before it pauses. A cold worker has it empty; a refreshed one has it, and finds the
    # module it imported again.
    server = staged(env={"STAGED_INSPECT": "1"})
    write_module(server.app, "c", "c2", extra="def f():\n    return V")
    pid = serve(server, "a1 b1 c2")
    assert "importing again what c.py reach" in server.proc.log()
    rows = {
        int(pid_): (int(files), found)
        for files, found, pid_ in (
            line.split() for line in (server.app / "inspect.log").read_text().splitlines()
        )
    }
    assert rows[pid][0] > 50 and rows[pid][1] == "True", rows
    first = next(iter(rows))  # the cold start's own worker: nothing filled it
    assert rows[first] == (0, "-"), rows
