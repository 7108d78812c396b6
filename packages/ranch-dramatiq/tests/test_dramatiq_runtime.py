"""``lru_actor(cost="runtime")``: a real ``dramatiq.Worker`` (StubBroker, in-memory
storage, this process) charges each key its calls' run time, so a key of slow calls
no longer gets as many turns as a key of fast ones."""

from __future__ import annotations

import time
from contextlib import ExitStack
from typing import Any, Dict, Iterator, List

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import CurrentMessage
from ranch_core import InMemoryStorage, LRUKeyMetadata
from ranch_dramatiq import BacklogConflict, Ranch, lru_actor
from ranch_dramatiq.middleware import WAKE_UP_PREFIX
from ranch_redis import layout

TIMEOUT_MS = 20_000


@pytest.fixture
def broker() -> Iterator[StubBroker]:
    broker = StubBroker()
    broker.add_middleware(CurrentMessage())
    broker.add_middleware(Ranch(lease_seconds=5))
    previous = dramatiq.get_broker() if dramatiq.broker.global_broker is not None else None
    dramatiq.set_broker(broker)
    yield broker
    broker.close()
    if previous is not None:
        dramatiq.set_broker(previous)


def _recording_job(broker: StubBroker, cost: str, order: List[str]) -> Any:
    @lru_actor(
        broker=broker, backlog=f"rt-{cost}", cost=cost, actor_name=f"rt_{cost}", storage=InMemoryStorage()
    )
    def job(key: str, seconds: float) -> None:
        order.append(key)
        time.sleep(seconds)

    return job


def _first_turns(brokers: Dict[str, StubBroker], run_worker: Any) -> Dict[str, List[str]]:
    """The first 10 turns of 10 slow and 10 fast calls per cost, on one worker thread per
    broker (the costs run side by side: each waits out its own slow calls)."""
    orders: Dict[str, List[str]] = {cost: [] for cost in brokers}
    for cost, broker in brokers.items():
        job = _recording_job(broker, cost, orders[cost])
        for _ in range(10):
            for key, seconds in (("slow", 0.25), ("fast", 0.0)):
                job.lru_send(key, key, seconds)
    with ExitStack() as stack:
        for broker in brokers.values():
            stack.enter_context(run_worker(broker, threads=1))
        for broker in brokers.values():
            broker.join("default", timeout=TIMEOUT_MS)
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while any(len(order) < 20 for order in orders.values()) and time.monotonic() < deadline:
            time.sleep(0.01)
    assert [len(order) for order in orders.values()] == [20] * len(orders)
    return {cost: order[:10] for cost, order in orders.items()}


def test_runtime_cost_gives_fast_calls_more_turns_than_slow_ones(broker: StubBroker, run_worker: Any) -> None:
    # By count, one worker thread alternates the keys; by run time, a 250 ms call of
    # "slow" costs as much as dozens of "fast" calls, so "fast" takes nearly every early turn.
    # (Under CI load a Celery twin of this test measured a "fast" call's lease at over
    # 50 ms, so "slow" sleeps long enough to stay dearer.)
    other = StubBroker()
    other.add_middleware(CurrentMessage())
    other.add_middleware(Ranch(lease_seconds=5))
    try:
        turns = _first_turns({"calls": broker, "runtime": other}, run_worker)
    finally:
        other.close()
    assert turns["calls"].count("slow") == 5
    assert turns["runtime"].count("slow") <= 3, turns["runtime"]


def test_cost_is_checked_and_belongs_to_the_backlog(broker: StubBroker) -> None:
    def job() -> None: ...

    for bad, error in (("time", ValueError), (1, TypeError)):
        with pytest.raises(error, match="cost"):
            lru_actor(job, actor_name=f"bad_{bad}", cost=bad)

    def weigh(key: str, meta: LRUKeyMetadata) -> float:
        return 1.0

    with pytest.raises(ValueError, match="weight_function"):
        lru_actor(job, actor_name="weighed", cost="runtime", weight_function=weigh)
    lru_actor(job, actor_name="a", backlog="shared", cost="runtime")
    with pytest.raises(BacklogConflict, match="cost"):
        lru_actor(job, actor_name="b", backlog="shared", cost="calls")
    lru_actor(job, actor_name="c", backlog="shared")  # leaves it to the backlog


@pytest.mark.redis
def test_runtime_cost_on_redis_with_retries(real: Any, run_worker: Any) -> None:
    """RedisBroker and RedisStorage (the Lua steps), a real worker: the charges are settled
    at each finish, a failure and a retry included, and leave no lease or charge behind."""
    broker, _backend, client = real
    order: List[str] = []

    @lru_actor(broker=broker, cost="runtime", max_retries=1, min_backoff=10, max_backoff=20)
    def job(key: str, seconds: float) -> None:
        order.append(key)
        time.sleep(seconds)
        if key == "flaky" and client.incr("rt:flaky") == 1:
            raise ConnectionError("once")

    for _ in range(10):
        for key, seconds in (("slow", 0.25), ("fast", 0.0)):
            job.lru_send(key, key, seconds)
    job.lru_send("flaky", "flaky", 0.0)
    with run_worker(broker, threads=1):
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while len(order) < 22 and time.monotonic() < deadline:
            time.sleep(0.02)
    assert len(order) == 22, order
    assert [key for key in order if key != "flaky"][:10].count("slow") <= 3, order
    storage = job.dispatcher.scheduler.storage
    slow, fast = storage.run_estimate("slow"), storage.run_estimate("fast")
    assert slow is not None and fast is not None and slow > 0.04 > fast
    assert storage.run_estimate("flaky") is not None  # the failed run and the retry were measured
    status = job.get_system_status()
    assert status["backlog_size"] == 0 and status["leased"] == 0
    assert client.hlen(layout.runtime_charges_key(storage.namespace)) == 0
    assert client.hget(layout.stats_key(storage.namespace), "rn") == b"1"  # the pops charged by run time


# -- the charge is the actor's function, not the lease ---------------------------------------

#: Seconds the worker spends inside each call's lease but outside its function: a real
#: middleware sleeps this long in ``before_process_message`` and in ``after_process_message``.
AROUND = 0.15
#: Seconds each call's function sleeps.
BODY = 0.05
#: Slack between the function's own measure and the charge (timer and GIL under CI load).
SLACK = 0.1


class Linger(dramatiq.Middleware):
    """Holds every call ``AROUND`` seconds before and after its actor runs (not the
    wake-ups that carry the calls: that time is outside the calls' leases)."""

    def before_process_message(self, broker: Any, message: Any) -> None:
        if not message.actor_name.startswith(WAKE_UP_PREFIX):
            time.sleep(AROUND)

    def after_process_message(
        self, broker: Any, message: Any, *, result: Any = None, exception: Any = None
    ) -> None:
        if not message.actor_name.startswith(WAKE_UP_PREFIX):
            time.sleep(AROUND)


@pytest.mark.redis
def test_the_charge_is_the_functions_run_time_not_the_lease(real: Any, run_worker: Any) -> None:
    """RedisBroker and RedisStorage, a real worker: each key's run estimate is what the
    function measured of itself, not its lease (0.3 s longer); a retry now (no backoff)
    and one with a backoff settle the run that ended with its function's time too; a
    ``cost="calls"`` backlog measures nothing."""
    broker, _backend, client = real
    own: Dict[str, List[float]] = {"plain": [], "retry-now": [], "retry-later": []}

    @lru_actor(broker=broker, backlog="rt-measured", cost="runtime", max_retries=1)
    def measured(label: str) -> None:
        started = time.perf_counter()
        time.sleep(BODY)
        retry = label != "plain" and not own[label]
        own[label].append(time.perf_counter() - started)
        if retry:
            raise ConnectionError("once")

    @lru_actor(broker=broker, backlog="rt-counted")
    def counted() -> None:
        time.sleep(BODY)

    broker.add_middleware(Linger())
    measured.lru_send("plain", "plain")
    measured.lru_send_with_options("retry-now", args=("retry-now",), min_backoff=0, max_backoff=0)
    measured.lru_send_with_options("retry-later", args=("retry-later",), min_backoff=200, max_backoff=300)
    counted.lru_send("counted")
    started = time.monotonic()
    with run_worker(broker, threads=1):
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while not (
            [len(times) for times in own.values()] == [1, 2, 2]
            and measured.get_system_status()["leased"] == 0
            and counted.get_system_status()["served_total"] == 1
            and counted.get_system_status()["leased"] == 0
        ):
            assert time.monotonic() < deadline, own
            time.sleep(0.02)
    took = time.monotonic() - started
    assert took > 6 * 2 * AROUND  # the leases really were long: 6 runs, each 0.3 s around its function
    for label, times in own.items():
        expected = times[0]
        for seconds in times[1:]:  # the key's moving average, one run after the other
            expected += 0.25 * (seconds - expected)
        estimate = measured.get_client_metadata(label)["run_estimate"]
        assert estimate is not None
        assert expected <= estimate < expected + SLACK, (label, times, estimate)
        assert estimate < BODY + 2 * AROUND - SLACK  # far from what the lease took
    assert counted.get_client_metadata("counted")["run_estimate"] is None
    assert measured.get_system_status()["backlog_size"] == 0
    storage = measured.dispatcher.scheduler.storage
    assert client.hlen(layout.runtime_charges_key(storage.namespace)) == 0
