"""What an operator reads of a namespace: a page of its keys, where one call stands.

The values :meth:`~ranch_redis.RedisStorage.keys_page` and
:meth:`~ranch_redis.RedisStorage.why` return, and how they are read from
the replies of ``keys_page.lua`` and ``why.lua``.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import attrs
from ranch_core.keys import Key, group_of

from ranch_redis import records

#: Orders of :meth:`~ranch_redis.RedisStorage.keys_page`: most waiting calls
#: first, the fair order (the key served next first), most calls served first.
ORDERS = ("waiting", "wait", "served")

#: What a parked key waits for, by the letter kept in its state hash.
PARKED = {"p": "paused", "c": "concurrency limit", "r": "rate limit"}


def _text(raw: Any) -> Optional[str]:
    if raw in (b"", "", None):
        return None
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def _float(raw: Any) -> Optional[float]:
    text = _text(raw)
    try:
        return None if text is None else float(text)
    except ValueError:
        return None


def _int(raw: Any, default: Optional[int] = None) -> Optional[int]:
    value = _float(raw)
    return default if value is None or value != value or value < 0 else int(value)


@attrs.frozen
class KeyRow:
    """One key as ``ranch keys`` shows it.

    ``waiting``: calls in its list (expired ones not yet dropped included);
    ``running``: calls leased now; ``served``: calls dispatched ever;
    ``concurrency_limit`` and ``rate_limit``: in force (own, else the
    namespace's default); ``parked``: why it may not start a call now
    (``"paused"``, ``"concurrency limit"``, ``"rate limit"``; ``None``: it
    may), ``eligible_at`` for a rate; ``place``: its rank in the fair order
    (0 = served next; ``None``: not selectable now).
    """

    key: Key
    waiting: int
    running: int = 0
    served: int = 0
    weight: float = 1.0
    last_served: Optional[float] = None
    paused: bool = False
    concurrency_limit: Optional[int] = None
    rate_limit: Optional[str] = None
    parked: Optional[str] = None
    eligible_at: Optional[float] = None
    max_backlog: Optional[int] = None
    place: Optional[int] = None

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-ready copy."""
        return attrs.asdict(self)


@attrs.frozen
class KeysPage:
    """A page of keys: ``total`` keys in the chosen order's index (keys with
    waiting calls for ``waiting``, selectable keys for ``wait``, served keys
    for ``served``) and ``active_keys`` (selectable + parked)."""

    order: str
    total: int
    active_keys: int
    rows: Tuple[KeyRow, ...]

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-ready copy."""
        return {
            "order": self.order,
            "total": self.total,
            "active_keys": self.active_keys,
            "keys": [row.to_dict() for row in self.rows],
        }


#: Fields per key in a ``keys_page.lua`` reply.
ROW_WIDTH = 13


def parse_keys_page(order: str, reply: Sequence[Any]) -> KeysPage:
    """``keys_page.lua``'s reply as a :class:`KeysPage`."""
    default_limit, default_rate = _int(reply[2]), _text(reply[3])
    rows: List[KeyRow] = []
    for at in range(4, len(reply), ROW_WIDTH):
        f = reply[at : at + ROW_WIDTH]
        weight = _float(f[4])
        rows.append(
            KeyRow(
                key=records.key_name(f[0]),
                waiting=int(f[1]),
                running=_int(f[2], 0) or 0,
                served=_int(f[3], 0) or 0,
                weight=1.0 if weight is None else weight,
                last_served=_float(f[5]),
                paused=_text(f[6]) == "1",
                concurrency_limit=_int(f[7], default_limit) if _text(f[7]) else default_limit,
                rate_limit=_text(f[8]) or default_rate,
                parked=PARKED.get(_text(f[9]) or ""),
                eligible_at=_float(f[10]),
                max_backlog=_int(f[11]),
                place=_int(f[12]),
            )
        )
    return KeysPage(order, int(reply[0]), int(reply[1]), tuple(rows))


@attrs.frozen
class CallPlace:
    """Where one call stands (``ranch why``).

    ``state``: ``"waiting"``, ``"running"`` (leased until
    ``lease_deadline``), ``"delayed"`` (a delayed call: it joins its key's
    backlog at ``due_at``), ``"missing"`` (not stored: it ran, was revoked,
    purged or expired, or never was) or ``"corrupt"``. For a waiting call:
    ``position`` in its key (0 = next of its key), ``key_waiting``, the key's
    ``place`` in the fair order (0 = served next; ``None`` if it is parked or
    not selectable), ``selectable_keys`` and ``parked_keys``, ``blocked_by``
    (what holds the key: ``"paused"``, ``"concurrency limit"``, ``"rate
    limit"``, or ``None``), ``blocked_group`` (the group whose controls hold
    it: a pair's call whose member may run but whose group, the string key,
    is paused, capped or rate-limited; ``None`` otherwise), ``eligible_at``
    (rate), the controls in force (the group's when ``blocked_group`` is
    set), and ``expired`` (its expiry passed: it is dropped, never run).
    """

    task_id: str
    state: str
    key: Optional[Key] = None
    lease_deadline: Optional[float] = None
    enqueued_at: Optional[float] = None
    expires_at: Optional[float] = None
    position: Optional[int] = None
    key_waiting: int = 0
    place: Optional[int] = None
    selectable_keys: int = 0
    parked_keys: int = 0
    blocked_by: Optional[str] = None
    eligible_at: Optional[float] = None
    paused: bool = False
    concurrency_limit: Optional[int] = None
    running: int = 0
    rate_limit: Optional[str] = None
    weight: float = 1.0
    expired: bool = False
    due_at: Optional[float] = None
    blocked_group: Optional[str] = None

    @property
    def dispatches_ahead(self) -> Optional[int]:
        """About how many dispatches come first if every selectable key keeps
        work and weights are equal: a round of the keys per call ahead in its
        key, plus the keys ahead of it in this round; ``None`` unless it is
        waiting in a selectable key."""
        if self.state != "waiting" or self.position is None or self.place is None:
            return None
        return self.position * max(self.selectable_keys, 1) + self.place

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-ready copy (with ``dispatches_ahead``)."""
        return {**attrs.asdict(self), "dispatches_ahead": self.dispatches_ahead}


def parse_why(task_id: str, reply: Sequence[Any], now: float) -> CallPlace:
    """``why.lua``'s reply as a :class:`CallPlace` (``now`` decides ``expired``)."""
    state = reply[0].decode()
    if state in ("missing", "corrupt"):
        return CallPlace(task_id, state)
    key = records.key_name(reply[1])
    if state == "running":
        return CallPlace(task_id, state, key=key, lease_deadline=float(reply[2]))
    if state == "delayed":
        expires = _float(reply[4])
        return CallPlace(
            task_id,
            state,
            key=key,
            due_at=float(reply[2]),
            enqueued_at=_float(reply[3]),
            expires_at=expires,
            expired=expires is not None and now >= expires,
        )
    expires = _float(reply[3])
    weight = _float(reply[15])
    return CallPlace(
        task_id,
        state,
        key=key,
        enqueued_at=_float(reply[2]),
        expires_at=expires,
        position=_int(reply[4]),
        key_waiting=int(reply[5]),
        place=_int(reply[6]),
        selectable_keys=int(reply[7]),
        parked_keys=int(reply[8]),
        blocked_by=PARKED.get(_text(reply[9]) or ""),
        eligible_at=_float(reply[10]),
        paused=_text(reply[11]) == "1",
        concurrency_limit=_int(reply[12]),
        running=_int(reply[13], 0) or 0,
        rate_limit=_text(reply[14]),
        weight=1.0 if weight is None else weight,
        expired=expires is not None and now >= expires,
        blocked_group=group_of(key) if len(reply) > 16 and _text(reply[16]) == "1" else None,
    )
