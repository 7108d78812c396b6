"""``ranch backlogs``, ``ranch status``, ``ranch keys``, ``ranch key``: read, never write."""

from __future__ import annotations

import time
from typing import Any, Dict, List, Tuple

from ranch_core.keys import Key, group_of, is_pair, key_text

from ranch_redis.cli.connect import Connection
from ranch_redis.cli.tables import ago, dumps, pairs, table
from ranch_redis.views import KeyRow, KeysPage


def backlogs(connection: Connection, as_json: bool) -> str:
    """Every registered backlog with its counters (one ``status`` step each)."""
    now = time.time()
    rows: List[Dict[str, Any]] = []
    for name in connection.backlogs():
        status = connection.storage(name).status(now=now)
        rows.append({"backlog": name, **status.to_dict()})
    if as_json:
        return dumps(rows)
    if not rows:
        return "no backlogs registered (a backlog is listed at its first push)"
    return table(
        ["backlog", "waiting", "running", "active keys", "served", "expired"],
        [
            [
                r["backlog"],
                r["backlog_size"],
                r["leased"],
                r["active_keys"],
                r["served_total"],
                r["expired_total"],
            ]
            for r in rows
        ],
        right=[False, True, True, True, True, True],
    )


def status(connection: Connection, backlog: str, as_json: bool) -> str:
    """One backlog's counters and wake-up tokens."""
    storage = connection.backlog(backlog)
    counts = storage.status(now=time.time())
    tokens = storage.wakeup_status()
    data = {
        "backlog": storage.namespace,
        "waiting": counts.backlog_size,
        "running": counts.leased,
        "active_keys": counts.active_keys,
        "served_total": counts.served_total,
        "expired_total": counts.expired_total,
        "wakeups_in_flight": tokens.in_flight,
        "wakeups_held": tokens.held,
        "wakeups_deferred": tokens.deferred,
    }
    if as_json:
        return dumps(data)
    return pairs([(name.replace("_", " "), value) for name, value in data.items()])


def limits(row: KeyRow) -> str:
    """A key's controls in one cell: ``paused``, ``max 4``, ``10/s``."""
    parts = []
    if row.paused:
        parts.append("paused")
    if row.concurrency_limit is not None:
        parts.append(f"max {row.concurrency_limit}")
    if row.rate_limit:
        parts.append(row.rate_limit)
    if row.max_backlog is not None:
        parts.append(f"backlog<={row.max_backlog}")
    return ", ".join(parts) or "-"


def keys(connection: Connection, backlog: str, order: str, limit: int, as_json: bool) -> str:
    """A page of a backlog's keys (``keys_page.lua``: only the keys shown are read)."""
    storage = connection.backlog(backlog)
    page = storage.keys_page(order, limit)
    if as_json:
        return dumps({"backlog": storage.namespace, **page.to_dict()})
    return key_table(page, time.time())


def key_table(page: KeysPage, now: float) -> str:
    """A :class:`KeysPage` as a table, with a line saying how much is not shown."""
    if not page.rows:
        return f"no keys ({page.active_keys} active)"
    body = table(
        ["key", "waiting", "running", "served", "weight", "next", "last served", "limits", "held by"],
        [
            [
                key_text(row.key),
                row.waiting,
                row.running,
                row.served,
                f"{row.weight:g}",
                "-" if row.place is None else row.place,
                ago(row.last_served, now),
                limits(row),
                row.parked or "-",
            ]
            for row in page.rows
        ],
        right=[False, True, True, True, True, True],
    )
    shown = len(page.rows)
    return f"{body}\n{shown} of {page.total} keys by {page.order}; {page.active_keys} active"


def key(connection: Connection, backlog: str, name: Key, as_json: bool) -> str:
    """What is known of one key (``metadata``)."""
    storage = connection.backlog(backlog)
    now = time.time()
    meta = storage.metadata(name, now=now)
    if as_json:
        return dumps({"backlog": storage.namespace, **meta.to_dict()})
    return pairs(
        [
            ("key", key_text(meta.key)),
            ("waiting", meta.pending_tasks),
            ("running", meta.running),
            ("served", meta.served_total),
            ("weight", f"{meta.weight:g}"),
            ("last served", ago(meta.last_served, now)),
            ("paused", "yes" if meta.paused else "no"),
            ("concurrency limit", meta.concurrency_limit),
            ("rate limit", meta.rate_limit),
            ("max backlog", meta.max_backlog),
            ("run estimate", None if meta.run_estimate is None else f"{meta.run_estimate * 1000:.1f} ms"),
            ("tags", ", ".join(f"{k}={v}" for k, v in sorted(meta.tags.items())) or None),
            *group_rows(storage, meta.key, now),
        ]
    )


def group_rows(storage: Any, name: Key, now: float) -> List[Tuple[str, Any]]:
    """A pair's group's controls (the string key's), which hold the pair's calls too."""
    if not is_pair(name):
        return []
    group = storage.metadata(group_of(name), now=now)
    held = []
    if group.paused:
        held.append("paused")
    if group.concurrency_limit is not None:
        held.append(f"concurrency limit {group.concurrency_limit} ({group.running} running in the group)")
    if group.rate_limit is not None:
        held.append(f"rate limit {group.rate_limit}")
    return [("group controls", f"{group_of(name)}: " + (", ".join(held) or "none"))]
