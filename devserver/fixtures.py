"""testserver's fixtures: loaded with Django's loaddata, and again in place when a file changes.

``Fixtures.load()`` runs Django's ``loaddata`` (app ``fixtures/`` directories, FIXTURE_DIRS,
literal paths; every serialization and compression format Django knows) in its one transaction,
noting which files each label resolved to. An error becomes one line that names the fixture,
in Django's words where it has them ("No fixture named 'x' found.").

``Fixtures.reload()`` runs when one of those files changes: in one transaction, it empties the
test database, puts back what the migrations had left in it (content types, permissions, data
migrations: serialized before the first load, as Django's ``serialized_rollback`` does) and
loads the fixtures again. A broken fixture rolls all of it back: the old data stays, and the
error is printed. Emptying uses ``DELETE`` on MySQL/MariaDB (Django's flush without a sequence
reset), where ``TRUNCATE`` would commit the transaction by itself; PostgreSQL's ``TRUNCATE`` and
SQLite's ``DELETE`` are transactional.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from django.core.management import call_command
from django.core.management.base import CommandError
from django.core.management.color import no_style
from django.core.management.commands import loaddata
from django.core.management.sql import sql_flush
from django.db import connections, transaction
from django.db.models import signals

from devserver.testdb import in_memory, one_line
from devserver.watching import Watch


class _Loaddata(loaddata.Command):
    """Django's loaddata, noting the files each label resolved to, and without the ``UPDATE``
    that cannot match.

    Django saves a fixture object with a primary key by an ``UPDATE`` and, when no row matched,
    an ``INSERT``. In a test database that was just created (or emptied, for a reload), only
    the rows the migrations made and those this load saved can match: the primary keys of both
    are known, so any other object is inserted at once (``force_insert``), with the same result
    and the same signals. Half the queries of a large fixture go, and with them ~40 % of the
    time (10,000 objects on SQLite: 8.7 s to 4.8 s). A key seen again (two fixtures defining one
    object) still takes Django's way and updates the row.

    A ``pre_save`` or ``post_save`` receiver may create rows while the fixtures load (a profile
    made for each user saved, raw or not), so with any of those connected every object takes
    Django's way.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.files: set[str] = set()
        self._keys: dict[type, set[Any]] = {}

    def save_obj(self, obj: Any) -> bool:
        instance = obj.object
        model = instance._meta.concrete_model
        key = instance.pk
        single = len(getattr(model._meta, "pk_fields", [model._meta.pk])) == 1
        if key is None or not single or _save_receivers():
            return bool(super().save_obj(obj))
        known = self._keys.get(model)
        if known is None:
            rows = model._base_manager.using(self.using).values_list("pk", flat=True)
            known = self._keys[model] = set(rows)
        if key not in known:
            obj.save = functools.partial(obj.save, force_insert=True)
        saved = bool(super().save_obj(obj))
        if saved:
            known.add(key)
        return saved

    def find_fixtures(self, fixture_label: str) -> list[tuple[str, str | None, str]]:
        found = super().find_fixtures(fixture_label)
        self.files.update(_normal(path) for path, directory, _name in found if directory)
        return found


def _save_receivers() -> bool:
    return bool(signals.pre_save.receivers or signals.post_save.receivers)


def _normal(path: str) -> str:
    """One spelling per file, whether it exists or not (an editor may be replacing it)."""
    return os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))


def describe(exc: BaseException, labels: Sequence[str]) -> str:
    """One line that names the fixture: Django's message, completed where it is not enough."""
    text = one_line(exc)
    if isinstance(exc, CommandError) and text.startswith("Problem installing fixture(s) "):
        return text  # described already
    cause = exc.__cause__
    if cause is None and not exc.__suppress_context__:
        cause = exc.__context__
    if cause is not None and text.endswith(":"):  # Django's message left the detail out
        text = f"{text.rstrip(':')}: {one_line(cause)}"
    names = ", ".join(repr(label) for label in labels)
    generic = "Problem installing fixtures: "
    if text.startswith(generic):
        return f"Problem installing fixture(s) {names}: {text[len(generic) :]}"
    if "fixture '" in text or "fixture named '" in text or "fixtures named '" in text:
        return text
    return f"Problem installing fixture(s) {names}: {text}"


class Fixtures:
    """The fixtures testserver was given, loaded into the test database of ``using``."""

    def __init__(
        self,
        labels: Sequence[str],
        using: str,
        stdout: TextIO,
        stderr: TextIO,
        lock: threading.Lock | None = None,
    ) -> None:
        self.labels = tuple(labels)
        self.using = using
        self.stdout = stdout
        self.stderr = stderr
        self.lock = lock or threading.Lock()
        self.files: frozenset[str] = frozenset()
        self._baseline: str | None = None
        self._watch: Watch | None = None
        self.on_reload: Callable[[str], None] | None = None  # after each reload that worked

    def load(self, verbosity: int) -> None:
        """The first load; raises CommandError (one line, naming the fixture)."""
        if not self.labels:
            return
        # What the migrations left: put back before each reload.
        self._baseline = connections[self.using].creation.serialize_db_to_string()
        self._loaddata(verbosity)

    def _loaddata(self, verbosity: int) -> int:
        command = _Loaddata()
        try:
            call_command(
                command,
                *self.labels,
                verbosity=verbosity,
                database=self.using,
                stdout=self.stdout,
                stderr=self.stderr,
            )
        except Exception as exc:
            raise CommandError(describe(exc, self.labels)) from None
        self.files = frozenset(command.files)
        return int(getattr(command, "loaded_object_count", 0))

    def watch(self, watch: Watch) -> None:
        self._watch = watch
        watch.watch(files=self.files)
        watch.on_change(self.changed)

    def changed(self, paths: list[str]) -> None:
        """A ``Watch`` handler: reload when a loaded fixture file is among ``paths``."""
        changed = {_normal(p) for p in paths} & self.files
        if changed:
            self.reload()

    def reload(self) -> bool:
        """Empty the test database and load the fixtures again, all or nothing."""
        connection = connections[self.using]
        with self.lock:
            try:
                with transaction.atomic(using=self.using):
                    statements = sql_flush(no_style(), connection, reset_sequences=False)
                    connection.ops.execute_sql_flush(statements)
                    if self._baseline:
                        connection.creation.deserialize_db_from_string(self._baseline)
                    count = self._loaddata(verbosity=0)
            except Exception as exc:
                error = describe(exc, self.labels)
                _say(self.stderr, f"Fixture reload failed, the previous data is kept: {error}")
                return False
            finally:
                if not in_memory(self.using):
                    with contextlib.suppress(Exception):
                        connection.close()
        if self._watch is not None:
            self._watch.watch(files=self.files)  # a label may have found a file elsewhere now
        names = ", ".join(self.labels)
        _say(self.stdout, f"Reloaded fixture(s) {names}: {count} objects")
        if self.on_reload is not None:
            self.on_reload(names)
        return True


def _say(stream: TextIO, line: str) -> None:
    stream.write(line + "\n")  # Django's OutputWrapper adds no second newline to this
    stream.flush()
