"""The dashboard's HTTP server: the page, ``GET /api/state``, and the controls as POSTs.

Rules (README, "The dashboard"):

* It binds ``127.0.0.1`` unless ``--host`` says otherwise, and any other
  address needs a token (``--token`` or ``RANCH_DASHBOARD_TOKEN``).
* With a token, every API request carries it (``Authorization: Bearer``); the
  page asks for it and keeps it in the tab's session storage.
* Without one (loopback only), the server makes a random token at start
  and writes it into the page it serves: a page of another origin can
  neither read it nor send the header, so it cannot change anything
  (no cross-site request forgery), and requests whose ``Host`` is not the
  loopback address it listens on are refused (no DNS rebinding).
* A state change is a ``POST`` with the token and a JSON body; a ``GET``
  never changes anything. ``--read-only`` hides the controls and refuses
  every ``POST`` (403).
"""

from __future__ import annotations

import json
import logging
import secrets
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any, Dict, Optional

from ranch_core import validation
from ranch_core.errors import StorageUnavailable
from redis.exceptions import RedisError

from ranch_redis.cli.access import is_loopback, same_token
from ranch_redis.cli.connect import Connection
from ranch_redis.cli.dashboard import state

logger = logging.getLogger("ranch_redis.dashboard")

#: The environment variable of the dashboard's token.
TOKEN_ENV = "RANCH_DASHBOARD_TOKEN"  # noqa: S105 - the name of a variable, not a token

#: The POST endpoints and the action each runs.
ACTIONS = {"/api/pause": "pause", "/api/resume": "resume", "/api/weight": "weight"}

#: The page's content security policy: its own inline script and style, nothing from elsewhere.
POLICY = "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; frame-ancestors 'none'"

#: The largest request body accepted.
MAX_BODY = 4096


class Dashboard:
    """What the handler needs: the connection, the token, the flags and the page."""

    def __init__(
        self, connection: Connection, host: str, port: int, top: int, token: Optional[str], read_only: bool
    ) -> None:
        self.connection = connection
        self.top = top
        self.read_only = read_only
        #: Given: the user types it into the page. Not given: made here and served in the page.
        self.given_token = token is not None
        self.token = token or secrets.token_urlsafe(24)
        self.loopback_hosts = (
            {f"{name}:{port}" for name in ("127.0.0.1", "localhost", "[::1]")} if is_loopback(host) else None
        )
        page = resources.files(__package__).joinpath("page.html").read_text(encoding="utf-8")
        config = {
            "readOnly": read_only,
            "token": None if self.given_token else self.token,
            "needsToken": self.given_token,
        }
        self.page = page.replace("__RANCH_CONFIG__", json.dumps(config)).encode()

    def authorized(self, header: Optional[str]) -> bool:
        """Whether an ``Authorization`` header carries the token."""
        if not header or not header.startswith("Bearer "):
            return False
        return same_token(self.token, header[len("Bearer ") :])


def make_server(
    connection: Connection, host: str, port: int, top: int, token: Optional[str], read_only: bool
) -> ThreadingHTTPServer:
    """The dashboard's server on ``host:port`` (not started)."""
    dashboard = Dashboard(connection, host, port, top, token, read_only)

    class Handler(BaseHTTPRequestHandler):
        def reply(self, status: int, body: bytes, kind: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Frame-Options", "DENY")
            self.send_header("Content-Security-Policy", POLICY)
            self.end_headers()
            self.wfile.write(body)

        def error(self, status: int, message: str) -> None:
            self.reply(status, json.dumps({"error": message}).encode())

        def host_ok(self) -> bool:
            hosts = dashboard.loopback_hosts
            if hosts is not None and self.headers.get("Host") not in hosts:
                self.error(403, "this dashboard answers only to its loopback address")
                return False
            return True

        def do_GET(self) -> None:
            if not self.host_ok():
                return
            path = self.path.split("?", 1)[0]
            if path == "/":
                self.reply(200, dashboard.page, "text/html; charset=utf-8")
            elif path == "/api/state":
                if dashboard.given_token and not dashboard.authorized(self.headers.get("Authorization")):
                    self.error(401, "a bearer token is required")
                    return
                self.answer(lambda: {"readOnly": dashboard.read_only, "backlogs": self.read()})
            elif path in ACTIONS:
                self.error(405, "state changes are POST requests")
            else:
                self.error(404, "not found")

        def read(self) -> Any:
            return state.read_state(dashboard.connection, dashboard.top)

        def do_POST(self) -> None:
            if not self.host_ok():
                return
            path = self.path.split("?", 1)[0]
            if path not in ACTIONS:
                self.error(404, "not found")
                return
            if dashboard.read_only:
                self.error(403, "this dashboard is read-only")
                return
            if not dashboard.authorized(self.headers.get("Authorization")):
                self.error(401, "a bearer token is required")
                return
            body = self.body()
            if body is None:
                return
            action = ACTIONS[path]

            def run() -> Dict[str, Any]:
                backlog = body.get("backlog")
                if not isinstance(backlog, str):
                    raise TypeError("backlog must be a string")
                # A key is a string or a (group, member) pair, a list of two in JSON.
                key = validation.check_any_key(body.get("key"))
                state.act(dashboard.connection, action, backlog, key, body.get("weight"))
                logger.info("ranch dashboard: %s %r of backlog %r", action, key, backlog)
                return {"ok": True}

            self.answer(run)

        def body(self) -> Optional[Dict[str, Any]]:
            if self.headers.get("Content-Type", "").split(";")[0] != "application/json":
                self.error(415, "send JSON")
                return None
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self.error(413, "request too large")
                return None
            try:
                data = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                self.error(400, "the body is not JSON")
                return None
            if not isinstance(data, dict):
                self.error(400, "the body must be a JSON object")
                return None
            return data

        def answer(self, compute: Any) -> None:
            try:
                result = compute()
            except (TypeError, ValueError) as exc:
                self.error(400, str(exc))
            except (StorageUnavailable, RedisError) as exc:
                logger.error("ranch dashboard: %s", exc)
                self.error(503, "Redis unavailable")
            else:
                self.reply(200, json.dumps(result).encode())

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("ranch dashboard: " + format, *args)

    return ThreadingHTTPServer((host, port), Handler)
