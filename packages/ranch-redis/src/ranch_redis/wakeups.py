"""``RedisWakeups``: the wake-up token steps of :class:`~ranch_redis.RedisStorage`.

Handing a kept token back, sweeping lost tokens, registering worker slots
and counting tokens (see the ranch-redis README, "Wake-ups"); the token
steps that ride on a push, pop or finish are in those scripts. A mixin of
:class:`~ranch_redis.operations.RedisOperations`; each step is a generator
of :class:`~ranch_redis.steps.Step` that the storages drive.
"""

from __future__ import annotations

import os
from typing import List

from ranch_core.models import WakeupPolicy, WakeupStatus

from ranch_redis import layout
from ranch_redis.connection import AMBIGUOUS
from ranch_redis.steps import Steps, script


def nonce() -> str:
    """A fresh prefix for the token ids one script mints (``<nonce><n>``)."""
    return os.urandom(8).hex() + "."


_SWEEP_NOTE = AMBIGUOUS["sweep_wakeups"]


class RedisWakeups:
    """The namespace's wake-up tokens and registered worker slots, as steps
    (:mod:`ranch_redis.steps`)."""

    def _release_token(self, token: str, now: float, wakeups: WakeupPolicy) -> Steps[List[str]]:
        deadline = layout.float_arg(float(now) + wakeups.ttl)
        fate = yield script("release_token", token, deadline, wakeups.max_wakeups)
        return [token] if fate == layout.TOKEN_PASSED else []

    def _sweep_wakeups(self, now: float, wakeups: WakeupPolicy) -> Steps[List[str]]:
        deadline = layout.float_arg(float(now) + wakeups.ttl)
        reply = yield script(
            "sweep_wakeups",
            layout.float_arg(now),
            wakeups.max_wakeups,
            nonce(),
            deadline,
            layout.float_arg(wakeups.ttl),
            note=_SWEEP_NOTE,
        )
        return [raw.decode() for raw in reply]

    def _register_slots(self, worker: str, slots: int, now: float, ttl: float) -> Steps[int]:
        deadline = layout.float_arg(float(now) + float(ttl))
        return int((yield script("register_slots", worker, int(slots), layout.float_arg(now), deadline)))

    def _live_slots(self, now: float) -> Steps[int]:
        return int((yield script("live_slots", layout.float_arg(now))))

    def _wakeup_status(self) -> Steps[WakeupStatus]:
        in_flight, held, deferred = yield script("wakeups")
        return WakeupStatus(in_flight=int(in_flight), held=int(held), deferred=int(deferred))
