"""AsyncFairScheduler over the in-memory storage: the same answers as FairScheduler,
waiting without polling, and 50 consumer coroutines running 100,000 calls exactly once."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from typing import Any, Dict, List, Optional

import pytest
from ranch_core import AsyncFairScheduler, AsyncInMemoryStorage, FairScheduler, InMemoryStorage, ScheduledTask


async def drain(scheduler: AsyncFairScheduler, consumers: int, expected: int, timeout: float) -> List[Any]:
    """Run ``consumers`` coroutines that pop with a timeout until ``expected`` calls ran."""
    ran: List[Any] = []
    done = asyncio.Event()

    async def consume() -> None:
        while not done.is_set():
            task = await scheduler.pop(timeout=0.5)
            if task is None:
                continue
            ran.append(task.payload)
            await scheduler.ack(task.task_id)
            if len(ran) >= expected:
                done.set()

    await asyncio.wait_for(asyncio.gather(*(consume() for _ in range(consumers))), timeout)
    return ran


# Under mutmut (setup.cfg: 30 s per test) its stats run traces every storage call: over 30 s
# when other jobs share the two cores.
@pytest.mark.timeout(120)
def test_fifty_coroutines_run_each_of_100_000_calls_exactly_once() -> None:
    async def main() -> List[Any]:
        scheduler = AsyncFairScheduler()
        consumers = asyncio.ensure_future(drain(scheduler, 50, 100_000, timeout=60))
        await asyncio.sleep(0)  # the consumers start waiting before the first push
        for batch in range(100):
            await scheduler.push_many(f"k{batch % 10}", [[batch, n] for n in range(1000)])
            await asyncio.sleep(0)  # let the consumers run between batches
        ran = await consumers
        assert await scheduler.size() == 0 and (await scheduler.status()).leased == 0
        return ran

    ran = asyncio.run(main())
    assert len(ran) == 100_000
    assert len({tuple(payload) for payload in ran}) == 100_000


def test_a_pop_awaiting_work_is_woken_by_a_push_from_a_thread() -> None:
    storage = InMemoryStorage()
    producer = FairScheduler(storage)

    async def main() -> Optional[ScheduledTask]:
        scheduler = AsyncFairScheduler(AsyncInMemoryStorage(storage))
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, lambda: threading.Thread(target=producer.push, args=("k", "hi")).start())
        return await scheduler.pop(timeout=10)

    started = time.monotonic()
    task = asyncio.run(main())
    assert task is not None and task.payload == "hi" and time.monotonic() - started < 5


def test_pop_keeps_its_timeout_and_zero_answers_at_once() -> None:
    async def main() -> float:
        scheduler = AsyncFairScheduler()
        assert await scheduler.pop() is None
        started = time.monotonic()
        assert await scheduler.pop(timeout=0.2) is None
        return time.monotonic() - started

    assert 0.19 <= asyncio.run(main()) < 1.0


def test_a_lease_that_runs_out_wakes_a_waiting_coroutine() -> None:
    async def main() -> None:
        scheduler = AsyncFairScheduler(lease_seconds=0.2)
        await scheduler.push("k", 1)
        first = await scheduler.pop()
        assert first is not None
        again = await scheduler.pop(timeout=10)
        assert again is not None and again.task_id == first.task_id

    started = time.monotonic()
    asyncio.run(main())
    assert 0.15 <= time.monotonic() - started < 5


def test_a_cancelled_waiter_passes_its_wake_up_on() -> None:
    """The wake-up of a push goes to one waiter; if that one is cancelled before
    it pops, another waiter gets the call (no lost wake-up)."""

    async def main() -> ScheduledTask:
        storage = AsyncInMemoryStorage()
        scheduler = AsyncFairScheduler(storage)
        first = asyncio.ensure_future(scheduler.pop(timeout=None))
        await asyncio.sleep(0)  # first waits
        second = asyncio.ensure_future(scheduler.pop(timeout=None))
        await asyncio.sleep(0)  # second waits
        storage.sync.push(ScheduledTask("t", "k", 1, 0.0))  # wakes `first` only
        first.cancel()
        task = await asyncio.wait_for(second, 5)
        assert task is not None
        return task

    assert asyncio.run(main()).task_id == "t"


def test_same_answers_as_the_blocking_scheduler() -> None:
    """Push, pop, release, requeue, expiry, weights, tags and counts: the async
    scheduler and FairScheduler agree step for step on the same clock."""
    now = [1000.0]
    clock = lambda: now[0]  # noqa: E731
    expired: Dict[str, List[str]] = {"sync": [], "async": []}
    blocking = FairScheduler(clock=clock, on_expired=lambda t: expired["sync"].append(t.task_id))
    weights = lambda key, meta: 2.0 if key == "heavy" else meta.weight  # noqa: E731

    async def main() -> None:
        scheduler = AsyncFairScheduler(
            clock=clock, weight_function=weights, on_expired=lambda t: expired["async"].append(t.task_id)
        )
        blocking.weight_function = weights
        for n in range(6):
            for key in ("heavy", "light", "vip"):
                kwargs: Dict[str, Any] = {"task_id": f"{key}{n}", "expiry": 5.0 if n == 5 else None}
                if key == "vip":
                    kwargs["weight"] = 0.5
                    kwargs["tags"] = {"plan": "pro"}
                assert blocking.push(key, n, **kwargs) == await scheduler.push(key, n, **kwargs)
        order = []
        for step in range(12):
            a, b = blocking.pop(), await scheduler.pop()
            assert a is not None and b is not None and a.task_id == b.task_id
            order.append(a.key)
            if step % 4 == 1:
                assert blocking.release(a.task_id) == await scheduler.release(b.task_id)
            elif step % 4 == 2:
                assert blocking.requeue(a, "again") == await scheduler.requeue(b, "again")
            else:
                assert blocking.ack(a.task_id) == await scheduler.ack(b.task_id)
        now[0] += 10
        assert blocking.status() == await scheduler.status()
        assert len(blocking) == await scheduler.size()
        for key in ("heavy", "light", "vip"):
            assert blocking.metadata(key) == await scheduler.metadata(key)
        assert blocking.keys_with_tag("plan") == await scheduler.keys_with_tag("plan") == ["vip"]
        await scheduler.set_weight("light", 3.0)
        await scheduler.set_custom_data("light", "n", 1)
        await scheduler.add_tag("light", "plan", "free")
        meta = await scheduler.metadata("light")
        assert meta.weight == 3.0 and meta.custom_data == {"n": 1} and meta.tags == {"plan": "free"}
        assert await scheduler.repair() == [] and await scheduler.expire() == []
        assert await scheduler.reclaim() == []
        task = await scheduler.pop()
        assert task is not None and await scheduler.extend(task.task_id)
        assert await scheduler.remove("light", "nope") is False
        assert Counter(order)["vip"] >= Counter(order)["light"]

    asyncio.run(main())
    assert expired["sync"] == expired["async"] and expired["sync"]


@pytest.mark.parametrize("timeout", [-1, float("nan"), "1"])
def test_bad_timeouts_are_refused(timeout: Any) -> None:
    with pytest.raises((TypeError, ValueError), match="timeout"):
        FairScheduler().pop(timeout=timeout)

    async def main() -> None:
        await AsyncFairScheduler().pop(timeout=timeout)

    with pytest.raises((TypeError, ValueError), match="timeout"):
        asyncio.run(main())
