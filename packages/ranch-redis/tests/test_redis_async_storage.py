"""``AsyncRedisStorage`` itself, beside the conformance suite: its own arguments and the
steps the suite does not drive (``charge``, ``repair``, ``release_token``), a client it
does not own, a refused or dropped connection, on a real redis-server."""

from __future__ import annotations

import asyncio
import uuid
from typing import Callable, List

import pytest
import redis
import redis.asyncio
from ranch_core import InMemoryStorage
from ranch_core.errors import StorageUnavailable
from ranch_core.models import ScheduledTask, WakeupPolicy
from ranch_redis import AsyncRedisStorage, RedisStorage
from ranch_redis.connection import Retrier
from ranch_redis.testing import free_port

pytestmark = pytest.mark.redis


def task(task_id: str, key: str) -> ScheduledTask:
    return ScheduledTask(task_id, key, task_id, 0.0)


def test_from_url_names_a_url_that_is_not_a_str() -> None:
    with pytest.raises(TypeError, match=r"^url must be a str, not bytes"):
        AsyncRedisStorage.from_url(b"redis://127.0.0.1:6379/0")  # type: ignore[arg-type]


def test_charge_moves_a_key_back_as_in_memory(redis_url: str) -> None:
    memory = InMemoryStorage()

    async def main() -> List[str]:
        async with AsyncRedisStorage.from_url(redis_url, namespace=f"async-{uuid.uuid4().hex}") as storage:
            for name in ("a", "b", "c"):
                for n in range(2):
                    await storage.push(task(f"{name}{n}", name))
                    memory.push(task(f"{name}{n}", name))
            await storage.charge("a", 2.5)  # a is due after b's and c's next two calls
            memory.charge("a", 2.5)
            order = []
            for now in range(6):
                popped, expected = await storage.pop(now, 10.0), memory.pop(now, 10.0)
                assert popped == expected
                assert popped.task is not None
                order.append(popped.task.task_id)
            return order

    assert asyncio.run(main()) == ["b0", "c0", "b1", "c1", "a0", "a1"]


def test_repair_of_a_sound_namespace_reports_nothing(redis_url: str) -> None:
    async def main() -> None:
        async with AsyncRedisStorage.from_url(redis_url, namespace=f"sound-{uuid.uuid4().hex}") as storage:
            for n in range(3):
                await storage.push(task(f"t{n}", f"k{n}"))
            assert await storage.repair(10) == []
            assert (await storage.status()).backlog_size == 3

    asyncio.run(main())


def test_release_token_passes_a_kept_token_on_while_calls_wait(redis_url: str) -> None:
    """The sequence of ``test_redis_token_corners``, on the asyncio storage."""
    policy = WakeupPolicy(max_wakeups=4, ttl=100.0)

    async def main() -> None:
        async with AsyncRedisStorage.from_url(redis_url, namespace=f"tok-{uuid.uuid4().hex}") as storage:
            tokens = await storage.push(task("a", "k"), wakeups=policy)
            tokens += await storage.push(task("b", "k"), wakeups=policy)
            assert len(tokens) == 2
            popped = (await storage.pop(0.0, 50.0, token=tokens[0], wakeups=policy)).task
            assert popped is not None
            finished = await storage.finish(
                popped.task_id, 1.0, token=tokens[0], wakeups=policy, keep_token=True
            )
            assert finished.kept
            assert (await storage.pop(1.0, 50.0, token=tokens[1], wakeups=policy)).task is not None
            await storage.push(task("c", "k"))  # waits with no token in flight for it
            assert await storage.release_token(tokens[0], 2.0, policy) == [tokens[0]]  # passed on
            assert await storage.release_token(tokens[0], 2.0, policy) == []  # not held any more

    asyncio.run(main())


def test_aclose_leaves_a_client_it_was_given_open(redis_url: str) -> None:
    async def main() -> bool:
        client = redis.asyncio.Redis.from_url(redis_url)
        async with AsyncRedisStorage(client, namespace=f"given-{uuid.uuid4().hex}") as storage:
            await storage.push(task("t", "k"))
        answer = bool(await client.ping())  # still open: the caller owns it
        await client.aclose()
        return answer

    assert asyncio.run(main())


def test_close_of_the_blocking_storage_leaves_a_client_it_was_given_open(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    storage = RedisStorage(client, namespace=f"given-{uuid.uuid4().hex}")
    storage.push(task("t", "k"))
    storage.close()
    assert client.ping()  # still open: the caller owns it
    client.close()


def test_refused_connection_is_retried_then_says_nothing_was_stored() -> None:
    port = free_port()  # nothing listens there
    url = f"redis://127.0.0.1:{port}/0"

    async def main() -> None:
        storage = AsyncRedisStorage.from_url(url, namespace="refused", retries=2, backoff=0.01)
        with pytest.raises(StorageUnavailable) as raised:
            await storage.push(task("t", "k"))
        await storage.aclose()
        message = str(raised.value)
        assert f"the Redis server at {url} is not reachable (connection refused)" in message
        assert "nothing was stored or changed (push, 3 attempts)" in message

    asyncio.run(main())


def test_run_async_refuses_credentials_at_once_and_retries_connection_errors() -> None:
    retrier = Retrier("h:1", retries=2, backoff=0.01)
    attempts: List[bool] = []

    async def refused(retry: bool) -> None:
        attempts.append(retry)
        raise redis.AuthenticationError("invalid password")

    async def flaky(retry: bool) -> str:
        attempts.append(retry)
        if not retry:
            raise redis.ConnectionError("Connection closed by server.")
        return "done"

    with pytest.raises(StorageUnavailable, match=r"^Redis at h:1 refused the credentials: invalid password"):
        asyncio.run(retrier.run_async(refused))
    assert attempts == [False]  # no retry: a wrong password stays wrong
    attempts.clear()
    assert asyncio.run(retrier.run_async(flaky)) == "done"
    assert attempts == [False, True]


def test_a_wait_whose_connection_drops_returns_true_for_the_pop_to_report(
    redis_url: str, kill_blocked_client: Callable[[str], None]
) -> None:
    """A dropped BLPOP ends the wait early with True: the pop that follows meets the outage."""

    async def main() -> bool:
        async with AsyncRedisStorage.from_url(redis_url, namespace=f"drop-{uuid.uuid4().hex}") as storage:
            killer = asyncio.get_running_loop().run_in_executor(None, kill_blocked_client, "blpop")
            woke = await asyncio.wait_for(storage.wait(0.0, None), 60)  # nothing waits: blocks
            await killer
            return woke

    assert asyncio.run(main()) is True


def test_async_fair_scheduler_controls_on_redis(redis_url: str) -> None:
    """AsyncFairScheduler's controls on AsyncRedisStorage: a cap, a pause, a backlog limit,
    revoke and purge, the in-force settings read back through metadata."""
    from ranch_core import AsyncFairScheduler
    from ranch_core.errors import BacklogFull

    async def main() -> None:
        async with AsyncRedisStorage.from_url(redis_url, namespace=f"actl-{uuid.uuid4().hex}") as storage:
            revoked: List[str] = []
            scheduler = AsyncFairScheduler(storage, on_revoked=lambda t, reason: revoked.append(reason))
            await scheduler.set_concurrency_limit("a", 1)
            await scheduler.pause_key("p")
            await scheduler.set_max_backlog("p", 3)
            await scheduler.push_many("a", [1, 2])
            await scheduler.push_many("p", [1, 2, 3])
            with pytest.raises(BacklogFull):
                await scheduler.push("p", 4)
            first = await scheduler.pop()
            assert first is not None and first.key == "a"
            assert await scheduler.pop() is None  # "a" at its cap, "p" paused
            meta = await scheduler.metadata("a")
            assert (meta.concurrency_limit, meta.running, meta.pending_tasks) == (1, 1, 1)
            assert (await scheduler.metadata("p")).max_backlog == 3
            await scheduler.ack(first.task_id)
            second = await scheduler.pop()
            assert second is not None and second.key == "a"
            assert await scheduler.purge_key("p") == 3 and revoked == ["purged"] * 3

    asyncio.run(main())
