"""``AsyncInMemoryStorage`` steps the asyncio conformance run does not drive (tests from the mutation run)."""

from __future__ import annotations

import asyncio

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
