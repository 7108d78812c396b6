"""``requeue`` is decided by the lease alone (hardening issue, bug 1)."""

from __future__ import annotations

import uuid
from typing import Iterator

import pytest
import redis
from ranch_core import FairScheduler
from ranch_core.models import ScheduledTask
from ranch_redis import RedisStorage, layout


@pytest.fixture
def storage(redis_url: str) -> Iterator[RedisStorage]:
    with RedisStorage.from_url(redis_url, namespace=f"rq-{uuid.uuid4().hex}") as made:
        yield made


def test_requeue_with_a_byte_identical_body_under_a_fixed_clock(storage: RedisStorage) -> None:
    scheduler = FairScheduler(storage, clock=lambda: 100.0, lease_seconds=30.0)
    scheduler.push("k", {"n": 1}, task_id="t")
    task = scheduler.pop()
    assert task is not None
    # Same payload, same clock: the retried body equals the stored one byte for byte.
    assert scheduler.requeue(task, {"n": 1}) is True
    status = scheduler.status()
    assert (status.leased, status.backlog_size) == (0, 1)
    again = scheduler.pop()
    assert again == task
    assert scheduler.ack("t") is True


def test_requeue_without_a_lease_writes_nothing(storage: RedisStorage) -> None:
    storage.push(ScheduledTask("t", "k", 1, 0.0))
    # Waiting, not leased: the first attempt answers "not leased".
    assert storage.requeue(ScheduledTask("t", "k", 1, 0.0)) is False
    assert storage.requeue(ScheduledTask("nope", "k", 1, 0.0)) is False
    assert storage.status().backlog_size == 1


def test_a_retry_after_a_lost_reply_is_recognised(storage: RedisStorage, redis_url: str) -> None:
    storage.push(ScheduledTask("t", "k", 1, 0.0))
    assert storage.pop(1.0, 10.0).task is not None
    body = layout.encode_body(layout.hex_key("k"), 1.0, None, b"2")
    script = storage._scripts["requeue"]
    keys = [layout.stats_key(storage.namespace)]
    assert script(keys=keys, args=["t", layout.hex_key("k"), body, "0", ""]) == layout.REQUEUE_DONE
    # The reply was "lost": the retry finds no lease and the task waiting.
    assert script(keys=keys, args=["t", layout.hex_key("k"), body, "1", ""]) == layout.REQUEUE_ALREADY
    assert script(keys=keys, args=["x", layout.hex_key("k"), body, "1", ""]) == layout.REQUEUE_NOT_LEASED
    client = redis.Redis.from_url(redis_url)
    assert client.llen(layout.queue_key(storage.namespace, "k")) == 1
    client.close()
    assert storage.status().backlog_size == 1
