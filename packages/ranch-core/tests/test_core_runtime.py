"""Runtime cost (``cost="runtime"``) at the facade: what the conformance suite's
``ranch_core.testing.runtime`` (run on every storage) does not cover."""

from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator, Dict, List, Optional, Tuple

import pytest
from ranch_core import AsyncFairScheduler, FairScheduler, InMemoryStorage, RuntimeCost
from ranch_core.calls import Call
from ranch_core.dispatcher import FairDispatcher, RetryOutcome
from ranch_core.protocols import Storage
from ranch_core.runtimes import RunTimer
from ranch_core.testing.base import Clock
from ranch_core.testing.runtime import RuntimeCostProperties


class NoRuntime:
    """A storage without ``RuntimeCosts``: only the plain steps."""

    def __init__(self) -> None:
        self.inner = InMemoryStorage()

    def __getattr__(self, name: str) -> object:
        if name == "run_estimate":
            raise AttributeError(name)
        return getattr(self.inner, name)


def test_runtime_cost_needs_a_storage_that_has_it() -> None:
    with pytest.raises(TypeError, match="RuntimeCosts"):
        FairScheduler(NoRuntime(), cost="runtime")  # type: ignore[arg-type]


def test_a_storage_without_runtime_costs_fails_the_runtime_tests() -> None:
    class Suite(RuntimeCostProperties):
        def make_storage(self) -> Storage:
            return NoRuntime()  # type: ignore[return-value]

    with pytest.raises(pytest.fail.Exception, match=r"ranch_core\.protocols\.RuntimeCosts"):
        Suite().test_charges_the_estimate_and_corrects_it_at_finish()


def test_runtime_cost_takes_no_weight_function() -> None:
    with pytest.raises(ValueError, match="weight_function"):
        FairScheduler(cost="runtime", weight_function=lambda key, meta: 1.0)


def test_first_estimate_must_be_positive() -> None:
    for bad in (0, -1.0, float("nan"), float("inf"), "1"):
        with pytest.raises(ValueError, match="first_estimate"):
            RuntimeCost(first_estimate=bad)
    assert FairScheduler(cost=RuntimeCost(first_estimate=0.01)).runtime == RuntimeCost(0.01)


def test_async_scheduler_charges_by_run_time_as_the_blocking_one() -> None:
    """The same steps through AsyncFairScheduler and FairScheduler give the same
    order and estimates: a slow key's 4 s call holds it back while a fast one runs."""

    async def run_async(clock: Clock) -> List[Tuple[str, Optional[float]]]:
        scheduler = AsyncFairScheduler(cost="runtime", clock=clock)
        return [step async for step in steps_async(scheduler, clock)]

    async def steps_async(
        scheduler: AsyncFairScheduler, clock: Clock
    ) -> AsyncIterator[Tuple[str, Optional[float]]]:
        for i in range(4):
            await scheduler.push("slow", i)
            await scheduler.push("fast", i)
        for n in range(6):
            task = await scheduler.pop()
            assert task is not None
            run = 4.0 if task.key == "slow" else 0.5
            clock.now += run
            if n == 2:
                assert await scheduler.requeue(task, "again") is True  # measured by the storage
            else:
                assert await scheduler.ack(task.task_id, cost=run) is True
            yield task.key, await scheduler.run_estimate(task.key)

    def run_blocking(clock: Clock) -> List[Tuple[str, Optional[float]]]:
        scheduler = FairScheduler(cost="runtime", clock=clock)
        for i in range(4):
            scheduler.push("slow", i)
            scheduler.push("fast", i)
        out = []
        for n in range(6):
            task = scheduler.pop()
            assert task is not None
            run = 4.0 if task.key == "slow" else 0.5
            clock.now += run
            if n == 2:
                assert scheduler.requeue(task, "again") is True
            else:
                assert scheduler.ack(task.task_id, cost=run) is True
            out.append((task.key, scheduler.run_estimate(task.key)))
        return out

    got = asyncio.run(run_async(Clock()))
    assert got == run_blocking(Clock())
    assert [key for key, _ in got].count("fast") == 5


def test_async_scheduler_checks_cost_and_its_storage() -> None:
    async def main() -> None:
        plain = AsyncFairScheduler()
        await plain.push("k", 0)
        task = await plain.pop()
        assert task is not None
        with pytest.raises(ValueError, match="cost"):
            await plain.ack(task.task_id, cost=1.0)
        assert (await plain.status()).leased == 1
        runtime = AsyncFairScheduler(cost="runtime")
        await runtime.push("k", 0)
        task = await runtime.pop()
        assert task is not None
        with pytest.raises(ValueError, match="cost"):
            await runtime.ack(task.task_id, cost=-1.0)
        assert await runtime.ack(task.task_id, cost=0.25) is True
        assert await runtime.run_estimate("k") == 0.25

    asyncio.run(main())
    with pytest.raises(TypeError, match="AsyncRuntimeCosts"):
        AsyncFairScheduler(NoRuntime(), cost="runtime")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="weight_function"):
        AsyncFairScheduler(cost="runtime", weight_function=lambda key, meta: 1.0)


# -- what the adapters pass: the run time of the call's function (ranch_core.runtimes) -----


def _dispatcher(cost: str, clock: Clock) -> FairDispatcher:
    return FairDispatcher(FairScheduler(cost=cost, clock=clock, lease_seconds=60), lambda token: None)


def test_the_dispatcher_charges_the_run_time_it_is_given_not_the_lease() -> None:
    """A finish, a retry now and a deferred retry settle the run that ended with the
    ``run_time`` the adapter measured, however long the lease was on the clock."""
    clock = Clock()
    dispatcher = _dispatcher("runtime", clock)
    deferred: List[Dict[str, Any]] = []
    assert dispatcher.measures_runtime and isinstance(dispatcher.timer(), RunTimer)
    for key in ("done", "now", "later"):
        dispatcher.submit(key, Call(args=[key]))
    for _ in range(3):
        claimed = dispatcher.take()
        assert claimed is not None
        clock.now += 10.0  # the lease: 10 s; the function: 0.5 s
        if claimed.key == "done":
            dispatcher.finish(claimed, run_time=0.5)
        elif claimed.key == "now":
            assert dispatcher.retry(claimed, claimed.call, run_time=0.5) is RetryOutcome.REQUEUED
        else:
            outcome = dispatcher.retry(
                claimed,
                claimed.call,
                delay=5.0,
                defer=lambda body, _delay: deferred.append(body),
                run_time=0.5,
            )
            assert outcome is RetryOutcome.DEFERRED
    assert [dispatcher.scheduler.run_estimate(key) for key in ("done", "now", "later")] == [0.5, 0.5, 0.5]
    again = dispatcher.take()
    assert again is not None and again.key == "now"
    clock.now += 10.0
    assert dispatcher.requeue(again, run_time=0.25)
    assert dispatcher.scheduler.run_estimate("now") == 0.5 + 0.25 * (0.25 - 0.5)
    plain = dispatcher.take()
    assert plain is not None
    clock.now += 2.0
    dispatcher.finish(plain)  # no run time given: the storage charges the lease
    assert dispatcher.scheduler.run_estimate("now") == 0.4375 + 0.25 * (2.0 - 0.4375)


def test_a_backlog_charged_by_calls_times_nothing_and_ignores_run_times() -> None:
    clock = Clock()
    dispatcher = _dispatcher("calls", clock)
    assert not dispatcher.measures_runtime and dispatcher.timer() is None
    assert dispatcher.charged(0.5) is None
    dispatcher.submit("k", Call(args=[]))
    claimed = dispatcher.take()
    assert claimed is not None
    assert dispatcher.finish(claimed, run_time=0.5).done  # not a ValueError: nothing to charge
    assert dispatcher.scheduler.metadata("k").served_total == 1


def test_the_run_timer_times_the_call_returned_or_raised_and_not_twice_when_nested() -> None:
    timer = RunTimer()
    assert timer.seconds is None
    seen: List[Optional[float]] = []

    def inner() -> str:
        time.sleep(0.01)
        return "inner"

    def outer() -> str:
        time.sleep(0.02)
        result = timer(inner)  # nested: runs untimed, inside the outer run's time
        seen.append(timer.seconds)
        return result

    assert timer(outer) == "inner"
    assert seen == [None]  # the nested call recorded nothing
    assert timer.seconds is not None and timer.seconds >= 0.03

    def fails() -> None:
        time.sleep(0.01)
        raise ValueError("boom")

    timer.seconds = None
    with pytest.raises(ValueError, match="boom"):
        timer(fails)
    assert timer.seconds is not None and timer.seconds >= 0.01  # a run that raised is timed too
    assert timer(lambda x, *, y: x + y, 1, y=2) == 3  # arguments pass through
