"""The pure pieces of the reloader, through their deterministic seams."""

from __future__ import annotations

import json
import os
import signal
import sys

import pytest

from reloader import protocol, worker
from reloader.cli import parse_bind
from reloader.config import ConfigError, SocketSpec, SupervisorConfig, Target, target_from_command
from reloader.debounce import Debouncer
from reloader.ignore import IgnoreRules, glob_match
from tests.support import frame_in, wait_until


class TestDebouncer:
    def test_a_burst_is_one_batch_after_the_quiet_period(self):
        d = Debouncer(quiet=0.05, max_wait=2.0)
        for i in range(100):
            d.add([f"/p/{i % 7}.py"], now=10.0 + i * 0.001)
        assert d.take(now=10.1) == []  # 0.1 - 0.099 < quiet
        assert d.deadline() == pytest.approx(10.099 + 0.05)
        batch = d.take(now=10.2)
        assert batch == [f"/p/{i}.py" for i in range(7)]
        assert not d.pending and d.deadline() is None

    def test_an_endless_stream_is_cut_at_max_wait(self):
        d = Debouncer(quiet=0.05, max_wait=1.0)
        t = 0.0
        while t < 0.99:
            d.add(["/a.py"], now=t)
            assert d.take(now=t) == []
            t += 0.01
        assert d.take(now=1.0) == ["/a.py"]

    def test_a_change_after_a_batch_starts_a_new_burst(self):
        d = Debouncer(quiet=0.05, max_wait=2.0)
        d.add(["/a.py"], now=0.0)
        assert d.take(now=0.06) == ["/a.py"]
        d.add(["/b.py"], now=0.07)
        assert d.take(now=0.1) == []
        assert d.take(now=0.13) == ["/b.py"]

    def test_take_all_consumes_what_is_pending(self):
        d = Debouncer(quiet=1.0, max_wait=2.0)
        d.add(["/a.py", "/b.py"], now=0.0)
        assert d.take_all() == ["/a.py", "/b.py"]
        assert not d.pending


class TestIgnore:
    @pytest.mark.parametrize(
        "path",
        [
            "/p/.views.py.swp",
            "/p/views.py~",
            "/p/4913",
            "/p/.#views.py",
            "/p/#views.py#",
            "/p/__pycache__/views.cpython-311.pyc",
            "/p/x.pyc",
            "/p/.goutputstream-ABC12",
            "/p/views.py___jb_tmp___",
        ],
    )
    def test_editor_and_cache_files_are_ignored(self, path):
        assert IgnoreRules()(path, root="/p")

    @pytest.mark.parametrize("path", ["/p/views.py", "/p/templates/index.html", "/p/.env"])
    def test_sources_are_not(self, path):
        assert not IgnoreRules()(path, root="/p")

    def test_directories_below_the_root_count_but_not_above(self):
        rules = IgnoreRules()
        assert rules("/p/node_modules/x/index.js", root="/p")
        assert not rules("/home/node_modules/p/views.py", root="/home/node_modules/p")

    def test_patterns_with_a_slash_match_the_whole_path(self):
        rules = IgnoreRules(["*/migrations/*.py"], defaults=False)
        assert rules("/p/app/migrations/0001_initial.py")
        assert not rules("/p/app/models.py")

    @pytest.mark.parametrize(
        ("rel", "pattern", "expected"),
        [
            ("index.html", "**/*", True),
            ("a/b/c.html", "**/*", True),
            ("fr/LC_MESSAGES/django.mo", "**/*.mo", True),
            ("django.mo", "**/*.mo", True),
            ("fr/LC_MESSAGES/django.po", "**/*.mo", False),
            ("a/b.css", "*.css", False),
            ("b.css", "*.css", True),
            ("b1.css", "b[0-9].css", True),
        ],
    )
    def test_tree_globs(self, rel, pattern, expected):
        assert glob_match(rel, pattern) is expected


class TestCommandLine:
    def test_python_script(self):
        target, flags = target_from_command(["python", "-u", "-X", "dev", "app.py", "--port", "1"])
        assert target == Target("path", "app.py", ("--port", "1"))
        assert flags == ("-u", "-X", "dev")

    def test_python_module_and_code(self):
        assert target_from_command([sys.executable, "-m", "http.server", "9"])[0] == Target(
            "module", "http.server", ("9",)
        )
        assert target_from_command(["python3", "-c", "print(1)", "a"])[0] == Target(
            "code", "print(1)", ("a",)
        )
        assert target_from_command(["python", "-mhttp.server"])[0] == Target(
            "module", "http.server"
        )

    def test_other_programs_are_plain_commands(self):
        assert target_from_command(["sh", "-c", "true"])[0] == Target(
            "command", "sh", ("-c", "true")
        )

    @pytest.mark.parametrize(
        ("command", "message"),
        [
            ([], "no command given"),
            (["python"], "no Python program given"),
            (["python", "-"], "read from stdin"),
            (["no-such-program-here"], "command not found"),
        ],
    )
    def test_bad_commands(self, command, message):
        with pytest.raises(ConfigError, match=message):
            target_from_command(command)

    @pytest.mark.parametrize(
        ("value", "spec"),
        [
            ("8000", SocketSpec("127.0.0.1", 8000)),
            ("0.0.0.0:80", SocketSpec("0.0.0.0", 80)),
            ("[::1]:8000", SocketSpec("::1", 8000, ipv6=True)),
            ("unix:/tmp/s.sock", SocketSpec(path="/tmp/s.sock")),
        ],
    )
    def test_bind_forms(self, value, spec):
        assert parse_bind(value) == spec

    @pytest.mark.parametrize("value", ["::1:80", "host:http", "1.2.3.4:99999", "abc"])
    def test_bad_binds(self, value):
        with pytest.raises(ConfigError):
            parse_bind(value)

    def test_config_round_trips_through_json(self):
        config = SupervisorConfig(
            target=Target("call", "pkg.mod:main", ("x",)),
            sockets=(SocketSpec("::1", 8000, ipv6=True), SocketSpec(fd=7)),
            watch=("/a",),
            ignore=("*.log",),
            env={"A": "1"},
            backend="poll",
        )
        assert SupervisorConfig.from_json(config.to_json()) == config

    def test_invalid_config(self):
        with pytest.raises(ConfigError, match="unknown watcher"):
            SupervisorConfig(target=Target("path", "a.py"), backend="magic")  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="invalid supervisor configuration"):
            SupervisorConfig.from_json(json.dumps({"target": {}}))


class TestProtocol:
    def test_messages_survive_any_split(self):
        data = b"".join(
            [
                protocol.encode(protocol.WATCH, files=["/é/a.py"], trees=[]),
                b"garbage\n",
                protocol.encode(protocol.READY),
            ]
        )
        for cut in range(len(data)):
            reader = protocol.MessageReader()
            got = list(reader.feed(data[:cut])) + list(reader.feed(data[cut:]))
            assert [m["kind"] for m in got] == ["watch", "ready"]
            assert got[0]["files"] == ["/é/a.py"]

    def test_inherited_reads_and_pops_the_environment(self):
        import socket

        a, b = socket.socketpair()
        env = protocol.child_env({"KEEP": "1"}, b.fileno(), [], {"generation": 3})
        inherited = protocol.Inherited.from_environ(env)
        assert env == {"KEEP": "1"}
        assert inherited.info == {"generation": 3}
        assert inherited.listen_fds == []
        assert inherited.control is not None and inherited.control.fileno() == b.fileno()
        inherited.control.close()
        a.close()


def test_bytecode_of_changed_sources_is_removed(tmp_path):
    import importlib.util
    import py_compile

    from reloader import bytecode

    src = tmp_path / "m.py"
    src.write_text("X = 1\n")
    py_compile.compile(str(src))
    cached = importlib.util.cache_from_source(str(src))
    assert os.path.exists(cached)
    assert bytecode.invalidate([str(src), str(tmp_path / "notes.txt")]) == 1
    assert not os.path.exists(cached)


def test_a_signal_exception_that_would_be_lost_is_deferred_and_the_signal_sent_again():
    got: list[int] = []
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: got.append(signum))
    try:
        assert worker.defer_if_unraisable(signal.SIGUSR1, sys._getframe()) is None
        assert worker.defer_if_unraisable(signal.SIGUSR1, None) is None
        assert got == []
        for frame in (frame_in("<frozen importlib._bootstrap>", "cb"), frame_in("x.py", "__del__")):
            assert worker.defer_if_unraisable(signal.SIGUSR1, frame) is not None
            wait_until(lambda: got, 5, what="the signal sent again")
            assert got == [signal.SIGUSR1]
            got.clear()
    finally:
        signal.signal(signal.SIGUSR1, previous)
