"""``ranch metrics`` and ``ranch dashboard``: check the options, open the server, serve until stopped."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from http.server import ThreadingHTTPServer

from ranch_redis.cli import exporter as exporter_module
from ranch_redis.cli.access import token_for
from ranch_redis.cli.connect import Connection
from ranch_redis.cli.dashboard import server as dashboard_server
from ranch_redis.cli.errors import UsageError
from ranch_redis.inspection import MAX_PAGE


def dashboard(connection: Connection, args: argparse.Namespace) -> str:
    """``ranch dashboard``: serve until interrupted (SIGINT, SIGTERM)."""
    token = token_for(args.host, args.token, dashboard_server.TOKEN_ENV)
    if args.top > MAX_PAGE:
        raise UsageError(f"--top must be at most {MAX_PAGE}, not {args.top}")
    connection.backlogs()  # Redis unreachable: exit 1 now
    logging.getLogger("ranch_redis.dashboard").setLevel(logging.INFO)
    try:
        server = dashboard_server.make_server(
            connection, args.host, args.port, args.top, token, args.read_only
        )
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    mode = " (read-only)" if args.read_only else ""
    return serve_until_stopped(server, f"serving the dashboard on http://{args.host}:{args.port}/{mode}")


def metrics(connection: Connection, args: argparse.Namespace) -> str:
    """``ranch metrics``: serve until interrupted (SIGINT, SIGTERM)."""
    token = token_for(args.host, args.token, exporter_module.TOKEN_ENV)
    if not 0 <= args.top <= MAX_PAGE:
        raise UsageError(f"--top must be in 0..{MAX_PAGE}, not {args.top}")
    exporter_module.prometheus()
    connection.backlogs()  # Redis unreachable: exit 1 now, not at the first scrape
    try:
        server = exporter_module.serve(connection, args.host, args.port, args.top, token)
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    return serve_until_stopped(
        server, f"serving Prometheus metrics on http://{args.host}:{args.port}/metrics"
    )


def serve_until_stopped(server: ThreadingHTTPServer, banner: str) -> str:
    """Run ``server`` until SIGINT or SIGTERM; say where it listens first."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"ranch: {banner}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return ""
