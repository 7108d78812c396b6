"""``ranch``: the command line (argparse) and its exit codes.

0: done; 2: a usage error (bad arguments, a bad value, an unknown backlog),
one line on stderr; 1: Redis unreachable or failing, one line on stderr,
never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable, Dict, List, Optional, Sequence

from ranch_core.errors import StorageUnavailable
from ranch_core.keys import Key
from redis.exceptions import RedisError

from ranch_redis.cli import act, read, serving, why
from ranch_redis.cli import exporter as exporter_module
from ranch_redis.cli.access import LOOPBACK
from ranch_redis.cli.connect import URL_ENV, Connection, redis_url
from ranch_redis.cli.dashboard import server as dashboard_server
from ranch_redis.cli.errors import UsageError
from ranch_redis.views import ORDERS

#: Exit codes.
OK, UNREACHABLE, USAGE = 0, 1, 2


def positive(text: str) -> int:
    """An argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def parser() -> argparse.ArgumentParser:
    """The command line of ``ranch``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", help=f"Redis URL (default: ${URL_ENV})")
    common.add_argument("--namespace", help="prefix of the backlogs' names, e.g. celery or dramatiq")
    common.add_argument("--json", action="store_true", help="print JSON instead of a table")
    common.add_argument("--cluster", action="store_true", help="the URL names a node of a Redis Cluster")
    top = argparse.ArgumentParser(
        prog="ranch", description="Read, explain and act on Ranch fair-scheduling backlogs in Redis."
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, text: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, parents=[common], help=text, description=text)

    add("backlogs", "list the registered backlogs with their counters")
    add("status", "a backlog's counters and wake-up tokens").add_argument("backlog")
    keys = add("keys", "a page of a backlog's keys")
    keys.add_argument("backlog")
    keys.add_argument(
        "--sort", choices=ORDERS, default="waiting", help="waiting (default), wait (the fair order), served"
    )
    keys.add_argument("--limit", type=positive, default=20, help="keys to show (default 20)")
    one = add("key", "what is known of one key")
    one.add_argument("backlog")
    one.add_argument("key")
    one.add_argument("--member", help="the member of a (KEY, MEMBER) pair: KEY is its group")
    explain = add("why", "where a call stands and what holds it")
    explain.add_argument("backlog")
    explain.add_argument("task_id")
    for name, text in (
        ("pause", "hold every waiting call of a key"),
        ("resume", "let a paused key run again"),
        ("purge", "delete every waiting call of a key"),
    ):
        action = add(name, text)
        action.add_argument("backlog")
        action.add_argument("key")
        action.add_argument("--member", help="the member of a (KEY, MEMBER) pair: KEY is its group")
    for name, text, value in (
        ("set-weight", "set a key's weight (0.5 = twice the service)", "weight"),
        ("set-limit", "set a key's concurrency limit ('none' removes it)", "limit"),
        ("set-rate", "set a key's rate limit, e.g. 10/s, 100/m ('none' removes it)", "rate"),
    ):
        action = add(name, text)
        action.add_argument("backlog")
        action.add_argument("key")
        action.add_argument("value", metavar=value.upper())
        action.add_argument("--member", help="the member of a (KEY, MEMBER) pair: KEY is its group")
        if name == "set-rate":
            action.add_argument("--burst", type=positive, default=1, help="calls allowed at once (default 1)")
    exporter = add("metrics", "serve Prometheus metrics of every registered backlog")
    exporter.add_argument("--port", type=positive, default=9808, help="default 9808")
    exporter.add_argument("--host", default=LOOPBACK, help="address to listen on (default 127.0.0.1)")
    exporter.add_argument(
        "--top", type=int, default=20, help="keys per backlog with series of their own (20)"
    )
    exporter.add_argument(
        "--token", help=f"bearer token scrapes must carry (default: ${exporter_module.TOKEN_ENV})"
    )
    board = add("dashboard", "serve a web dashboard of the backlogs with per-key controls")
    board.add_argument("--port", type=positive, default=8808, help="default 8808")
    board.add_argument("--host", default=LOOPBACK, help="address to listen on (default 127.0.0.1)")
    board.add_argument("--top", type=positive, default=10, help="keys shown per backlog (10)")
    board.add_argument("--token", help=f"token for the API (default: ${dashboard_server.TOKEN_ENV})")
    board.add_argument("--read-only", action="store_true", help="hide and refuse the controls")
    return top


Command = Callable[[Connection, argparse.Namespace], str]


def named_key(args: argparse.Namespace) -> Key:
    """The key a command names: ``KEY``, or the pair ``(KEY, MEMBER)`` with ``--member``."""
    return args.key if args.member is None else (args.key, args.member)


#: What each command runs.
COMMANDS: Dict[str, Command] = {
    "backlogs": lambda c, a: read.backlogs(c, a.json),
    "status": lambda c, a: read.status(c, a.backlog, a.json),
    "keys": lambda c, a: read.keys(c, a.backlog, a.sort, a.limit, a.json),
    "key": lambda c, a: read.key(c, a.backlog, named_key(a), a.json),
    "why": lambda c, a: why.why(c, a.backlog, a.task_id, a.json),
    "metrics": serving.metrics,
    "dashboard": serving.dashboard,
    **{
        name: lambda c, a: act.act(
            c, a.command, a.backlog, named_key(a), getattr(a, "value", None), getattr(a, "burst", 1), a.json
        )
        for name in act.DONE
    },
}


def run(args: argparse.Namespace) -> str:
    """Run the parsed command; return what to print."""
    connection = Connection(redis_url(args.url), args.namespace, cluster=args.cluster)
    try:
        return COMMANDS[args.command](connection, args)
    finally:
        connection.close()


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``ranch`` console script; returns the exit code."""
    args = parser().parse_args(argv)  # exits 2 on a usage error
    # The storage's retry warnings would add lines to the one-line error; corrupt
    # records found while reading are still reported.
    logging.basicConfig(level=logging.ERROR, format="ranch: %(message)s")
    try:
        out = run(args)
    except UsageError as exc:
        print(f"ranch: {exc}", file=sys.stderr)
        return USAGE
    except (StorageUnavailable, RedisError) as exc:
        print(f"ranch: {first_line(exc)}", file=sys.stderr)
        return UNREACHABLE
    if out:
        print(out)
    return OK


def first_line(exc: BaseException) -> str:
    """The error's message on one line."""
    lines: List[str] = str(exc).splitlines() or [type(exc).__name__]
    return " ".join(line.strip() for line in lines)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
