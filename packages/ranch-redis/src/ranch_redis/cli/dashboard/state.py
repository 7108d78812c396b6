"""What the dashboard shows, read from Redis at each refresh: per backlog its
counters and p95 wait, and its top keys by waiting calls with their controls."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from ranch_core import FairScheduler
from ranch_core.keys import Key, key_text

from ranch_redis.cli.connect import Connection
from ranch_redis.metrics import WaitHistogram


def p95(hist: WaitHistogram) -> Optional[float]:
    """The bound of the bucket holding the 95th percentile wait (``None``: no wait counted;
    a wait past the last bound reads as the last bound's excess, ``inf`` in JSON terms: ``None``)."""
    value = hist.quantile(0.95)
    return None if value is None or value == float("inf") else value


def read_state(connection: Connection, top: int) -> List[Dict[str, Any]]:
    """Every registered backlog: counters, p95 wait, and its ``top`` keys by waiting calls
    (waiting, running, served, p95 wait, weight, limits, paused). Two steps per backlog."""
    out: List[Dict[str, Any]] = []
    for name in connection.backlogs():
        storage = connection.storage(name)
        metrics = storage.metrics(top)
        page = storage.keys_page("waiting", max(top, 1))
        waits = {k.key: k.wait for k in metrics.top_keys}
        keys = [
            {
                "key": row.key,
                "label": key_text(row.key),
                "waiting": row.waiting,
                "running": row.running,
                "served": row.served,
                "p95_wait": p95(waits.get(row.key, WaitHistogram())),
                "weight": row.weight,
                "concurrency_limit": row.concurrency_limit,
                "rate_limit": row.rate_limit,
                "paused": row.paused,
                "held_by": row.parked,
            }
            for row in page.rows[:top]
        ]
        out.append(
            {
                "backlog": name,
                "waiting": metrics.waiting,
                "running": metrics.running,
                "active_keys": metrics.active_keys,
                "served": metrics.served,
                "expired": metrics.expired,
                "p95_wait": p95(metrics.wait),
                "keys": keys,
            }
        )
    return out


def act(connection: Connection, action: str, backlog: str, key: Key, weight: Any = None) -> None:
    """Pause, resume or set the weight of ``key`` in a registered ``backlog``;
    ``ValueError``/``TypeError`` for bad input (nothing changed)."""
    scheduler = FairScheduler(connection.backlog(backlog))
    if action == "pause":
        scheduler.pause_key(key)
    elif action == "resume":
        scheduler.resume_key(key)
    elif action == "weight":
        scheduler.set_weight(key, weight)
    else:
        raise ValueError(f"unknown action {action!r}")
