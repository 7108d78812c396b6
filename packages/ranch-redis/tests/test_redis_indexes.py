"""The listing indexes (``kw``: keys by waiting calls, ``kn``: keys by calls served) agree
with the keys' lists and served totals after any sequence of steps."""

from __future__ import annotations

import uuid
from typing import Any, Dict, Iterator, List, Tuple

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st
from ranch_core import FairScheduler
from ranch_core.models import ScheduledTask
from ranch_redis import RedisStorage, layout

KEYS = ["a", "b", "c"]

Op = Tuple[str, int, int]
ops = st.lists(
    st.tuples(
        st.sampled_from(
            ["push", "push", "push_many", "push_delayed", "pop_ack", "pop_release", "pop_retry", "pop_hold",
             "tick", "purge", "revoke", "remove", "pause", "resume", "limit", "reclaim", "repair"]
        ),
        st.integers(0, len(KEYS) - 1),
        st.integers(1, 4),
    ),
    min_size=15,
    max_size=60,
)  # fmt: skip


@pytest.fixture(scope="module")
def client(redis_server: object) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_server.url)  # type: ignore[attr-defined]
    yield c
    c.close()


def indexes_agree(client: redis.Redis, namespace: str) -> None:
    waiting: Dict[str, int] = {}
    served: Dict[str, int] = {}
    for key in KEYS:
        hk = layout.hex_key(key)
        n = int(client.llen(layout.queue_key(namespace, key)))
        if n:
            waiting[hk] = n
        total = client.hget(layout.key_state_key(namespace, key), "n")
        if total is not None:
            served[hk] = int(total)
    kw = {
        m.decode(): int(s)
        for m, s in client.zrange(layout.waiting_index_key(namespace), 0, -1, withscores=True)
    }
    kn = {
        m.decode(): int(s)
        for m, s in client.zrange(layout.served_index_key(namespace), 0, -1, withscores=True)
    }
    assert kw == waiting
    assert kn == served


@settings(max_examples=60)
@given(steps=ops)
def test_indexes_follow_every_step(client: redis.Redis, steps: List[Op]) -> None:
    namespace = f"idx-{uuid.uuid4().hex}"
    clock = [100.0]
    scheduler = FairScheduler(
        RedisStorage(client, namespace=namespace), clock=lambda: clock[0], lease_seconds=5.0
    )
    held: List[str] = []
    for n, (op, k, count) in enumerate(steps):
        key = KEYS[k]
        if op == "push":
            scheduler.push(key, n, expiry=3.0 if count == 1 else None)
        elif op == "push_many":
            scheduler.push_many(key, list(range(count)))
        elif op == "push_delayed":  # joins its key's list when a pop or a sweep finds it due
            scheduler.push_many(key, list(range(count)), delay=count * 1.5)
        elif op.startswith("pop_"):
            task = scheduler.pop()
            if task is not None:
                if op == "pop_ack":
                    scheduler.ack(task.task_id)
                elif op == "pop_release":
                    scheduler.release(task.task_id)
                elif op == "pop_retry":
                    scheduler.requeue(task, task.payload)
                else:
                    held.append(task.task_id)
        elif op == "tick":
            clock[0] += count * 2.0  # expiry passes; held leases run out
        elif op == "purge":
            scheduler.purge_key(key)
        elif op in ("revoke", "remove"):
            ids = client.lrange(layout.queue_key(namespace, key), 0, 0)
            if ids:
                if op == "revoke":
                    scheduler.revoke_call(ids[0].decode())
                else:
                    scheduler.remove(key, ids[0].decode())
        elif op == "pause":
            scheduler.pause_key(key)
        elif op == "resume":
            scheduler.resume_key(key)
        elif op == "limit":
            scheduler.set_concurrency_limit(key, count if count < 4 else None)
        elif op == "reclaim":
            scheduler.reclaim()
            scheduler.expire()
        else:
            scheduler.repair()
        indexes_agree(client, namespace)


def test_the_asyncio_storage_reads_the_same_views(redis_server: object) -> None:
    import asyncio

    from ranch_redis import AsyncRedisStorage

    url = redis_server.url  # type: ignore[attr-defined]
    namespace = f"idx-{uuid.uuid4().hex}"
    blocking = RedisStorage.from_url(url, namespace=namespace)
    FairScheduler(blocking, clock=lambda: 5.0).push_many("a", [1, 2])
    blocking.push(ScheduledTask("b1", "b", 1, 5.0))

    async def read() -> Tuple[Any, ...]:
        async with AsyncRedisStorage.from_url(url, namespace=namespace) as storage:
            return (
                await storage.backlogs(),
                await storage.keys_page("waiting", 5),
                await storage.why("b1", 6.0),
                await storage.metrics(5),
            )

    backlogs, page, place, metrics = asyncio.run(read())
    assert namespace in backlogs
    assert page == blocking.keys_page("waiting", 5)
    assert place == blocking.why("b1", 6.0)
    assert metrics == blocking.metrics(5)
    blocking.close()
