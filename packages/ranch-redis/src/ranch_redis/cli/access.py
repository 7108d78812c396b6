"""What every HTTP server of the ``ranch`` command shares: where it may listen, and its token.

A server binds ``127.0.0.1`` unless told otherwise; any other address
needs a token (``--token`` or the command's environment variable), and a
request then has to carry it (``Authorization: Bearer <token>``, or the
dashboard's form field). Tokens are compared in constant time.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from typing import Optional

from ranch_redis.cli.errors import UsageError

#: The default address: loopback only.
LOOPBACK = "127.0.0.1"


def is_loopback(host: str) -> bool:
    """Whether ``host`` names a loopback address (``127.0.0.0/8``, ``::1``, ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def token_for(host: str, given: Optional[str], env: str) -> Optional[str]:
    """The token a server on ``host`` requires: ``given`` or ``$env``; a
    :class:`UsageError` if ``host`` is not loopback and there is none."""
    token = given or os.environ.get(env) or None
    if token is not None and len(token) < 16:
        raise UsageError("the token must be at least 16 characters")
    if token is None and not is_loopback(host):
        raise UsageError(f"listening on {host} needs a token: pass --token or set {env}")
    return token


def token_matches(expected: Optional[str], header: Optional[str]) -> bool:
    """Whether an ``Authorization`` header carries ``expected`` (any header if there is no token)."""
    if expected is None:
        return True
    if not header or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[len("Bearer ") :].encode(), expected.encode())


def same_token(expected: Optional[str], given: Optional[str]) -> bool:
    """Whether ``given`` is the token (constant time); ``False`` for ``None``."""
    if expected is None or given is None:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())
