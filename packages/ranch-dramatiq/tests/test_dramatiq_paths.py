"""Paths a happy call never takes: malformed stored calls, undeclared actors,
retry fallbacks, 0.1 wake-ups, misbehaving middleware, missing extras.

StubBroker, in-memory storage and a real ``dramatiq.Worker`` in this process.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Dict, Iterator, List, Optional, Tuple

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker
from dramatiq.encoder import JSONEncoder
from dramatiq.middleware import CurrentMessage, Middleware, MiddlewareError, Retries
from dramatiq.results import ResultFailure, Results
from dramatiq.results.backends import StubBackend
from ranch_core.calls import Call
from ranch_dramatiq import EncoderSerializer, MissingExtra, Ranch, UnknownBacklog, execution, lru_actor
from ranch_dramatiq.backlog import RESUBMIT
from ranch_dramatiq.encoding import describe_failure

TIMEOUT_MS = 10_000


@pytest.fixture
def stub() -> Iterator[Tuple[StubBroker, StubBackend]]:
    broker = StubBroker()
    backend = StubBackend()
    broker.add_middleware(Results(backend=backend))
    broker.add_middleware(CurrentMessage())
    broker.add_middleware(Ranch(lease_seconds=5))
    yield broker, backend
    broker.close()


def undeclared_call(actor_options: Optional[Dict[str, Any]] = None) -> Tuple[dramatiq.Message[Any], Call]:
    """A call of actor ``gone``, as a producer that declares it would store it."""
    message: dramatiq.Message[Any] = dramatiq.Message(
        queue_name="default", actor_name="gone", args=(1,), kwargs={}, options={}
    )
    return message, execution.call_for(message, actor_options)


def test_a_call_for_an_undeclared_actor_stores_actor_not_found(
    stub: Any, run_worker: Any, caplog: Any
) -> None:
    broker, backend = stub

    @lru_actor(broker=broker, store_results=True)
    def job(x: int) -> int:
        return x

    stored, call = undeclared_call({"store_results": True, "result_ttl": 60_000})
    unstored, quiet = undeclared_call()  # the actor did not store results: nothing to store
    job.dispatcher.submit("k", call, task_id=stored.message_id)
    job.dispatcher.submit("k", quiet, task_id=unstored.message_id)
    ok = job.lru_send("k", 3)
    with caplog.at_level(logging.ERROR, logger="ranch_dramatiq"), run_worker(broker):
        assert ok.get_result(backend=backend, block=True, timeout=TIMEOUT_MS) == 3
        with pytest.raises(ResultFailure) as info:
            backend.get_result(stored, block=True, timeout=TIMEOUT_MS)
        broker.join("default")
    assert info.value.orig_exc_type == "ActorNotFound" and "gone" in str(info.value)
    with pytest.raises(dramatiq.results.ResultMissing):
        backend.get_result(unstored)
    logged = [
        r.getMessage() for r in caplog.records if "which this worker does not declare" in r.getMessage()
    ]
    assert len(logged) == 2 and stored.message_id in logged[0] + logged[1]
    status = job.get_system_status()
    assert status["backlog_size"] == 0 and status["leased"] == 0


def test_a_failure_the_results_backend_cannot_take_is_logged(run_worker: Any, caplog: Any) -> None:
    from dramatiq.results.backends import RedisBackend
    from ranch_redis.testing import free_port

    broker = StubBroker()
    broker.add_middleware(Results(backend=RedisBackend(url=f"redis://127.0.0.1:{free_port()}/0")))

    @lru_actor(broker=broker)
    def job() -> None:
        pass

    message, call = undeclared_call({"store_results": True})
    job.dispatcher.submit("k", call, task_id=message.message_id)
    try:
        with caplog.at_level(logging.ERROR, logger="ranch_dramatiq"), run_worker(broker):
            broker.join("default")
    finally:
        broker.close()
    assert f"could not store the failure of call {message.message_id}" in caplog.text
    assert job.get_system_status()["leased"] == 0


def test_an_expired_call_of_an_undeclared_actor_stores_call_expired(stub: Any, run_worker: Any) -> None:
    broker, backend = stub

    @lru_actor(broker=broker)
    def job() -> None:
        pass

    message, call = undeclared_call({"store_results": True})
    job.dispatcher.submit("k", call, task_id=message.message_id, expiry=0)
    with run_worker(broker):
        with pytest.raises(ResultFailure) as info:
            backend.get_result(message, block=True, timeout=TIMEOUT_MS)
        broker.join("default")
    assert info.value.orig_exc_type == "CallExpired"


def test_malformed_stored_calls_are_dropped_and_reported(stub: Any, run_worker: Any, caplog: Any) -> None:
    broker, backend = stub

    @lru_actor(broker=broker, store_results=True)
    def job(x: int) -> int:
        return x

    good_options = execution.call_for(job.message(1)).options
    scheduler = job.dispatcher.scheduler
    malformed = {
        "no timestamp": {**good_options, execution.TIMESTAMP: "yesterday"},
        "bool timestamp": {**good_options, execution.TIMESTAMP: True},
        "options not a dict": {**good_options, execution.MESSAGE_OPTIONS: ["x"]},
        "no queue": {**good_options, execution.QUEUE_NAME: None},
    }
    for options in malformed.values():
        scheduler.push("k", Call(args=[1], options=options).to_payload())
        job.dispatcher.wake()
    scheduler.push("k", {"args": "not a list"}, expiry=0)  # expired and malformed: reported, no result
    scheduler.push("k", Call(args=[1], options=malformed["no queue"]).to_payload(), expiry=0)
    job.dispatcher.wake()
    message = job.lru_send("k", 7)
    with caplog.at_level(logging.ERROR, logger="ranch_dramatiq"), run_worker(broker):
        assert message.get_result(backend=backend, block=True, timeout=TIMEOUT_MS) == 7
        broker.join("default")
    text = caplog.text
    assert text.count("dropping malformed call") == len(malformed)
    assert "has no message timestamp" in text and "malformed message options" in text
    assert "names no actor or queue" in text
    assert text.count("is malformed") == 2  # the two expired ones
    status = job.get_system_status()
    assert status["backlog_size"] == 0 and status["leased"] == 0


class DelayQueueFull(MiddlewareError):
    """Raised by :class:`RefuseDelayed`; a ``MiddlewareError`` stops the enqueue."""


class RefuseDelayed(Middleware):
    """A broker that cannot take delayed messages (e.g. its delay queue is full)."""

    def __init__(self) -> None:
        self.refused = 0

    def before_enqueue(self, broker: Any, message: Any, delay: Optional[int]) -> None:
        if delay:
            self.refused += 1
            raise DelayQueueFull("the delay queue refuses messages")


def test_retry_when_the_delayed_publish_fails_runs_now(stub: Any, run_worker: Any, caplog: Any) -> None:
    broker, backend = stub
    refuse = RefuseDelayed()
    broker.add_middleware(refuse)
    attempts: List[int] = []

    # A 10-minute backoff: a retry that waited for it would miss get_result's timeout.
    @lru_actor(broker=broker, store_results=True, max_retries=3, min_backoff=600_000, max_backoff=600_000)
    def flaky() -> int:
        attempts.append(1)
        if len(attempts) < 2:
            raise RuntimeError("once")
        return len(attempts)

    message = flaky.lru_send("k")
    with caplog.at_level(logging.ERROR), run_worker(broker):
        assert message.get_result(backend=backend, block=True, timeout=TIMEOUT_MS) == 2  # retried at once
    assert refuse.refused == 1 and "could not publish the delayed retry" in caplog.text
    assert flaky.get_client_metadata("k")["served_total"] == 2


class MarkRetry(Middleware):
    """A user middleware that re-enqueues a failed message itself, with a
    retry count that is not a count (the call's own count is used instead)."""

    def after_process_message(
        self, broker: Any, message: Any, *, result: Any = None, exception: Any = None
    ) -> None:
        if exception is not None and not message.options.get("marked"):
            broker.enqueue(message.copy(options={**message.options, "marked": True, "retries": True}))


def test_a_middleware_re_enqueueing_the_call_sends_it_back_to_the_backlog(
    run_worker: Any,
) -> None:
    broker = StubBroker(middleware=[CurrentMessage()])
    backend = StubBackend()
    broker.add_middleware(Results(backend=backend))
    broker.add_middleware(MarkRetry())
    seen: List[Tuple[Any, Any]] = []

    @lru_actor(broker=broker, store_results=True)
    def once() -> str:
        message = CurrentMessage.get_current_message()
        assert message is not None
        seen.append((message.options.get("marked"), message.options.get("retries")))
        if len(seen) == 1:
            raise RuntimeError("first")
        return "second"

    message = once.lru_send("k")
    try:
        with run_worker(broker):
            assert message.get_result(backend=backend, block=True, timeout=TIMEOUT_MS) == "second"
    finally:
        broker.close()
    assert seen == [(None, None), (True, 1)]


class Noisy(Middleware):
    """Middleware that fail in their hooks: logged, as Dramatiq's worker logs them."""

    def before_process_message(self, broker: Any, message: Any) -> None:
        if message.actor_name == "job":
            raise RuntimeError("before hook broke")

    def after_process_message(
        self, broker: Any, message: Any, *, result: Any = None, exception: Any = None
    ) -> None:
        if message.actor_name == "job":
            raise RuntimeError("after hook broke")


class Veto(Middleware):
    """A middleware that refuses a call with a ``MiddlewareError``: the call fails with it."""

    def before_process_message(self, broker: Any, message: Any) -> None:
        if message.actor_name == "vetoed":
            raise VetoError("not this one")


class VetoError(MiddlewareError):
    pass


def test_failing_middleware_hooks(run_worker: Any, caplog: Any) -> None:
    broker = StubBroker(middleware=[Retries()])
    backend = StubBackend()
    broker.add_middleware(Results(backend=backend))
    broker.add_middleware(Noisy())
    broker.add_middleware(Veto())

    @lru_actor(broker=broker, store_results=True)
    def job() -> int:
        return 1

    @lru_actor(broker=broker, store_results=True, max_retries=0)
    def vetoed() -> int:
        return 2

    ok, refused = job.lru_send("k"), vetoed.lru_send("k")
    try:
        with caplog.at_level(logging.CRITICAL, logger="ranch_dramatiq"), run_worker(broker):
            assert ok.get_result(backend=backend, block=True, timeout=TIMEOUT_MS) == 1
            with pytest.raises(ResultFailure) as info:
                refused.get_result(backend=backend, block=True, timeout=TIMEOUT_MS)
    finally:
        broker.close()
    assert info.value.orig_exc_type == "VetoError"
    assert "Unexpected failure in before_process_message" in caplog.text
    assert "Unexpected failure in after_process_message" in caplog.text


def test_wake_ups_of_ranch_dramatiq_0_1_are_still_consumed(stub: Any, run_worker: Any) -> None:
    broker, backend = stub
    ran: List[str] = []

    @lru_actor(broker=broker, store_results=True, max_retries=0)
    def job(name: str) -> str:
        ran.append(name)
        return name

    # 0.1 named a backlog after its actor: "job". Calls now wait in backlog "default".
    first = job.message("first")
    job.dispatcher.scheduler.push("k", execution.call_for(first).to_payload(), task_id=first.message_id)
    legacy = broker.get_actor("ranch_prioritize:default")
    broker.enqueue(legacy.message("job"))
    # a 0.1 delayed retry: the body of FairDispatcher.deferred, under the old actor name
    second = job.message("second")
    body = {"key": "k", "task_id": second.message_id, "call": execution.call_for(second).to_payload()}
    broker.enqueue(legacy.message_with_options(args=("default",), kwargs={RESUBMIT: body}))
    with run_worker(broker):
        assert backend.get_result(first, block=True, timeout=TIMEOUT_MS) == "first"
        assert backend.get_result(second, block=True, timeout=TIMEOUT_MS) == "second"
    assert sorted(ran) == ["first", "second"]
    ranch = Ranch.of(broker)
    assert ranch.backlog_of_legacy_wake_up("job") is ranch.backlog("default")
    with pytest.raises(UnknownBacklog, match=r"'neither' is not declared"):
        ranch.backlog_of_legacy_wake_up("neither")


def test_lru_actor_decorates_functions_only(stub: Any) -> None:
    broker, _ = stub
    with pytest.raises(TypeError, match="decorates a function"):
        lru_actor(broker=broker)(3)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="Storage"):
        lru_actor(broker=broker, storage="redis://")(lambda: None)


def test_a_redis_broker_without_ranch_redis_names_the_extra(monkeypatch: Any) -> None:
    from dramatiq.brokers.redis import RedisBroker

    broker = RedisBroker(url="redis://127.0.0.1:1/0")  # never connected: the check comes first
    monkeypatch.setitem(sys.modules, "ranch_redis", None)  # what an install without the extra has
    with pytest.raises(MissingExtra, match=r"ranch-dramatiq\[redis\]") as info:

        @lru_actor(broker=broker)
        def job() -> None:
            pass

    assert isinstance(info.value, ImportError) and "job" not in broker.actors


def test_dramatiq_without_its_redis_extra_has_no_redis_broker(monkeypatch: Any) -> None:
    monkeypatch.setitem(sys.modules, "dramatiq.brokers.redis", None)
    broker = StubBroker()
    try:

        @lru_actor(broker=broker)
        def job() -> None:
            pass

        assert job.backlog == "default"
    finally:
        broker.close()


def test_describe_failure_of_what_is_not_a_call() -> None:
    encoder = JSONEncoder()
    error = TypeError("boom")
    assert describe_failure(encoder, {"x": object()}, error).startswith("the call cannot be encoded")
    assert "boom" in describe_failure(encoder, [object()], error)
    odd = {"args": "no list", "kwargs": ["no", "mapping"], "options": {"message_options": ["no"]}}
    assert describe_failure(encoder, odd, error).startswith("the call cannot be encoded")
    assert describe_failure(encoder, {"options": "none"}, error).startswith("the call cannot be encoded")
    serializer = EncoderSerializer()
    with pytest.raises(TypeError, match="keyword 'x' of type object"):
        serializer.dumps({"args": [1], "kwargs": {"x": object()}, "options": {}})
