"""Fast reloads on a Django project (issue 11): a worker forked from a checkpoint, or from the
last one with the edited modules imported again, serves exactly what a cold start of the same
files serves. Each test edits the example project, waits for the new behaviour, and compares
what the project registered (URLs, admin, signal receivers, apps, template libraries, settings,
subclasses) with a cold ``runserver --noreload`` of the same files."""

from __future__ import annotations

import json
import textwrap

import pytest

from tests.devserver.conftest import Devserver
from tests.support import PYTHON, base_env, free_port, wait_until

# What a worker registered, as JSON: the same code answers for the reloaded and the cold one.
STATE_VIEW = textwrap.dedent(
    """\
    import json
    import os

    from django.apps import apps
    from django.conf import settings
    from django.contrib import admin
    from django.db.models import signals
    from django.http import HttpResponse
    from django.template import engines
    from django.urls import get_resolver


    def _patterns(resolver, prefix=""):
        for p in resolver.url_patterns:
            if hasattr(p, "url_patterns"):
                yield from _patterns(p, prefix + str(p.pattern))
            else:
                yield prefix + str(p.pattern) + " " + getattr(p.callback, "__qualname__", "?")


    def _receivers(signal):
        live = [r[1]() for r in signal.receivers]
        return [f"{f.__module__}.{f.__qualname__}" for f in live if f is not None]


    def state(request):
        from catalog import views

        body = {
            "mark": getattr(views, "MARK", None),
            "patterns": list(_patterns(get_resolver())),
            "admin": sorted(
                f"{m._meta.label}:{type(a).__qualname__}:{list(a.list_display)}"
                for m, a in admin.site._registry.items()
            ),
            "receivers": {name: _receivers(getattr(signals, name))
                          for name in ("pre_save", "post_save", "post_delete")},
            "apps": [[c.label, str(c.verbose_name)] for c in apps.get_app_configs()],
            "models": [m._meta.label for m in apps.get_models()],
            "verbose": [str(m._meta.verbose_name) for m in apps.get_models()],
            "libraries": sorted(engines["django"].engine.template_libraries),
            "setting": getattr(settings, "FAST_RELOAD_MARK", None),
            "data": getattr(apps.get_app_config("catalog"), "data", None),
            "admins": sorted(c.__qualname__ for c in admin.ModelAdmin.__subclasses__()),
        }
        return HttpResponse(json.dumps(body), content_type="application/json")


    def pid(request):
        return HttpResponse(str(os.getpid()))


    def backend(request):
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            return HttpResponse(str(cursor.fetchone()[0]))
    """
)


@pytest.fixture
def fast_site(site):
    """The example project with the state view at /state/ (and /pid/), a MARK in its views
    and a setting that reads an optional local settings module."""
    (site / "catalog" / "state.py").write_text(STATE_VIEW)
    urls = site / "catalog" / "urls.py"
    urls.write_text(
        urls.read_text()
        .replace("from . import views", "from . import state, views")
        .replace(
            "urlpatterns = [",
            'urlpatterns = [\n    path("state/", state.state),\n    path("pid/", state.pid),'
            '\n    path("backend/", state.backend),',
        )
    )
    views = site / "catalog" / "views.py"
    views.write_text(views.read_text() + "\nMARK = 1\n")
    settings = site / "mysite" / "settings.py"
    settings.write_text(
        settings.read_text()
        + "\nFAST_RELOAD_MARK = 'settings'\n"
        + "try:\n    from .local_settings import *  # noqa\nexcept ImportError:\n    pass\n"
    )
    return site


@pytest.fixture
def fast(runserver, fast_site):
    """runserver -v 2 on the project above, once its last checkpoint is ready."""

    def start(*args: str) -> Devserver:
        server = runserver("-v", "2", *args)
        server.proc.wait_for_log("The last checkpoint is ready", timeout=60)
        return server

    return start


def state(server: Devserver) -> dict:
    return json.loads(server.get("/state/").text)


def reloaded(server: Devserver, old_pid: int, check=lambda s: True, timeout: float = 30):
    """Wait for a new worker whose state passes ``check``; return that state."""

    def new_state():
        resp = server.get("/state/")
        if resp.status != 200:
            return None
        if int(server.get("/pid/").text) == old_pid:
            return None
        body = json.loads(resp.text)
        return body if check(body) else None

    return wait_until(new_state, timeout, what="a new worker", describe=server.proc.describe)


def cold_state(spawn, site) -> dict:
    """What a cold start of the same files registers (``runserver --noreload``)."""
    port = free_port()
    argv = [PYTHON, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
    proc = spawn(argv, cwd=site, env=base_env(), name="cold")
    cold = Devserver(proc, site, port)
    try:
        cold.wait_status("/state/", 200)
        return state(cold)
    finally:
        proc.stop()


def pid_of(server: Devserver) -> int:
    return int(server.get("/pid/").text)


def built(server: Devserver) -> int:
    return server.proc.log().count("The last checkpoint is ready")


def test_a_view_edit_imports_again_only_what_it_reaches(fast, spawn, fast_site):
    server = fast()
    before = built(server)
    old = pid_of(server)
    server.edit("catalog/views.py", "MARK = 1", "MARK = 2")
    reloaded(server, old, lambda s: s["mark"] == 2)
    # The last checkpoint made again after that reload analysed this module's refresh ahead.
    server.proc.wait_for_log("The last checkpoint is ready", count=before + 1, timeout=60)
    since = len(server.proc.log())
    old = pid_of(server)
    server.edit("catalog/views.py", "MARK = 2", "MARK = 3")
    body = reloaded(server, old, lambda s: s["mark"] == 3)
    log = server.proc.log()[since:]
    assert "importing again what views.py reach" in log
    assert "ruled out" not in log
    assert "catalog.views" in log  # the banner says which modules were imported again
    assert body == cold_state(spawn, fast_site)


def test_a_template_edit_needs_no_new_worker(fast):
    server = fast()
    old = pid_of(server)
    server.edit(
        "catalog/templates/catalog/index.html", "<h1>Catalog</h1>", "<h1>fast-template</h1>"
    )
    server.wait_status("/", 200, contains="fast-template", timeout=10)
    assert pid_of(server) == old


SIGNALS = textwrap.dedent(
    """\
    from django.db.models.signals import post_save
    from django.dispatch import receiver

    from .models import Product


    @receiver(post_save, sender=Product)
    def {name}(sender, **kwargs):
        pass
    """
)

READY = textwrap.dedent(
    """\
    from django.apps import AppConfig


    class CatalogConfig(AppConfig):
        name = "catalog"
        verbose_name = "{verbose}"

        def ready(self):
            from . import signals  # noqa: F401
            from pathlib import Path

            self.data = (Path(__file__).parent / "data.txt").read_text()
    """
)


def _prepare_ready(site) -> None:
    (site / "catalog" / "signals.py").write_text(SIGNALS.format(name="on_save_1"))
    (site / "catalog" / "data.txt").write_text("data-1")
    (site / "catalog" / "apps.py").write_text(READY.format(verbose="Catalog"))


PRODUCT = "class Product(models.Model):"
EDITS = {
    # name: (files to write, a check of the new state)
    "settings": (
        {"mysite/settings.py": ("FAST_RELOAD_MARK = 'settings'", "FAST_RELOAD_MARK = 'edited'")},
        lambda s: s["setting"] == "edited",
    ),
    "models": (
        {
            "catalog/models.py": (
                "class Product(models.Model):",
                "class Product(models.Model):\n    FAST = 1\n",
            )
        },
        lambda s: True,
    ),
    "admin": (
        {"catalog/admin.py": ('list_display = ["name", "slug"]', 'list_display = ["slug"]')},
        lambda s: "catalog.Category:CategoryAdmin:['slug']" in s["admin"],
    ),
    "apps": (
        {"catalog/apps.py": ('verbose_name = "Catalog"', 'verbose_name = "Edited catalog"')},
        lambda s: ["catalog", "Edited catalog"] in s["apps"],
    ),
    "signals": (
        {"catalog/signals.py": ("def on_save_1", "def on_save_2")},
        lambda s: s["receivers"]["post_save"] == ["catalog.signals.on_save_2"],
    ),
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_an_edit_shows_what_a_cold_start_shows(fast, spawn, fast_site, edit):
    _prepare_ready(fast_site)
    server = fast()
    changes, check = EDITS[edit]
    old = pid_of(server)
    for relative, (before, after) in changes.items():
        server.edit(relative, before, after)
    body = reloaded(server, old, check)
    assert body == cold_state(spawn, fast_site)
    # And again: the next edit starts from what this one left.
    old = pid_of(server)
    server.edit("catalog/views.py", "MARK = 1", "MARK = 2")
    body = reloaded(server, old, lambda s: s["mark"] == 2)
    assert body == cold_state(spawn, fast_site)


CREATED = {
    # name: (files created, then a view edit makes a new worker, a check of its state)
    "data-file": (
        {"catalog/data.txt": "data-2"},
        lambda s: s["data"] == "data-2",
    ),
    "admin": (
        {
            "diagnostics/admin.py": (
                "from django.contrib import admin\n"
                "from django.contrib.auth.models import Permission\n"
                "\n\n@admin.register(Permission)\nclass PermissionAdmin(admin.ModelAdmin):\n"
                "    list_display = ['codename']\n"
            )
        },
        lambda s: "auth.Permission:PermissionAdmin:['codename']" in s["admin"],
    ),
    "templatetags": (
        {
            "catalog/templatetags/__init__.py": "",
            "catalog/templatetags/fast_tags.py": (
                "from django import template\n\nregister = template.Library()\n"
            ),
        },
        lambda s: "fast_tags" in s["libraries"],
    ),
    "optional-settings": (
        {"mysite/local_settings.py": "FAST_RELOAD_MARK = 'local'\n"},
        lambda s: s["setting"] == "local",
    ),
}


@pytest.mark.parametrize("created", list(CREATED))
def test_a_file_the_start_up_would_read_now_is_read(fast, spawn, fast_site, created):
    _prepare_ready(fast_site)
    server = fast()
    files, check = CREATED[created]
    for relative, text in files.items():
        path = fast_site / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    old = pid_of(server)
    server.edit("catalog/views.py", "MARK = 1", "MARK = 2")  # a reload that does not read it
    body = reloaded(server, old, lambda s: s["mark"] == 2)
    assert check(body), body
    assert body == cold_state(spawn, fast_site)


def test_a_thread_started_in_ready_rules_checkpoints_out_with_one_line(fast_site, runserver):
    apps = fast_site / "catalog" / "apps.py"
    apps.write_text(
        apps.read_text()
        + "\n    def ready(self):\n        import threading, time\n"
        + "        threading.Thread(target=time.sleep, args=(3600,), daemon=True,"
        + " name='catalog-poller').start()\n"
    )
    server = runserver("-v", "2")
    server.proc.wait_for_log("No more checkpoints in this start-up", timeout=60)
    for mark in (2, 3):
        old = pid_of(server)
        server.edit("catalog/views.py", f"MARK = {mark - 1}", f"MARK = {mark}")
        reloaded(server, old, lambda s, m=mark: s["mark"] == m)
    log = server.proc.log()
    assert log.count("No more checkpoints in this start-up") == 1
    assert "a thread runs in it (catalog-poller)" in log


def test_no_two_workers_share_a_random_value(fast_site, runserver):
    # Drawn in ready(), before the URLconf: every checkpoint after it forks one worker only.
    apps = fast_site / "catalog" / "apps.py"
    apps.write_text(
        apps.read_text() + "\n    def ready(self):\n        import uuid\n"
        "        self.data = uuid.uuid4().hex\n"
    )
    server = runserver("-v", "2")
    server.proc.wait_for_log("fork one worker each", timeout=60)
    tokens = {state(server)["data"]}
    for mark in (2, 3, 4, 5):
        old = pid_of(server)
        server.edit("catalog/views.py", f"MARK = {mark - 1}", f"MARK = {mark}")
        tokens.add(reloaded(server, old, lambda s, m=mark: s["mark"] == m)["data"])
    assert len(tokens) == 5, tokens


@pytest.mark.postgres
def test_no_database_connection_is_shared(fast_site, spawn):
    from tests.devserver.test_testserver import postgres_unavailable

    if reason := postgres_unavailable():
        pytest.skip(reason)
    # The start-up queries PostgreSQL (the "postgres" database: nothing of ours is in it): its
    # connection is closed before each checkpoint, and every worker opens its own.
    apps = fast_site / "catalog" / "apps.py"
    apps.write_text(
        apps.read_text() + "\n    def ready(self):\n        from django.db import connection\n\n"
        "        with connection.cursor() as cursor:\n"
        "            cursor.execute('SELECT pg_backend_pid()')\n"
        "            self.data = cursor.fetchone()[0]\n"
    )
    port = free_port()
    env = base_env({"MYSITE_DB": "postgresql", "MYSITE_DB_NAME": "postgres"})
    argv = [PYTHON, "manage.py", "runserver", f"127.0.0.1:{port}", "-v", "2"]
    proc = spawn(argv, cwd=fast_site, env=env, name="runserver")
    server = Devserver(proc, fast_site, port)
    server.wait_status("/backend/", 200)
    proc.wait_for_log("The last checkpoint is ready", timeout=60)
    backends = {int(server.get("/backend/").text)}
    for mark in (2, 3, 4):
        old = pid_of(server)
        server.edit("catalog/views.py", f"MARK = {mark - 1}", f"MARK = {mark}")
        reloaded(server, old, lambda s, m=mark: s["mark"] == m)
        backends.add(int(server.get("/backend/").text))
    assert len(backends) == 4, backends
    log = proc.log()
    assert "a socket is open" not in log
    assert "No more checkpoints" not in log
