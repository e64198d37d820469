"""Run Debian's nginx from the configs in ``examples/nginx/``, rendered for a test run.

The examples are real configs (port 8080, sockets in ``/run/mysite/``, the upstream on
127.0.0.1:8001); :func:`render` swaps those literals for the free port and the temporary socket
directory picked at run time, and fails if a literal is missing, so the examples cannot drift
away from what the tests run. The benchmark uses the same helpers.
"""

from __future__ import annotations

import grp
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from tests.support import REPO

EXAMPLES = REPO / "examples" / "nginx"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
WORKER_GROUP = "www-data"


def render(
    name: str,
    *,
    port: int,
    socket_dir: Path | None = None,
    upstream_port: int | None = None,
    drop: Iterable[str] = (),
    extra: Iterable[tuple[str, str]] = (),
) -> str:
    """The example config ``name`` with the test's port, socket dir and upstream port."""
    text = (EXAMPLES / name).read_text()
    swaps = [("listen 127.0.0.1:8080;", f"listen 127.0.0.1:{port};"), *extra]
    if socket_dir is not None:
        swaps.append(("unix:/run/mysite/", f"unix:{socket_dir}/"))
    if upstream_port is not None:
        swaps.append((" 127.0.0.1:8001;", f" 127.0.0.1:{upstream_port};"))
    for old, new in swaps:
        assert old in text, f"{name} no longer contains {old!r}"
        text = text.replace(old, new)
    for line in drop:
        assert line in text, f"{name} no longer contains {line!r}"
        text = text.replace(line, "")
    return text


def make_run_dir() -> Path:
    """A short directory under /tmp that nginx's unprivileged workers can traverse.

    pytest's tmp_path is under a 0700 directory (nginx's workers could not reach their temp
    files or the socket) and too deep for a unix socket path (108 bytes).
    """
    run_dir = Path(tempfile.mkdtemp(prefix="fcgi-", dir="/tmp"))
    run_dir.chmod(0o711)
    (run_dir / "nginx").mkdir(mode=0o755)
    sockets = run_dir / "sock"
    sockets.mkdir()
    if os.geteuid() == 0:
        # The documented setup: a setgid directory of nginx's group; runfcgi umask=007.
        os.chown(sockets, -1, grp.getgrnam(WORKER_GROUP).gr_gid)
        sockets.chmod(0o2750)
    else:
        sockets.chmod(0o700)
    return run_dir


def command(prefix: Path, conf: Path) -> list[str]:
    assert NGINX is not None
    return [NGINX, "-p", f"{prefix}/", "-e", "error.log", "-c", str(conf)]
