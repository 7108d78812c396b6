"""The in-memory storage's lease and expiry paths for a member key (a pair): an ack or an
expiry that leaves the member parked by its rate, and a finish of a lease not held (tests
from the mutation run of the core with group controls, over ``memory.py``: since a string
key's controls are its group's, only a pair is parked in the parking lot of keys).
"""

from __future__ import annotations

from typing import Optional

import pytest
from ranch_core import InMemoryStorage
from ranch_core.backends import controls
from ranch_core.keys import Key
from ranch_core.models import ScheduledTask, WakeupPolicy
from ranch_core_teststeps import popped_id, rated

MEMBER: Key = ("g", "m")
POLICY = WakeupPolicy(max_wakeups=8, ttl=60.0)


def task(task_id: str, expires_at: Optional[float] = None) -> ScheduledTask:
    return ScheduledTask(task_id, MEMBER, 1, 0.0, expires_at)


def test_finishing_a_lease_not_held_mints_no_wakeup() -> None:
    # InMemoryStorage._ack: a lease not held gains no runnable call.
    storage = InMemoryStorage()
    storage.push(task("a"))  # runnable, and no token in flight for it
    finished = storage.finish("ghost", 0.0, wakeups=POLICY)
    assert not finished.done
    assert finished.publish == ()
    assert storage.wakeup_status().in_flight == 0


def test_an_ack_that_frees_a_capped_member_parks_it_by_its_rate() -> None:
    # InMemoryStorage._ack settles the member: its cap freed, its bucket still empty.
    storage = InMemoryStorage()
    storage.set_control(MEMBER, controls.CONCURRENCY_LIMIT, 1, 0.0)
    storage.set_control(MEMBER, controls.RATE_LIMIT, rated("1/s"), 0.0)
    storage.push_many([task("a"), task("b")])
    assert popped_id(storage, 0.0) == "a"  # "b" capped
    assert storage.finish("a", 0.5).done  # "b" parked by the rate until 1.0
    result = storage.pop(0.6, 60.0)
    assert result.task is None and result.retry_at == pytest.approx(1.0)
    assert popped_id(storage, 1.0) == "b"


def test_an_expiry_that_leaves_calls_parks_the_member_under_the_default_rate_now_in_force() -> None:
    # InMemoryStorage.expire: the default changed while the member was ready (defaults apply
    # at a key's next step); the expiry is that step.
    storage = InMemoryStorage()
    storage.set_control(None, controls.RATE_LIMIT, rated("1/s", 2), 0.0)
    storage.push_many([task("a"), task("b", expires_at=0.5), task("c")])
    assert popped_id(storage, 0.0) == "a"  # one call left in the burst: still ready
    storage.set_control(None, controls.RATE_LIMIT, rated("1/s"), 0.0)
    assert [t.task_id for t in storage.expire(0.5, 10)] == ["b"]  # "c" parked until 1.0
    result = storage.pop(0.6, 60.0)
    assert result.task is None and result.retry_at == pytest.approx(1.0)
    assert popped_id(storage, 1.0) == "c"
