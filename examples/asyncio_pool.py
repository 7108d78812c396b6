"""An asyncio worker pool fed by AsyncFairScheduler, with no polling.

Four consumer coroutines wait for work with ``await scheduler.pop(timeout=...)``:
while nothing is runnable they cost no CPU; a push wakes one of them at once.
A "bulk" tenant floods 2,000 jobs, then three interactive tenants send a few
each; every interactive job waits for about one job per active tenant, not
for the flood. One "stop" job per consumer ends the pool. Run:
``python examples/asyncio_pool.py`` (in memory) or
``python examples/asyncio_pool.py redis://localhost:6379/0`` (Redis; the
consumers then block on the server, and producers may be other processes).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any, Dict, List, Optional

from ranch_core import AsyncFairScheduler


async def handle(payload: Dict[str, int]) -> None:
    await asyncio.sleep(0)  # a real job would await I/O here


STOP = "stop"


async def consumer(scheduler: AsyncFairScheduler, order: List[str], total: int, done: asyncio.Event) -> None:
    while True:
        task = await scheduler.pop(timeout=None)  # waits without polling until a job is runnable
        assert task is not None
        if task.key == STOP:
            await scheduler.ack(task.task_id)
            return
        try:
            await handle(task.payload)
            order.append(task.key)
        finally:
            await scheduler.ack(task.task_id)
        if len(order) == total:
            done.set()


async def run(workers: int = 4, flood: int = 2000, url: Optional[str] = None) -> List[str]:
    """Returns the keys in the order their jobs finished (Redis at ``url`` if given)."""
    storage: Any = None
    if url is not None:
        import uuid

        from ranch_redis import AsyncRedisStorage

        storage = AsyncRedisStorage.from_url(url, namespace=f"example-{uuid.uuid4().hex}")
    scheduler = AsyncFairScheduler(storage)
    order: List[str] = []
    total = flood + 9
    done = asyncio.Event()
    pool = [asyncio.ensure_future(consumer(scheduler, order, total, done)) for _ in range(workers)]
    await scheduler.push_many("bulk", [{"n": n} for n in range(flood)])
    for tenant in ("alice", "bob", "carol"):
        for n in range(3):
            await scheduler.push(tenant, {"n": n})
    await done.wait()
    # One "stop" job per consumer ends the pool. (Cancelling the consumers
    # works in memory; on Redis, redis-py can lose a cancel that lands in
    # the middle of a command, so a message is the safer way to stop.)
    await scheduler.push_many(STOP, [None] * workers)
    await asyncio.gather(*pool)
    if storage is not None:
        await storage.aclose()
    return order


def main() -> None:
    order = asyncio.run(run(url=sys.argv[1] if len(sys.argv) > 1 else None))
    for tenant in ("alice", "bob", "carol"):
        last = max(i for i, key in enumerate(order) if key == tenant)
        print(f"{tenant:>6}: all 3 jobs done by position {last + 1} of {len(order)}")
    print(f"  bulk: {order.count('bulk')} jobs, served in the gaps")


if __name__ == "__main__":
    main()
