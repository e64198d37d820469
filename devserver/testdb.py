"""testserver's databases: created as ``manage.py test`` creates them, destroyed whatever happens.

``test_databases()`` creates a test database for every database alias (``test_<NAME>`` or the
``TEST`` settings, mirrors and shared databases as Django's test runner sets them up), with
Django's ``create_test_db``, and destroys each one it created on the way out: after the server
stopped, on an error, on Ctrl-C or SIGTERM (see ``devserver.interrupts``), during the migrations
or at any point after ``CREATE DATABASE``. A database that already existed and that the user chose
to keep is never destroyed.

With SQLite, Django's test database is in memory
(``file:memorydb_default?mode=memory&cache=shared``): every connection to that URI in this process
sees the same database, which lives as long as one of them is open. Each server thread opens its
own (Django's connections are per thread), and the main thread's stays open while the server runs
(SQLite's ``close()`` is a no-op for an in-memory database). Connections to one shared-cache
database lock whole tables and fail at once ("database table is locked") instead of waiting, so
``Serialized`` lets one request at a time into Django (static files are not held up) and fixture
reloads take the same lock. A SQLite file named in ``TEST`` is served the same way.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError
from django.db import DatabaseError, connections
from django.test.utils import get_unique_databases_and_mirrors

from devserver.interrupts import Interrupts, Stopped


@dataclass
class TestDatabase:
    alias: str
    old_name: str
    test_name: str
    created: bool = False  # CREATE DATABASE succeeded (server databases)

    @property
    def in_use(self) -> bool:
        """Django switched the alias to the test database (it exists, or SQLite will create it)."""
        return connections[self.alias].settings_dict["NAME"] == self.test_name


def in_memory(alias: str) -> bool:
    connection = connections[alias]
    return connection.vendor == "sqlite" and connection.is_in_memory_db()


def one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())


@contextlib.contextmanager
def test_databases(
    verbosity: int, interactive: bool, interrupts: Interrupts
) -> Iterator[list[TestDatabase]]:
    """Create the test databases; destroy those this call created when the block ends."""
    made: list[TestDatabase] = []
    try:
        unique, mirrored = get_unique_databases_and_mirrors()
        for _name, aliases in unique.values():
            first = aliases[0]
            _create(first, verbosity, interactive, interrupts, made)
            for alias in aliases[1:]:
                connections[alias].creation.set_as_test_mirror(connections[first].settings_dict)
        for alias, mirror in mirrored.items():
            connections[alias].creation.set_as_test_mirror(connections[mirror].settings_dict)
        yield made
    except BaseException as exc:
        stop = stopped_behind(exc)
        if stop is not None and stop is not exc:
            raise stop from None
        raise
    finally:
        # A second Ctrl-C must not stop the destroying half-way: it waits, and is then ignored.
        with interrupts.shielded(raise_pending=False):
            for database in reversed(made):
                destroy(database, verbosity)


def stopped_behind(exc: BaseException) -> Stopped | None:
    """The ``Stopped`` that ``exc`` was raised while handling, if any.

    A signal can land inside a database driver call. psycopg cancels the query it was waiting
    for on KeyboardInterrupt and SystemExit only, so a ``Stopped`` (in the middle of the
    COMMIT that ends a migration, say) leaves the connection busy, and Django's cleanup on the
    way out (``Atomic.__exit__`` setting autocommit back) fails with "can't change
    'autocommit' now": that DatabaseError replaces the stop, which is only its ``__context__``
    (issue 10). The stop is what happened; the rest follows from it.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, Stopped):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _create(
    alias: str,
    verbosity: int,
    interactive: bool,
    interrupts: Interrupts,
    made: list[TestDatabase],
) -> None:
    connection = connections[alias]
    creation = connection.creation
    database = TestDatabase(alias, connection.settings_dict["NAME"], creation._get_test_db_name())
    _refuse_the_real_database(database)
    made.append(database)
    execute = getattr(creation, "_execute_create_test_db", None)
    if execute is not None:

        def noted(*args: Any, **kwargs: Any) -> Any:
            # No signal between CREATE DATABASE and noting that it exists.
            with interrupts.shielded():
                result = execute(*args, **kwargs)
                database.created = True
            return result

        creation._execute_create_test_db = noted
    try:
        creation.create_test_db(verbosity=verbosity, autoclobber=not interactive, serialize=False)
    except EOFError:
        raise CommandError(
            f"The test database {database.test_name!r} already exists and there is no one to "
            "ask whether to destroy it: run testserver with --noinput to destroy it."
        ) from None
    except SystemExit as exc:  # Django's "Tests cancelled." or an error it logged above
        if exc.code == 1:
            raise CommandError(
                f"Cancelled: the existing test database {database.test_name!r} was kept."
            ) from None
        raise CommandError(
            f"Could not create the test database {database.test_name!r} (see above)."
        ) from None
    except DatabaseError as exc:
        raise CommandError(
            f"Could not create the test database for alias {alias!r}: {one_line(exc)}"
        ) from None
    finally:
        if execute is not None:
            del creation._execute_create_test_db


def _refuse_the_real_database(database: TestDatabase) -> None:
    """A TEST NAME equal to NAME would make testserver destroy the real database at exit."""
    connection = connections[database.alias]
    old, test = str(database.old_name or ""), str(database.test_name or "")
    same = old == test
    if not same and connection.vendor == "sqlite" and old and test:
        memory = connection.creation.is_in_memory_db
        if not memory(old) and not memory(test):
            same = os.path.realpath(old) == os.path.realpath(test)
    if same:
        raise CommandError(
            f"The test database of alias {database.alias!r} is the database itself ({test!r}): "
            f"set DATABASES[{database.alias!r}]['TEST']['NAME'] to another name."
        )


def destroy(database: TestDatabase, verbosity: int) -> None:
    """Destroy one test database if it exists because of us; report a failure in one line."""
    connection = connections[database.alias]
    if not (database.created or database.in_use):
        return
    sqlite_file = connection.vendor == "sqlite" and not in_memory(database.alias)
    try:
        with contextlib.suppress(Exception):  # a connection a signal broke may not close
            connection.close()
        if not database.in_use:
            # Stopped between CREATE DATABASE and create_test_db() switching to it: switch now,
            # so that Django destroys the test database (destroy_test_db() drops what NAME is).
            settings.DATABASES[database.alias]["NAME"] = database.test_name
            connection.settings_dict["NAME"] = database.test_name
        if sqlite_file and not os.path.exists(database.test_name):
            connection.settings_dict["NAME"] = database.old_name
            settings.DATABASES[database.alias]["NAME"] = database.old_name
            return
        if connection.vendor == "postgresql":
            _disconnect_others(database)
        try:
            connection.creation.destroy_test_db(database.old_name, verbosity)
        except OSError:  # its message could not be written (a closed pipe): destroy quietly
            connection.creation.destroy_test_db(database.old_name, 0)
    except Exception as exc:
        with contextlib.suppress(OSError):
            print(
                f"Could not destroy the test database {database.test_name!r}: {one_line(exc)}",
                file=sys.stderr,
            )


def _disconnect_others(database: TestDatabase) -> None:
    """End this process' other sessions on the test database (a request thread still running
    when the server stopped): PostgreSQL refuses to drop a database anyone is connected to."""
    with connections[database.alias].creation._nodb_cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            [database.test_name],
        )


def shared_lock(aliases: Iterable[str]) -> threading.Lock | None:
    """The lock that keeps SQLite test databases to one user at a time (None for servers)."""
    if any(connections[alias].vendor == "sqlite" for alias in aliases):
        return threading.Lock()
    return None


def keep_open(aliases: Iterable[str]) -> None:
    """Open the main thread's connection to each in-memory database: it keeps the database."""
    for alias in aliases:
        if in_memory(alias):
            connections[alias].ensure_connection()


class Serialized:
    """WSGI middleware: one request at a time in ``app``, until its response is closed."""

    def __init__(self, app: Callable[..., Iterable[bytes]], lock: threading.Lock) -> None:
        self.app = app
        self.lock = lock

    def __call__(self, environ: dict, start_response: Callable[..., object]) -> Iterable[bytes]:
        self.lock.acquire()
        try:
            body = self.app(environ, start_response)
        except BaseException:
            self.lock.release()
            raise
        return _Released(body, self.lock)


class _Released:
    def __init__(self, body: Iterable[bytes], lock: threading.Lock) -> None:
        self.body = body
        self.lock = lock
        self.released = False

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.body)

    def close(self) -> None:
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            if not self.released:
                self.released = True
                self.lock.release()
