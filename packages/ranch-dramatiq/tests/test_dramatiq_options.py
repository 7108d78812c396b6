"""``lru_send_with_options``: Dramatiq's message options on a stored call, next to ``send_with_options``.

Real RedisBroker, Results on Redis, a real ``dramatiq.Worker`` in this
process. Each option is given to a plain message and to a Ranch call of the
same actor; both must behave alike, and the Ranch call must have gone
through its key's backlog (``served_total``).
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterator, List, Tuple

import dramatiq
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.encoder import JSONEncoder, PickleEncoder
from dramatiq.middleware import CurrentMessage, Middleware, TimeLimit, default_middleware
from dramatiq.results import ResultFailure, ResultMissing, Results
from dramatiq.results.backends import RedisBackend
from ranch_dramatiq import Ranch, lru_actor

pytestmark = pytest.mark.redis
TIMEOUT_MS = 15_000


class Custom(Middleware):
    """A third-party middleware declaring a message option of its own."""

    def __init__(self) -> None:
        self.seen: List[Any] = []

    @property
    def actor_options(self) -> set[str]:
        return {"custom_tag"}

    def before_process_message(self, broker: Any, message: Any) -> None:
        if "custom_tag" in message.options:
            self.seen.append(message.options["custom_tag"])


def quick_default_middleware() -> List[Middleware]:
    """Dramatiq's default middleware, TimeLimit checking its deadlines every 50 ms (not 1 s)."""
    return [TimeLimit(interval=50) if factory is TimeLimit else factory() for factory in default_middleware]


@pytest.fixture
def real(redis_url: str) -> Iterator[Tuple[RedisBroker, RedisBackend, redis.Redis, Custom]]:
    broker = RedisBroker(url=redis_url, middleware=quick_default_middleware())
    backend = RedisBackend(url=redis_url)
    custom = Custom()
    broker.add_middleware(Results(backend=backend))
    broker.add_middleware(CurrentMessage())
    broker.add_middleware(custom)
    broker.add_middleware(Ranch(lease_seconds=10))
    client = redis.Redis.from_url(redis_url)
    yield broker, backend, client, custom
    client.close()
    broker.close()


def result(backend: RedisBackend, message: Any) -> Any:
    return message.get_result(backend=backend, block=True, timeout=TIMEOUT_MS)


def failure(backend: RedisBackend, message: Any) -> str:
    with pytest.raises(ResultFailure) as info:
        result(backend, message)
    return str(info.value.orig_exc_type)


def test_retry_options_per_call(real: Any, run_worker: Any) -> None:
    broker, backend, client, _ = real

    @lru_actor(broker=broker, store_results=True, max_retries=0)
    def flaky(name: str, succeed_at: int) -> str:
        message = CurrentMessage.get_current_message()
        assert message is not None
        if client.incr(f"attempts:{name}") < succeed_at:
            raise ConnectionError("try again")
        return f"{name} after {message.options.get('retries', 0)} retries"

    retry = {"max_retries": 3, "min_backoff": 10, "max_backoff": 20}
    plain = flaky.send_with_options(args=("plain", 3), **retry)
    ranch = flaky.lru_send_with_options("k", ("ranch", 3), **retry)
    short = flaky.lru_send_with_options("k", ("short", 9), max_retries=1, min_backoff=10, max_backoff=20)
    default = flaky.lru_send("k", "default", 2)  # the actor's max_retries=0
    with run_worker(broker, threads=2):
        assert result(backend, plain) == "plain after 2 retries"
        assert result(backend, ranch) == "ranch after 2 retries"
        assert failure(backend, short) == "ConnectionError"
        assert failure(backend, default) == "ConnectionError"
    assert [int(client.get(f"attempts:{n}") or 0) for n in ("ranch", "short", "default")] == [3, 2, 1]
    assert flaky.get_client_metadata("k")["served_total"] == 6


def test_throws_and_on_retry_exhausted(real: Any, run_worker: Any) -> None:
    broker, backend, client, _ = real
    dramatiq.set_encoder(PickleEncoder())  # throws= is a class: Dramatiq needs pickle for it too
    try:

        @dramatiq.actor(broker=broker)
        def exhausted(message: Any, info: Any) -> None:
            client.rpush("exhausted", f"{message['args'][0]} {info['retries']}/{info['max_retries']}")

        @lru_actor(broker=broker, store_results=True, max_retries=5, min_backoff=10, max_backoff=20)
        def fails(name: str) -> None:
            client.incr(f"attempts:{name}")
            raise KeyError(name)

        for how in ("plain", "ranch"):
            send = fails.send_with_options if how == "plain" else fails.lru_send_with_options
            prefix = () if how == "plain" else ("k",)
            thrown = send(*prefix, args=(f"{how}-throws",), throws=KeyError)  # type: ignore[operator]
            gave_up = send(*prefix, args=(f"{how}-exhausted",), max_retries=1, on_retry_exhausted="exhausted")  # type: ignore[operator]
            with run_worker(broker, threads=2):
                assert failure(backend, thrown) == "KeyError"
                assert failure(backend, gave_up) == "KeyError"
                assert f"{how}-exhausted 1/1".encode() in wait_for_list(client, "exhausted", how)
            assert int(client.get(f"attempts:{how}-throws") or 0) == 1  # no retry
            assert int(client.get(f"attempts:{how}-exhausted") or 0) == 2
        assert fails.get_client_metadata("k")["served_total"] == 3
    finally:
        dramatiq.set_encoder(JSONEncoder())


def wait_for_list(client: redis.Redis, name: str, needle: str) -> List[bytes]:
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        items: List[bytes] = client.lrange(name, 0, -1)
        if any(needle.encode() in item for item in items):
            return items
        time.sleep(0.02)
    pytest.fail(f"{needle} not in {name}")


def test_time_limit_and_max_age(real: Any, run_worker: Any) -> None:
    broker, backend, _, _ = real
    broker.emit_after("process_boot")  # starts TimeLimit's timer thread, as the CLI does

    @lru_actor(broker=broker, store_results=True, max_retries=0)
    def slow(seconds: float) -> str:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.01)
        return "done"

    limited = [
        slow.send_with_options(args=(5,), time_limit=200),
        slow.lru_send_with_options("k", (5,), time_limit=200),
    ]
    old = [slow.send_with_options(args=(0,), max_age=50), slow.lru_send_with_options("k", (0,), max_age=50)]
    young = slow.lru_send_with_options("k", (0,), max_age=60_000)
    time.sleep(0.2)  # the max_age=50 messages are too old when a worker starts
    started = time.monotonic()
    with run_worker(broker, threads=3):
        assert [failure(backend, m) for m in limited] == ["TimeLimitExceeded"] * 2
        assert [failure(backend, m) for m in old] == ["SkipMessage"] * 2
        assert result(backend, young) == "done"
    assert time.monotonic() - started < 4.5  # the 5 s calls were cut short
    assert slow.get_client_metadata("k")["served_total"] == 3


def test_notify_shutdown(real: Any, wait: Callable[..., Any]) -> None:
    broker, backend, client, _ = real

    @lru_actor(broker=broker, store_results=True, max_retries=0)
    def sleepy(name: str) -> str:
        client.rpush("started", name)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            time.sleep(0.01)
        return "finished"

    messages = [
        sleepy.send_with_options(args=("plain",), notify_shutdown=True),
        sleepy.lru_send_with_options("k", ("ranch",), notify_shutdown=True),
    ]
    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
    worker.start()
    try:
        wait(lambda: client.llen("started") == 2)
    finally:
        started = time.monotonic()
        worker.stop(timeout=10_000)
    assert time.monotonic() - started < 5  # Shutdown was raised inside both calls
    assert [failure(backend, m) for m in messages] == ["Shutdown"] * 2


def test_store_results_and_result_ttl(real: Any, run_worker: Any, wait: Callable[..., Any]) -> None:
    broker, backend, client, _ = real

    @lru_actor(broker=broker)
    def quiet(n: int) -> int:
        return n * 2

    @lru_actor(broker=broker, store_results=True)
    def loud(n: int) -> int:
        return n * 3

    stored = [
        quiet.send_with_options(args=(1,), store_results=True, result_ttl=60_000),
        quiet.lru_send_with_options("k", (2,), store_results=True, result_ttl=60_000),
    ]
    dropped = [
        loud.send_with_options(args=(3,), store_results=False),
        loud.lru_send_with_options("k", (4,), store_results=False),
    ]
    with run_worker(broker, threads=2):
        assert [result(backend, m) for m in stored] == [2, 4]
        wait(lambda: loud.get_client_metadata("k")["served_total"] == 2)  # quiet's call and loud's
        time.sleep(0.2)  # the plain one too
    for message in stored:
        ttl = client.pttl(backend.build_message_key(message))
        assert 0 < ttl <= 60_000
    for message in dropped:
        with pytest.raises(ResultMissing):
            message.get_result(backend=backend)


def test_on_success_and_on_failure(real: Any, run_worker: Any, wait: Callable[..., Any]) -> None:
    broker, _, client, _ = real

    @dramatiq.actor(broker=broker)
    def succeeded(message: Any, value: Any) -> None:
        client.rpush("succeeded", f"{message['args'][0]}={value}")

    @dramatiq.actor(broker=broker)
    def failed(message: Any, error: Any) -> None:
        client.rpush("failed", f"{message['args'][0]}:{error['type']}")

    @lru_actor(broker=broker, max_retries=0)
    def invert(n: int) -> float:
        return 1 / n

    callbacks = {"on_success": succeeded, "on_failure": "failed"}
    invert.send_with_options(args=(2,), **callbacks)
    invert.send_with_options(args=(0,), **callbacks)
    invert.lru_send_with_options("k", (4,), **callbacks)
    invert.lru_send_with_options("k", (0,), **callbacks)
    with run_worker(broker, threads=2):
        wait(lambda: client.llen("succeeded") == 2 and client.llen("failed") == 2)
    assert sorted(client.lrange("succeeded", 0, -1)) == [b"2=0.5", b"4=0.25"]
    assert client.lrange("failed", 0, -1) == [b"0:ZeroDivisionError"] * 2
    assert invert.get_client_metadata("k")["served_total"] == 2


def test_pipe_target_and_pipe_ignore(real: Any, run_worker: Any) -> None:
    broker, backend, _, _ = real

    @lru_actor(broker=broker, store_results=True)
    def add(a: int, b: int = 0) -> int:
        return a + b

    targets = [add.message(100), add.message_with_options(args=(7,), pipe_ignore=True)]
    sent = []
    for target in targets:
        sent.append((add.send_with_options(args=(1,), pipe_target=target.copy().asdict()), target))
        ranch_target = target.copy(message_id=f"{target.message_id}-r")
        sent.append((add.lru_send_with_options("k", (2,), pipe_target=ranch_target), ranch_target))
    with run_worker(broker, threads=2):
        assert [result(backend, target) for _, target in sent] == [101, 102, 7, 7]
    assert add.get_client_metadata("k")["served_total"] == 2  # the targets are plain messages


def test_a_middlewares_own_option_reaches_it(real: Any, run_worker: Any) -> None:
    broker, backend, _, custom = real

    @lru_actor(broker=broker, store_results=True)
    def job() -> str:
        return "ok"

    message = job.lru_send_with_options("k", custom_tag="blue")
    with run_worker(broker):
        assert result(backend, message) == "ok"
    assert custom.seen == ["blue"]


def test_bad_options_raise_and_store_nothing(real: Any) -> None:
    broker, _, client, _ = real

    @lru_actor(broker=broker)
    def job(*args: Any) -> None:
        pass

    cases: List[Tuple[type, str, Any]] = [
        (TypeError, "eta=", {"eta": 1}),
        (TypeError, "retry_when=", {"retry_when": lambda retries, exc: True}),
        (TypeError, "broker_priority=", {"broker_priority": 5}),
        (TypeError, "'priority'", {"priority": 5}),
        (TypeError, "'countdown'", {"countdown": 5}),
        (TypeError, "max_retries", {"max_retries": "3"}),
        (ValueError, "max_retries", {"max_retries": -1}),
        (TypeError, "time_limit", {"time_limit": object()}),
        (ValueError, "max_age", {"max_age": -5}),
        (TypeError, "result_ttl", {"result_ttl": 1.5}),
        (TypeError, "store_results", {"store_results": "yes"}),
        (TypeError, "on_success", {"on_success": 5}),
        (TypeError, "on_failure", {"on_failure": ""}),
        (TypeError, "throws", {"throws": "KeyError"}),
        (TypeError, "pipe_target", {"pipe_target": "job"}),
        (TypeError, "pipe_target", {"pipe_target": {"actor_name": "job"}}),
        (
            TypeError,
            "pipe_target",
            {"pipe_target": {**dict.fromkeys(("queue_name", "actor_name", "args", "kwargs")), "options": 1}},
        ),
        (TypeError, "group_completion_callbacks", {"group_completion_callbacks": "job"}),
        (TypeError, "group_completion_uuid", {"group_completion_uuid": 5}),
        (TypeError, "lru_tags is set by Ranch", {"lru_tags": {"a": "b"}}),
    ]
    for kind, words, options in cases:
        for make in (job.lru_send_with_options, job.lru_message_with_options):
            with pytest.raises(kind) as info:
                make("k", (), None, **options)
            assert words in str(info.value), (options, str(info.value))
    with pytest.raises(TypeError, match=r"^lru_message_with_options does not support delay=: .*enqueue"):
        job.lru_message_with_options("k", delay=10)
    for delay, kind, words in [
        ("soon", TypeError, "milliseconds"),
        (-1, ValueError, ">= 0"),
        (1e15, ValueError, "at most"),
    ]:
        with pytest.raises(kind, match=f"delay must be.*{words}"):
            job.lru_send_with_options("k", delay=delay)
    with pytest.raises(TypeError, match=r"^lru_message_with_options does not support the option 'x'"):
        job.lru_message_with_options("k", x=1)
    with pytest.raises(TypeError, match="args"):
        job.lru_send_with_options("k", "not a tuple")
    with pytest.raises(ValueError, match="lru_key"):
        job.lru_send_with_options("", ())
    assert client.dbsize() == 0  # nothing stored, nothing enqueued
