"""The scheduler's setup and its pop with a wake-up token: the errors its constructor and
``ack`` give, defaults written to a storage other schedulers already use, and a token
popped under ``cost="runtime"`` (tests from the mutation run of 2026-11-30 over the core
with group controls: ``SchedulerBase.__init__``, ``FairScheduler.__init__``, ``take`` and
``_checked_cost`` in ``scheduler.py``).
"""

from __future__ import annotations

from typing import Any, Dict, Type

import pytest
from ranch_core import FairScheduler, InMemoryStorage
from ranch_core.models import WakeupPolicy

POLICY = WakeupPolicy(max_wakeups=8, ttl=60.0)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"default_concurrency_limit": 0},
            ValueError,
            "default_concurrency_limit must be between 1 and 1099511627776, got 0",
        ),
        (
            {"default_rate_limit": 5},
            TypeError,
            "default_rate_limit must be a str such as '10/s' or None, not int",
        ),
        (
            {"cost": "runtime", "weight_function": lambda key, meta: 1.0},
            ValueError,
            "cost='runtime' takes no weight_function (not supported yet)",
        ),
    ],
    ids=["default_concurrency_limit", "default_rate_limit", "runtime_with_weight_function"],
)
def test_the_constructor_names_the_argument_it_refuses(
    kwargs: Dict[str, Any], error: Type[Exception], message: str
) -> None:
    """``FairScheduler.__init__`` names its own arguments, not the checks' defaults
    (``limit``, ``rate``); ``SchedulerBase.__init__`` says why runtime cost refuses a
    weight function."""
    with pytest.raises(error) as raised:
        FairScheduler(**kwargs)
    assert str(raised.value) == message


def test_a_measured_run_time_is_refused_when_dispatches_cost_calls() -> None:
    """``SchedulerBase._checked_cost``: ``ack(cost=...)`` needs ``cost="runtime"``."""
    scheduler = FairScheduler()
    scheduler.push("k", 1, task_id="a")
    with pytest.raises(ValueError) as raised:
        scheduler.ack("a", cost=1.0)
    assert str(raised.value) == "cost (a run time) needs cost='runtime'"
    assert scheduler.ack("a") is False  # pushed, never popped: the refused ack changed nothing
    assert len(scheduler) == 1


@pytest.mark.parametrize(
    "defaults",
    [{"default_concurrency_limit": 5}, {"default_rate_limit": "10/s"}],
    ids=["default_concurrency_limit", "default_rate_limit"],
)
def test_defaults_written_by_a_new_scheduler_leave_the_storage_a_time_for_untimed_steps(
    defaults: Dict[str, Any],
) -> None:
    """A scheduler built on a storage already in use writes its defaults at its clock's
    time (``FairScheduler.__init__``): a release, which the storage settles at the
    latest time it was given, still finds a time to check a rate-limited key at."""
    clock = Clock()
    storage = InMemoryStorage()
    worker = FairScheduler(storage, clock=clock)
    worker.set_rate_limit("k", "1/s")
    worker.push_many("k", [1, 2])
    first = worker.pop()
    assert first is not None and first.payload == 1
    FairScheduler(storage, clock=clock, **defaults)  # another worker starts
    assert worker.release(first.task_id) is True
    assert worker.pop() is None  # the bucket of "k" refills at 101.0
    clock.now = 101.0
    again = worker.pop()
    assert again is not None and again.task_id == first.task_id


def test_a_pop_with_a_token_under_runtime_cost_holds_the_token_and_fans_out() -> None:
    """``FairScheduler.take`` passes the token on with ``cost="runtime"`` too: the token
    is held by the call it served, fan-out mints more, and a stale token beyond
    ``max_wakeups`` pops nothing."""
    scheduler = FairScheduler(cost="runtime", clock=Clock())
    stored = scheduler.store("k", [1, 2, 3], wakeups=POLICY)
    [token] = stored.wakeups
    taken = scheduler.take(token, POLICY)
    assert taken.task is not None and taken.task.payload == 1
    assert len(taken.wakeups) == 2  # one token for each call still waiting
    status = scheduler.storage.wakeup_status()
    assert (status.in_flight, status.held) == (2, 1)
    full = WakeupPolicy(max_wakeups=3, ttl=60.0)  # three tokens out already
    assert scheduler.take("stale", full).task is None
    assert len(scheduler) == 2  # nothing was served
