"""Per-key controls through FairScheduler, AsyncFairScheduler, FairDispatcher and KeyManagement.

The storage-level properties are in the conformance suite
(``ranch_core.testing.controls``); these are the facades: waiting for a
parked key with ``pop(timeout=)``, fairness among the eligible keys,
delayed wake-ups, ``on_revoked`` and the management API.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, List, Tuple

import pytest
from ranch_core import AsyncFairScheduler, BacklogFull, FairScheduler, RanchError, ScheduledTask
from ranch_core.calls import Call
from ranch_core.dispatcher import FairDispatcher
from ranch_core.management import KeyManagement


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def test_pop_waits_for_a_rate_limited_key_to_refill() -> None:
    scheduler = FairScheduler()
    scheduler.set_rate_limit("k", "20/s")
    scheduler.push_many("k", [1, 2])
    assert scheduler.pop() is not None
    assert scheduler.pop() is None  # the bucket is empty: parked, not failed
    start = time.monotonic()
    task = scheduler.pop(timeout=5)
    waited = time.monotonic() - start
    assert task is not None and task.payload == 2
    assert 0.03 <= waited < 2.0, waited


def test_pop_wakes_when_a_capped_call_ends_or_a_key_is_resumed() -> None:
    scheduler = FairScheduler()
    scheduler.set_concurrency_limit("k", 1)
    scheduler.push_many("k", [1, 2])
    first = scheduler.pop()
    assert first is not None and scheduler.pop() is None
    threading.Timer(0.05, scheduler.ack, [first.task_id]).start()
    second = scheduler.pop(timeout=5)
    assert second is not None and second.payload == 2
    scheduler.ack(second.task_id)
    scheduler.pause_key("k")
    scheduler.push("k", 3)
    assert scheduler.pop(timeout=0.05) is None
    threading.Timer(0.05, scheduler.resume_key, ["k"]).start()
    third = scheduler.pop(timeout=5)
    assert third is not None and third.payload == 3


def test_threads_racing_never_take_a_key_past_its_cap_or_its_bucket() -> None:
    scheduler = FairScheduler()
    scheduler.set_concurrency_limit("capped", 2)
    scheduler.set_rate_limit("limited", "200/s", burst=5)
    for key in ("capped", "limited", "free"):
        scheduler.push_many(key, range(150))
    lock = threading.Lock()
    running = {"capped": 0}
    peak = {"capped": 0}
    starts: List[float] = []

    def worker() -> None:
        while (task := scheduler.pop(timeout=0.5)) is not None:
            with lock:
                if task.key == "capped":
                    running["capped"] += 1
                    peak["capped"] = max(peak["capped"], running["capped"])
                elif task.key == "limited":
                    starts.append(time.time())
            time.sleep(0.001)
            with lock:
                if task.key == "capped":
                    running["capped"] -= 1
            scheduler.ack(task.task_id)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(scheduler) == 0 and peak["capped"] == 2
    assert len(starts) == 150
    for i, start in enumerate(starts):  # at most burst + rate * T in any window
        later = [t for t in starts[i:] if t - start <= 0.25]
        assert len(later) <= 5 + 200 * 0.25 + 1


def test_eligible_keys_stay_fair_and_a_key_back_from_its_cap_is_due_at_once() -> None:
    scheduler = FairScheduler(clock=Clock())
    scheduler.set_concurrency_limit("a", 1)
    for key in ("a", "b", "c"):
        scheduler.push_many(key, range(6))
    popped = [scheduler.pop() for _ in range(5)]
    assert [t.key for t in popped if t is not None] == ["a", "b", "c", "b", "c"]
    first_a = popped[0]
    assert first_a is not None and scheduler.ack(first_a.task_id)
    # Back from its cap, "a" joins the current round: due before b and c run again.
    assert [t.key for t in (scheduler.pop(), scheduler.pop(), scheduler.pop()) if t is not None] == [
        "a",
        "b",
        "c",
    ]
    assert scheduler.metadata("a").running == 1


def test_purge_and_revoke_report_through_on_revoked() -> None:
    reported: List[Tuple[str, str]] = []
    scheduler = FairScheduler(on_revoked=lambda task, reason: reported.append((task.task_id, reason)))
    ids = scheduler.push_many("k", range(3))
    running = scheduler.pop()
    assert running is not None
    assert scheduler.revoke_call(ids[1]) is True
    assert scheduler.revoke_call(ids[1]) is False  # gone already
    assert scheduler.revoke_call(running.task_id) is False  # it runs: not touched
    assert scheduler.purge_key("k") == 1
    assert reported == [(ids[1], "revoked"), (ids[2], "purged")]
    assert scheduler.purge_key("nobody") == 0
    assert scheduler.metadata("k").running == 1 and len(scheduler) == 0


def test_purge_goes_in_batches() -> None:
    scheduler = FairScheduler()
    for _ in range(3):
        scheduler.push_many("k", range(1000))
    assert scheduler.purge_key("k") == 3000 and len(scheduler) == 0


def test_backlog_full_is_a_ranch_error_with_the_key_and_limit() -> None:
    scheduler = FairScheduler()
    scheduler.set_max_backlog("k", 0)
    with pytest.raises(RanchError) as caught:
        scheduler.push("k", 1)
    assert isinstance(caught.value, BacklogFull) and (caught.value.key, caught.value.limit) == ("k", 0)


def test_a_storage_without_controls_says_so() -> None:
    class Plain:
        """Stands in for a storage that has no per-key controls."""

    scheduler = FairScheduler(Plain())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="no per-key controls"):
        scheduler.pause_key("k")
    with pytest.raises(TypeError, match="no per-key controls"):
        FairScheduler(Plain(), default_concurrency_limit=2)  # type: ignore[arg-type]


def test_async_scheduler_has_the_controls() -> None:
    async def main() -> None:
        reported: List[str] = []
        scheduler = AsyncFairScheduler(on_revoked=lambda task, reason: reported.append(reason))
        await scheduler.set_concurrency_limit("k", 1)
        await scheduler.set_rate_limit("k", "20/s", burst=2)
        await scheduler.set_max_backlog("k", 4)
        await scheduler.push_many("k", [1, 2, 3])
        first = await scheduler.pop()
        assert first is not None and await scheduler.pop() is None  # at its cap
        await scheduler.ack(first.task_id)
        second = await scheduler.pop()
        assert second is not None
        await scheduler.ack(second.task_id)
        start = time.monotonic()
        third = await scheduler.pop(timeout=5)  # burst spent: waits for the bucket
        assert third is not None and time.monotonic() - start >= 0.03
        await scheduler.ack(third.task_id)
        await scheduler.pause_key("k")
        ids = await scheduler.push_many("k", [4, 5])
        assert await scheduler.pop(timeout=0.05) is None
        assert await scheduler.revoke_call(ids[0]) and await scheduler.purge_key("k") == 1
        await scheduler.resume_key("k")
        meta = await scheduler.metadata("k")
        assert (meta.concurrency_limit, meta.rate_limit, meta.paused, meta.max_backlog) == (
            1,
            "20/s",
            False,
            4,
        )
        assert reported == ["revoked", "purged"]
        with pytest.raises(ValueError, match="limit"):
            await scheduler.set_concurrency_limit("k", 0)

    asyncio.run(main())


class Broker:
    def __init__(self) -> None:
        self.now: List[str] = []
        self.later: List[Tuple[str, float]] = []

    def wake(self, token: str) -> None:
        self.now.append(token)

    def wake_later(self, token: str, seconds: float) -> None:
        self.later.append((token, seconds))


class Managed(KeyManagement):
    def __init__(self, dispatcher: FairDispatcher) -> None:
        self.dispatcher = dispatcher

    def _fair_dispatcher(self) -> FairDispatcher:
        return self.dispatcher

    def _fair_backlog(self) -> str:
        return "b"


def make() -> Tuple[FairDispatcher, Broker, Clock, List[Tuple[ScheduledTask, str]]]:
    clock, broker = Clock(), Broker()
    revoked: List[Tuple[ScheduledTask, str]] = []
    dispatcher = FairDispatcher(
        FairScheduler(clock=clock),
        broker.wake,
        wake_later=broker.wake_later,
        on_revoked=lambda task, reason: revoked.append((task, reason)),
    )
    return dispatcher, broker, clock, revoked


def test_dispatcher_defers_a_wakeup_until_the_bucket_refills() -> None:
    dispatcher, broker, clock, _ = make()
    dispatcher.set_rate_limit("k", "1/s")
    dispatcher.submit("k", Call([1], {}))
    dispatcher.submit("k", Call([2], {}))
    claimed = dispatcher.take(broker.now.pop(0))
    assert claimed is not None and claimed.call.args == [1]
    dispatcher.finish(claimed)
    # The token was passed on only if a call may run: none may, for a second.
    assert dispatcher.take(broker.now.pop(0) if broker.now else "fresh") is None
    assert broker.later and broker.later[0][1] == pytest.approx(1.0)
    token, _ = broker.later.pop(0)
    clock.now += 1.0
    claimed = dispatcher.take(token)  # the delayed wake-up arrives when the call may run
    assert claimed is not None and claimed.call.args == [2]


def test_dispatcher_publishes_what_a_control_change_mints() -> None:
    dispatcher, broker, _, revoked = make()
    managed = Managed(dispatcher)
    assert managed.pause_key("k") is True
    dispatcher.submit("k", Call([1], {}))
    dispatcher.submit("k", Call([2], {}))
    assert broker.now == []  # nothing may run: no wake-up
    assert managed.resume_key("k") is True
    assert len(broker.now) == 2  # both calls may run now
    assert managed.set_concurrency_limit("k", 1) is True
    assert managed.set_rate_limit("k", "10/m", burst=2) is True
    assert managed.set_max_backlog("k", 2) is True
    with pytest.raises(BacklogFull):
        dispatcher.submit("k", Call([3], {}))
    meta = managed.get_client_metadata("k")
    assert {
        name: meta[name] for name in ("concurrency_limit", "running", "rate_limit", "paused", "max_backlog")
    } == {
        "concurrency_limit": 1,
        "running": 0,
        "rate_limit": "10/m",
        "paused": False,
        "max_backlog": 2,
    }
    claimed = dispatcher.take(broker.now.pop(0))
    assert claimed is not None and managed.get_client_metadata("k")["running"] == 1
    assert managed.purge_key("k") == 1
    assert managed.revoke_call(claimed.task_id) is False  # it runs: not touched
    assert [(task.payload["args"], reason) for task, reason in revoked] == [([2], "purged")]


def test_a_failing_on_revoked_or_wake_later_is_logged_not_raised(caplog: Any) -> None:
    clock = Clock()

    def boom(*_: Any) -> None:
        raise ConnectionError("down")

    dispatcher = FairDispatcher(FairScheduler(clock=clock), lambda t: None, wake_later=boom, on_revoked=boom)
    dispatcher.set_rate_limit("k", "1/s")
    dispatcher.submit("k", Call([1], {}))
    dispatcher.submit("k", Call([2], {}))
    claimed = dispatcher.take("t1")
    assert claimed is not None
    assert dispatcher.take("t2") is None  # deferred; its publish fails and is logged
    assert dispatcher.purge_key("k") == 1
    assert "delayed wake-up" in caplog.text and "on_revoked failed" in caplog.text
