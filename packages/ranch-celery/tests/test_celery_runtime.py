"""``lru_task(app, cost="runtime")``: a real Celery worker (in this process, memory://
broker, in-memory storage) charges each key its calls' run time, so a key of slow
calls no longer gets as many turns as a key of fast ones."""

from __future__ import annotations

import time
import uuid
from typing import Any, Dict, List

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

    # Five slow calls tell the costs apart in the first ten turns: all five by count, at most
    # three by run time (ten fast calls can fill the turns the slow key does not get).
    calls = [("slow", 0.25), ("fast", 0.0)] * 5 + [("fast", 0.0)] * 5
    results = [job.lru_delay(key, seconds) for key, seconds in calls]
    with in_process_worker(app, hostname=f"rt-{cost}@test"):
        for result in results:
            result.get(timeout=30)
    return order[:10]


def test_runtime_cost_gives_fast_calls_more_turns_than_slow_ones() -> None:
    # By count, one worker alternates the keys; by run time, a 250 ms call of "slow"
    # costs as much as dozens of "fast" calls, so "fast" takes nearly every early turn.
    # (Under load a "fast" call's run time has reached 50 ms when the lease was charged,
    # so "slow" sleeps long enough to stay the dearer key.)
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


# -- the charge is the task's function, not the lease --------------------------------------

#: Seconds the worker spends inside each call's lease but outside its function: a real
#: ``task_prerun`` and ``task_postrun`` receiver each sleep this long (Celery's tracer runs
#: them around the function, as it stores results and logs around it).
AROUND = 0.15
#: Seconds each call's function sleeps.
BODY = 0.05
#: Slack between the function's own measure and the charge (timer and GIL under CI load).
SLACK = 0.1


def _slowed_around(app: Celery, task: Any) -> None:
    """Make ``task``'s calls hold their lease ``2 * AROUND`` longer than their function runs."""
    from celery import signals

    def linger(**_: Any) -> None:
        time.sleep(AROUND)

    signals.task_prerun.connect(linger, sender=task, weak=False)
    signals.task_postrun.connect(linger, sender=task, weak=False)


@pytest.mark.redis
def test_the_charge_is_the_functions_run_time_not_the_lease(redis_url: str) -> None:
    """RedisStorage (its Lua finish takes the measured cost), a real worker thread: each
    key's run estimate is what the function measured of itself, not its lease (which is
    0.3 s longer); a retry now and a retry with a countdown settle the run that ended with
    its function's time too; a ``cost="calls"`` backlog measures nothing."""
    from ranch_redis import RedisStorage

    app = _app()
    own: Dict[str, List[float]] = {"plain": [], "retry-now": [], "retry-later": []}
    storage, counted_storage = (
        RedisStorage.from_url(redis_url, namespace=f"rt-{name}-{uuid.uuid4().hex[:8]}") for name in "ab"
    )

    @lru_task(app, shared=False, bind=True, name="rt.measured", cost="runtime", storage=storage)
    def measured(self: Any, label: str) -> str:
        started = time.perf_counter()
        time.sleep(BODY)
        retry = label != "plain" and not own[label]
        own[label].append(time.perf_counter() - started)
        if retry:
            raise self.retry(countdown=0 if label == "retry-now" else 0.2, max_retries=1)
        return label

    @lru_task(app, shared=False, name="rt.counted", backlog="counted", storage=counted_storage)
    def counted() -> None:
        time.sleep(BODY)

    _slowed_around(app, measured)
    results = [measured.lru_delay(label, label) for label in own] + [counted.lru_delay("counted")]
    started = time.monotonic()
    with in_process_worker(app, hostname="rt-measured@test"):
        for result in results:
            result.get(timeout=30)
    took = time.monotonic() - started
    assert [len(times) for times in own.values()] == [1, 2, 2]
    assert took > 5 * 2 * AROUND  # the leases really were long: 5 runs, each 0.3 s around its function
    for label, times in own.items():
        expected = times[0]
        for seconds in times[1:]:  # the key's moving average, one run after the other
            expected += 0.25 * (seconds - expected)
        estimate = measured.get_client_metadata(label)["run_estimate"]
        assert estimate is not None
        assert expected <= estimate < expected + SLACK, (label, times, estimate)
        assert estimate < BODY + 2 * AROUND - SLACK  # far from what the lease took
    assert counted.get_client_metadata("counted")["run_estimate"] is None
    status = measured.get_system_status()
    assert status["backlog_size"] == 0 and status["leased"] == 0


def test_the_timed_function_keeps_its_signature_and_direct_calls() -> None:
    """The function is timed only while Ranch runs a call of it: called directly it runs as
    written, and Celery's argument check of ``.delay()`` still sees its own signature."""
    app = _app()

    @lru_task(app, shared=False, name="rt.signature", cost="runtime")
    def add(x: int, y: int = 1) -> int:
        """Add."""
        return x + y

    assert add(2) == 3 and add.run(2, y=5) == 7
    assert add.__doc__ == "Add." and add.__name__ == "add"
    with pytest.raises(TypeError):
        add.delay(1, 2, 3)
