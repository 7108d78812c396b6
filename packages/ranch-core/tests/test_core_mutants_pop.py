"""``InMemoryStorage._pop`` when a key or group still in the heap is blocked by the time it is
popped (a default changed since it was placed: defaults apply at a key's next step), and a
call that expired at the head of a rate-limited key: corners the other tests left unasserted
(tests from the mutation run of the core with group controls, over ``memory.py``). Defaults
apply to groups and to pairs, so each group here has a control of its own to keep the default
to its member.
"""

from __future__ import annotations

from typing import Optional

import pytest
from ranch_core import InMemoryStorage
from ranch_core.backends import controls
from ranch_core.keys import Key
from ranch_core.models import ScheduledTask
from ranch_core_teststeps import popped_id, rated

MEMBER: Key = ("g", "m")


def task(task_id: str, key: Key = MEMBER, expires_at: Optional[float] = None) -> ScheduledTask:
    return ScheduledTask(task_id, key, 1, 0.0, expires_at)


def member_and_other_group(name: str, value: object, default: object = None) -> InMemoryStorage:
    """A member of "g" with a1, a2 and a string key "h" with h1, h2, each served once at 0
    ("g" first, by name): both groups at pass 1, "g" served earlier, so "g" is the top.
    Both groups have ``name`` set to ``value`` of their own, so the default of ``name``
    (``default`` here) only holds the member."""
    storage = InMemoryStorage()
    for group in ["g", "h"]:
        storage.set_control(group, name, value, 0.0)
    if default is not None:
        storage.set_control(None, name, default, 0.0)
    storage.push_many([task("a1"), task("a2")])
    storage.push_many([task("h1", "h"), task("h2", "h")])
    assert popped_id(storage, 0.0) == "a1"
    assert popped_id(storage, 0.0) == "h1"
    return storage


def test_a_member_capped_by_a_default_lowered_while_it_was_ready_is_skipped_for_the_next_group() -> None:
    # InMemoryStorage._pop: the member, the top of the top group, is taken out of its
    # group's heap at the pop (its group is not capped), and the pop goes on to "h".
    storage = member_and_other_group(controls.CONCURRENCY_LIMIT, 10)
    storage.set_control(None, controls.CONCURRENCY_LIMIT, 1, 0.0)
    assert popped_id(storage, 0.0) == "h2"
    assert storage.pop(0.0, 60.0).task is None  # "a2" waits for "a1" to end
    assert storage.ack("a1")
    assert popped_id(storage, 0.0) == "a2"


def test_a_member_held_by_a_default_rate_slowed_while_it_was_ready_is_parked_until_then() -> None:
    # InMemoryStorage._pop: the member is parked, under its key, at the time the new default
    # gives, and the pop goes on to "h". "a1" left one call of the member's burst of 2, so
    # the member was still ready.
    storage = member_and_other_group(controls.RATE_LIMIT, rated("100/s", 10), rated("1/s", 2))
    storage.set_control(None, controls.RATE_LIMIT, rated("0.1/s"), 0.0)
    # At 0.5 half a call is owed; at 0.1/s that is 5 s more: "a2" may start at 5.5.
    assert popped_id(storage, 0.5) == "h2"
    result = storage.pop(1.0, 60.0)
    assert result.task is None and result.retry_at == pytest.approx(5.5)
    assert storage.pop(5.0, 60.0).task is None
    assert popped_id(storage, 5.5) == "a2"


def test_a_group_held_by_a_default_rate_slowed_while_it_was_queued_is_parked_until_then() -> None:
    # InMemoryStorage._pop: the group is parked at the pop, at the time the new default gives.
    storage = InMemoryStorage()
    storage.set_control(None, controls.RATE_LIMIT, rated("1/s", 2), 0.0)
    storage.push_many([task("a", "g"), task("b", "g")])
    assert popped_id(storage, 0.0) == "a"  # one call left in the burst: still queued
    storage.set_control(None, controls.RATE_LIMIT, rated("0.1/s"), 0.0)
    # At 0.5 half a call is owed; at 0.1/s that is 5 s more.
    result = storage.pop(0.5, 60.0)
    assert result.task is None and result.retry_at == pytest.approx(5.5)
    assert storage.pop(5.0, 60.0).task is None
    assert popped_id(storage, 5.5) == "b"


def test_a_call_expired_at_the_head_of_a_rate_limited_key_is_dropped_and_the_next_served() -> None:
    # InMemoryStorage._pop settles the key (and its group, whose bucket was charged) at the
    # pop's time after dropping the expired call.
    storage = InMemoryStorage()
    storage.set_control("k", controls.RATE_LIMIT, rated("1/s", 2), 0.0)
    storage.push(task("a", "k"))
    assert popped_id(storage, 0.0) == "a"
    storage.push_many([task("b", "k", expires_at=0.5), task("c", "k")])
    result = storage.pop(1.0, 60.0)
    assert [t.task_id for t in result.expired] == ["b"]
    assert result.task is not None and result.task.task_id == "c"
