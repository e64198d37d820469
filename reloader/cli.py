"""``python -m reloader [options] -- COMMAND ARGS...``: a thin shell over ``Supervisor``."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import sys
from collections.abc import Callable
from typing import NoReturn

from . import protocol
from .config import (
    BACKENDS,
    START_MODES,
    ConfigError,
    SocketSpec,
    SupervisorConfig,
    target_from_command,
)
from .sockets import BindError, is_host_name
from .supervisor import Supervisor

logger = logging.getLogger("reloader")

USAGE = "python -m reloader [options] -- COMMAND [ARGS...]"
DESCRIPTION = """\
Run COMMAND and restart it when a watched file changes. A Python command (python script.py,
python -m module, python -c code) also restarts when a module it imported changes. With --bind,
the sockets are held across restarts and passed to the command (see reloader.worker), so no
connection is refused while it restarts.
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        print(f"reloader: error: {message}", file=sys.stderr)
        sys.exit(protocol.EXIT_USAGE)


def seconds(minimum: float, inclusive: bool = True) -> Callable[[str], float]:
    """An argparse type: a finite number of seconds, at least (or above) ``minimum``."""
    bound = f"{minimum:g} or more" if inclusive else f"more than {minimum:g}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < minimum or (value == minimum and not inclusive):
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds ({bound})")
        return value

    return parse


def parse_bind(value: str) -> SocketSpec:
    """``PORT``, ``HOST:PORT``, ``[IPV6]:PORT`` or ``unix:PATH``."""
    if value.startswith("unix:"):
        return SocketSpec(path=value[5:])
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", value
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ConfigError(f"{value!r}: write an IPv6 address in brackets, e.g. [::1]:8000")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{value!r} is not a valid port or HOST:PORT")
    if host and not is_host_name(host):
        raise ConfigError(f"{value!r}: {host!r} is not a valid host name")
    return SocketSpec(host=host or "127.0.0.1", port=int(port), ipv6=":" in host)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="reloader", usage=USAGE, description=DESCRIPTION)
    parser.add_argument(
        "--watch",
        action="append",
        default=[],
        metavar="PATH",
        help="also watch this file or directory (recursively); repeatable",
    )
    parser.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="GLOB",
        help="ignore paths matching GLOB (a name, or a path with '/'); repeatable",
    )
    parser.add_argument(
        "--poll",
        action="store_const",
        const="poll",
        dest="backend",
        help="poll file times instead of waiting for events (Docker, NFS, WSL)",
    )
    parser.add_argument(
        "--watcher", choices=BACKENDS, dest="backend", help="how to watch files (default: auto)"
    )
    parser.add_argument(
        "--poll-interval", type=seconds(0, inclusive=False), default=0.5, metavar="SECONDS"
    )
    parser.add_argument(
        "--bind",
        action="append",
        default=[],
        metavar="ADDR",
        help="hold a listening socket: PORT, HOST:PORT, [IPV6]:PORT or unix:PATH",
    )
    parser.add_argument(
        "--tls-cert",
        metavar="FILE",
        help=(
            "the --bind sockets speak HTTPS with this certificate (PEM): the error page over "
            "TLS, plain HTTP redirected; the program serves TLS with the same files itself"
        ),
    )
    parser.add_argument(
        "--tls-key", metavar="FILE", help="the key of --tls-cert, unless that file holds it"
    )
    parser.add_argument(
        "--start",
        choices=START_MODES,
        default="spawn",
        help="spawn a fresh interpreter per restart, or fork from a template",
    )
    parser.add_argument(
        "--preload",
        action="append",
        default=[],
        metavar="MODULE",
        help=(
            "with --start fork: also import MODULE in the fork template (its package is "
            "trusted even outside site-packages; never list code you edit); repeatable"
        ),
    )
    parser.add_argument(
        "--checkpoints",
        action="store_true",
        help=(
            "with --start fork: fork workers from the deepest point of the program's start-up "
            "an edit left good, or from its last point with only the edited modules imported "
            "again (the program calls reloader.worker.checkpoint; see its docs)"
        ),
    )
    parser.add_argument(
        "--debounce",
        type=seconds(0),
        default=0.02,
        metavar="SECONDS",
        help="a burst of changes ends after this quiet time (default 0.02)",
    )
    parser.add_argument(
        "--grace",
        type=seconds(0),
        default=5.0,
        metavar="SECONDS",
        help="time a stopping worker gets before it is killed (default 5)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="only print warnings and errors")
    parser.add_argument("-v", "--verbose", action="store_true", help="also print debug messages")
    parser.add_argument("--config-env", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("command", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def config_from_args(args: argparse.Namespace) -> SupervisorConfig:
    if args.config_env:  # started by exec_supervisor: the command line is only decoration
        config_json = protocol.pop_supervisor_config()
        if config_json is None:
            raise ConfigError("--config-env given, but no configuration in the environment")
        return SupervisorConfig.from_json(config_json)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    target, flags = target_from_command(command)
    if args.tls_key and not args.tls_cert:
        raise ConfigError("--tls-key needs --tls-cert")
    sockets = tuple(
        dataclasses.replace(parse_bind(b), tls_cert=args.tls_cert, tls_key=args.tls_key)
        for b in args.bind
    )
    return SupervisorConfig(
        target=target,
        interpreter_flags=flags,
        sockets=sockets,
        watch=tuple(args.watch),
        ignore=tuple(args.ignore),
        backend=args.backend or "auto",
        poll_interval=args.poll_interval,
        start=args.start,
        preload=tuple(args.preload),
        checkpoints=args.checkpoints,
        quiet_period=args.debounce,
        max_wait=max(2.0, args.debounce),
        grace=args.grace,
        name=target.value if target.kind == "command" else "worker",
        verbose=args.verbose,
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(
        logging.WARNING if args.quiet else logging.DEBUG if args.verbose else logging.INFO
    )
    try:
        config = config_from_args(args)
        if config.verbose and not args.quiet:
            logger.setLevel(logging.DEBUG)
        return Supervisor(config, adopt_orphans=True).run()
    except (ConfigError, BindError) as exc:
        print(f"reloader: error: {exc}", file=sys.stderr)
        return protocol.EXIT_USAGE if isinstance(exc, ConfigError) else protocol.EXIT_ERROR
