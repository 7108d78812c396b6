"""``RedisInspection``: what the ``ranch`` command reads of a namespace, and the registry.

A page of keys in one of three orders and where one call stands, each one
read-only Lua script (``keys_page.lua``, ``why.lua``) that reads only what it
answers; and the registry of namespaces (``layout.registry_key()``), written
by pushing storages so that listing backlogs never scans the keyspace. A
mixin of :class:`~ranch_redis.operations.RedisOperations`.
"""

from __future__ import annotations

import logging
import time
from typing import Any, List, Optional

from ranch_core import validation

from ranch_redis import layout, metrics, views
from ranch_redis.reports import RedisReports
from ranch_redis.steps import Steps, command, script

logger = logging.getLogger("ranch_redis")

#: A pushing storage writes its namespace into the registry at its first push
#: and then at most once in this many seconds (after a Redis restart or a
#: FLUSHALL, the registry is whole again within a minute of pushes).
REGISTER_EVERY = 60.0

#: At most this many keys in one page.
MAX_PAGE = 10_000


def check_order(order: object) -> str:
    """One of :data:`ranch_redis.views.ORDERS`; ``ValueError`` otherwise."""
    if order not in views.ORDERS:
        raise ValueError(f"order must be one of {', '.join(views.ORDERS)}, not {order!r}")
    return str(order)


def check_page(limit: object, offset: object) -> None:
    """``limit`` in 1..MAX_PAGE and ``offset`` >= 0, whole numbers; ``TypeError``/``ValueError``."""
    for name, value, least in (("limit", limit, 1), ("offset", offset, 0)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, not {type(value).__name__}")
        if value < least or (name == "limit" and value > MAX_PAGE):
            raise ValueError(
                f"{name} must be in {least}..{MAX_PAGE if name == 'limit' else 'any'}, not {value}"
            )


class RedisInspection(RedisReports):
    """Read-only views for operators, and the namespace registry, as steps."""

    #: When this storage writes its namespace into the registry next (monotonic clock).
    _register_at = 0.0

    def _registration_due(self) -> bool:
        """Whether a push should write the namespace into the registry now."""
        now = time.monotonic()
        if now < self._register_at:
            return False
        self._register_at = now + REGISTER_EVERY
        return True

    def _registration_failed(self, exc: Exception) -> None:
        logger.warning(
            "ranch: namespace %r is not listed in the registry %s (%s): `ranch backlogs` will not show it",
            self.namespace,
            layout.registry_key(),
            exc,
        )

    def _register(self) -> Steps[None]:
        yield command("SADD", layout.registry_key(), self.namespace)

    def _backlogs(self) -> Steps[List[str]]:
        reply = yield command("SMEMBERS", layout.registry_key())
        return sorted(raw.decode("utf-8", "replace") for raw in reply)

    def _keys_page(self, order: str, limit: int, offset: int) -> Steps[views.KeysPage]:
        check_order(order)
        check_page(limit, offset)
        reply = yield script("keys_page", order, limit, offset)
        return views.parse_keys_page(order, reply)

    def _why(self, task_id: str, now: float) -> Steps[views.CallPlace]:
        task_id = validation.check_name(task_id, "task_id")
        reply = yield script("why", task_id)
        return views.parse_why(task_id, reply, now)

    def _metrics(self, limit: int, now: Optional[float]) -> Steps[metrics.BacklogMetrics]:
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise TypeError(f"limit must be an int, not {type(limit).__name__}")
        if not 0 <= limit <= MAX_PAGE:
            raise ValueError(f"limit must be in 0..{MAX_PAGE}, not {limit}")
        reply = yield script("metrics", layout.now_arg(now), limit)
        return metrics.parse_metrics(self.namespace, reply)


def forget_backlogs(client: Any, contains: str) -> int:
    """Remove from the registry every namespace whose name contains ``contains``
    (what a demo run does as it deletes its keys); return how many. ``client``
    is a blocking redis-py client."""
    registry = layout.registry_key()
    names = [name for name in client.smembers(registry) if contains.encode() in name]
    if names:
        client.srem(registry, *names)
    return len(names)
