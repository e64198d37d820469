"""runserver's command line: Django's options, then ours (each one's help says what it does).

Kept apart from the command (``devserver.management.commands.runserver``), which only reads
them. testserver adds its own (``--asgi``, ``--nolivereload``) in its command.
"""

from __future__ import annotations

from typing import Any

from devserver import checking

WATCHERS = {"auto": "auto", "inotify": "inotify", "watchdog": "observer", "poll": "poll"}
STARTS = ("auto", "fork", "spawn")


def add_runserver_arguments(parser: Any, command: Any) -> None:
    parser.add_argument("addrport", nargs="?", help="Optional port number, or ipaddr:port")
    parser.add_argument(
        "--ipv6",
        "-6",
        action="store_true",
        dest="use_ipv6",
        help="Tells Django to use an IPv6 address.",
    )
    parser.add_argument(
        "--nothreading",
        action="store_false",
        dest="use_threading",
        help="Tells Django to NOT use threading.",
    )
    parser.add_argument(
        "--noreload",
        action="store_false",
        dest="use_reloader",
        help="Tells Django to NOT use the auto-reloader.",
    )
    if not command.requires_system_checks:  # else BaseCommand added it (see above)
        parser.add_argument("--skip-checks", action="store_true", help="Skip system checks.")
    parser.add_argument(
        "--checks",
        dest="checks",
        choices=checking.CHOICES,
        default=checking.AFTER,
        help=(
            "When each new server process runs the system checks and the migrations "
            "notice: after it starts serving (default; requests do not wait for them) or "
            "before, as Django does. --noreload always checks before serving."
        ),
    )
    parser.add_argument(
        "--nostatic",
        action="store_false",
        dest="use_static_handler",
        help="Tells Django to NOT automatically serve static files at STATIC_URL.",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        dest="insecure_serving",
        help="Allows serving static files even if DEBUG is False.",
    )
    parser.add_argument(
        "--adminmedia",
        dest="admin_media_path",
        default="",
        metavar="DIR",
        help="Serves the admin's static files (STATIC_URL + 'admin/') from this directory.",
    )
    add_asgi_arguments(parser)
    add_https_arguments(parser)
    add_insight_arguments(parser)
    parser.add_argument(
        "--nolivereload",
        action="store_false",
        dest="livereload",
        help=(
            "Tells the browser NOT to follow the code: no page reload after a save, no "
            "stylesheet swapped in place (on by default with DEBUG on)."
        ),
    )
    parser.add_argument(
        "--reloader",
        dest="reloader",
        choices=sorted(WATCHERS),
        default="auto",
        help=(
            "How to watch files: inotify (Linux), watchdog (its native observer), poll "
            "(Docker bind mounts, network shares, WSL), or auto (default)."
        ),
    )
    parser.add_argument(
        "--start",
        dest="start",
        choices=STARTS,
        default="auto",
        help=(
            "How to start each new server process: auto (the default, where the platform "
            "can fork): fork from the deepest point of Django's start-up that your edit did "
            "not touch; fork: from a template that imported Django and your libraries only; "
            "spawn: a fresh interpreter."
        ),
    )


def add_asgi_arguments(parser: Any) -> None:
    """``--asgi`` and ``--wsgi`` (runserver and testserver)."""
    parser.add_argument(
        "--asgi",
        action="store_true",
        dest="asgi",
        default=None,
        help=(
            "Serve the project's ASGI application (ASGI_APPLICATION, else Django's) with "
            "uvicorn; the default when ASGI_APPLICATION is set."
        ),
    )
    parser.add_argument(
        "--wsgi",
        action="store_false",
        dest="asgi",
        help="Serve the WSGI application even when ASGI_APPLICATION is set.",
    )


def add_https_arguments(parser: Any) -> None:
    """``--https``, ``--cert-file`` and ``--key-file`` (devserver.tls)."""
    parser.add_argument(
        "--https",
        action="store_true",
        dest="https",
        help=(
            "Serve HTTPS with a certificate from a local CA made once for you (trust it once "
            "with 'manage.py devserver_ca install'); plain HTTP on the port is redirected."
        ),
    )
    parser.add_argument(
        "--cert-file",
        dest="cert_file",
        default=None,
        metavar="FILE",
        help="Serve HTTPS with this certificate (PEM; the chain may follow it). Implies --https.",
    )
    parser.add_argument(
        "--key-file",
        dest="key_file",
        default=None,
        metavar="FILE",
        help="The private key of --cert-file (PEM), unless the certificate file holds it.",
    )


def add_insight_arguments(parser: Any) -> None:
    """What each request cost (devserver.insight): the SQL summary, --print-sql, --pdb."""
    parser.add_argument(
        "--nosqlsummary",
        action="store_false",
        dest="sql_summary",
        help=(
            "Do NOT end each request log line with its queries, their time and duplicates "
            "(on by default with DEBUG on)."
        ),
    )
    parser.add_argument(
        "--print-sql",
        action="store_true",
        dest="print_sql",
        help="Print each SQL query, formatted, with its time.",
    )
    parser.add_argument(
        "--print-sql-location",
        action="store_true",
        dest="print_sql_location",
        help="With each query printed, the line of the project that ran it (implies --print-sql).",
    )
    parser.add_argument(
        "--pdb",
        action="store_true",
        dest="pdb",
        help=(
            "Open a post-mortem debugger in this terminal on an exception a view did not "
            "handle; the request then gets Django's 500 page."
        ),
    )
