"""Per-key controls, delayed calls and deferred wake-ups of the in-memory storage, and the
runtime-cost requeue: corners the other tests left unasserted (tests from the mutation run
of 2026-11-30, the first over ``controls.py``, ``parking.py``, ``delayed.py`` and ``waiters.py``).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, List, Optional, Tuple

import pytest
from ranch_core import FairScheduler, InMemoryStorage
from ranch_core.backends import controls
from ranch_core.models import Finished, RuntimeCost, ScheduledTask, WakeupPolicy
from ranch_core.validation import check_rate_limit

DEFER = WakeupPolicy(max_wakeups=8, ttl=60.0, defer=True)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def task(task_id: str, key: str = "k", at: float = 0.0, not_before: object = None) -> ScheduledTask:
    return ScheduledTask(task_id, key, 1, at, None, not_before)  # type: ignore[arg-type]


def test_a_control_without_a_default_or_unknown_is_named_in_the_error() -> None:
    with pytest.raises(ValueError, match=r"^paused has no default$"):
        controls.Defaults().set(controls.PAUSE, True)
    with pytest.raises(ValueError, match=r"^unknown control 'bogus'$"):
        controls.KeyControls().set("bogus", 1)


def test_a_default_concurrency_limit_alone_caps_every_key() -> None:
    scheduler = FairScheduler(default_concurrency_limit=1)
    scheduler.push_many("k", [1, 2])
    first = scheduler.pop()
    assert first is not None
    assert scheduler.pop() is None  # capped by the default
    scheduler.ack(first.task_id)
    assert scheduler.pop() is not None


def rate_limited_with_token(keep: bool) -> Tuple[InMemoryStorage, str]:
    """A key whose bucket is empty at 0.2 with a call waiting, and a token in flight or kept."""
    storage = InMemoryStorage()
    storage.set_control("k", controls.RATE_LIMIT, check_rate_limit("1/s", 2 if keep else 1), 0.0)
    [token] = storage.push_many([task("a"), task("b")], wakeups=DEFER)
    if keep:
        storage.push(task("c"))
        assert storage.pop(0.0, 60.0, token=token, wakeups=DEFER).task is not None
        finished = storage.finish("a", 0.1, token=token, wakeups=DEFER, keep_token=True)
        assert finished.kept and storage.wakeup_status().held == 1
    assert storage.pop(0.1, 60.0).task is not None  # without the token: the bucket is empty
    return storage, token


@pytest.mark.parametrize("keep", [False, True], ids=["in_flight", "kept"])
def test_a_deferred_token_is_neither_in_flight_nor_held(keep: bool) -> None:
    storage, token = rate_limited_with_token(keep)
    before = storage.wakeup_status()
    result = storage.pop(0.2, 60.0, token=token, wakeups=DEFER)
    assert result.task is None and result.deferred and result.retry_at is not None
    after = storage.wakeup_status()
    assert after.in_flight == before.in_flight - (0 if keep else 1)
    assert after.held == before.held - (1 if keep else 0)
    assert after.deferred == 1


def test_a_push_of_delayed_calls_due_when_a_token_is_already_deferred_mints_none() -> None:
    storage = InMemoryStorage()
    assert len(storage.push(task("a", not_before=5.0), wakeups=DEFER)) == 1
    assert storage.push(task("b", key="other", not_before=5.0), wakeups=DEFER) == []  # same time
    assert storage.push(task("c", not_before=6.0), wakeups=DEFER) == []  # later: the first serves it
    assert len(storage.push(task("d", not_before=4.0), wakeups=DEFER)) == 1  # sooner
    assert storage.wakeup_status().deferred == 2


def test_a_requeue_charged_by_run_time_stores_the_new_payload_and_learns_the_run() -> None:
    clock = Clock()
    scheduler = FairScheduler(cost="runtime", clock=clock)
    scheduler.push("k", "first try")
    popped = scheduler.pop()
    assert popped is not None
    clock.now += 2.0
    assert scheduler.requeue(popped, "second try")
    assert scheduler.run_estimate("k") == 2.0  # the run that ended was measured
    again = scheduler.pop()
    assert again is not None and again.payload == "second try"


def test_an_ack_after_a_sweep_settles_its_key_at_the_sweeps_time() -> None:
    storage = InMemoryStorage()
    storage.set_control("k", controls.RATE_LIMIT, check_rate_limit("1/s"), 0.0)
    storage.push_many([task("a"), task("b")])
    assert storage.pop(0.0, 60.0).task is not None  # "b" waits for the bucket: parked until 1.0
    storage.sweep_wakeups(5.0, DEFER)  # "b" is back
    assert storage.ack("a")  # settled at 5.0, the latest time given
    result = storage.pop(5.0, 60.0)
    assert result.task is not None and result.task.task_id == "b"


def test_a_deferred_token_that_leases_a_call_is_held_not_deferred() -> None:
    storage = InMemoryStorage()
    [token] = storage.push(task("a", not_before=5.0), wakeups=DEFER)
    assert storage.wakeup_status().deferred == 1
    result = storage.pop(5.0, 60.0, token=token, wakeups=DEFER)
    assert result.task is not None and result.task.task_id == "a"
    status = storage.wakeup_status()
    assert (status.in_flight, status.held, status.deferred) == (0, 1, 0)


def test_a_deferred_token_that_finds_nothing_is_retired() -> None:
    storage = InMemoryStorage()
    [token] = storage.push(task("a", not_before=5.0), wakeups=DEFER)
    assert storage.revoke("a") is not None
    result = storage.pop(5.0, 60.0, token=token, wakeups=DEFER)
    assert result.task is None and not result.deferred
    assert storage.wakeup_status().outstanding == 0


def test_a_deferred_token_due_at_a_sweep_travels_a_ttl_from_its_due_time() -> None:
    storage = InMemoryStorage()
    [token] = storage.push(task("a", not_before=5.0), wakeups=DEFER)
    assert storage.sweep_wakeups(5.0, DEFER) == []  # it is in flight now, and serves "a"
    status = storage.wakeup_status()
    assert (status.in_flight, status.deferred) == (1, 0)
    assert storage.sweep_wakeups(5.0 + DEFER.ttl - 1, DEFER) == []  # not lost before its ttl
    assert storage.wakeup_status().in_flight == 1
    result = storage.pop(5.0 + DEFER.ttl - 1, 60.0, token=token, wakeups=DEFER)
    assert result.task is not None and result.task.task_id == "a"


def test_a_plain_ack_ends_a_charged_lease_while_another_is_still_charged() -> None:
    storage = InMemoryStorage()
    storage.push(task("a", key="x"))
    storage.push(task("b", key="y"))
    runtime = RuntimeCost()
    assert storage.pop(0.0, 60.0, runtime=runtime).task is not None
    assert storage.pop(0.0, 60.0, runtime=runtime).task is not None
    assert storage.ack("a")  # no time given: its estimate stands, "b" keeps its charge
    assert storage.finish("b", 3.0).done
    assert storage.run_estimate("y") == 3.0 and storage.run_estimate("x") is None


def test_a_revoked_delayed_call_leaves_no_due_time_behind() -> None:
    storage = InMemoryStorage()
    storage.push(task("a", not_before=5.0))
    storage.push(task("b", key="other", not_before=7.0))
    assert storage.revoke("a") is not None
    assert storage.pop(1.0, 60.0).retry_at == 7.0  # the tombstone of "a" (due 5.0) is dropped
    storage.push(task("a", not_before=9.0))  # the same id again, due later
    assert storage.pop(1.0, 60.0).retry_at == 7.0
    assert storage.revoke("b") is not None
    assert storage.pop(1.0, 60.0).retry_at == 9.0


def test_a_revoked_or_purged_delayed_call_keeps_its_enqueue_time() -> None:
    storage = InMemoryStorage()
    storage.push(task("a", at=2.0, not_before=5.0))
    storage.push(task("b", at=3.0, not_before=6.0))
    revoked = storage.revoke("a")
    assert revoked is not None and revoked.enqueued_at == 2.0
    [purged] = storage.purge_key("k", 10)
    assert purged.task_id == "b" and purged.enqueued_at == 3.0


def test_a_storage_without_run_time_costs_or_controls_is_named() -> None:
    class Plain:
        pass

    with pytest.raises(TypeError, match=r"^Plain cannot charge by run time"):
        FairScheduler(Plain(), cost="runtime")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^Plain has no per-key controls"):
        FairScheduler(Plain()).pause_key("k")  # type: ignore[arg-type]


def test_a_push_of_delayed_calls_wakes_a_thread_waiting_with_a_longer_timeout() -> None:
    scheduler = FairScheduler()
    got: List[Optional[ScheduledTask]] = []
    waiter = threading.Thread(target=lambda: got.append(scheduler.pop(timeout=10)))
    waiter.start()
    time.sleep(0.05)  # let the waiter sleep first (a push before it would be seen anyway)
    started = time.monotonic()
    scheduler.push("k", "later", delay=0.1)
    waiter.join(15)
    assert got and got[0] is not None and got[0].payload == "later"
    assert time.monotonic() - started < 5.0  # woken to shorten its sleep, not at its timeout


def test_purge_takes_delayed_calls_earliest_due_first() -> None:
    storage = InMemoryStorage()
    storage.push(task("z", not_before=5.0))
    storage.push(task("a", not_before=6.0))
    assert [t.task_id for t in storage.purge_key("k", 1)] == ["z"]
    assert [t.task_id for t in storage.purge_key("k", 1)] == ["a"]


def test_revoke_and_purge_log_each_call_and_the_total(caplog: pytest.LogCaptureFixture) -> None:
    scheduler = FairScheduler()
    scheduler.push_many("k", [1, 2, 3], task_ids=["t1", "t2", "t3"])
    with caplog.at_level(logging.DEBUG, logger="ranch_core"):
        assert scheduler.revoke_call("t1")
        assert scheduler.purge_key("k") == 2
    assert [r.getMessage() for r in caplog.records] == [
        "ranch: revoked waiting call t1 of key 'k'",
        "ranch: revoked waiting call t1 of key 'k'",
        "ranch: purged waiting call t2 of key 'k'",
        "ranch: purged waiting call t3 of key 'k'",
        "ranch: purged 2 waiting calls of key 'k'",
    ]


def test_purge_takes_at_most_limit_calls_waiting_then_delayed() -> None:
    storage = InMemoryStorage()
    storage.push_many([task("w1"), task("w2"), task("w3")])
    storage.push(task("d1", not_before=5.0))
    storage.push(task("d2", not_before=6.0))
    assert [t.task_id for t in storage.purge_key("k", 2)] == ["w1", "w2"]
    assert [t.task_id for t in storage.purge_key("k", 2)] == ["w3", "d1"]
    assert [t.task_id for t in storage.purge_key("k", 2)] == ["d2"]
    assert storage.purge_key("k", 2) == [] and storage.purge_key("never", 2) == []


def test_purging_a_key_that_has_only_delayed_calls_leaves_the_active_count() -> None:
    storage = InMemoryStorage()
    storage.push(task("a", key="busy"))
    storage.push(task("d", key="later", not_before=5.0))
    assert storage.status().active_keys == 1
    assert [t.task_id for t in storage.purge_key("later", 10)] == ["d"]
    assert storage.status().active_keys == 1
    assert storage.pop(0.0, 60.0).task is not None


def test_metadata_of_a_key_never_seen_shows_the_defaults_in_force() -> None:
    scheduler = FairScheduler(default_concurrency_limit=2, default_rate_limit="10/s")
    meta = scheduler.metadata("never")
    assert (meta.concurrency_limit, meta.rate_limit) == (2, "10/s")


def test_finish_reports_a_failure_only_when_told() -> None:
    seen: List[bool] = []

    class Recording(InMemoryStorage):
        def finish(self, task_id: str, now: float, **kwargs: Any) -> Finished:
            seen.append(kwargs["failed"])
            return super().finish(task_id, now, **kwargs)

    scheduler = FairScheduler(Recording())
    scheduler.push_many("k", [1, 2])
    first, second = scheduler.pop(), scheduler.pop()
    assert first is not None and second is not None
    assert scheduler.finish(first.task_id).done
    assert scheduler.finish(second.task_id, failed=True).done
    assert seen == [False, True]


def test_an_ack_after_a_finish_settles_its_key_at_the_finishs_time() -> None:
    storage = InMemoryStorage()
    storage.set_control("k", controls.RATE_LIMIT, check_rate_limit("1/s"), 0.0)
    storage.push_many([task("a"), task("b"), task("c")])
    assert storage.pop(0.0, 60.0).task is not None  # "a"
    assert storage.pop(1.0, 60.0).task is not None  # "b", once the bucket refilled
    assert storage.finish("a", 5.0).done
    assert storage.ack("b")  # settled at 5.0, the latest time given
    result = storage.pop(5.0, 60.0)
    assert result.task is not None and result.task.task_id == "c"


def test_a_delayed_call_of_a_charged_rate_limited_key_joins_when_due() -> None:
    storage = InMemoryStorage()
    storage.set_control("k", controls.RATE_LIMIT, check_rate_limit("1/s"), 0.0)
    storage.push(task("a"))
    assert storage.pop(0.0, 60.0).task is not None  # the bucket is charged
    storage.push(task("b", not_before=5.0))
    result = storage.pop(5.0, 60.0)
    assert result.task is not None and result.task.task_id == "b"


def test_a_key_parked_again_by_a_slower_rate_reports_its_new_time() -> None:
    storage = InMemoryStorage()
    storage.set_control("k", controls.RATE_LIMIT, check_rate_limit("1/s"), 0.0)
    storage.push_many([task("a"), task("b")])
    assert storage.pop(0.0, 60.0).task is not None  # "b" parked until 1.0
    storage.set_control("k", controls.RATE_LIMIT, check_rate_limit("0.1/s"), 0.5)  # now until 5.5
    result = storage.pop(0.6, 60.0)
    assert result.task is None and result.retry_at == pytest.approx(5.5)
    assert storage.pop(1.0, 60.0).task is None  # the entry for 1.0 is gone
    assert storage.pop(5.5, 60.0).task is not None


def test_raising_a_limit_mints_wakeups_for_the_calls_it_lets_run() -> None:
    policy = WakeupPolicy()
    scheduler = FairScheduler()
    scheduler.set_concurrency_limit("capped", 1)
    scheduler.set_rate_limit("limited", "1/m")
    for key in ("capped", "limited"):
        scheduler.push_many(key, [1, 2])
    assert scheduler.pop() is not None and scheduler.pop() is not None
    assert scheduler.pop() is None  # both keys wait for their limit
    assert len(scheduler.set_concurrency_limit("capped", 2, wakeups=policy)) == 1
    assert len(scheduler.set_rate_limit("limited", None, wakeups=policy)) == 1


@pytest.mark.parametrize(("now", "room"), [(0.0, 2), (1.0, 2), (3.0, 3)])
def test_room_counts_the_calls_the_bucket_lets_start(now: float, room: int) -> None:
    # 0.5/s (one call per 2 s), burst 3; one call started at 0.0 charged the bucket to 2.0.
    rate = check_rate_limit("0.5/s", 3)
    assert rate is not None
    key = controls.KeyControls()
    key.set(controls.RATE_LIMIT, rate)
    key.bucket_rate, key.tat = rate, 2.0
    assert controls.room(key, controls.Defaults(), 6, now) == room


def test_room_counts_the_calls_under_the_cap_not_yet_running() -> None:
    key = controls.KeyControls()
    key.set(controls.CONCURRENCY_LIMIT, 3)
    key.running = 1
    assert controls.room(key, controls.Defaults(), 6, 0.0) == 2
    assert controls.room(key, controls.Defaults(), 1, 0.0) == 1


def test_a_faster_rate_keeps_a_debt_of_less_than_one_call() -> None:
    storage = InMemoryStorage()
    storage.set_control("k", controls.RATE_LIMIT, check_rate_limit("1/s"), 0.0)
    storage.push_many([task("a"), task("b")])
    assert storage.pop(0.0, 60.0).task is not None  # the bucket is charged until 1.0
    # At 0.5 half a call is owed; at 2/s that is 0.25 s more: "b" may start at 0.75.
    storage.set_control("k", controls.RATE_LIMIT, check_rate_limit("2/s"), 0.5)
    result = storage.pop(0.6, 60.0)
    assert result.task is None and result.retry_at == pytest.approx(0.75)
    assert storage.pop(0.75, 60.0).task is not None


def test_set_control_names_a_bad_control() -> None:
    storage = InMemoryStorage()
    with pytest.raises(ValueError, match=r"^unknown control 'bogus'$"):
        storage.set_control("k", "bogus", 1, 0.0)
    with pytest.raises(ValueError, match=r"^paused has no default$"):
        storage.set_control(None, controls.PAUSE, True, 0.0)


def test_the_parking_lot_hands_back_at_most_limit_keys_earliest_first() -> None:
    lot = controls.ParkingLot()
    for n, key in enumerate("cab"):
        lot.park(1.0 + n, key, 0)
    live = lambda key, version: True  # noqa: E731
    assert lot.due(5.0, 2, live) == ["c", "a"]
    assert lot.due(5.0, 2, live) == ["b"]


def test_a_plain_requeue_of_a_charged_call_keeps_the_estimate() -> None:
    storage = InMemoryStorage()
    storage.push(task("a"))
    popped = storage.pop(0.0, 60.0, runtime=RuntimeCost()).task
    assert popped is not None
    assert storage.requeue(popped)  # no time given: nothing is learned
    assert storage.run_estimate("k") is None


def test_a_remove_puts_a_key_whose_bucket_refilled_back_in_turn() -> None:
    storage = InMemoryStorage()
    storage.set_control("k", controls.RATE_LIMIT, check_rate_limit("1/s"), 0.0)
    storage.push_many([task("a"), task("b"), task("c")])
    assert storage.pop(0.0, 60.0).task is not None  # "b" and "c" parked until 1.0
    storage.set_control("other", controls.PAUSE, False, 2.0)  # the storage's clock moves to 2.0
    assert storage.remove("k", "c")  # settles "k" at 2.0: due again
    result = storage.pop(2.0, 60.0)
    assert result.task is not None and result.task.task_id == "b"


def test_a_released_call_leaves_no_charge_for_its_next_lease() -> None:
    storage = InMemoryStorage()
    storage.push(task("a"))
    assert storage.pop(0.0, 60.0, runtime=RuntimeCost()).task is not None
    assert storage.release("a")  # it keeps the estimate it was charged
    assert storage.pop(1.0, 60.0).task is not None  # popped by count this time
    assert storage.finish("a", 6.0, cost=5.0).done
    assert storage.run_estimate("k") is None  # nothing charged by time: nothing learned


def test_a_retry_of_a_lease_already_gone_mints_nothing() -> None:
    storage = InMemoryStorage()
    storage.push(task("waiting"))
    finished = storage.finish("gone", 1.0, requeue=task("gone"), wakeups=WakeupPolicy())
    assert not finished.done and finished.publish == ()


def test_a_retry_frees_its_capped_key_for_the_call_behind_it() -> None:
    storage = InMemoryStorage()
    storage.set_control("k", controls.CONCURRENCY_LIMIT, 1, 0.0)
    storage.push_many([task("a"), task("b")])
    popped = storage.pop(0.0, 60.0).task
    assert popped is not None and storage.pop(0.0, 60.0).task is None  # capped
    assert storage.requeue(popped)
    result = storage.pop(1.0, 60.0)
    assert result.task is not None and result.task.task_id == "b"


def test_a_key_emptied_while_parked_by_its_rate_is_parked_again_by_its_next_call() -> None:
    storage = InMemoryStorage()
    storage.set_control("k", controls.RATE_LIMIT, check_rate_limit("1/s"), 0.0)
    storage.push_many([task("a"), task("b")])
    assert storage.pop(0.0, 60.0).task is not None  # "b" parked until 1.0
    assert storage.revoke("b") is not None  # the key is empty: out of the parking lot
    storage.push(task("c", at=0.5))  # parked again, until 1.0
    assert storage.pop(0.5, 60.0).task is None
    result = storage.pop(1.0, 60.0)
    assert result.task is not None and result.task.task_id == "c"


def test_a_plain_ack_of_a_charged_call_keeps_the_estimate() -> None:
    storage = InMemoryStorage()
    storage.push(task("a"))
    assert storage.pop(0.0, 60.0, runtime=RuntimeCost()).task is not None
    assert storage.ack("a")  # no time given: nothing is learned
    assert storage.run_estimate("k") is None
