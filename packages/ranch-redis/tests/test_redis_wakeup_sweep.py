"""The token sweep on real Redis: a saturated fleet keeps its late tokens, a free slot replaces them."""

from __future__ import annotations

import uuid
from typing import List

import pytest
import redis
from ranch_core import FairScheduler
from ranch_core.calls import Call
from ranch_core.dispatcher import FairDispatcher
from ranch_redis import RedisStorage

pytestmark = pytest.mark.redis


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("slots", "replaced"), [(1, 0), (2, 2)])
def test_late_tokens_are_replaced_only_while_a_slot_is_free(
    redis_url: str, slots: int, replaced: int
) -> None:
    client = redis.Redis.from_url(redis_url)
    clock, published = Clock(), []  # type: ignore[var-annotated]
    storage = RedisStorage(client, namespace=f"sweep-{uuid.uuid4().hex}")
    worker = FairDispatcher(
        FairScheduler(storage, clock=clock, lease_seconds=100), published.append, max_wakeups=3
    )
    worker.slots = slots
    for n in range(10):
        worker.submit("k", Call(args=[n]))
    tokens: List[str] = list(published)
    assert len(tokens) == 3
    assert worker.take(tokens[0]) is not None  # one slot busy; two tokens wait in the broker
    clock.now += worker.wakeups.ttl + 1
    worker.sweep()
    assert len(published) == 3 + replaced
    assert storage.wakeup_status().in_flight == 2
    client.close()
