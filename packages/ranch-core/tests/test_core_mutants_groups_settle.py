"""A group parked by its rate wakes a lone subscriber, a pair's delayed calls count toward its
own backlog limit, and a call whose ``not_before`` is its enqueue time is not delayed: corners
the other tests left unasserted (tests from the mutation run of the core with group controls,
over ``parking.py``, ``memory.py`` and ``delayed.py``).
"""

from __future__ import annotations

from typing import List, Optional

import pytest
from ranch_core import BacklogFull, InMemoryStorage
from ranch_core.backends import controls
from ranch_core.keys import Key
from ranch_core.models import ScheduledTask, WakeupPolicy
from ranch_core_teststeps import rated

A: Key = ("g", "a")
POLICY = WakeupPolicy(max_wakeups=4, ttl=60.0)


def task(task_id: str, key: Key = "g", not_before: Optional[float] = None, at: float = 0.0) -> ScheduledTask:
    return ScheduledTask(task_id, key, 1, at, None, not_before=not_before)


def test_a_subscriber_is_woken_when_a_push_parks_a_group_by_its_rate() -> None:
    # KeyControlSteps._settle_group: group "g" limited to 1/s (a string key's controls are its
    # group's) serves its one call at 0 and is idle with an empty bucket until 1.0. The
    # subscriber (no thread sleeps) sleeps to the lease's deadline (60); the push parks the
    # group until 1.0 and must wake it to shorten its sleep.
    storage = InMemoryStorage()
    storage.set_control("g", controls.RATE_LIMIT, rated("1/s"), 0.0)
    storage.push(task("a"))
    popped = storage.pop(0.0, 60.0).task
    assert popped is not None and popped.task_id == "a"
    woken: List[str] = []
    assert storage.subscribe(0.0, lambda: woken.append("w")) == (False, 60.0)
    storage.push(task("b"))
    assert woken == ["w"]
    result = storage.pop(0.5, 60.0)
    assert result.task is None and result.retry_at == 1.0


def test_a_pairs_delayed_calls_count_toward_its_own_backlog_limit() -> None:
    # InMemoryStorage._check_backlog: a pair holds its waiting calls plus its delayed ones.
    storage = InMemoryStorage()
    storage.set_control(A, controls.MAX_BACKLOG, 2, 0.0)
    storage.push(task("now", A))
    storage.push(task("later", A, not_before=30.0))
    with pytest.raises(BacklogFull) as caught:
        storage.push(task("more", A))
    assert (caught.value.key, caught.value.limit) == (A, 2)
    assert str(caught.value) == "key ('g', 'a') holds 2 waiting calls, its max_backlog is 2: 1 more refused"


def test_a_call_due_at_its_enqueue_time_waits_at_once_and_gets_a_token() -> None:
    # delayed_until: a not_before that is not after enqueued_at is no delay, so the push
    # makes the call wait at once and mints a token for it (a delayed call gets none
    # under a policy that does not defer).
    storage = InMemoryStorage()
    tokens = storage.push(task("a", not_before=5.0, at=5.0), wakeups=POLICY)
    assert len(tokens) == 1
    popped = storage.pop(5.0, 60.0, token=tokens[0], wakeups=POLICY).task
    assert popped is not None and popped.task_id == "a"


def test_a_batch_mixing_due_times_is_refused_with_its_reason() -> None:
    # delayed_until: the error names what the batch got wrong.
    storage = InMemoryStorage()
    batch = [task("a", not_before=10.0), task("b", not_before=20.0)]
    with pytest.raises(ValueError, match=r"^push_many takes tasks of one not_before$"):
        storage.push_many(batch)
    assert storage.pop(30.0, 60.0).task is None
