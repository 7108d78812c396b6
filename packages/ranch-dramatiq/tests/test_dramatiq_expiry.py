"""Expired calls stop counting without any worker, and their results hold CallExpired (issue 9, bug 5)."""

from __future__ import annotations

import time
from typing import Iterator, Tuple

import pytest
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import ResultFailure, ResultMissing, Results
from dramatiq.results.backends import RedisBackend
from ranch_dramatiq import CallExpired, Ranch, lru_actor

pytestmark = pytest.mark.redis


@pytest.fixture
def broker(redis_url: str) -> Iterator[Tuple[RedisBroker, RedisBackend]]:
    broker = RedisBroker(url=redis_url)
    backend = RedisBackend(url=redis_url)
    broker.add_middleware(Results(backend=backend))
    broker.add_middleware(Ranch(lease_seconds=10))
    yield broker, backend
    broker.close()


def test_expired_calls_leave_the_counts_and_fail_with_no_worker_running(
    broker: Tuple[RedisBroker, RedisBackend],
) -> None:
    the_broker, backend = broker

    @lru_actor(broker=the_broker, store_results=True)
    def job(n: int) -> int:
        return n

    doomed = [job.lru_send("tenant", n, expiry=0.2) for n in range(3)]
    kept = job.lru_send("tenant", 99)
    assert job.get_client_metadata("tenant")["pending_tasks"] == 4
    time.sleep(0.3)  # the expiry is wall-clock time: nothing to await but the clock

    assert job.get_client_metadata("tenant")["pending_tasks"] == 1
    status = job.get_system_status()
    assert status["backlog_size"] == 1 and status["expired_total"] == 3
    for message in doomed:
        with pytest.raises(ResultFailure) as failure:
            backend.get_result(message, block=False)
        assert failure.value.orig_exc_type == CallExpired.__name__
    with pytest.raises(ResultMissing):
        backend.get_result(kept, block=False)  # still waiting: no result yet
