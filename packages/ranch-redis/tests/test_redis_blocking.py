"""Blocking and async pops on a real redis-server: woken by a push from another
process, on a Redis Cluster, past the socket timeout; 50 coroutines run each call once."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
import uuid
from typing import Any, Callable, List, Optional

from ranch_core import AsyncFairScheduler, FairScheduler, ScheduledTask
from ranch_redis import AsyncRedisStorage, RedisStorage, layout
from ranch_redis.testing import RedisClusterServers

PUSH = """
import sys
from ranch_core import FairScheduler
from ranch_redis import RedisStorage
FairScheduler(RedisStorage.from_url(sys.argv[1], namespace=sys.argv[2])).push("k", "from another process")
"""


def push_from_another_process(url: str, namespace: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", PUSH, url, namespace])


def test_a_push_from_another_process_wakes_a_blocked_pop(redis_url: str) -> None:
    scheduler = FairScheduler(RedisStorage.from_url(redis_url, namespace="proc"))
    child = push_from_another_process(redis_url, "proc")  # starting Python takes longer than blocking
    started = time.monotonic()
    task = scheduler.pop(timeout=20)
    assert child.wait(10) == 0
    assert task is not None and task.payload == "from another process"
    assert time.monotonic() - started < 10


def test_a_push_from_another_process_wakes_an_awaiting_coroutine(redis_url: str) -> None:
    async def main() -> Optional[ScheduledTask]:
        async with AsyncRedisStorage.from_url(redis_url, namespace="aproc") as storage:
            child = push_from_another_process(redis_url, "aproc")
            task = await AsyncFairScheduler(storage).pop(timeout=20)
            assert child.wait(10) == 0
            return task

    task = asyncio.run(main())
    assert task is not None and task.payload == "from another process"


def test_a_wait_longer_than_the_socket_timeout_blocks_in_pieces(redis_url: str) -> None:
    """One BLPOP never outlasts the client's socket timeout: a 1.6 s wait on a
    client with a 0.5 s socket timeout ends in time, without a TimeoutError."""
    storage = RedisStorage.from_url(redis_url, namespace="st", socket_timeout=0.5)
    started = time.monotonic()
    assert FairScheduler(storage).pop(timeout=1.6) is None
    assert 1.55 <= time.monotonic() - started < 8  # its 1.6 s, and no more than 5x that


def test_stale_marks_are_dropped_when_nothing_is_runnable(redis_url: str) -> None:
    """Pushes leave at most NOTIFY_BOUND marks; a waiter that finds nothing
    runnable empties the list before it blocks."""
    storage = RedisStorage.from_url(redis_url, namespace="marks")
    scheduler = FairScheduler(storage)
    scheduler.push_many("k", range(3 * layout.NOTIFY_BOUND))
    assert storage.client.llen(layout.wake_key("marks")) == layout.NOTIFY_BOUND
    while (task := scheduler.pop()) is not None:
        scheduler.ack(task.task_id)
    assert scheduler.pop(timeout=0.05) is None
    assert storage.client.llen(layout.wake_key("marks")) == 0


def test_fifty_coroutines_run_each_call_exactly_once_on_redis(redis_url: str) -> None:
    calls = 5_000

    async def main() -> List[Any]:
        async with AsyncRedisStorage.from_url(redis_url, namespace="fifty") as storage:
            scheduler = AsyncFairScheduler(storage)
            ran: List[Any] = []
            done = asyncio.Event()

            async def consume() -> None:
                while not done.is_set():
                    task = await scheduler.pop(timeout=0.5)
                    if task is None:
                        continue
                    ran.append(task.payload)
                    await scheduler.ack(task.task_id)
                    if len(ran) >= calls:
                        done.set()

            consumers = asyncio.gather(*(consume() for _ in range(50)))
            for batch in range(10):
                await scheduler.push_many(f"k{batch}", [[batch, n] for n in range(calls // 10)])
            await asyncio.wait_for(consumers, 60)
            status = await scheduler.status()
            assert (status.backlog_size, status.leased, status.served_total) == (0, 0, calls)
            return ran

    ran = asyncio.run(main())
    assert len(ran) == calls and len({tuple(payload) for payload in ran}) == calls


def test_a_blocked_pop_on_a_cluster_is_woken_by_a_push(redis_cluster: RedisClusterServers) -> None:
    """The notification list shares the namespace's hash tag: the BLPOP goes to
    the namespace's node, where the scripts push the marks."""
    namespace = f"c-{uuid.uuid4().hex}"
    consumer = FairScheduler(RedisStorage.from_url(redis_cluster.url, namespace=namespace, cluster=True))
    producer = FairScheduler(RedisStorage.from_url(redis_cluster.url, namespace=namespace, cluster=True))
    assert layout.wake_key(namespace).startswith(layout.base(namespace))
    timer = threading.Timer(0.1, producer.push, args=("k", "clustered"))
    timer.start()
    started = time.monotonic()
    task = consumer.pop(timeout=20)
    timer.join()
    assert task is not None and task.payload == "clustered"
    assert time.monotonic() - started < 10


def test_a_wait_whose_connection_drops_returns_true_for_the_pop_to_report(
    redis_url: str, kill_blocked_client: Callable[[str], None]
) -> None:
    """A dropped BLPOP ends the wait early with True: the pop that follows meets the outage."""
    storage = RedisStorage.from_url(redis_url, namespace=f"drop-{uuid.uuid4().hex}")
    killer = threading.Thread(target=kill_blocked_client, args=("blpop",))
    killer.start()
    assert storage.wait(0.0, None) is True  # nothing waits: blocks until the kill
    killer.join()
    storage.close()
