"""Delayed calls on Dramatiq (``delay=``, in milliseconds), next to the same plain messages (issue 15).

Real RedisBroker, Results and GroupCallbacks on Redis, a real
``dramatiq.Worker``. A delayed call is stored at once, runs no earlier than
asked, holds no worker thread while it waits, and then takes its fair turn.
"""

from __future__ import annotations

import json
import time
from typing import Any, Iterator, List, Tuple

import dramatiq
import pytest
import redis
from dramatiq import group, pipeline
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import GroupCallbacks
from dramatiq.rate_limits.backends import RedisBackend as RateLimiterBackend
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend
from ranch_dramatiq import Ranch, lru_actor

pytestmark = pytest.mark.redis
TIMEOUT_MS = 20_000


@pytest.fixture
def real(redis_url: str) -> Iterator[Tuple[RedisBroker, redis.Redis, Any]]:
    """A broker with Results, GroupCallbacks and Ranch; ``stamp`` records its value and start time."""
    broker = RedisBroker(url=redis_url)
    broker.add_middleware(Results(backend=RedisBackend(url=redis_url)))
    broker.add_middleware(GroupCallbacks(RateLimiterBackend(url=redis_url)))
    broker.add_middleware(Ranch(lease_seconds=10, sweep_interval=0.5))
    client = redis.Redis.from_url(redis_url)

    @lru_actor(broker=broker, store_results=True, max_retries=0)
    def stamp(x: int, seconds: float = 0.0) -> int:
        client.rpush("stamps", json.dumps([x, time.time()]))
        time.sleep(seconds)
        return x

    previous = dramatiq.get_broker()
    dramatiq.set_broker(broker)
    try:
        yield broker, client, stamp
    finally:
        dramatiq.set_broker(previous)
        client.close()
        broker.close()


def started(client: redis.Redis) -> List[Tuple[int, float]]:
    """[(x, start time)] of the ``stamp`` calls, in start order."""
    return [tuple(json.loads(raw)) for raw in client.lrange("stamps", 0, -1)]  # type: ignore[misc]


def test_delay_runs_no_earlier_than_asked_like_a_plain_message(real: Any, run_worker: Any) -> None:
    broker, client, stamp = real
    asked = time.time()
    delayed = stamp.lru_send_with_options("k", (1,), delay=800)
    plain = stamp.send_with_options(args=(2,), delay=800)
    status = stamp.get_system_status()
    assert (status["delayed"], status["backlog_size"]) == (1, 0)
    assert stamp.get_client_metadata("k")["delayed_tasks"] == 1
    with run_worker(broker, threads=2):
        assert delayed.get_result(block=True, timeout=TIMEOUT_MS) == 1
        assert plain.get_result(block=True, timeout=TIMEOUT_MS) == 2
    for x, when in started(client):
        assert when >= asked + 0.8 - 0.05, f"call {x} ran {asked + 0.8 - when:.3f} s early"
    assert stamp.get_system_status()["delayed"] == 0


def test_group_and_pipeline_run_with_delay_store_delayed_calls(real: Any, run_worker: Any) -> None:
    broker, client, stamp = real
    asked = time.time()
    grouped = group([stamp.lru_message("g", n) for n in range(10)], broker=broker).run(delay=600)
    assert stamp.get_system_status()["delayed"] == 10  # one bulk submit, none runnable yet
    piped = pipeline([stamp.lru_message("p", 5), stamp.lru_message("p")], broker=broker).run(delay=600)
    with run_worker(broker, threads=2):
        assert list(grouped.get_results(block=True, timeout=TIMEOUT_MS)) == list(range(10))
        assert piped.get_result(block=True, timeout=TIMEOUT_MS) == 5
    assert all(when >= asked + 0.6 - 0.05 for _, when in started(client))
    assert int(stamp.get_client_metadata("p")["served_total"]) == 2


def test_a_delayed_call_holds_no_thread_and_takes_its_fair_turn_when_due(real: Any, run_worker: Any) -> None:
    broker, client, stamp = real
    bulk = stamp.lru_send_many("bulk", [((n, 0.05), None) for n in range(30)])
    due = time.time() + 0.5
    late = stamp.lru_send_with_options("late", (99,), delay=500)
    with run_worker(broker, threads=1):
        assert late.get_result(block=True, timeout=TIMEOUT_MS) == 99
        for message in bulk:
            message.get_result(block=True, timeout=TIMEOUT_MS)
    runs = started(client)  # x == 99: the delayed call of key "late"; others: key "bulk"
    late_start = next(when for x, when in runs if x == 99)
    assert late_start >= due - 0.05
    assert any(when < due for x, when in runs if x != 99)  # the thread ran bulk calls meanwhile
    between = [x for x, when in runs if x != 99 and due <= when < late_start]
    assert len(between) <= 1, f"{len(between)} bulk calls started between its due time and its start"


def test_bad_delays_raise_and_store_nothing(real: Any) -> None:
    broker, client, stamp = real
    for delay, kind in [("soon", TypeError), (float("nan"), TypeError), (-1, ValueError), (1e15, ValueError)]:
        with pytest.raises(kind, match="delay must be"):
            stamp.lru_send_with_options("k", (1,), delay=delay)
        with pytest.raises(kind, match="delay must be"):
            broker.enqueue(stamp.lru_message("k", 1), delay=delay)
    with pytest.raises(TypeError, match="delay="):
        stamp.lru_message_with_options("k", (1,), delay=10)
    assert client.dbsize() == 0
    stamp.lru_send_with_options("k", (1,), delay=0)  # no delay: it waits at once
    assert stamp.get_system_status()["backlog_size"] == 1
