"""``AsyncInMemoryStorage`` steps the asyncio conformance run does not drive (tests from the mutation run)."""

from __future__ import annotations

import asyncio

import pytest
from ranch_core import AsyncInMemoryStorage, ScheduledTask
from ranch_core.models import WakeupPolicy


def test_release_token_through_the_asyncio_storage_passes_a_kept_token_on() -> None:
    """``AsyncInMemoryStorage.release_token`` hands back a kept token as the storage it wraps does."""
    policy = WakeupPolicy(max_wakeups=4, ttl=100.0)

    async def main() -> None:
        storage = AsyncInMemoryStorage()
        tokens = await storage.push(ScheduledTask("a", "k", 1, 0.0), wakeups=policy)
        tokens += await storage.push(ScheduledTask("b", "k", 2, 0.0), wakeups=policy)
        assert len(tokens) == 2
        popped = (await storage.pop(0.0, 50.0, token=tokens[0], wakeups=policy)).task
        assert popped is not None
        finished = await storage.finish(popped.task_id, 1.0, token=tokens[0], wakeups=policy, keep_token=True)
        assert finished.kept
        assert (await storage.pop(1.0, 50.0, token=tokens[1], wakeups=policy)).task is not None
        await storage.push(ScheduledTask("c", "k", 3, 0.0))  # waits with no token in flight for it
        assert await storage.release_token(tokens[0], 2.0, policy) == [tokens[0]]  # passed on
        assert await storage.release_token(tokens[0], 2.0, policy) == []  # not held any more

    asyncio.run(main())


def test_counts_leave_out_due_calls_only_when_given_now() -> None:
    """``metadata``, ``status`` and ``waiting`` pass ``now`` to the storage they wrap."""

    async def main() -> None:
        storage = AsyncInMemoryStorage()
        await storage.push(ScheduledTask("old", "k", 1, 0.0, 5.0))
        await storage.push(ScheduledTask("new", "k", 2, 0.0))
        assert (await storage.metadata("k")).pending_tasks == 2
        assert (await storage.metadata("k", 6.0)).pending_tasks == 1
        assert (await storage.status()).backlog_size == 2
        assert (await storage.status(6.0)).backlog_size == 1
        assert await storage.waiting() == 2
        assert await storage.waiting(6.0) == 1

    asyncio.run(main())


def test_wait_capped_by_a_lease_deadline_answers_true_when_it_passes() -> None:
    async def main() -> None:
        storage = AsyncInMemoryStorage()
        await storage.push(ScheduledTask("a", "k", 1, 0.0))
        assert (await storage.pop(0.0, 0.02)).task is not None
        assert await storage.wait(0.0, 30.0) is True  # the lease ends after 0.02 s: runnable again
        assert await storage.wait(0.0, 0.01) is False  # the timeout comes first

    asyncio.run(main())


def test_a_waiter_cancelled_before_it_was_woken_wakes_nobody_else() -> None:
    """Only a cancelled waiter that was woken passes the wake-up on; one that was not
    leaves the others waiting, and the next push still wakes one of them."""

    async def main() -> None:
        storage = AsyncInMemoryStorage()
        waiting = asyncio.ensure_future(storage.wait(0.0, 30.0))
        await asyncio.sleep(0)  # it subscribes first
        cancelled = asyncio.ensure_future(storage.wait(0.0, 30.0))
        await asyncio.sleep(0)
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        for _ in range(5):
            await asyncio.sleep(0)  # room for a wake-up it should not have passed on
        assert not waiting.done()
        await storage.push(ScheduledTask("a", "k", 1, 0.0))
        assert await asyncio.wait_for(waiting, 10) is True

    asyncio.run(main())
