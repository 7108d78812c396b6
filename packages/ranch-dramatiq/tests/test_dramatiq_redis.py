"""Real RedisBroker, real RedisStorage, Results on Redis, a real ``dramatiq.Worker`` in this process."""

from __future__ import annotations

import logging
import math
import os
import signal
import threading
from typing import Any, Callable, List, Optional, Tuple

import pytest
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import CurrentMessage, Middleware, MiddlewareError
from dramatiq.results import ResultFailure, Results
from dramatiq.results.backends import RedisBackend
from ranch_core import StorageUnavailable
from ranch_dramatiq import Ranch, lru_actor
from ranch_redis import RedisStorage
from ranch_redis.testing import RedisServer, free_port

pytestmark = pytest.mark.redis
TIMEOUT_MS = 15_000


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
        (TypeError, lambda: job.lru_send_with_options("k", delay="10")),
    ]
    for kind, send in bad:
        with pytest.raises(kind):
            send()
    assert client.dbsize() == 0
    job.lru_send("k", 1)
    assert client.dbsize() > 0


def test_failed_publish_leaves_the_call_stored_for_the_sweep(redis_url: str, caplog: Any) -> None:
    # DESIGN.md "Wake-ups": write the call first, then publish; a publish that
    # fails leaves the call stored and its token unclaimed, and the sweep repairs it.
    dead = f"redis://127.0.0.1:{free_port()}/0"
    broker = RedisBroker(url=dead, socket_connect_timeout=0.5)
    storage = RedisStorage.from_url(redis_url, namespace="publish-fails")

    @lru_actor(broker=broker, storage=storage)
    def job() -> None:
        pass

    job.lru_send("k")
    assert "could not publish wake-up" in caplog.text
    assert job.get_system_status()["backlog_size"] == 1
    assert job.get_client_metadata("k")["pending_tasks"] == 1
    assert storage.wakeup_status().in_flight == 1  # unclaimed: replaced by a sweep after its ttl
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
    assert job.get_system_status()["health"] is False
    assert client.dbsize() == 0
    storage.close()


def test_a_worker_without_the_actor_stores_actor_not_found(
    redis_url: str, run_worker: Any, caplog: Any
) -> None:
    """Producer and worker share one backlog per queue; the worker's code lacks one of the actors."""
    backend = RedisBackend(url=redis_url)
    producer = RedisBroker(url=redis_url)
    producer.add_middleware(Results(backend=backend))
    producer.add_middleware(Ranch(lease_seconds=10))

    @lru_actor(broker=producer, store_results=True)
    def send_email(to: str) -> str:
        return to

    @lru_actor(broker=producer, store_results=True)
    def make_report(number: int) -> int:
        return number

    worker = RedisBroker(url=redis_url)
    worker.add_middleware(Results(backend=RedisBackend(url=redis_url)))
    worker.add_middleware(Ranch(lease_seconds=10))

    @lru_actor(broker=worker, store_results=True, actor_name="send_email")
    def send_email_here(to: str) -> str:
        return to

    assert send_email.backlog == make_report.backlog == send_email_here.backlog == "default"
    mail = send_email.lru_send("acme", "ops@acme.test")
    report = make_report.lru_send("acme", 7)
    try:
        with caplog.at_level(logging.ERROR, logger="ranch_dramatiq"), run_worker(worker):
            assert mail.get_result(backend=backend, block=True, timeout=TIMEOUT_MS) == "ops@acme.test"
            with pytest.raises(ResultFailure) as info:
                report.get_result(backend=backend, block=True, timeout=TIMEOUT_MS)
    finally:
        producer.close()
        worker.close()
    assert info.value.orig_exc_type == "ActorNotFound" and "make_report" in str(info.value)
    assert f"call {report.message_id}" in caplog.text and "does not declare" in caplog.text
    status = send_email.get_system_status()
    assert status["backlog_size"] == 0 and status["leased"] == 0


class DelayQueueFull(MiddlewareError):
    """Raised by :class:`RefuseDelayed`; a ``MiddlewareError`` stops the enqueue."""


class RefuseDelayed(Middleware):
    """A broker that cannot take delayed messages (e.g. its delay queue is full)."""

    def before_enqueue(self, broker: Any, message: Any, delay: Optional[int]) -> None:
        if delay:
            raise DelayQueueFull("the delay queue refuses messages")


def test_a_retry_the_storage_cannot_take_comes_back_with_its_lease(
    redis_url: str, run_worker: Any, wait: Callable[..., Any], caplog: Any
) -> None:
    """The delayed publish fails and the frozen storage cannot take the retry either:
    the lease is kept, runs out once the storage is back, and the call runs again."""
    backend = RedisBackend(url=redis_url)
    broker = RedisBroker(url=redis_url)
    broker.add_middleware(Results(backend=backend))
    broker.add_middleware(RefuseDelayed())
    broker.add_middleware(Ranch(lease_seconds=2, sweep_interval=0.25))
    frozen = threading.Event()
    attempts: List[int] = []
    with RedisServer() as storage_server:
        assert storage_server.process is not None
        pid = storage_server.process.pid
        storage = RedisStorage.from_url(storage_server.url, namespace="frozen", retries=0, socket_timeout=0.5)

        @lru_actor(broker=broker, storage=storage, store_results=True, max_retries=3, min_backoff=10_000)
        def flaky() -> int:
            attempts.append(1)
            if len(attempts) == 1:
                os.kill(pid, signal.SIGSTOP)  # the storage freezes while the call runs
                frozen.set()
                raise RuntimeError("first attempt")
            return len(attempts)

        message = flaky.lru_send("k")
        try:
            with caplog.at_level(logging.ERROR), run_worker(broker):
                wait(frozen.is_set)
                wait(lambda: "comes back when its lease runs out" in caplog.text)
                os.kill(pid, signal.SIGCONT)
                assert message.get_result(backend=backend, block=True, timeout=TIMEOUT_MS) == 2
        finally:
            os.kill(pid, signal.SIGCONT)
            broker.close()
        assert "could not publish the delayed retry" in caplog.text
        status = flaky.get_system_status()
        assert status["backlog_size"] == 0 and status["leased"] == 0
        storage.close()
