"""``RedisTracker``: the key tracker half of :class:`~ranch_redis.RedisStorage`.

Weights, custom data, tags, per-key metadata and the namespace's counters
(:class:`ranch_core.protocols.Tracker`); a mixin of ``RedisStorage``, which
provides the connection and the scripts.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

from ranch_core import validation
from ranch_core.models import LRUKeyMetadata, SystemStatus

from ranch_redis import layout, records
from ranch_redis.connection import Retrier
from ranch_redis.reports import RedisReports


class RedisTracker(RedisReports):
    """Per-key weights, tags, custom data and counters, in the namespace's Redis keys."""

    # Provided by RedisStorage.
    namespace: str
    client: Any
    _retry: Retrier

    def _run(self, name: str, *args: Any) -> Any:
        raise NotImplementedError

    def set_weight(self, key: str, weight: float) -> None:
        """Set the key's weight; its pass is left alone."""
        validation.check_key(key)
        weight_arg = layout.float_arg(validation.check_weight(weight))
        state_key = layout.key_state_key(self.namespace, key)
        self._retry(lambda retry: self.client.hset(state_key, layout.WEIGHT_FIELD, weight_arg))

    def set_custom_data(self, key: str, name: str, value: Any) -> None:
        """Store a JSON-encodable ``value`` under ``name``; ``TypeError`` otherwise."""
        validation.check_key(key)
        validation.check_name(name, "name")
        try:
            encoded = json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"custom data {name!r} cannot be encoded as JSON: {exc}") from None
        state_key = layout.key_state_key(self.namespace, key)
        self._retry(lambda retry: self.client.hset(state_key, layout.CUSTOM_PREFIX + name, encoded))

    def add_tag(self, key: str, name: str, value: str) -> None:
        """Tag ``key`` with ``name=value`` (replacing an earlier value)."""
        validation.check_key(key)
        validation.check_name(name, "tag name")
        validation.check_tag_value(value)
        self._run("tag", layout.hex_key(key), key, name, layout.hex_key(name), value)

    def keys_with_tag(self, name: str, value: Optional[str] = None) -> List[str]:
        """Keys tagged ``name`` (with ``value``, if given), sorted."""
        index_key = layout.tag_index_key(self.namespace, name)
        tagged: Dict[bytes, bytes] = self._retry(lambda retry: self.client.hgetall(index_key))
        wanted = None if value is None else value.encode("utf-8")
        return sorted(k.decode("utf-8") for k, v in tagged.items() if wanted is None or v == wanted)

    def metadata(self, key: str, now: Optional[float] = None) -> LRUKeyMetadata:
        """What is known of ``key``; defaults for a key never seen. With
        ``now``, ``pending_tasks`` leaves out tasks whose expiry is ``<= now``.

        A stored field that cannot be read (a weight that is not a number in
        range, a custom value that is not JSON, text that is not UTF-8) is
        reported through ``on_corrupt`` and read as its default (skipped,
        for tags and custom data), as the scripts do.
        """
        meta, bad = records.parse_metadata(
            key, self._run("metadata", layout.hex_key(key), layout.now_arg(now))
        )
        for field in bad:
            self._report_corrupt(
                f"namespace {self.namespace!r}: key {key!r}: field {field!r} is unreadable; "
                "read as its default"
            )
        return meta

    def status(self, now: Optional[float] = None) -> SystemStatus:
        """Counters of the namespace, read in O(1) (O(log N) with ``now``:
        ``backlog_size`` then leaves out tasks whose expiry is ``<= now``)."""
        waiting, active, leased, expired, served = self._run("status", layout.now_arg(now))
        return SystemStatus(
            backlog_size=int(waiting),
            active_keys=int(active),
            leased=int(leased),
            expired_total=int(expired),
            served_total=int(served),
        )
