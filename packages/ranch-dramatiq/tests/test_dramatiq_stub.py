"""The embedded path: StubBroker, in-memory storage, a real ``dramatiq.Worker`` in this process."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from typing import Any, Dict, Iterator, List, Tuple

import dramatiq
import pytest
from dramatiq.broker import Broker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import CurrentMessage, Middleware, TimeLimit, default_middleware
from dramatiq.results import ResultFailure, ResultMissing, Results
from dramatiq.results.backends import StubBackend
from ranch_core import InMemoryStorage
from ranch_dramatiq import BacklogConflict, CallExpired, LRUActor, Ranch, UnknownBacklog, lru_actor

TIMEOUT_MS = 10_000


def result_of(message: Any, backend: StubBackend) -> Any:
    """``message``'s result (or its failure, raised) once stored: StubBackend's blocking
    ``get_result`` backs off up to 2 s between looks, this looks every 10 ms."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while True:
        try:
            return message.get_result(backend=backend)
        except ResultMissing:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def quick_default_middleware() -> List[Middleware]:
    """Dramatiq's default middleware, TimeLimit checking its deadlines every 50 ms (not 1 s)."""
    return [TimeLimit(interval=50) if factory is TimeLimit else factory() for factory in default_middleware]


@pytest.fixture
def stub() -> Iterator[Tuple[StubBroker, StubBackend]]:
    broker = StubBroker(middleware=quick_default_middleware())
    backend = StubBackend()
    broker.add_middleware(Results(backend=backend))
    broker.add_middleware(CurrentMessage())
    broker.add_middleware(Ranch(lease_seconds=5))
    previous = dramatiq.get_broker() if dramatiq.broker.global_broker is not None else None
    dramatiq.set_broker(broker)
    yield broker, backend
    broker.close()
    if previous is not None:
        dramatiq.set_broker(previous)


def queue_size(broker: StubBroker, queue: str = "default") -> int:
    return broker.queues[queue].qsize() + broker.queues[queue + ".DQ"].qsize()


def test_lru_send_returns_the_call_and_its_result(stub: Any, run_worker: Any) -> None:
    broker, _backend = stub
    seen: List[Tuple[str, str]] = []

    @lru_actor(store_results=True)
    def add(x: int, y: int = 0) -> int:
        message = CurrentMessage.get_current_message()
        assert message is not None
        seen.append((message.message_id, message.actor_name))
        return x + y

    assert isinstance(add, LRUActor) and add.backlog == "default"  # one fairness domain per queue
    assert isinstance(add.dispatcher.scheduler.storage, InMemoryStorage)
    message = add.lru_send("tenant-1", 2, y=3)
    assert message.actor_name == "add" and message.queue_name == "default"
    assert queue_size(broker) == 1  # one wake-up, not the call itself
    wake = dramatiq.Message.decode(broker.queues["default"].queue[0])
    assert wake.actor_name == "ranch_wake_up:default" and wake.args[0] == "default"
    assert len(wake.args) == 2 and isinstance(wake.args[1], str)  # the wake-up's token id
    with run_worker(broker):
        # no backend argument: the default broker's Results backend
        assert message.get_result(block=True, timeout=TIMEOUT_MS) == 5
    assert seen == [(message.message_id, "add")]
    assert add.get_client_metadata("tenant-1")["served_total"] == 1
    assert add.get_system_status()["backlog_size"] == 0


def test_wake_up_actor_follows_the_actors_queue_and_priority(stub: Any) -> None:
    broker, _ = stub

    @lru_actor(queue_name="reports", priority=7)
    def report() -> None:
        pass

    @lru_actor(queue_name="reports")
    def other() -> None:
        pass

    for name in ("ranch_wake_up:reports", "ranch_prioritize:reports"):  # the 0.1 name still consumed
        wake_up = broker.get_actor(name)
        assert wake_up.queue_name == "reports" and wake_up.priority == 7
        assert wake_up.options["max_retries"] is None and wake_up.options["max_age"] == 0
    assert report.backlog == other.backlog == "reports" and report.dispatcher is other.dispatcher
    report.lru_send("k")
    other.lru_send("k")
    assert broker.queues["reports"].qsize() == 2 and "default" not in broker.queues
    assert report.get_client_metadata("k")["pending_tasks"] == 2


def test_actor_stays_a_plain_actor(stub: Any, run_worker: Any) -> None:
    broker, backend = stub

    @lru_actor(store_results=True)
    def double(x: int) -> int:
        return 2 * x

    assert double(4) == 8
    message = double.send(5)
    with run_worker(broker):
        assert result_of(message, backend) == 10
    assert double.get_system_status()["served_total"] == 0  # .send() bypasses the backlog


def test_exception_is_stored_under_the_call(stub: Any, run_worker: Any) -> None:
    broker, backend = stub

    @lru_actor(store_results=True, max_retries=0)
    def fail(text: str) -> None:
        raise ValueError(text)

    message = fail.lru_send("k", "no good")
    with run_worker(broker), pytest.raises(ResultFailure) as info:
        result_of(message, backend)
    assert info.value.orig_exc_type == "ValueError" and "no good" in str(info.value)
    assert fail.get_system_status()["leased"] == 0


def test_retries_go_back_through_the_backlog(stub: Any, run_worker: Any) -> None:
    broker, backend = stub
    attempts: List[int] = []

    @lru_actor(store_results=True, max_retries=3, min_backoff=20, max_backoff=40)
    def flaky() -> str:
        message = CurrentMessage.get_current_message()
        assert message is not None
        attempts.append(message.options.get("retries", 0))
        if len(attempts) < 3:
            raise RuntimeError("not yet")
        return "done"

    message = flaky.lru_send("k")
    with run_worker(broker):
        assert result_of(message, backend) == "done"
    assert attempts == [0, 1, 2]
    # each attempt was a fair dispatch of the key, not a plain re-enqueue
    assert flaky.get_client_metadata("k")["served_total"] == 3


def test_retry_with_zero_delay_requeues_at_once(stub: Any, run_worker: Any) -> None:
    broker, backend = stub
    attempts: List[int] = []

    @lru_actor(store_results=True, max_retries=5)
    def again() -> int:
        attempts.append(1)
        if len(attempts) < 2:
            raise dramatiq.Retry(delay=0)
        return len(attempts)

    message = again.lru_send("k")
    with run_worker(broker):
        assert result_of(message, backend) == 2
    assert again.get_client_metadata("k")["served_total"] == 2


def test_retry_of_a_call_the_broker_cannot_encode(stub: Any, run_worker: Any) -> None:
    broker, backend = stub
    attempts: List[int] = []

    # A 10-minute backoff: a retry that waited for it would miss get_result's timeout.
    @lru_actor(store_results=True, storage=InMemoryStorage(serializer="pickle"), min_backoff=600_000)
    def count(items: Any) -> int:
        attempts.append(1)
        if len(attempts) < 2:
            raise RuntimeError("once")
        return len(items)

    message = count.lru_send("k", {1, 2, 3})  # a set: fine for pickle, not for the broker's JSON
    with run_worker(broker):
        assert result_of(message, backend) == 3  # retried at once
    assert count.get_client_metadata("k")["served_total"] == 2


def test_retries_exhausted_and_throws(stub: Any, run_worker: Any) -> None:
    broker, backend = stub
    runs: Dict[str, int] = {"always": 0, "thrown": 0}

    @lru_actor(store_results=True, max_retries=2, min_backoff=10, max_backoff=20)
    def always() -> None:
        runs["always"] += 1
        raise RuntimeError("always")

    @lru_actor(store_results=True, throws=(KeyError,))
    def thrown() -> None:
        runs["thrown"] += 1
        raise KeyError("expected")

    first, second = always.lru_send("k"), thrown.lru_send("k")
    with run_worker(broker):
        with pytest.raises(ResultFailure, match="always"):
            result_of(first, backend)
        with pytest.raises(ResultFailure) as info:
            result_of(second, backend)
    assert info.value.orig_exc_type == "KeyError"
    assert runs == {"always": 3, "thrown": 1}


def test_expired_call_never_runs_and_fails_its_result(stub: Any, run_worker: Any) -> None:
    broker, backend = stub
    ran: List[str] = []

    @lru_actor(store_results=True)
    def job(name: str) -> str:
        ran.append(name)
        return name

    stale = job.lru_send("k", "stale", expiry=0.05)
    fresh = job.lru_send("k", "fresh")
    time.sleep(0.1)
    with run_worker(broker):
        assert result_of(fresh, backend) == "fresh"
        with pytest.raises(ResultFailure) as info:
            result_of(stale, backend)
        broker.join("default")
    assert info.value.orig_exc_type == CallExpired.__name__
    assert ran == ["fresh"]
    assert job.get_system_status()["expired_total"] == 1


def test_age_limit_and_time_limit_act_on_the_call(stub: Any, run_worker: Any) -> None:
    broker, backend = stub
    broker.emit_after("process_boot")  # starts TimeLimit's timer thread, as the CLI does
    ran: List[str] = []

    @lru_actor(store_results=True, max_retries=0, time_limit=200)
    def slow(name: str) -> None:
        ran.append(name)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            time.sleep(0.01)

    old = slow.lru_send_with_options("k", args=("old",), max_age=20)
    time.sleep(0.05)
    limited = slow.lru_send("k", "limited")
    with run_worker(broker):
        with pytest.raises(ResultFailure) as aged:
            result_of(old, backend)
        with pytest.raises(ResultFailure) as timed:
            result_of(limited, backend)
    assert aged.value.orig_exc_type == "SkipMessage"
    assert timed.value.orig_exc_type == "TimeLimitExceeded"
    assert ran == ["limited"]  # TimeLimitExceeded is raised inside the 5 s loop: no clock bound needed


def test_async_actor(run_worker: Any) -> None:
    from dramatiq.middleware import AsyncIO

    broker = StubBroker()
    backend = StubBackend()
    broker.add_middleware(Results(backend=backend))
    broker.add_middleware(AsyncIO())

    @lru_actor(broker=broker, store_results=True)
    async def fetch(x: int) -> int:
        await asyncio.sleep(0.01)
        return x + 1

    message = fetch.lru_send("k", 41)
    broker.emit_after("process_boot")  # starts AsyncIO's event loop thread, as the CLI does
    try:
        with run_worker(broker):
            assert result_of(message, backend) == 42
    finally:
        broker.emit_before("process_stop")
        broker.close()


def test_callbacks_see_the_call(stub: Any, run_worker: Any) -> None:
    broker, _ = stub
    got: List[Any] = []
    done = threading.Event()

    @dramatiq.actor
    def on_ok(message_data: Dict[str, Any], result: Any) -> None:
        got.append((message_data["message_id"], result))
        done.set()

    @lru_actor
    def value() -> int:
        return 42

    message = value.lru_send_with_options("k", on_success=on_ok)
    with run_worker(broker):
        assert done.wait(10)
    assert got == [(message.message_id, 42)]


def test_one_thread_serves_new_keys_before_the_flood(stub: Any, run_worker: Any) -> None:
    broker, _ = stub
    order: List[str] = []

    @lru_actor
    def work(key: str) -> None:
        order.append(key)

    for _ in range(200):
        work.lru_send("bulk", "bulk")
    for i in range(10):
        work.lru_send(f"user{i}", f"user{i}")
    with run_worker(broker, threads=1):
        broker.join("default")
    assert len(order) == 210
    for i in range(10):
        assert order.index(f"user{i}") < 12


def test_weights_and_weight_function(stub: Any, run_worker: Any) -> None:
    broker, _ = stub
    order: List[str] = []
    calls: List[str] = []

    def weight(key: str, meta: Any) -> float:
        calls.append(key)
        return meta.weight

    @lru_actor(weight_function=weight)
    def work(key: str) -> None:
        order.append(key)

    work.set_priority_weight("fast", 0.5)
    for _ in range(30):
        work.lru_send("fast", "fast")
        work.lru_send("slow", "slow")
    with run_worker(broker, threads=1):
        broker.join("default")
    first = order[:30]
    assert abs(first.count("fast") - 20) <= 2 and abs(first.count("slow") - 10) <= 2
    assert sorted(set(calls)) == ["fast", "slow"] and len(calls) == 60


def test_management_api(stub: Any) -> None:
    @lru_actor
    def job() -> None:
        pass

    job.lru_send("acme", tags={"plan": "gold"}, priority_weight=0.25)
    job.set_custom_data("acme", "limit", 10)
    job.add_tag("beta", "plan", "free")
    assert job.get_custom_data("acme") == {"limit": 10}
    assert job.get_custom_data("acme", "limit") == 10
    assert job.get_custom_data("acme", "missing", "d") == "d"
    assert job.get_tagged_clients("plan") == ["acme", "beta"]
    assert job.get_tagged_clients("plan", "gold") == ["acme"]
    meta = job.get_client_metadata("acme")
    assert meta["weight"] == 0.25 and meta["pending_tasks"] == 1 and meta["served_total"] == 0
    assert meta["tags"] == {"plan": "gold"} and meta["custom_data"] == {"limit": 10}
    assert meta["last_execution"] is None
    status = job.get_system_status()
    assert status["backlog_size"] == 1 and status["unique_lru_keys"] == 1 and status["health"] is True
    job.set_priority_weight("acme", 2)
    assert job.get_client_metadata("acme")["weight"] == 2.0
    with pytest.raises(ValueError):
        job.set_priority_weight("acme", 0)


def test_shared_backlog_and_conflicts(stub: Any) -> None:
    broker, _ = stub

    @lru_actor(backlog="shared")
    def first() -> None:
        pass

    @lru_actor(backlog="shared")
    def second() -> None:
        pass

    first.lru_send("k")
    second.lru_send("k")
    assert first.dispatcher is second.dispatcher
    assert first.get_client_metadata("k")["pending_tasks"] == 2
    with pytest.raises(BacklogConflict, match=r"on queue 'other'.*same queue"):

        @lru_actor(backlog="shared", queue_name="other")
        def third() -> None:
            pass

    with pytest.raises(BacklogConflict, match="another storage"):

        @lru_actor(backlog="shared", storage=InMemoryStorage())
        def fourth() -> None:
            pass

    storage = InMemoryStorage()

    @lru_actor(storage=storage, backlog="fifth")
    def fifth() -> None:
        pass

    with pytest.raises(BacklogConflict, match="already holds backlog 'fifth'"):

        @lru_actor(storage=storage, backlog="sixth")
        def sixth() -> None:
            pass

    assert "third" not in broker.actors and "fourth" not in broker.actors and "sixth" not in broker.actors


def test_bad_input_is_rejected_with_nothing_stored_or_sent(stub: Any) -> None:
    broker, _ = stub

    @lru_actor
    def job(*args: Any, **kwargs: Any) -> None:
        pass

    bad: List[Tuple[type, Any]] = [
        (ValueError, lambda: job.lru_send("")),
        (TypeError, lambda: job.lru_send(7)),
        (TypeError, lambda: job.lru_send(None)),
        (ValueError, lambda: job.lru_send("k", priority_weight=0)),
        (ValueError, lambda: job.lru_send("k", priority_weight=-1.5)),
        (ValueError, lambda: job.lru_send("k", priority_weight=math.nan)),
        (ValueError, lambda: job.lru_send("k", priority_weight=math.inf)),
        (TypeError, lambda: job.lru_send("k", priority_weight="1")),
        (TypeError, lambda: job.lru_send("k", priority_weight=True)),
        (ValueError, lambda: job.lru_send("k", expiry=-1)),
        (TypeError, lambda: job.lru_send("k", expiry="soon")),
        (TypeError, lambda: job.lru_send("k", tags=["plan"])),
        (TypeError, lambda: job.lru_send("k", tags={"plan": 3})),
        (ValueError, lambda: job.lru_send("k", tags={"": "x"})),
        (TypeError, lambda: job.lru_send("k", object())),
        (TypeError, lambda: job.lru_send("k", {1, 2})),
        (TypeError, lambda: job.lru_send("k", value=b"bytes")),
        (TypeError, lambda: job.lru_send_with_options("k", args="abc")),
        (TypeError, lambda: job.lru_send_with_options("k", kwargs=[("a", 1)])),
        (TypeError, lambda: job.lru_send_with_options("k", kwargs={1: "a"})),
        (TypeError, lambda: job.lru_send_with_options("k", args=b"abc")),
        (TypeError, lambda: job.lru_send_with_options("k", args={"a": 1})),
        (TypeError, lambda: job.lru_send_with_options("k", delay="100")),
        (TypeError, lambda: job.lru_send_with_options("k", on_success=b"not an actor")),
        (TypeError, lambda: job.lru_send_with_options("k", time_limit=object())),
    ]
    for kind, send in bad:
        with pytest.raises(kind):
            send()
    status = job.get_system_status()
    assert status["backlog_size"] == 0 and status["unique_lru_keys"] == 0
    assert job.get_tagged_clients("plan") == []
    assert queue_size(broker) == 0
    job.lru_send("k", 1, a=[1, "x"])  # the same checks let a good call through
    assert job.get_system_status()["backlog_size"] == 1 and queue_size(broker) == 1


def test_bad_declarations(stub: Any) -> None:
    broker, _ = stub

    def fn() -> None:
        pass

    with pytest.raises(TypeError, match="weight_function"):
        lru_actor(weight_function=3)(fn)
    with pytest.raises(TypeError, match="Storage"):
        lru_actor(storage={"not": "a storage"})(fn)
    with pytest.raises(ValueError, match="backlog"):
        lru_actor(backlog="")(fn)
    with pytest.raises(ValueError, match="undefined"):
        lru_actor(no_such_option=1)(fn)
    with pytest.raises(ValueError, match="Queue names"):
        lru_actor(queue_name="bad queue")(fn)
    with pytest.raises(ValueError, match="cannot derive a storage"):
        lru_actor(broker=Broker(middleware=[]))(fn)
    with pytest.raises(ValueError, match="lease_seconds"):
        Ranch(lease_seconds=0)
    with pytest.raises(ValueError, match="sweep_interval"):
        Ranch(lease_seconds=1, sweep_interval=2)
    assert list(broker.actors) == []


def test_unknown_backlog_and_malformed_calls(stub: Any, run_worker: Any) -> None:
    broker, backend = stub

    @lru_actor(store_results=True)
    def job(x: int) -> int:
        return x

    ranch = Ranch.of(broker)
    with pytest.raises(UnknownBacklog):
        ranch.backlog("nope")
    scheduler = job.dispatcher.scheduler
    scheduler.push("k", {"args": "not a list"})  # not a call at all
    scheduler.push("k", {"args": [], "kwargs": {}, "options": {}, "retries": 0})  # names no actor
    job.dispatcher.wake()
    job.dispatcher.wake()
    message = job.lru_send("k", 7)
    with run_worker(broker):
        assert result_of(message, backend) == 7
        broker.join("default")
    assert job.get_system_status()["backlog_size"] == 0 and job.get_system_status()["leased"] == 0


def test_lease_keeper_reclaims_a_dead_workers_call(run_worker: Any) -> None:
    broker = StubBroker()
    broker.add_middleware(Ranch(lease_seconds=0.3, sweep_interval=0.1))
    ran: List[str] = []

    @lru_actor(broker=broker)
    def job(name: str) -> None:
        ran.append(name)

    job.lru_send("k", "orphan")
    # A worker that died after taking the call: leased, its wake-up consumed.
    assert job.dispatcher.take() is not None
    broker.flush_all()
    assert job.get_system_status()["leased"] == 1
    try:
        with run_worker(broker):
            deadline = time.monotonic() + 5
            while not ran and time.monotonic() < deadline:
                time.sleep(0.02)
            broker.join("default")
    finally:
        broker.close()
    assert ran == ["orphan"]
    assert job.get_system_status()["leased"] == 0


def test_actors_of_one_queue_share_one_fair_order(stub: Any, run_worker: Any) -> None:
    """One fairness domain per queue: a tenant flooding one actor does not delay
    another tenant's calls to another actor on the workers they share."""
    broker, _ = stub
    order: List[Tuple[str, str]] = []

    @lru_actor
    def send_email(tenant: str) -> None:
        order.append(("send_email", tenant))

    @lru_actor
    def make_report(tenant: str) -> None:
        order.append(("make_report", tenant))

    @lru_actor(queue_name="elsewhere")
    def other_queue() -> None:
        pass

    assert send_email.backlog == make_report.backlog == "default" and other_queue.backlog == "elsewhere"
    for _ in range(100):
        send_email.lru_send("bulk", "bulk")
    for i in range(5):
        make_report.lru_send(f"user{i}", f"user{i}")
    # weights, tags and custom data belong to the key, whichever actor sets or reads them
    make_report.set_priority_weight("user0", 0.5)
    send_email.add_tag("user1", "plan", "gold")
    make_report.set_custom_data("user2", "limit", 3)
    assert send_email.get_client_metadata("user0")["weight"] == 0.5
    assert make_report.get_tagged_clients("plan", "gold") == ["user1"]
    assert send_email.get_custom_data("user2", "limit") == 3
    assert send_email.get_system_status()["backlog_size"] == 105
    assert other_queue.get_system_status()["backlog_size"] == 0
    with run_worker(broker, threads=1):
        broker.join("default")
    assert len(order) == 105
    reports = [index for index, (actor, _) in enumerate(order) if actor == "make_report"]
    assert len(reports) == 5 and max(reports) < 7, order[:12]


def test_pipe_target_runs_after_the_call(stub: Any, run_worker: Any) -> None:
    broker, backend = stub

    @lru_actor
    def first(x: int) -> int:
        return x + 1

    @dramatiq.actor(store_results=True)
    def then_double(x: int) -> int:
        return 2 * x

    piped = then_double.message()
    first.lru_send_with_options("k", args=(20,), pipe_target=piped.asdict())
    with run_worker(broker):
        assert result_of(piped, backend) == 42
