"""``reload.py --projects``: save to first new response, by project, server and kind of edit.

See reload.py's docstring for what is measured and how; ``projects.py`` for the projects.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import projects as P
from common import PYTHON, REPO, Proc, cpu_seconds, free_port, median, p90, table

POLL = 0.02  # seconds between the starts of two requests
IDLE_CPU = 0.05  # of one core
IDLE_WINDOW = 0.5
IDLE_MAX = 30.0
TRIES = 2  # saves of an edit not shown in time (each a new N), before it counts as missed
TEMPLATE_TIMEOUT = 20.0

# What ours says, with -v 2, about the start of each new worker (reloader/starters/fork.py).
STARTS = [
    (
        re.compile(
            r"Reloading from the last checkpoint \([\d.]+s of start-up kept\), importing again what"
        ),
        "refresh",
    ),
    (
        re.compile(r"Reloading from the last checkpoint \([\d.]+s of start-up kept\)\."),
        "last checkpoint",
    ),
    (re.compile(r"Reloading from checkpoint '([^']*)'"), "checkpoint {0}"),
    (re.compile(r"Reloading from the fork template"), "template"),
    (re.compile(r"starting this worker cold"), "cold"),
]
NOTES = re.compile(
    r"ruled out|No more checkpoints|Checkpoints from here on|Traceback|Error|error|"
    r"did not answer|gives way|changed while it was built"
)


# --------------------------------------------------------------------------- processes
def _stat(pid: int) -> tuple[int, int] | None:
    """(ppid, start time) of a process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), int(fields[19])


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0].decode()
    except OSError:
        return "gone"


def descendants(root: int) -> dict[int, int]:
    """The process and all its descendants (whatever thread forked them): pid -> start time."""
    parents: dict[int, list[int]] = {}
    starts: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        info = _stat(int(entry))
        if info is not None:
            parents.setdefault(info[0], []).append(int(entry))
            starts[int(entry)] = info[1]
    if root not in starts:
        return {}
    found = {root: starts[root]}
    todo = [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in found:
                found[child] = starts[child]
                todo.append(child)
    return found


def pss_kb(pids: Iterator[int] | list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
                    break
    return total


def wait_idle(root: int) -> tuple[float, bool]:
    """Wait until the whole tree uses less than IDLE_CPU of a core over IDLE_WINDOW (at most
    IDLE_MAX s); (seconds waited, whether it got idle)."""
    started = time.monotonic()
    while time.monotonic() - started < IDLE_MAX:
        before = {p: cpu_seconds(p) for p in descendants(root)}
        t0 = time.monotonic()
        time.sleep(IDLE_WINDOW)
        elapsed = time.monotonic() - t0
        used = sum(cpu_seconds(p) - before.get(p, 0.0) for p in descendants(root))
        if used / elapsed < IDLE_CPU:
            return time.monotonic() - started, True
    return time.monotonic() - started, False


class Server:
    """One server of one session; every process of its tree killed by PID at the end."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str], log: Path) -> None:
        self.seen: dict[int, int] = {}
        self.exit_seconds = 0.0
        self.proc = Proc(argv, cwd, env, log)
        self.log = log

    def snapshot(self) -> dict[int, int]:
        tree = descendants(self.proc.pid)
        self.seen.update(tree)
        return tree

    def stop(self) -> list[str]:
        """Stop it; what was left after Proc.stop (and then killed), as 'pid cmdline'."""
        self.snapshot()
        stopping = time.monotonic()
        self.proc.stop()

        def alive() -> list[int]:
            found = []
            for pid, start in self.seen.items():
                info = _stat(pid)
                if info is not None and info[1] == start and _state(pid) not in ("Z", "X"):
                    found.append(pid)
            return found

        # Processes of a big heap take a moment to exit once told to (or once the supervisor's
        # sockets close): give them 5 s before calling them left over.
        deadline = time.monotonic() + 5
        while alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.exit_seconds = time.monotonic() - stopping
        left = []
        for pid in alive():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            except OSError:
                cmd = "?"
            state = _state(pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            left.append(f"{pid} [{state}] {cmd[:100]}")
        return left


# --------------------------------------------------------------------------- requests
def listening(port: int) -> bool:
    """Whether anything accepts connections on the port (3 tries over 1.5 s)."""
    for _ in range(3):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            return True
        except OSError:
            time.sleep(0.5)
    return False


def get(
    port: int, path: str, module: str | None, timeout: float
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"X-Bench-Module": module} if module else {}
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()


def poll_until(
    port: int, page: str, target: P.Target, n: int, saved: float, timeout: float
) -> tuple[float | None, int, Counter[str]]:
    """Poll until the page shows version n: (seconds from the save, requests, what failed)."""
    failed: Counter[str] = Counter()
    requests = 0
    deadline = saved + timeout
    next_start = time.monotonic()
    while time.monotonic() < deadline:
        pause = next_start - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        next_start = time.monotonic() + POLL
        requests += 1
        try:
            status, headers, body = get(
                port, page, target.module, max(1.0, deadline - time.monotonic())
            )
        except (OSError, http.client.HTTPException) as exc:
            failed[type(exc).__name__] += 1
            continue
        if status != 200:
            failed[f"HTTP {status}"] += 1
        elif target.shows(n, headers, body):
            return time.monotonic() - saved, requests, failed
    return None, requests, failed


# --------------------------------------------------------------------------- sessions
@dataclass
class Sample:
    project: str
    server: str
    round: int
    kind: str
    target: str
    seconds: float | None  # None: missed
    start: str  # ours: which start served it
    idle: float
    requests: int
    failed: Counter[str]
    notes: list[str]


@dataclass
class Session:
    project: str
    server: str
    round: int
    start_seconds: float | None = None
    pss_kb: int = 0
    processes: int = 0
    samples: list[Sample] = field(default_factory=list)
    left: list[str] = field(default_factory=list)
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    log: Path | None = None
    code: str = ""  # code_state() at the start, and at the end if it changed


def code_state(root: Path = REPO) -> str:
    """A digest of the code ours runs (reloader/, devserver/, fcgi/): another session may edit
    it."""
    digest = hashlib.sha256()
    for package in ("reloader", "devserver", "fcgi"):
        for path in sorted((root / package).rglob("*.py")):
            with contextlib.suppress(OSError):
                digest.update(str(path.relative_to(root)).encode() + path.read_bytes())
    return digest.hexdigest()[:12]


def classify(lines: list[str]) -> tuple[str, list[str]]:
    """Which start served the reload these log lines tell of, and the lines worth quoting."""
    starts = []
    notes = []
    for line in lines:
        for pattern, label in STARTS:
            match = pattern.search(line)
            if match:
                starts.append(label.format(*match.groups()))
                break
        if NOTES.search(line):
            notes.append(line.strip())
    if not starts:
        return "no restart", notes
    served = starts[-1]
    if len(starts) > 1:
        served += f" (after {' > '.join(starts[:-1])})"
    return served, notes


def read_from(log: Path, offset: int) -> tuple[list[str], int]:
    with open(log, "rb") as f:
        f.seek(offset)
        data = f.read()
    return data.decode(errors="replace").splitlines(), offset + len(data)


def schedule(
    project: P.Project, kinds: list[str], counts: dict[str, int]
) -> list[tuple[str, P.Target]]:
    """The edits of one session: the kinds in turn; a kind with several targets goes round them."""
    order = []
    most = max((counts[k] for k in kinds), default=0)
    for i in range(most):
        for kind in kinds:
            if i < counts[kind] and project.targets.get(kind):
                targets = project.targets[kind]
                order.append((kind, targets[i % len(targets)]))
    return order


def env_for(extra: dict[str, str]) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "RELOADER_", "MYSITE_"))
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as on a developer's machine
    env.pop("PYTHONPATH", None)
    env.update(extra)
    return env


class Counterfile:
    """The N of the edits: never the same twice in a run (no .pyc of the same size and mtime)."""

    def __init__(self) -> None:
        self.n = 0

    def next(self) -> int:
        self.n += 1
        return self.n


def run_session(
    project: P.Project,
    key: str,
    rnd: int,
    kinds: list[str],
    counts: dict[str, int],
    log_dir: Path,
    numbers: Counterfile,
    code: Path | None,
) -> Session:
    extra_argv, extra_env = project.servers[key]
    if code is not None and key == "ours":
        extra_env = {**extra_env, "PYTHONPATH": str(code)}
    port = free_port()
    log = log_dir / f"{project.name}-{key}-r{rnd}.log"
    session = Session(project.name, key, rnd, log=log)
    tag = f"[{project.name} {key} r{rnd}]"
    argv = [project.python, "manage.py", "runserver", f"127.0.0.1:{port}", *extra_argv]
    root = code if code is not None else REPO
    session.code = code_state(root) if key == "ours" else "-"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"{tag} starting: {' '.join(argv[1:])} (load average {load}; code {session.code})",
        flush=True,
    )
    started = time.monotonic()
    server = Server(argv, project.cwd, env_for(extra_env), log)
    try:
        deadline = started + project.start_timeout
        while True:
            try:
                if get(port, project.page, None, 30)[0] == 200:
                    break
            except (OSError, http.client.HTTPException):
                pass
            if time.monotonic() > deadline or server.proc.popen.poll() is not None:
                raise RuntimeError(f"no 200 on {project.page} within {project.start_timeout:g} s")
            time.sleep(0.05)
        session.start_seconds = time.monotonic() - started
        idle, ok = wait_idle(server.proc.pid)
        print(
            f"{tag} first 200 after {session.start_seconds:.2f} s; idle after {idle:.1f} s"
            + ("" if ok else " (not idle: gave up waiting)"),
            flush=True,
        )
        time.sleep(random.uniform(1.0, 2.0))
        offset = log.stat().st_size
        for kind, target in schedule(project, kinds, counts):
            server.snapshot()
            took = None
            tries = 0
            requests = 0
            failed: Counter[str] = Counter()
            # A template edit shows without a restart (or within a poll period): 20 s at most.
            timeout = (
                min(project.timeout, TEMPLATE_TIMEOUT) if kind == "template" else project.timeout
            )
            while took is None and tries < TRIES:
                tries += 1
                n = numbers.next()
                saved = time.monotonic()
                target.write(n)
                took, reqs, fails = poll_until(port, project.page, target, n, saved, timeout)
                requests += reqs
                failed += fails
                refused = bool(fails) and set(fails) == {"ConnectionRefusedError"}
                if took is None and refused and not listening(port):
                    raise RuntimeError(
                        f"nothing listens on 127.0.0.1:{port} any more: requests refused "
                        f"for {timeout:g} s after saving version {n} of "
                        f"{target.short(project.cwd)} ({kind} edit {len(session.samples) + 1})"
                    )
                if took is None:
                    print(
                        f"{tag}   {kind} {target.short(project.cwd)}: version {n} not shown "
                        f"within {timeout:g} s",
                        flush=True,
                    )
            idle, ok = wait_idle(server.proc.pid)
            # Still showing it once the tree is idle (no flip back to an older worker)?
            if took is not None:
                with contextlib.suppress(OSError, http.client.HTTPException):
                    status, headers, body = get(port, project.page, target.module, 30)
                    if status != 200 or not target.shows(n, headers, body):
                        failed["no longer shown once idle"] += 1
            lines, offset = read_from(log, offset)
            start, notes = classify(lines) if key == "ours" else ("-", [])
            if tries > 1:
                notes.insert(0, f"{tries - 1} save(s) missed before this one")
            sample = Sample(
                project.name,
                key,
                rnd,
                kind,
                target.short(project.cwd),
                took,
                start,
                idle,
                requests,
                failed,
                notes,
            )
            session.samples.append(sample)
            shown = f"{took:.3f} s" if took is not None else "MISSED"
            extra = f", {dict(failed)}" if failed else ""
            print(
                f"{tag}   {kind:8} {target.short(project.cwd):28} {shown:>9}  "
                f"{start if key == 'ours' else ''}"
                f"  (idle after {idle:.1f} s{'' if ok else ', not idle'}{extra})",
                flush=True,
            )
            for note in notes:
                print(f"{tag}       log: {note[:300]}", flush=True)
            time.sleep(random.uniform(1.0, 2.0))
        tree = server.snapshot()
        session.pss_kb = pss_kb(list(tree))
        session.processes = len(tree)
        print(
            f"{tag} PSS of the tree: {session.pss_kb / 1024:.0f} MB in {len(tree)} processes",
            flush=True,
        )
    except Exception as exc:  # reported, the run goes on
        session.error = f"{type(exc).__name__}: {exc}"
        print(f"{tag} FAILED: {session.error} (log: {log})", flush=True)
    finally:
        session.left = server.stop()
        project.restore()
        after = code_state(root) if key == "ours" else "-"
        if after != session.code:
            session.code += f" -> {after}"
            print(f"{tag} WARNING: reloader/ or devserver/ changed during this session", flush=True)
        if server.exit_seconds > 2:
            print(f"{tag} the whole tree took {server.exit_seconds:.1f} s to exit", flush=True)
        if session.left:
            print(f"{tag} processes left after the stop (killed): {session.left}", flush=True)
    return session


# --------------------------------------------------------------------------- report
def report(
    project: P.Project, sessions: list[Session], kinds: list[str], servers: list[str]
) -> str:
    samples = [s for session in sessions for s in session.samples]

    def times(server: str, kind: str) -> list[float]:
        return [
            s.seconds
            for s in samples
            if s.server == server and s.kind == kind and s.seconds is not None
        ]

    rows = []
    for kind in kinds:
        if not project.targets.get(kind):
            continue
        base = {peer: median(times(peer, kind)) for peer in ("django", "watchfiles")}
        for server in servers:
            values = times(server, kind)
            missed = sum(
                1 for s in samples if s.server == server and s.kind == kind and s.seconds is None
            )
            mid = median(values)

            ratios = {
                peer: f"{mid / base[peer]:.2f}x"
                if server != peer and peer in servers and mid == mid and base[peer] == base[peer]
                else "-"
                for peer in base
            }

            starts = Counter(s.start for s in samples if s.server == server and s.kind == kind)
            used = (
                ", ".join(f"{k} {v}" for k, v in starts.most_common()) if server == "ours" else "-"
            )
            rows.append(
                (
                    P.SERVER_LABELS[server],
                    kind,
                    f"{len(values)}" + (f" (+{missed} missed)" if missed else ""),
                    f"{mid:.3f}",
                    f"{p90(values):.3f}",
                    ratios["django"],
                    ratios["watchfiles"],
                    used,
                )
            )
    out = [
        table(
            [
                "server",
                "edit",
                "n",
                "save->new response, median s",
                "p90 s",
                "vs Django",
                "vs watchfiles",
                "starts used",
            ],
            rows,
        )
    ]
    pss = {
        srv: median([s.pss_kb / 1024 for s in sessions if s.server == srv and s.pss_kb])
        for srv in servers
    }
    procs = {
        srv: median([s.processes for s in sessions if s.server == srv and s.processes])
        for srv in servers
    }
    parts = [
        f"{P.SERVER_LABELS[srv]} {pss[srv]:.0f} MB ({procs[srv]:.0f} processes)" for srv in servers
    ]
    line = "PSS of the whole tree after the edits (median of rounds): " + "; ".join(parts)
    if "ours" in pss and "django" in pss and pss["django"] == pss["django"]:
        line += f"; ours / Django {pss['ours'] / pss['django']:.2f}x"
    out.append(line)
    first = {
        srv: median([s.start_seconds for s in sessions if s.server == srv and s.start_seconds])
        for srv in servers
    }
    out.append(
        "start -> first 200 (median): "
        + "; ".join(f"{P.SERVER_LABELS[s]} {first[s]:.2f} s" for s in servers)
    )
    idle = {srv: median([x.idle for x in samples if x.server == srv]) for srv in servers}
    out.append(
        "wait for an idle tree after a served edit (median): "
        + "; ".join(f"{P.SERVER_LABELS[s]} {idle[s]:.1f} s" for s in servers)
    )
    failed: Counter[str] = Counter()
    for s in samples:
        for what, count in s.failed.items():
            failed[f"{s.server}: {what}"] += count
    if failed:
        out.append(
            "failed requests while polling: " + ", ".join(f"{k} {v}" for k, v in failed.items())
        )
    notes: Counter[str] = Counter()
    for s in samples:
        if s.server == "ours":
            for note in s.notes:
                notes[re.sub(r"\s+", " ", re.sub(r"^\[[^\]]*\]\s*", "", note))] += 1
    if notes:
        out.append("ours' log, worth quoting (count):")
        out += [f"  {count} x {note[:400]}" for note, count in notes.most_common()]
    for session in sessions:
        if session.error:
            out.append(
                f"FAILED {session.server} round {session.round}: {session.error} "
                f"(log {session.log})"
            )
        if "->" in session.code:
            out.append(
                f"CODE CHANGED during {session.server} round {session.round}: {session.code}"
            )
        if session.left:
            out.append(f"LEFT {session.server} round {session.round}: {session.left}")
    return "\n".join(out)


def parse_counts(kinds: list[str], edits: int, spec: str) -> dict[str, int]:
    counts = {k: edits for k in kinds}
    for item in filter(None, spec.split(",")):
        kind, _, value = item.partition("=")
        if kind not in P.KINDS or not value.isdigit():
            raise SystemExit(f"--edits-per-kind: {item!r} is not KIND=N")
        counts[kind] = int(value)
    return counts


@contextmanager
def open_projects(
    names: list[str], root: Path, args: argparse.Namespace
) -> Iterator[list[P.Project]]:
    with ExitStack() as stack:
        found = []
        for name in names:
            t0 = time.monotonic()
            print(f"preparing {name}...", flush=True)
            if name == "mysite":
                found.append(P.prepare_mysite(root, PYTHON))
            elif name in ("big-ready", "big-view"):
                found.append(P.prepare_big(root, PYTHON, name[4:], args.modules))
            elif name == "netbox":
                checkout = args.netbox or Path("/work/netbox")
                if P.netbox_location(checkout) is None:
                    print(
                        "netbox skipped: no NetBox set up by benchmarks/setup_netbox.sh "
                        f"at {checkout}",
                        flush=True,
                    )
                    continue
                found.append(stack.enter_context(P.netbox(root, checkout, args.netbox_copy)))
            else:
                raise SystemExit(f"unknown project {name!r}: mysite, big-ready, big-view, netbox")
            print(
                f"  {found[-1].name}: {found[-1].note} ({time.monotonic() - t0:.1f} s)", flush=True
            )
        yield found


def snapshot_code(into: Path) -> str:
    """Copy the packages ours runs (reloader/, devserver/, fcgi/) into ``into``, for
    PYTHONPATH: another session may edit them while the benchmark runs. Their digest."""
    before = code_state()
    for package in ("reloader", "devserver", "fcgi"):
        shutil.copytree(
            REPO / package, into / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    if code_state() != before:  # edited while we copied: once more
        shutil.rmtree(into)
        return snapshot_code(into)
    check = (
        "import reloader.supervisor, reloader.refresh, devserver.worker; print(reloader.__file__)"
    )
    out = subprocess.run(
        [PYTHON, "-c", check],
        env={**os.environ, "PYTHONPATH": str(into)},
        capture_output=True,
        text=True,
        cwd=into,
    )
    if out.returncode != 0 or not out.stdout.startswith(str(into)):
        raise SystemExit(f"the snapshot of the code in {into} does not import: {out.stderr}")
    return before


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run(args: argparse.Namespace) -> None:
    began = time.monotonic()
    # Stop cleanly (servers stopped, NetBox's files restored) on SIGTERM, and on SIGINT even
    # when started in the background (where SIGINT is ignored).
    signal.signal(signal.SIGTERM, _interrupted)
    signal.signal(signal.SIGINT, _interrupted)
    if args.seed is not None:
        random.seed(args.seed)
    names = [n for n in args.projects.split(",") if n]
    kinds = [k for k in args.kinds.split(",") if k]
    for kind in kinds:
        if kind not in P.KINDS:
            raise SystemExit(f"unknown kind {kind!r}: {', '.join(P.KINDS)}")
    servers = [s for s in args.servers.split(",") if s]
    for server in servers:
        if server not in P.SERVER_KEYS:
            raise SystemExit(f"unknown server {server!r}: {', '.join(P.SERVER_KEYS)}")
    rounds = 2 if args.rounds is None else args.rounds
    counts = parse_counts(kinds, 5 if args.edits is None else args.edits, args.edits_per_kind)
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="reload-bench-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    print(f"servers' logs in {log_dir}", flush=True)
    print(
        f"pacing: after each served edit, wait until the server's whole process tree is idle "
        f"(< {IDLE_CPU:.0%} of a core over {IDLE_WINDOW:g} s, at most {IDLE_MAX:g} s), then 1-2 s "
        "(random), as a developer looks at the result; the page is polled every 20 ms, one "
        "request in flight, a new connection each",
        flush=True,
    )
    if args.code_from:
        code = args.code_from.resolve()
        print(f"ours runs the code in {code} (code {code_state(code)}), first on its PYTHONPATH")
    elif args.live_code:
        code = None
        print(f"ours runs the code in {REPO} as it is (code {code_state()})", flush=True)
    else:
        code = log_dir / "code"
        digest = snapshot_code(code)
        print(
            f"ours runs a snapshot of reloader/, devserver/, fcgi/ taken now (code {digest}) "
            f"in {code}, first on its PYTHONPATH",
            flush=True,
        )
    numbers = Counterfile()
    results: dict[str, list[Session]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="reload-projects-") as tmp,
        open_projects(names, Path(tmp), args) as found,
    ):
        for rnd in range(1, rounds + 1):
            for project in found:
                for key in servers:
                    session = run_session(project, key, rnd, kinds, counts, log_dir, numbers, code)
                    results.setdefault(project.name, []).append(session)
        print(flush=True)
        for project in found:
            planned = ", ".join(f"{counts[k]} {k}" for k in kinds if project.targets.get(k))
            print(
                f"{project.name} ({project.note}; page {project.page}): {rounds} round(s), "
                f"interleaved; per server and round {planned} edits, the kinds in turn; "
                f"medians and p90 over the edits",
            )
            if project.name == "netbox" and "view" in kinds:
                print(f"  view edits go round: {', '.join(P.NETBOX_VIEWS)}")
            print(report(project, results.get(project.name, []), kinds, servers))
            print(flush=True)
    print(f"whole run: {time.monotonic() - began:.0f} s; logs in {log_dir}", flush=True)
