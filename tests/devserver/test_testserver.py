"""manage.py testserver as a real subprocess, on SQLite, PostgreSQL and MariaDB.

The database is chosen as the example project chooses it (``MYSITE_DB``), with a test database
name unique to each test (``MYSITE_TEST_DB_NAME``) so that parallel runs never share one, and a
"real" database name that, outside the test that creates it, does not even exist: a server that
touched it would fail. PostgreSQL and MariaDB cases are skipped, with the reason, when the server
does not answer on 127.0.0.1 or the driver is missing.
"""

from __future__ import annotations

import bz2
import functools
import gzip
import json
import lzma
import signal
import socket
import sqlite3
import subprocess
import textwrap
import threading
import uuid
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import django
import pytest

from tests.devserver.conftest import Devserver, run_manage
from tests.support import (
    PYTHON,
    base_env,
    free_port,
    http_get,
    pid_alive,
    port_is_free,
    wait_until,
)

BANNER_END = "Quit the server with CONTROL-C."
PRODUCTS = ["Café de Colombia", "Espresso Blend", "Screwdriver Set", "The Django Book"]


# ------------------------------------------------------------------ the database servers


@functools.cache
def postgres_unavailable() -> str | None:
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed"
    try:
        psycopg.connect(
            host="127.0.0.1", user="postgres", dbname="postgres", connect_timeout=3
        ).close()
    except Exception as exc:
        return f"no PostgreSQL server on 127.0.0.1:5432 ({exc})"
    return None


@functools.cache
def mysql_unavailable() -> str | None:
    try:
        import MySQLdb
    except ImportError:
        return "mysqlclient is not installed (needs pkg-config and libmariadb-dev)"
    try:
        MySQLdb.connect(host="127.0.0.1", port=3306, user="root", connect_timeout=3).close()
    except Exception as exc:
        return f"no MariaDB server on 127.0.0.1:3306 ({exc})"
    return None


class Backend:
    """One database for one test: the names, the environment, and SQL on the server itself."""

    def __init__(self, kind: str, site: Path, tmp_path: Path) -> None:
        self.kind = kind
        self.site = site
        token = uuid.uuid4().hex[:12]
        self.vendor = "sqlite" if kind.startswith("sqlite") else kind
        if kind == "sqlite":  # Django's default: in memory
            self.test_name = None
            self.real_name = str(site / "db.sqlite3")
        elif kind == "sqlite-file":
            self.test_name = str(tmp_path / f"test_{token}.sqlite3")
            self.real_name = str(site / "db.sqlite3")
        else:
            self.test_name = f"test_ts_{token}"
            self.real_name = f"ts_real_{token}"
        self._real_created = False

    def env(self, **extra: str) -> dict[str, str]:
        env = {"MYSITE_DB": self.vendor, **extra}
        if self.test_name:
            env["MYSITE_TEST_DB_NAME"] = self.test_name
        if self.vendor != "sqlite":
            env["MYSITE_DB_NAME"] = self.real_name
        return env

    # -- SQL on the server, outside Django
    def _server(self, database: str | None = None):
        if self.vendor == "postgresql":
            import psycopg

            conn = psycopg.connect(
                host="127.0.0.1", user="postgres", dbname=database or "postgres", autocommit=True
            )
            return conn
        import MySQLdb

        kwargs = {"db": database} if database else {}
        conn = MySQLdb.connect(host="127.0.0.1", user="root", charset="utf8mb4", **kwargs)
        conn.autocommit(True)
        return conn

    def _query(self, sql: str, params=(), database: str | None = None) -> list[tuple]:
        if self.vendor == "sqlite":
            conn = sqlite3.connect(database or self.real_name)
            try:
                rows = conn.execute(sql.replace("%s", "?"), params).fetchall()
                conn.commit()
                return rows
            finally:
                conn.close()
        conn = self._server(database)
        try:
            cursor = conn.cursor()
            cursor.execute(sql, params)
            return list(cursor.fetchall()) if cursor.description else []
        finally:
            conn.close()

    def test_db_exists(self) -> bool:
        """Whether the test database is there (a file, or a database on the server)."""
        if self.kind == "sqlite":
            raise AssertionError("an in-memory test database leaves nothing to look for")
        if self.kind == "sqlite-file":
            return Path(self.test_name).exists()
        if self.vendor == "postgresql":
            sql = "SELECT datname FROM pg_database WHERE datname = %s"
            return bool(self._query(sql, [self.test_name]))
        return bool(self._query("SHOW DATABASES LIKE %s", [self.test_name]))

    def _busy_with(self, name: str) -> bool:
        """Whether another session runs a statement naming ``name`` (a CREATE DATABASE that a
        killed client left running on the server: it would create the database after a drop)."""
        if self.vendor == "postgresql":
            sql = (
                "SELECT 1 FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                "AND state = 'active' AND strpos(query, %s) > 0"
            )
            return bool(self._query(sql, [name]))
        rows = self._query("SHOW FULL PROCESSLIST")
        return any(name in str(row[7] or "") and "PROCESSLIST" not in str(row[7]) for row in rows)

    def drop(self, name: str) -> None:
        if self.vendor == "sqlite":
            Path(name).unlink(missing_ok=True)
            return
        wait_until(lambda: not self._busy_with(name), 30, what=f"no statement on {name}")
        if self.vendor == "postgresql":
            self._query(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        else:
            self._query(f"DROP DATABASE IF EXISTS `{name}`")

    def create_real_database(self) -> None:
        """The real database with the catalog's tables (SQLite: the migrated copy has them)."""
        if self.vendor == "sqlite":
            return
        suffix = " CHARACTER SET utf8mb4" if self.vendor == "mysql" else ""
        quoted = f'"{self.real_name}"' if self.vendor == "postgresql" else f"`{self.real_name}`"
        self._query(f"CREATE DATABASE {quoted}{suffix}")
        self._real_created = True
        result = run_manage(self.site, "migrate", "catalog", "--noinput", "-v0", env=self.env())
        assert result.returncode == 0, result.stderr

    def real(self, sql: str, params=()) -> list[tuple]:
        database = None if self.vendor == "sqlite" else self.real_name
        return self._query(sql, params, database)

    def cleanup(self) -> None:
        if self.vendor != "sqlite":
            self.drop(self.test_name)
            if self._real_created:
                self.drop(self.real_name)
        elif self.kind == "sqlite-file":
            self.drop(self.test_name)


def skip_reason(kind: str) -> str | None:
    if kind == "postgresql":
        return postgres_unavailable()
    if kind == "mysql":
        return mysql_unavailable()
    return None


def backend_params(*kinds: str) -> list:
    marks = {"postgresql": [pytest.mark.postgres], "mysql": [pytest.mark.mysql]}
    return [pytest.param(kind, marks=marks.get(kind, []), id=kind) for kind in kinds]


@pytest.fixture
def backend(request, site, tmp_path) -> Iterator[Backend]:
    kind = request.param
    reason = skip_reason(kind)
    if reason:
        print(f"skipped: {reason}")
        pytest.skip(reason)
    db = Backend(kind, site, tmp_path)
    try:
        yield db
    finally:
        db.cleanup()


# ------------------------------------------------------------------ the server


def page(server: Devserver, path: str = "/") -> str:
    resp = server.get(path)
    assert resp.status == 200, resp.text[:2000]
    return resp.text


def wait_page(server: Devserver, contains: str, path: str = "/", timeout: float = 15.0) -> str:
    return server.wait_status(path, 200, timeout=timeout, contains=contains).text


def stop(server: Devserver, signum: int) -> tuple[int, str]:
    server.proc.signal(signum)
    code = server.proc.wait_exit(30)
    return code, server.proc.log()


def fixture(label: str, pk: int, **fields: object) -> dict:
    return {"model": label, "pk": pk, "fields": fields}


def product(pk: int, name: str, category: int = 1) -> dict:
    return fixture(
        "catalog.product",
        pk,
        category=category,
        name=name,
        slug=f"p{pk}",
        description="",
        price="1.00",
        in_stock=True,
        created="2026-01-01T00:00:00Z",
    )


CATEGORY = fixture("catalog.category", 1, name="Books", slug="books")


# ------------------------------------------------------------------ the command line


def test_fixtures_from_every_location_and_format(testserver, site, tmp_path):
    extra = tmp_path / "fixture-dirs"
    extra.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (extra / "from_xml.xml").write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<django-objects version="1.0">'
        '<object model="catalog.product" pk="101"><field name="category" rel="ManyToOneRel" '
        'to="catalog.category">1</field><field name="name" type="CharField">XML Product</field>'
        '<field name="slug" type="SlugField">xml</field><field name="description" '
        'type="TextField"></field><field name="price" type="DecimalField">1.00</field>'
        '<field name="in_stock" type="BooleanField">True</field><field name="created" '
        'type="DateTimeField">2026-01-01T00:00:00+00:00</field></object></django-objects>\n'
    )
    labels = ["catalog", "from_xml"]  # the app's fixtures/ dir, FIXTURE_DIRS
    expected = ["XML Product"]
    try:
        import yaml
    except ImportError:
        print("PyYAML is not installed: no YAML fixture")
    else:
        (extra / "from_yaml.yaml").write_text(yaml.safe_dump([product(102, "YAML Product")]))
        labels.append("from_yaml")
        expected.append("YAML Product")
    compressed = {
        "gz": (gzip.compress, 103),
        "bz2": (bz2.compress, 104),
        "xz": (lzma.compress, 105),
    }
    for ext, (compress, pk) in compressed.items():
        data = json.dumps([product(pk, f"{ext.upper()} Product")]).encode()
        (elsewhere / f"packed_{ext}.json.{ext}").write_bytes(compress(data))
        labels.append(str(elsewhere / f"packed_{ext}.json.{ext}"))  # literal paths
        expected.append(f"{ext.upper()} Product")
    with zipfile.ZipFile(extra / "zipped.json.zip", "w") as z:
        z.writestr("zipped.json", json.dumps([product(106, "ZIP Product")]))
    labels.append("zipped")
    expected.append("ZIP Product")

    # --addrport after the fixture names.
    server = testserver(*labels, env={"MYSITE_FIXTURE_DIRS": str(extra)})
    text = page(server)
    for name in [*PRODUCTS, *expected]:
        assert name in text
    assert f"Installed {8 + len(expected)} object(s) from {len(labels)} fixture(s)" in (
        server.proc.log()
    )


def test_addrport_before_fixtures_and_djangos_output(testserver):
    server = testserver("--addrport", "{addrport}", "catalog")
    log = server.proc.log()
    assert "Creating test database for alias 'default'...\n" in log
    assert "Installed 8 object(s) from 1 fixture(s)\n" in log
    assert f"Starting development server at http://127.0.0.1:{server.port}/\n{BANNER_END}" in log
    assert "Performing system checks" not in log  # Django's testserver runs none either
    resp = server.get("/products/django-book/")
    assert resp.status == 200 and "The Django Book" in resp.text
    server.proc.wait_for_log(f'"GET /products/django-book/ HTTP/1.1" 200 {len(resp.body)}')
    # One process: the one that created the test database serves it (no reloader, no child).
    assert int(page(server, "/diag/pid/")) == server.proc.pid
    code, log = stop(server, signal.SIGINT)
    assert code == 0
    assert "Server stopped." in log
    assert log.rstrip().endswith("Destroying test database for alias 'default'...")
    assert "Traceback" not in log


def test_options_between_fixture_names_are_parsed(site):
    # The address is checked before any database is created: a bad one ends the command at
    # once, after argparse took the option out from between the fixture names.
    result = run_manage(site, "testserver", "catalog", "--addrport", "abc", "other", "--noinput")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        'CommandError: "abc" is not a valid port number or address:port pair.'
    )


def test_options_between_fixture_names_serve(testserver, tmp_path):
    (tmp_path / "more.json").write_text(json.dumps([product(200, "Between Product")]))
    server = testserver("catalog", "--addrport", "{addrport}", str(tmp_path / "more.json"))
    assert "Between Product" in page(server) and "Espresso Blend" in page(server)


def test_a_later_fixture_overrides_an_earlier_one_and_the_migrations_rows(testserver, tmp_path):
    # The same primary keys as the catalog fixture's and as a row the migrations made (the
    # first content type): loaddata updates those rows, it does not insert them twice.
    override = [
        fixture("catalog.category", 1, name="Overridden Books", slug="books"),
        product(2, "Overridden Scoops"),
        fixture("contenttypes.contenttype", 1, app_label="catalog", model="renamed"),
    ]
    (tmp_path / "override.json").write_text(json.dumps(override))
    server = testserver("catalog", str(tmp_path / "override.json"))
    text = page(server)
    assert "Overridden Books" in text and "Overridden Scoops" in text
    assert "Two Scoops" not in text and text.count("<li>") == 5
    assert "Installed 11 object(s) from 2 fixture(s)" in server.proc.log()


def test_rows_a_save_receiver_creates_are_updated_by_the_fixture(testserver, site, tmp_path):
    # A receiver that ignores ``raw`` makes a product for each category saved; the fixture then
    # defines that product itself: loaddata must update the row, not insert it a second time.
    models = site / "catalog" / "models.py"
    models.write_text(
        models.read_text()
        + textwrap.dedent(
            """

            from django.db.models.signals import post_save


            def _starter_product(sender, instance, created, **kwargs):
                if created:
                    Product.objects.get_or_create(
                        pk=1000 + instance.pk,
                        defaults=dict(
                            category=instance, name="Starter", slug=f"s{instance.pk}", price=1
                        ),
                    )


            post_save.connect(_starter_product, sender=Category)
            """
        )
    )
    rows = []
    for n in (1, 2, 3):
        rows.append(fixture("catalog.category", n, name=f"Category {n}", slug=f"c{n}"))
        rows.append(product(1000 + n, f"Fixture Product {n}", category=n))
    (tmp_path / "interleaved.json").write_text(json.dumps(rows))
    server = testserver(str(tmp_path / "interleaved.json"))
    text = page(server)
    assert all(f"Fixture Product {n}" in text for n in (1, 2, 3)), text[:2000]
    assert "Starter" not in text


def test_no_fixtures_is_fine(testserver):
    server = testserver()
    assert "No products yet." in page(server)
    assert "Installed" not in server.proc.log()


def test_template_and_static_edits_show_at_once_in_the_same_process(testserver, site):
    server = testserver("catalog")
    pid = int(page(server, "/diag/pid/"))
    assert pid == server.proc.pid
    page(server)  # the cached loader now holds both templates
    # An app template, a TEMPLATES DIRS template, and a static file.
    server.edit("catalog/templates/catalog/index.html", "<h1>Catalog</h1>", "<h1>Edited</h1>")
    wait_page(server, "<h1>Edited</h1>")
    server.edit("templates/base.html", "<title>", "<title>Base edited: ")
    wait_page(server, "Base edited: Catalog")
    server.edit("static/css/site.css", "", "/* edited */\n")
    assert page(server, "/static/css/site.css").startswith("/* edited */")
    # Python is not reloaded (the test database would be lost): still the same process.
    server.edit("catalog/views.py", "", "# edited\n")
    server.edit("catalog/templates/catalog/index.html", "<h1>Edited</h1>", "<h1>Again</h1>")
    wait_page(server, "<h1>Again</h1>")
    assert int(page(server, "/diag/pid/")) == pid
    assert "Reloaded fixture" not in server.proc.log()


def test_existing_test_database_is_kept_when_nobody_can_answer(site, tmp_path):
    test_db = tmp_path / "test_existing.sqlite3"
    sqlite3.connect(test_db).execute("CREATE TABLE precious (x)").connection.commit()
    before = test_db.read_bytes()
    result = subprocess.run(
        [PYTHON, "manage.py", "testserver", "catalog", "--addrport", str(free_port())],
        cwd=site,
        env=base_env({"MYSITE_TEST_DB_NAME": str(test_db)}),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"CommandError: The test database {str(test_db)!r} already exists and there is no one "
        "to ask whether to destroy it: run testserver with --noinput to destroy it."
    )
    assert test_db.read_bytes() == before
    assert "Traceback" not in result.stderr


def test_output_to_a_closed_pipe_still_destroys_the_test_database(site, tmp_path):
    # `manage.py testserver | head`: the messages cannot be written, the destroying must happen.
    test_db = tmp_path / "test_piped.sqlite3"
    port = free_port()
    proc = subprocess.Popen(
        [PYTHON, "manage.py", "testserver", "--noinput", "catalog", "--addrport", str(port)],
        cwd=site,
        env=base_env({"MYSITE_TEST_DB_NAME": str(test_db)}),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert proc.stdout is not None
        seen = b""
        while BANNER_END.encode() not in seen:
            line = proc.stdout.readline()
            assert line, seen.decode(errors="replace")
            seen += line
        assert test_db.exists()
        proc.stdout.close()  # the reader is gone
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        assert not test_db.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ------------------------------------------------------------------ fixtures, per database


@pytest.mark.parametrize("backend", backend_params("sqlite", "postgresql", "mysql"), indirect=True)
def test_fixture_edits_reload_in_place_and_broken_ones_keep_the_data(testserver, site, backend):
    backend.create_real_database()
    marker = "Real Database Marker"
    if backend.vendor != "sqlite":
        backend.real(
            "INSERT INTO catalog_category (id, name, slug) VALUES (%s, %s, %s)", [1, "R", "r"]
        )
    backend.real(
        "INSERT INTO catalog_product (id, category_id, name, slug, description, price, "
        "in_stock, created) VALUES (%s, %s, %s, %s, '', 1, %s, '2026-01-01 00:00:00')",
        [999, 1, marker, "marker", True],
    )
    real_before = sorted(backend.real("SELECT id, name FROM catalog_product"))

    server = testserver("catalog", env=backend.env())
    text = page(server)
    assert "Espresso Blend" in text and marker not in text
    fixture_file = site / "catalog" / "fixtures" / "catalog.json"
    original = fixture_file.read_text()

    fixture_file.write_text(original.replace("Espresso Blend", "Ristretto Blend"))
    server.proc.wait_for_log("Reloaded fixture(s) catalog: 8 objects")
    text = wait_page(server, "Ristretto Blend")
    assert "Espresso Blend" not in text and "The Django Book" in text

    # Malformed: the previous data stays.
    fixture_file.write_text(original[: len(original) // 2])
    server.proc.wait_for_log(
        "Fixture reload failed, the previous data is kept: Problem installing fixture "
        f"'{fixture_file}': "
    )
    text = page(server)
    assert "Ristretto Blend" in text and all(n in text for n in PRODUCTS if "Espresso" not in n)
    # Does not fit the models (a product of a category that does not exist): same.
    broken = json.loads(original)
    broken.append(product(50, "Orphan", category=99))
    fixture_file.write_text(json.dumps(broken))
    server.proc.wait_for_log("Fixture reload failed, the previous data is kept", count=2)
    text = page(server)
    assert "Ristretto Blend" in text and "Orphan" not in text and "The Django Book" in text

    # Files that are not loaded fixtures change nothing; a template edit is the sync point
    # (it goes through the same watcher thread, after them).
    (fixture_file.parent / "notes.txt").write_text("not a fixture\n")
    (fixture_file.parent / "other.json").write_text(original)
    server.edit("catalog/templates/catalog/index.html", "<h1>Catalog</h1>", "<h1>Synced</h1>")
    wait_page(server, "<h1>Synced</h1>")
    assert server.proc.log().count("Reloaded fixture(s)") == 1

    fixture_file.write_text(original.replace("Espresso Blend", "Lungo Blend"))
    server.proc.wait_for_log("Reloaded fixture(s) catalog: 8 objects", count=2)
    wait_page(server, "Lungo Blend")

    code, log = stop(server, signal.SIGINT)
    assert code == 0 and "Destroying test database for alias 'default'..." in log
    assert "Traceback" not in log
    if backend.kind != "sqlite":
        assert not backend.test_db_exists()
    assert sorted(backend.real("SELECT id, name FROM catalog_product")) == real_before


def test_sqlite_memory_database_serves_concurrent_requests_during_reloads(testserver, site):
    server = testserver("catalog")
    fixture_file = site / "catalog" / "fixtures" / "catalog.json"
    original = fixture_file.read_text()
    failures: list[str] = []
    stop_event = threading.Event()

    def client(path: str) -> int:
        done = 0
        while not stop_event.is_set() or done < 5:
            resp = http_get(server.port, path)
            if resp.status != 200:
                failures.append(f"{path}: {resp.status} {resp.text[:300]}")
            done += 1
        return done

    paths = ["/", "/products/django-book/", "/admin/login/", "/static/css/site.css"] * 2
    with ThreadPoolExecutor(len(paths)) as pool:
        futures = [pool.submit(client, p) for p in paths]
        try:
            for n in (1, 2):
                fixture_file.write_text(original.replace("Espresso Blend", f"Blend {n}"))
                server.proc.wait_for_log("Reloaded fixture(s) catalog: 8 objects", count=n)
        finally:
            stop_event.set()
        served = sum(f.result(60) for f in futures)
    assert failures == []
    assert served >= 5 * len(paths)
    assert "Blend 2" in page(server)


# ------------------------------------------------------------------ errors and stops


BROKEN = {
    "missing": (None, "CommandError: No fixture named 'nosuch' found."),
    "malformed": (
        '[{"model": "catalog.category", "pk": 1, "fields": {"name": "X"',
        "CommandError: Problem installing fixture '{path}': Expecting ',' delimiter: "
        "line 1 column 63 (char 62)",
    ),
    # Django's words, which changed in 5.0.
    "unknown model": (
        json.dumps([fixture("catalog.nosuch", 1)]),
        "CommandError: Problem installing fixture '{path}': Invalid model identifier: "
        + ("catalog.nosuch" if django.VERSION >= (5, 0) else "'catalog.nosuch'"),
    ),
    "unknown field": (
        json.dumps([fixture("catalog.category", 1, colour="red")]),
        "CommandError: Problem installing fixture '{path}': "
        + ("Error deserializing object: " if django.VERSION >= (5, 0) else "")
        + "Category has no field named 'colour'",
    ),
    "foreign key": (json.dumps([CATEGORY, product(1, "Orphan", category=99)]), None),
}


@pytest.mark.parametrize(
    ("backend", "kind"),
    [
        *[pytest.param("sqlite-file", kind, id=f"sqlite-file-{kind}") for kind in BROKEN],
        pytest.param("postgresql", "foreign key", marks=pytest.mark.postgres, id="postgresql"),
        pytest.param("mysql", "foreign key", marks=pytest.mark.mysql, id="mysql"),
    ],
    indirect=["backend"],
)
def test_broken_fixture_at_start_is_one_line_and_leaves_no_database(site, tmp_path, backend, kind):
    content, message = BROKEN[kind]
    path = tmp_path / "broken.json"
    label = "nosuch"
    if content is not None:
        path.write_text(content)
        label = str(path)
    result = run_manage(
        site, "testserver", label, "--noinput", "--addrport", str(free_port()), env=backend.env()
    )
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    if message is not None:
        assert last == message.format(path=path)
    else:  # the database's own words differ: the line names the fixture and the bad key
        assert last.startswith(f"CommandError: Problem installing fixture(s) '{path}': ")
        assert "99" in last
    assert "Traceback" not in result.stderr
    assert "Starting development server" not in result.stdout
    assert "Destroying test database for alias 'default'..." in result.stderr
    assert not backend.test_db_exists()


@pytest.mark.parametrize(
    "backend", backend_params("sqlite-file", "postgresql", "mysql"), indirect=True
)
def test_port_in_use_is_djangos_error_before_any_database(site, backend):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_manage(
            site, "testserver", "catalog", "--noinput", "--addrport", str(port), env=backend.env()
        )
    assert result.returncode == 1
    assert result.stderr.strip() == "Error: That port is already in use."
    assert not backend.test_db_exists()


@pytest.mark.parametrize(
    "backend", backend_params("sqlite-file", "postgresql", "mysql"), indirect=True
)
def test_sigterm_destroys_the_test_database(testserver, backend):
    server = testserver("catalog", env=backend.env())
    assert backend.test_db_exists()
    code, log = stop(server, signal.SIGTERM)
    assert code == 0
    assert "Server stopped." in log and "Destroying test database for alias 'default'..." in log
    assert "Traceback" not in log
    assert not backend.test_db_exists()


@pytest.mark.parametrize(
    "backend", backend_params("sqlite-file", "postgresql", "mysql"), indirect=True
)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_the_database_is_made_destroys_it(testserver, backend, signum):
    server = testserver("catalog", env=backend.env(), wait=False)
    server.proc.wait_for_log("Creating test database for alias 'default'...", timeout=30)
    server.proc.signal(signum)
    code = server.proc.wait_exit(30)
    log = server.proc.log()
    # Usually during the migrations; on a fast machine the server may already be serving.
    assert code in (0, 128 + signum), log
    if code:
        assert f"Stopped by {signal.Signals(signum).name} before the server started." in log
    assert "Traceback" not in log
    wait_until(lambda: not pid_alive(server.proc.pid), 10, what="the process to be gone")
    assert not backend.test_db_exists()


@pytest.mark.parametrize("backend", backend_params("sqlite-file", "postgresql"), indirect=True)
def test_closing_the_terminal_destroys_the_test_database(testserver, backend):
    server = testserver("catalog", env=backend.env(), terminal=True)
    assert backend.test_db_exists()
    server.proc.hang_up()
    assert server.proc.wait_exit(30) == 0
    assert port_is_free(server.port)


# A migration whose COMMIT takes a minute: a deferred constraint trigger sleeps at commit time.
SLOW_COMMIT_MIGRATION = '''
from django.db import migrations

SQL = """
CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(60); RETURN NULL; END $$;
CREATE TABLE slow_commit (x integer);
CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON slow_commit
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit();
INSERT INTO slow_commit VALUES (1);
"""


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]
    operations = [migrations.RunSQL(SQL)]
'''


@pytest.mark.parametrize("backend", backend_params("postgresql"), indirect=True)
def test_sigterm_in_the_commit_of_a_migration_says_stopped(testserver, site, backend):
    # psycopg cancels the query it waits for on KeyboardInterrupt only: the stop left the
    # connection busy, Django's cleanup then failed ("can't change 'autocommit' now"), and
    # that error hid the stop (issue 10).
    (site / "catalog" / "migrations" / "0002_slow_commit.py").write_text(SLOW_COMMIT_MIGRATION)
    server = testserver("catalog", env=backend.env(), wait=False)
    sql = (
        "SELECT 1 FROM pg_stat_activity WHERE datname = %s AND query = 'COMMIT' "
        "AND wait_event = 'PgSleep'"
    )
    wait_until(
        lambda: backend._query(sql, [backend.test_name]),
        60,
        what="a migration's COMMIT in the trigger's sleep",
        describe=server.proc.describe,
    )
    server.proc.signal(signal.SIGTERM)
    code = server.proc.wait_exit(30)
    log = server.proc.log()
    assert code == 128 + signal.SIGTERM, log
    assert log.rstrip().endswith("Stopped by SIGTERM before the server started."), log
    assert "Destroying test database for alias 'default'..." in log
    assert "autocommit" not in log and "Traceback" not in log
    assert not backend.test_db_exists()
