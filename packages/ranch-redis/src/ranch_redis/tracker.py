"""``RedisTracker``: the key tracker half of :class:`~ranch_redis.RedisStorage`.

Weights, custom data, tags, per-key metadata and the namespace's counters
(:class:`ranch_core.protocols.Tracker`); a mixin of
:class:`~ranch_redis.operations.RedisOperations`.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

from ranch_core import validation
from ranch_core.keys import Key, key_order
from ranch_core.models import LRUKeyMetadata, SystemStatus

from ranch_redis import layout, records
from ranch_redis.reports import RedisReports
from ranch_redis.steps import Steps, command, script


class RedisTracker(RedisReports):
    """Per-key weights, tags, custom data and counters, in the namespace's
    Redis keys, as steps (:mod:`ranch_redis.steps`)."""

    def _set_weight(self, key: Key, weight: float) -> Steps[None]:
        validation.check_any_key(key)
        weight_arg = layout.float_arg(validation.check_weight(weight))
        yield command("HSET", layout.key_state_key(self.namespace, key), layout.WEIGHT_FIELD, weight_arg)

    def _set_custom_data(self, key: Key, name: str, value: Any) -> Steps[None]:
        validation.check_any_key(key)
        validation.check_name(name, "name")
        try:
            encoded = json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"custom data {name!r} cannot be encoded as JSON: {exc}") from None
        state_key = layout.key_state_key(self.namespace, key)
        yield command("HSET", state_key, layout.CUSTOM_PREFIX + name, encoded)

    def _add_tag(self, key: Key, name: str, value: str) -> Steps[None]:
        validation.check_any_key(key)
        validation.check_name(name, "tag name")
        validation.check_tag_value(value)
        yield script("tag", layout.hex_key(key), layout.tag_field(key), name, layout.hex_key(name), value)

    def _keys_with_tag(self, name: str, value: Optional[str]) -> Steps[List[Key]]:
        reply = yield command("HGETALL", layout.tag_index_key(self.namespace, name))
        tagged: Dict[bytes, bytes] = reply if isinstance(reply, dict) else dict(zip(reply[::2], reply[1::2]))
        wanted = None if value is None else value.encode("utf-8")
        keys: List[Key] = sorted(
            (layout.key_of_tag_field(k) for k, v in tagged.items() if wanted is None or v == wanted),
            key=key_order,
        )
        return keys

    def _run_estimate(self, key: Key) -> Steps[Optional[float]]:
        raw = yield command("HGET", layout.key_state_key(self.namespace, key), layout.RUN_ESTIMATE_FIELD)
        return None if raw is None else float(raw)

    def _metadata(self, key: Key, now: Optional[float]) -> Steps[LRUKeyMetadata]:
        reply = yield script("metadata", layout.hex_key(key), layout.now_arg(now))
        meta, bad = records.parse_metadata(key, reply)
        for field in bad:
            self._report_corrupt(
                f"namespace {self.namespace!r}: key {key!r}: field {field!r} is unreadable; "
                "read as its default"
            )
        return meta

    def _status(self, now: Optional[float]) -> Steps[SystemStatus]:
        waiting, active, leased, expired, served, delayed = yield script("status", layout.now_arg(now))
        return SystemStatus(
            backlog_size=int(waiting),
            active_keys=int(active),
            leased=int(leased),
            expired_total=int(expired),
            served_total=int(served),
            delayed=int(delayed),
        )
