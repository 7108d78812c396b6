"""Real RedisBroker, real RedisStorage, Results on Redis, a real ``dramatiq.Worker`` in this process."""

from __future__ import annotations

import math
from typing import Any, Iterator, List, Tuple

import pytest
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import CurrentMessage
from dramatiq.results import ResultFailure, Results
from dramatiq.results.backends import RedisBackend
from ranch_core import StorageUnavailable
from ranch_dramatiq import Ranch, lru_actor
from ranch_redis import RedisStorage
from ranch_redis.testing import free_port

pytestmark = pytest.mark.redis
TIMEOUT_MS = 15_000


@pytest.fixture
def real(redis_url: str) -> Iterator[Tuple[RedisBroker, RedisBackend, redis.Redis]]:
    broker = RedisBroker(url=redis_url)
    backend = RedisBackend(url=redis_url)
    broker.add_middleware(Results(backend=backend))
    broker.add_middleware(CurrentMessage())
    broker.add_middleware(Ranch(lease_seconds=10))
    client = redis.Redis.from_url(redis_url)
    yield broker, backend, client
    client.close()
    broker.close()


def test_storage_is_the_brokers_redis_in_its_own_namespace(real: Any) -> None:
    broker, _, client = real

    @lru_actor(broker=broker)
    def job() -> None:
        pass

    storage = job.dispatcher.scheduler.storage
    assert isinstance(storage, RedisStorage) and storage.client is broker.client
    assert storage.namespace == "dramatiq:default"  # backlog = the actor's queue
    job.lru_send("k")
    names = sorted(key.decode() for key in client.keys("*"))
    assert any(name.startswith("ranch:{dramatiq:default}:") for name in names)
    assert "dramatiq:default" in names  # the wake-up message's queue


def test_results_exceptions_and_retries_end_to_end(real: Any, run_worker: Any) -> None:
    broker, backend, client = real

    @lru_actor(broker=broker, store_results=True, max_retries=0)
    def divide(a: float, b: float) -> float:
        return a / b

    @lru_actor(broker=broker, store_results=True, max_retries=3, min_backoff=20, max_backoff=50)
    def flaky(name: str) -> str:
        message = CurrentMessage.get_current_message()
        assert message is not None
        if client.incr(f"attempts:{name}") < 3:
            raise ConnectionError("try again")
        return f"{name} after {message.options['retries']} retries"

    ok = divide.lru_send("alice", 6, b=3)
    bad = divide.lru_send("bob", 1, 0)
    retried = flaky.lru_send("carol", "carol")
    with run_worker(broker, threads=2):
        assert ok.get_result(backend=backend, block=True, timeout=TIMEOUT_MS) == 2.0
        with pytest.raises(ResultFailure) as info:
            bad.get_result(backend=backend, block=True, timeout=TIMEOUT_MS)
        assert retried.get_result(backend=backend, block=True, timeout=TIMEOUT_MS) == "carol after 2 retries"
    assert info.value.orig_exc_type == "ZeroDivisionError"
    assert flaky.get_client_metadata("carol")["served_total"] == 3
    for actor in (divide, flaky):
        status = actor.get_system_status()
        assert status["backlog_size"] == 0 and status["leased"] == 0


def test_fairness_with_one_worker_thread(real: Any, run_worker: Any) -> None:
    broker, backend, _ = real
    order: List[str] = []

    @lru_actor(broker=broker, store_results=True)
    def work(key: str) -> None:
        order.append(key)

    messages = [work.lru_send("bulk", "bulk") for _ in range(500)]
    keys = [f"key{i}" for i in range(10)]
    messages += [work.lru_send(key, key) for key in keys]
    with run_worker(broker, threads=1):
        for message in messages[-10:]:
            message.get_result(backend=backend, block=True, timeout=TIMEOUT_MS)
    first = order[:12]
    for key in keys:
        assert key in first, (key, first)


def test_bad_input_stores_and_sends_nothing(real: Any) -> None:
    broker, _, client = real

    @lru_actor(broker=broker)
    def job(*args: Any, **kwargs: Any) -> None:
        pass

    bad: List[Tuple[type, Any]] = [
        (ValueError, lambda: job.lru_send("")),
        (TypeError, lambda: job.lru_send(b"bytes key")),
        (ValueError, lambda: job.lru_send("k", priority_weight=0)),
        (ValueError, lambda: job.lru_send("k", priority_weight=math.nan)),
        (TypeError, lambda: job.lru_send("k", priority_weight="2")),
        (ValueError, lambda: job.lru_send("k", expiry=-0.5)),
        (TypeError, lambda: job.lru_send("k", tags={"a": 1})),
        (TypeError, lambda: job.lru_send("k", object())),
        (TypeError, lambda: job.lru_send("k", when=complex(1, 2))),
        (TypeError, lambda: job.lru_send_with_options("k", args=5)),
        (TypeError, lambda: job.lru_send_with_options("k", delay=10)),
    ]
    for kind, send in bad:
        with pytest.raises(kind):
            send()
    assert client.dbsize() == 0
    job.lru_send("k", 1)
    assert client.dbsize() > 0


def test_failed_publish_removes_the_call(redis_url: str) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    broker = RedisBroker(url=dead, socket_connect_timeout=0.5)
    storage = RedisStorage.from_url(redis_url, namespace="publish-fails")

    @lru_actor(broker=broker, storage=storage)
    def job() -> None:
        pass

    with pytest.raises(redis.ConnectionError):
        job.lru_send("k")
    assert job.get_system_status()["backlog_size"] == 0
    assert job.get_client_metadata("k")["pending_tasks"] == 0
    storage.close()
    broker.close()


def test_unreachable_storage_sends_nothing(real: Any) -> None:
    broker, _, client = real
    storage = RedisStorage.from_url(
        f"redis://127.0.0.1:{free_port()}/0", namespace="down", retries=0, socket_connect_timeout=0.5
    )

    @lru_actor(broker=broker, storage=storage)
    def job() -> None:
        pass

    with pytest.raises(StorageUnavailable):
        job.lru_send("k")
    assert job.get_system_status()["health"] == "unavailable"
    assert client.dbsize() == 0
    storage.close()
