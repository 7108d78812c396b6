"""``RedisWakeups``: the wake-up token steps of :class:`~ranch_redis.RedisStorage`.

Handing a kept token back, sweeping lost tokens, registering worker slots
and counting tokens (see the ranch-redis README, "Wake-ups"); the token
steps that ride on a push, pop or finish are in those scripts. A mixin of
``RedisStorage``, which provides the connection and the scripts.
"""

from __future__ import annotations

import os
from typing import Any, List

from ranch_core.models import WakeupPolicy, WakeupStatus

from ranch_redis import layout
from ranch_redis.connection import Retrier


def nonce() -> str:
    """A fresh prefix for the token ids one script mints (``<nonce><n>``)."""
    return os.urandom(8).hex() + "."


class RedisWakeups:
    """The namespace's wake-up tokens and registered worker slots."""

    # Provided by RedisStorage.
    namespace: str
    client: Any
    _retry: Retrier

    def _run(self, name: str, *args: Any) -> Any:
        raise NotImplementedError

    def release_token(self, token: str, now: float, wakeups: WakeupPolicy) -> List[str]:
        """Hand back a held token (``release_token.lua``): returned if passed on."""
        deadline = layout.float_arg(float(now) + wakeups.ttl)
        fate = self._run("release_token", token, deadline, wakeups.max_wakeups)
        return [token] if fate == layout.TOKEN_PASSED else []

    def sweep_wakeups(self, now: float, wakeups: WakeupPolicy) -> List[str]:
        """Retire lost tokens and mint replacements (``sweep_wakeups.lua``)."""
        deadline = layout.float_arg(float(now) + wakeups.ttl)
        reply = self._run("sweep_wakeups", layout.float_arg(now), wakeups.max_wakeups, nonce(), deadline)
        return [raw.decode() for raw in reply]

    def register_slots(self, worker: str, slots: int, now: float, ttl: float) -> int:
        """Record ``worker``'s slots until ``now + ttl``; return the live total
        (``register_slots.lua``)."""
        deadline = layout.float_arg(float(now) + float(ttl))
        return int(self._run("register_slots", worker, int(slots), layout.float_arg(now), deadline))

    def wakeup_status(self) -> WakeupStatus:
        """Tokens in flight and held."""
        in_flight, held = self._run("wakeups")
        return WakeupStatus(in_flight=int(in_flight), held=int(held))
