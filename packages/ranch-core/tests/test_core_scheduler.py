"""FairScheduler behaviour beyond the storage contract: weight functions, callbacks, threads."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from typing import List

import pytest
from ranch_core import FairScheduler, InMemoryStorage, LRUKeyMetadata, ScheduledTask


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_default_storage_is_in_memory_and_ids_are_uuid_hex() -> None:
    scheduler = FairScheduler()
    assert isinstance(scheduler.storage, InMemoryStorage)
    task_id = scheduler.push("k", {"n": 1})
    assert len(task_id) == 32 and int(task_id, 16) >= 0
    task = scheduler.pop()
    assert task is not None and task.task_id == task_id and task.payload == {"n": 1}


def test_weight_function_is_called_for_the_served_key_only() -> None:
    calls: List[str] = []

    def weight(key: str, meta: LRUKeyMetadata) -> float:
        calls.append(key)
        return meta.weight

    scheduler = FairScheduler(weight_function=weight)
    for n in range(1000):
        scheduler.push(f"key-{n}", n)
    for _ in range(5):
        assert scheduler.pop() is not None
    assert calls == ["key-0", "key-1", "key-10", "key-100", "key-101"]


def test_weight_function_result_sets_the_cost_of_the_dispatch() -> None:
    def weight(key: str, meta: LRUKeyMetadata) -> float:
        return 0.5 if meta.custom_data.get("plan") == "pro" else 1.0

    scheduler = FairScheduler(weight_function=weight)
    scheduler.set_custom_data("pro", "plan", "pro")
    for n in range(300):
        scheduler.push("pro", n)
        scheduler.push("free", n)
    served = Counter(task.key for task in (scheduler.pop() for _ in range(300)) if task)
    assert served["pro"] == 200 and served["free"] == 100


def test_failing_weight_function_falls_back_and_warns_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    def broken(key: str, meta: LRUKeyMetadata) -> float:
        raise RuntimeError("boom")

    scheduler = FairScheduler(weight_function=broken)
    for n in range(50):
        scheduler.push("a", n)
        scheduler.push("b", n)
    with caplog.at_level(logging.WARNING, logger="ranch_core"):
        keys = [task.key for task in (scheduler.pop() for _ in range(40)) if task]
    assert keys == ["a", "b"] * 20  # the stored weights (1.0) still apply
    warnings = [r for r in caplog.records if "weight_function failed" in r.getMessage()]
    assert len(warnings) == 1, "one warning per interval, not one per task"


@pytest.mark.parametrize("bad", [0.0, -2.0, float("nan"), float("inf"), "heavy", None])
def test_invalid_weight_function_result_uses_the_stored_weight(bad: object) -> None:
    scheduler = FairScheduler(weight_function=lambda key, meta: bad)  # type: ignore[arg-type,return-value]
    scheduler.set_weight("light", 0.5)
    for n in range(30):
        scheduler.push("light", n)
        scheduler.push("heavy", n)
    served = Counter(task.key for task in (scheduler.pop() for _ in range(30)) if task)
    assert served == {"light": 20, "heavy": 10}


def test_expired_and_reclaimed_tasks_reach_the_callbacks() -> None:
    clock = Clock()
    expired: List[ScheduledTask] = []
    reclaimed: List[ScheduledTask] = []
    scheduler = FairScheduler(
        lease_seconds=10, clock=clock, on_expired=expired.append, on_reclaimed=reclaimed.append
    )
    scheduler.push("a", "soon", expiry=1)
    scheduler.push("b", "later")
    held = scheduler.pop()
    assert held is not None and held.payload == "soon"
    scheduler.push("a", "dies", expiry=1)
    clock.now += 11
    task = scheduler.pop()  # puts "soon" back (its lease ran out); "b" is due first
    assert [t.payload for t in reclaimed] == ["soon"]
    assert task is not None and task.payload == "later"
    assert scheduler.pop() is None  # "soon" and "dies" have both expired by now
    assert [t.payload for t in expired] == ["soon", "dies"]
    assert scheduler.status().expired_total == 2


def test_extend_keeps_a_long_task_leased() -> None:
    clock = Clock()
    scheduler = FairScheduler(lease_seconds=10, clock=clock)
    scheduler.push("a", 1)
    task = scheduler.pop()
    assert task is not None
    for _ in range(5):
        clock.now += 8
        assert scheduler.extend(task.task_id)
        assert scheduler.reclaim() == []
    clock.now += 11
    assert [t.task_id for t in scheduler.reclaim()] == [task.task_id]
    assert not scheduler.ack(task.task_id)


@pytest.mark.parametrize("lease", [0, -1, float("nan"), "long"])
def test_bad_lease_seconds(lease: object) -> None:
    with pytest.raises((TypeError, ValueError), match="lease_seconds"):
        FairScheduler(lease_seconds=lease)  # type: ignore[arg-type]


def test_weight_function_must_be_callable() -> None:
    with pytest.raises(TypeError, match="weight_function"):
        FairScheduler(weight_function=1.0)  # type: ignore[arg-type]


def test_threads_push_and_pop_each_task_exactly_once() -> None:
    scheduler = FairScheduler()
    produced = 8000
    popped: List[str] = []
    lock = threading.Lock()
    done = threading.Event()

    def producer(n: int) -> None:
        for i in range(produced // 4):
            scheduler.push(f"key-{i % 37}", [n, i])

    def consumer() -> None:
        while True:
            task = scheduler.pop()
            if task is None:
                if done.is_set() and len(scheduler) == 0:
                    return
                continue
            assert scheduler.ack(task.task_id)
            with lock:
                popped.append(task.task_id)

    producers = [threading.Thread(target=producer, args=(n,)) for n in range(4)]
    consumers = [threading.Thread(target=consumer) for _ in range(4)]
    for thread in producers + consumers:
        thread.start()
    for thread in producers:
        thread.join()
    done.set()
    for thread in consumers:
        thread.join()
    assert len(popped) == produced and len(set(popped)) == produced
    assert scheduler.status().served_total == produced
