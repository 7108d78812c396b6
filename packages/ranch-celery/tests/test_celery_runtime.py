"""``lru_task(app, cost="runtime")``: a real Celery worker (in this process, memory://
broker, in-memory storage) charges each key its calls' run time, so a key of slow
calls no longer gets as many turns as a key of fast ones."""

from __future__ import annotations

import time
import uuid
from typing import Any, List

import pytest
from celery import Celery
from ranch_celery import lru_task
from ranch_celery.inprocess import in_process_worker
from ranch_core import LRUKeyMetadata
from ranch_core.errors import BacklogConflict


def _app() -> Celery:
    app = Celery("rttest", broker="memory://", backend="cache+memory://", set_as_current=False)
    app.conf.update(
        broker_transport_options={"polling_interval": 0.005},
        task_default_queue=f"ranch-rt-{uuid.uuid4().hex[:8]}",
        worker_prefetch_multiplier=1,
    )
    return app


def _first_turns(cost: str) -> List[str]:
    app = _app()
    order: List[str] = []

    @lru_task(app, shared=False, bind=True, name=f"rt.job.{cost}", cost=cost)
    def job(self: Any, seconds: float) -> None:
        order.append(self.request.lru_key)
        time.sleep(seconds)

    results = [
        job.lru_delay(key, seconds) for _ in range(10) for key, seconds in (("slow", 0.25), ("fast", 0.0))
    ]
    with in_process_worker(app, hostname=f"rt-{cost}@test"):
        for result in results:
            result.get(timeout=30)
    return order[:10]


def test_runtime_cost_gives_fast_calls_more_turns_than_slow_ones() -> None:
    # By count, one worker alternates the keys; by run time, a 250 ms call of "slow"
    # costs as much as dozens of "fast" calls, so "fast" takes nearly every early turn.
    # (A "fast" call's run time is measured from pop to finish: under load it has
    # reached 50 ms, so "slow" sleeps long enough to stay the dearer key.)
    assert _first_turns("calls").count("slow") == 5
    runtime = _first_turns("runtime")
    assert runtime.count("slow") <= 3, runtime


def test_cost_is_checked_and_belongs_to_the_backlog() -> None:
    app = _app()
    for bad, error in (("time", ValueError), (1, TypeError)):
        with pytest.raises(error, match="cost"):
            lru_task(app, shared=False, cost=bad)

    def weigh(key: str, meta: LRUKeyMetadata) -> float:
        return 1.0

    with pytest.raises(ValueError, match="weight_function"):
        lru_task(app, shared=False, cost="runtime", weight_function=weigh)

    @lru_task(app, shared=False, name="rt.a", backlog="shared", cost="runtime")
    def a() -> None: ...

    with pytest.raises(BacklogConflict, match="cost"):

        @lru_task(app, shared=False, name="rt.b", backlog="shared", cost="calls")
        def b() -> None: ...
