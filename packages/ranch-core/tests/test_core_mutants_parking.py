"""Parking of a member key (a pair) by its own or the default rate, and the batch of keys and
groups one step moves back: corners the other tests left unasserted (tests from the mutation
run of the core with group controls, over ``parking.py`` and ``controls.py``: since a string
key's controls are its group's, only a pair is parked in the parking lot of keys).
"""

from __future__ import annotations

from typing import List

import pytest
from ranch_core import InMemoryStorage
from ranch_core.backends import controls
from ranch_core.keys import Key
from ranch_core.models import ScheduledTask, WakeupPolicy
from ranch_core.protocols import UNPARK_BATCH
from ranch_core_teststeps import popped_id, rated

MEMBER: Key = ("g", "m")


def task(task_id: str, key: Key = MEMBER, at: float = 0.0) -> ScheduledTask:
    return ScheduledTask(task_id, key, 1, at, None)


def test_a_member_parked_again_by_a_slower_rate_reports_its_new_time() -> None:
    # KeyControlSteps._live and _invalidate: the entry for the old time is a tombstone.
    storage = InMemoryStorage()
    storage.set_control(MEMBER, controls.RATE_LIMIT, rated("1/s"), 0.0)
    storage.push_many([task("a"), task("b")])
    assert popped_id(storage, 0.0) == "a"  # "b" parked until 1.0
    storage.set_control(MEMBER, controls.RATE_LIMIT, rated("0.1/s"), 0.5)  # now until 5.5
    result = storage.pop(0.6, 60.0)
    assert result.task is None and result.retry_at == pytest.approx(5.5)
    assert storage.pop(1.0, 60.0).task is None  # the entry for 1.0 is gone
    assert popped_id(storage, 5.5) == "b"


def test_a_member_served_sooner_by_a_faster_rate_leaves_no_earlier_time_behind() -> None:
    # KeyControlSteps._invalidate: the entry from before the change stays a tombstone after
    # the member came back and was parked again (another member's entry kept it in the lot).
    other: Key = ("h", "q")
    storage = InMemoryStorage()
    storage.set_control(MEMBER, controls.RATE_LIMIT, rated("0.1/s"), 0.0)
    storage.set_control(other, controls.RATE_LIMIT, rated("0.2/s"), 0.0)
    storage.push_many([task("a"), task("b"), task("c")])
    assert popped_id(storage, 0.0) == "a"  # "b" parked until 10.0
    storage.push_many([task("q1", other), task("q2", other)])
    assert popped_id(storage, 4.0) == "q1"  # "q2" parked until 9.0
    # At 5.0 half a call is owed; at 0.25/s that is 2 s more: "b" may start at 7.0.
    storage.set_control(MEMBER, controls.RATE_LIMIT, rated("0.25/s"), 5.0)
    assert popped_id(storage, 7.0) == "b"  # "c" parked until 11.0
    assert popped_id(storage, 9.0) == "q2"
    result = storage.pop(9.5, 60.0)
    assert result.task is None and result.retry_at == pytest.approx(11.0)
    assert storage.pop(10.0, 60.0).task is None
    assert popped_id(storage, 11.0) == "c"


def test_the_parking_lot_hands_back_keys_due_at_the_same_time_in_key_order() -> None:
    # ParkingLot.park: ties go by key, as in Redis, not by the version an entry was parked at.
    lot = controls.ParkingLot()
    lot.park(1.0, ("g", "b"), 0)
    lot.park(1.0, ("g", "a"), 1)
    lot.park(1.0, ("f", "z"), 2)
    live = lambda key, version: True  # noqa: E731
    assert lot.due(1.0, 2, live) == [("f", "z"), ("g", "a")]
    assert lot.due(1.0, 2, live) == [("g", "b")]


def test_a_purge_that_leaves_calls_of_a_rate_limited_member_keeps_it_parked() -> None:
    # KeyControlSteps._purge_member settles the member at the storage's time.
    storage = InMemoryStorage()
    storage.set_control(MEMBER, controls.RATE_LIMIT, rated("1/s"), 0.0)
    storage.push_many([task("a"), task("b"), task("c")])
    assert popped_id(storage, 0.0) == "a"  # "b" and "c" parked until 1.0
    assert [t.task_id for t in storage.purge_key(MEMBER, 1)] == ["b"]
    result = storage.pop(0.5, 60.0)
    assert result.task is None and result.retry_at == pytest.approx(1.0)
    assert popped_id(storage, 1.0) == "c"


def test_a_purge_that_leaves_calls_parks_the_member_under_the_default_rate_now_in_force() -> None:
    # KeyControlSteps._purge_member: the default changed while the member was parked
    # (defaults apply at a key's next step); the purge is that step.
    storage = InMemoryStorage()
    storage.set_control(None, controls.RATE_LIMIT, rated("1/s"), 0.0)
    storage.push_many([task("a"), task("b"), task("c")])
    assert popped_id(storage, 0.0) == "a"  # "b" and "c" parked until 1.0
    storage.set_control(None, controls.RATE_LIMIT, rated("0.1/s"), 0.0)
    assert [t.task_id for t in storage.purge_key(MEMBER, 1)] == ["b"]  # the call owed: until 10.0
    result = storage.pop(5.0, 60.0)
    assert result.task is None and result.retry_at == pytest.approx(10.0)
    assert popped_id(storage, 10.0) == "c"


def test_a_member_back_from_the_parking_lot_under_a_smaller_default_burst_is_parked_again() -> None:
    # KeyControlSteps._unpark_due settles each key it takes back under the rate in force.
    storage = InMemoryStorage()
    storage.set_control(None, controls.RATE_LIMIT, rated("1/s", 2), 0.0)
    storage.push_many([task("a"), task("b"), task("c")])
    assert popped_id(storage, 0.0) == "a"
    assert popped_id(storage, 0.0) == "b"  # the burst is spent: "c" parked until 1.0
    storage.set_control(None, controls.RATE_LIMIT, rated("1/s"), 0.0)
    # At 1.0 one call is still owed, and a burst of 1 lets none start before 2.0.
    result = storage.pop(1.0, 60.0)
    assert result.task is None and result.retry_at == pytest.approx(2.0)
    assert popped_id(storage, 2.0) == "c"


def test_one_step_moves_back_at_most_a_batch_of_keys_and_groups_keys_first() -> None:
    # KeyControlSteps._unpark_due: the groups share what the keys left of the batch.
    policy = WakeupPolicy(max_wakeups=4 * UNPARK_BATCH, ttl=60.0)
    storage = InMemoryStorage()
    keys: List[Key] = [MEMBER] + [f"k{n:03}" for n in range(UNPARK_BATCH)]
    for key in keys:  # the pair by its member's rate, each string key by its group's
        storage.set_control(key, controls.RATE_LIMIT, rated("1/s"), 0.0)
        storage.push_many([task(f"{key}-1", key), task(f"{key}-2", key)])
    for _ in keys:
        assert storage.pop(0.0, 60.0).task is not None
    assert storage.pop(0.0, 60.0).task is None  # every key and group parked until 1.0
    # A token for each runnable call: the member and the first UNPARK_BATCH - 1 groups...
    assert len(storage.sweep_wakeups(1.0, policy)) == UNPARK_BATCH
    # ...and the last group at the next step.
    assert len(storage.sweep_wakeups(1.0, policy)) == 1
    assert len(storage.sweep_wakeups(1.0, policy)) == 0
