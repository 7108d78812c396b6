"""``RedisControls``: the per-key control steps of :class:`~ranch_redis.RedisStorage`.

Setting a key's concurrency limit, rate limit, pause flag or backlog limit
(or a default), purging a key and revoking one call
(:class:`ranch_core.protocols.Controls`), each one Lua script. The controls
themselves are checked where calls are chosen: ``pop.lua`` and the rules in
``scripts/common.lua`` ("Per-key controls"), which mirror
:mod:`ranch_core.backends.controls` and :mod:`ranch_core.backends.parking`.
A mixin of :class:`~ranch_redis.operations.RedisOperations`; each step is a
generator of :class:`~ranch_redis.steps.Step` that the storages drive.
"""

from __future__ import annotations

from typing import Any, List, Optional

from ranch_core.backends import controls
from ranch_core.keys import Key
from ranch_core.models import RateLimit, ScheduledTask, WakeupPolicy

from ranch_redis import layout
from ranch_redis.connection import AMBIGUOUS
from ranch_redis.reports import RedisReports
from ranch_redis.steps import Steps, script
from ranch_redis.wakeups import nonce


def control_value(name: str, value: Any) -> List[str]:
    """``set_control.lua``'s value arguments for control ``name`` (``''``: ``None``)."""
    if value is None:
        return [""]
    if name == controls.RATE_LIMIT:
        if not isinstance(value, RateLimit):
            raise TypeError(f"rate_limit must be a RateLimit, not {type(value).__name__}")
        return [layout.float_arg(value.per_second), str(value.burst), value.text]
    if name == controls.PAUSE:
        return ["1" if value else "0"]
    return [str(int(value))]


class RedisControls(RedisReports):
    """Per-key controls as steps (:mod:`ranch_redis.steps`)."""

    def _set_control(
        self, key: Optional[Key], name: str, value: Any, now: float, wakeups: Optional[WakeupPolicy]
    ) -> Steps[List[str]]:
        if name not in controls.NAMES:
            raise ValueError(f"unknown control {name!r}")
        if key is None and name not in controls.DEFAULTABLE:
            raise ValueError(f"{name} has no default")
        key_hex = "" if key is None else layout.hex_key(key)
        now_arg = layout.float_arg(now)
        if wakeups is None:
            token_args: List[Any] = ["", "", ""]
        else:
            token_args = [wakeups.max_wakeups, nonce(), layout.float_arg(float(now) + wakeups.ttl)]
        reply = yield script(
            "set_control",
            key_hex,
            name,
            now_arg,
            *token_args,
            *control_value(name, value),
            note=AMBIGUOUS["set_control"],
        )
        return [raw.decode() for raw in reply]

    def _purge_key(self, key: Key, limit: int) -> Steps[List[ScheduledTask]]:
        reply = yield script("purge_key", layout.hex_key(key), int(limit), note=AMBIGUOUS["purge_key"])
        return (yield from self._decode_pairs(reply, waiting=False))

    def _revoke(self, task_id: str) -> Steps[Optional[ScheduledTask]]:
        reply = yield script("revoke", task_id, note=AMBIGUOUS["revoke"])
        if int(reply[0]) != layout.DONE:
            return None
        tasks = yield from self._decode_pairs([task_id.encode(), reply[1]], waiting=False)
        return tasks[0] if tasks else None
