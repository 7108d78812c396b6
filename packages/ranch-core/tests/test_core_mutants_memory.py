"""``InMemoryStorage`` corners the conformance suite does not reach (tests from the mutation run)."""

from __future__ import annotations

import math
import threading
import time
from typing import List

import pytest
from ranch_core import FairScheduler, InMemoryStorage, LRUKeyMetadata
from ranch_core.errors import DuplicateTask
from ranch_core.models import ScheduledTask, WakeupPolicy
from ranch_core.protocols import EXPIRED_BATCH


def task(task_id: str, key: str = "k", payload: object = 1, expires_at: object = None) -> ScheduledTask:
    return ScheduledTask(task_id, key, payload, 0.0, expires_at)  # type: ignore[arg-type]


def test_metadata_counts_due_calls_only_when_given_now() -> None:
    storage = InMemoryStorage()
    storage.push(task("a", expires_at=5.0))
    storage.push(task("b"))
    assert storage.metadata("k").pending_tasks == 2  # no clock: every stored call
    assert storage.metadata("k", 4.0).pending_tasks == 2
    assert storage.metadata("k", 5.0).pending_tasks == 1  # "a" is due: left out
    assert storage.metadata("unknown", 5.0).pending_tasks == 0


def test_requeue_without_a_serializer_keeps_the_object() -> None:
    storage = InMemoryStorage(serializer=None)
    payload = {1, 2}  # a set: no serializer could carry it, none is asked to
    storage.push(task("a", payload=payload))
    popped = storage.pop(0.0, 10.0).task
    assert popped is not None and popped.payload is payload
    assert storage.requeue(task("a", payload=payload | {3}))
    again = storage.pop(1.0, 10.0).task
    assert again is not None and again.payload == {1, 2, 3}


@pytest.mark.parametrize("value", [math.nan, math.inf, {"x": -math.inf}, object()])
def test_custom_data_that_json_cannot_carry_is_refused_by_name(value: object) -> None:
    storage = InMemoryStorage()
    with pytest.raises(TypeError, match="custom data 'quota' cannot be encoded as JSON"):
        storage.set_custom_data("k", "quota", value)
    assert storage.metadata("k").custom_data == {}


def test_waiting_and_status_leave_out_due_calls_only_when_given_now() -> None:
    storage = InMemoryStorage()
    storage.push(task("a", expires_at=5.0))
    storage.push(task("b", expires_at=9.0))
    storage.push(task("c"))
    assert storage.waiting() == 3 and storage.status().backlog_size == 3
    assert storage.waiting(4.0) == 3 and storage.status(4.0).backlog_size == 3
    assert storage.waiting(5.0) == 2 and storage.status(5.0).backlog_size == 2
    assert storage.waiting(9.0) == 1 and storage.status(9.0).backlog_size == 1
    assert storage.status(9.0).expired_total == 0  # counting drops nothing


def test_a_reclaimed_call_that_has_expired_is_reported_both_ways() -> None:
    storage = InMemoryStorage()
    storage.push(task("a", expires_at=5.0))
    assert storage.pop(0.0, 10.0).task is not None  # leased until 10.0
    result = storage.pop(10.0, 10.0)  # the lease ran out, and so did its expiry
    assert result.task is None
    assert [t.task_id for t in result.reclaimed] == ["a"]
    assert [t.task_id for t in result.expired] == ["a"]


def test_a_pop_cut_short_by_expired_batch_still_reports_its_reclaimed_leases() -> None:
    storage = InMemoryStorage()
    storage.push(task("leased", key="a"))
    assert storage.pop(0.0, 1.0).task is not None  # leased until 1.0
    for n in range(EXPIRED_BATCH + 5):
        storage.push(task(f"old{n:03}", key="b", expires_at=0.5))
    result = storage.pop(2.0, 10.0)
    assert result.task is None and len(result.expired) == EXPIRED_BATCH
    assert [t.task_id for t in result.reclaimed] == ["leased"]
    nxt = storage.pop(2.0, 10.0)  # the rest of the expired calls, then the reclaimed one runs
    assert len(nxt.expired) == 5 and nxt.reclaimed == ()
    assert nxt.task is not None and nxt.task.task_id == "leased"


def test_a_duplicate_push_names_the_task_id() -> None:
    storage = InMemoryStorage()
    storage.push(task("a"))
    with pytest.raises(DuplicateTask, match=r"^task_id 'a' is already waiting or leased"):
        storage.push(task("a", key="other"))
    assert storage.pop(0.0, 1.0).task is not None
    with pytest.raises(DuplicateTask, match=r"^task_id 'a' is already waiting or leased"):
        storage.push(task("a"))


def test_a_charge_leaves_a_tombstone_that_never_serves_its_key() -> None:
    """A weight function's charge pushes a second heap entry for the key; the
    older one must stay dead whatever the key's later serves do to its version."""
    calls: List[str] = []

    def weight(key: str, meta: LRUKeyMetadata) -> float:
        calls.append(key)
        return 0.5 if len(calls) == 1 else meta.weight  # one charge of -0.5, then none

    scheduler = FairScheduler(weight_function=weight, clock=lambda: 0.0)
    for n in range(5):
        scheduler.push("A", n)
        scheduler.push("B", n)
    order = []
    for _ in range(10):
        popped = scheduler.pop()
        assert popped is not None
        order.append(popped.key)
    assert order == ["A", "B"] * 5


def test_a_key_that_empties_and_returns_does_not_revive_its_tombstone() -> None:
    """Deactivating a key must kill every heap entry it had, also the one a charge left behind."""
    calls: List[str] = []

    def weight(key: str, meta: LRUKeyMetadata) -> float:
        calls.append(key)
        return 0.5 if len(calls) == 1 else meta.weight  # one charge of -0.5, then none

    scheduler = FairScheduler(weight_function=weight, clock=lambda: 0.0)
    scheduler.push("A", 0)
    scheduler.push("A", 1)
    for n in range(8):
        scheduler.push("B", n)
    order = [scheduler.pop() for _ in range(4)]  # A empties after its second call
    for n in range(3):
        scheduler.push("A", 10 + n)  # A turns active again
    order += [scheduler.pop() for _ in range(7)]
    assert [task.key if task else None for task in order] == ["A", "B"] * 5 + ["B"]


def test_signal_wakes_one_subscribed_waiter_the_longest_waiting() -> None:
    """A cancelled waiter passes its wake-up on to one other waiter, not to all of them."""
    storage = InMemoryStorage()
    woken: List[str] = []
    for name in ("first", "second", "third"):
        assert storage.subscribe(0.0, lambda name=name: woken.append(name)) == (False, None)
    storage.signal()
    assert woken == ["first"]
    storage.signal()
    assert woken == ["first", "second"]
    storage.push(task("a"))  # a call waits: one more waiter is woken
    assert woken == ["first", "second", "third"]


def pusher(storage: InMemoryStorage, task_id: str, after: float) -> threading.Thread:
    """A thread that pushes ``task_id`` once ``after`` seconds passed and a waiter sleeps."""

    def push() -> None:
        deadline = time.monotonic() + 10.0
        while not storage._sleepers and time.monotonic() < deadline:
            time.sleep(0.001)  # the waiter is not asleep yet: nothing to await from outside
        time.sleep(after)
        storage.push(task(task_id))

    thread = threading.Thread(target=push)
    thread.start()
    return thread


@pytest.mark.parametrize("timeout", [None, 0.5, 30.0])
def test_wait_sleeps_until_a_push_from_another_thread(timeout: object) -> None:
    storage = InMemoryStorage()
    thread = pusher(storage, "a", 0.02)
    assert storage.wait(0.0, timeout) is True  # type: ignore[arg-type]
    thread.join()


def test_wait_answers_false_not_none_when_its_timeout_passes() -> None:
    storage = InMemoryStorage()
    assert storage.wait(0.0, 0.02) is False
    assert storage.wait(0.0, 0.0) is False and storage.wait(0.0, -1.0) is False


def test_wait_capped_by_a_lease_deadline_answers_true_when_it_passes() -> None:
    """Nothing waits, a lease ends 0.02 s on: the wait ends then with True (the call is runnable)."""
    storage = InMemoryStorage()
    storage.push(task("a"))
    assert storage.pop(0.0, 0.02).task is not None
    started = time.monotonic()
    assert storage.wait(0.0, 30.0) is True
    assert time.monotonic() - started < 15.0  # capped at the deadline, not the 30 s timeout
    assert storage.wait(0.02, 30.0) is True  # due now: no sleep at all


def test_a_push_wakes_one_sleeping_thread_not_all() -> None:
    storage = InMemoryStorage()
    answers: List[bool] = []
    threads = [threading.Thread(target=lambda: answers.append(storage.wait(0.0, 1.0))) for _ in range(2)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10.0
    while storage._sleepers < 2 and time.monotonic() < deadline:
        time.sleep(0.001)  # both asleep before the push
    storage.push(task("a"))
    for thread in threads:
        thread.join()
    assert sorted(answers) == [False, True]  # one woken by the push, the other timed out


def test_extend_to_an_earlier_deadline_wakes_waiters_sleeping_past_it() -> None:
    storage = InMemoryStorage()
    storage.push(task("a"))
    assert storage.pop(0.0, 100.0).task is not None
    woken: List[str] = []
    assert storage.subscribe(1.0, lambda: woken.append("w")) == (False, 99.0)
    assert storage.subscribe(99.5, lambda: woken.append("late")) == (False, 0.5)  # not due yet
    assert storage.extend("a", 200.0)  # later: nobody sleeps past it
    assert woken == []
    assert storage.extend("a", 50.0)  # earlier than every other deadline: recompute the sleep
    assert woken == ["w", "late"]


def test_extend_moves_the_deadline_of_the_token_the_call_holds() -> None:
    """The sweep retires a held token at its call's lease deadline, the extended one."""
    policy = WakeupPolicy(max_wakeups=4, ttl=1000.0)
    storage = InMemoryStorage()
    token = storage.push(task("a"), wakeups=policy)[0]
    assert storage.pop(0.0, 10.0, token=token, wakeups=policy).task is not None
    assert storage.extend("a", 30.0)
    storage.sweep_wakeups(20.0, policy)  # past the first deadline, before the extended one
    assert storage.wakeup_status().held == 1
    storage.sweep_wakeups(30.0, policy)
    assert storage.wakeup_status().held == 0


def test_release_token_of_a_token_still_in_flight_passes_nothing_on() -> None:
    """Only a held token can be handed back: one in flight stays where it is."""
    policy = WakeupPolicy(max_wakeups=4, ttl=100.0)
    storage = InMemoryStorage()
    first = storage.push(task("a"), wakeups=policy)[0]
    storage.push(task("b"), wakeups=policy)
    storage.push(task("c"))  # three wait, two tokens travel
    assert storage.release_token(first, 1.0, policy) == []
    assert storage.wakeup_status().in_flight == 2
