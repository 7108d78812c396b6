"""Wake-up tokens on a real RedisBroker with real ``dramatiq.Worker`` threads:
settings (``max_wakeups``, the fleet's slots), the run budget, plain messages
sharing the queue, and ``lru_send_many``."""

from __future__ import annotations

import gc
import hashlib
import time
from typing import Any, Callable, Iterator, List, Tuple

import dramatiq
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Middleware
from dramatiq.results import ResultFailure, Results
from dramatiq.results.backends import RedisBackend
from ranch_dramatiq import BacklogConflict, Ranch, lru_actor
from ranch_dramatiq.middleware import WAKE_UP_PREFIX
from ranch_redis import scripts

pytestmark = pytest.mark.redis
TIMEOUT_MS = 15_000


class CountWakeUps(Middleware):
    """Counts the wake-up messages the worker processes."""

    def __init__(self) -> None:
        self.count = 0

    def before_process_message(self, broker: Any, message: Any) -> None:
        if message.actor_name.startswith(WAKE_UP_PREFIX):
            self.count += 1


def make_broker(url: str, **ranch: Any) -> Tuple[RedisBroker, RedisBackend, CountWakeUps]:
    broker = RedisBroker(url=url)
    backend = RedisBackend(url=url)
    counter = CountWakeUps()
    broker.add_middleware(Results(backend=backend))
    broker.add_middleware(counter)
    broker.add_middleware(Ranch(lease_seconds=10, **ranch))
    return broker, backend, counter


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def queued(client: redis.Redis, queue: str = "default") -> int:
    """Messages waiting on a RedisBroker queue (namespace ``dramatiq``)."""
    return int(client.llen(f"dramatiq:{queue}"))


# -- settings ---------------------------------------------------------------


def test_max_wakeups_bounds_the_broker_messages_of_a_flood(redis_url: str, client: redis.Redis) -> None:
    broker, _, _ = make_broker(redis_url)

    @lru_actor(broker=broker, max_wakeups=5)
    def job(n: int) -> None:
        pass

    @lru_actor(broker=broker, queue_name="other")
    def other(n: int) -> None:
        pass

    for n in range(300):
        job.lru_send(f"k{n % 3}", n)
        other.lru_send("k", n)
    assert job.get_system_status()["backlog_size"] == 300
    assert queued(client) == 5  # lru_actor(max_wakeups=5)
    assert queued(client, "other") == 64  # the default: Ranch(max_wakeups=64)
    broker.close()


def test_max_wakeups_and_budget_settings(redis_url: str) -> None:
    broker, _, _ = make_broker(redis_url, max_wakeups=3, wakeup_budget=2)

    @lru_actor(broker=broker)
    def a() -> None:
        pass

    @lru_actor(broker=broker)  # joins backlog "default", which has max_wakeups=3
    def b() -> None:
        pass

    @lru_actor(broker=broker, max_wakeups=3)  # the same value: fine
    def c() -> None:
        pass

    assert a.dispatcher is b.dispatcher is c.dispatcher
    assert a._ranch_backlog.max_wakeups == 3 and a._ranch_backlog.budget == 2
    with pytest.raises(BacklogConflict, match="max_wakeups=4"):

        @lru_actor(broker=broker, max_wakeups=4)
        def d() -> None:
            pass

    for bad, error in [(0, ValueError), (-1, ValueError), (2.5, TypeError), (True, TypeError)]:
        with pytest.raises(error, match="max_wakeups"):

            @lru_actor(broker=broker, queue_name=f"q{bad}", max_wakeups=bad)
            def e() -> None:
                pass

        with pytest.raises(error, match="max_wakeups"):
            Ranch(max_wakeups=bad)
        with pytest.raises(error, match="wakeup_budget"):
            Ranch(wakeup_budget=bad)
    assert set(broker.get_declared_actors()) >= {"a", "b", "c"}
    assert not {"d", "e"} & set(broker.get_declared_actors())
    broker.close()


def test_worker_registers_its_threads_as_slots(redis_url: str, run_worker: Any, wait: Any) -> None:
    broker, _, _ = make_broker(redis_url, max_wakeups=1)
    running = "ranch-test:running"
    most = "ranch-test:most"
    client = redis.Redis.from_url(redis_url)

    @lru_actor(broker=broker)
    def job(n: int) -> None:
        now = client.incr(running)
        client.eval(
            "if tonumber(redis.call('get', KEYS[1]) or 0) < tonumber(ARGV[1]) then "
            "redis.call('set', KEYS[1], ARGV[1]) end",
            1,
            most,
            now,
        )
        deadline = time.monotonic() + 0.2
        while time.monotonic() < deadline:
            time.sleep(0.01)
        client.decr(running)

    ranch = next(m for m in broker.middleware if isinstance(m, Ranch))
    with run_worker(broker, threads=3):
        assert ranch.slots == 3 and job.dispatcher.slots == 3

        @lru_actor(broker=broker, queue_name="later")  # declared after boot
        def later() -> None:
            pass

        assert later.dispatcher.slots == 3
        for n in range(12):
            job.lru_send(f"k{n % 4}", n)
        wait(lambda: job.get_system_status()["served_total"] == 12 and int(client.get(running) or 0) == 0)
    # max_wakeups=1, but the worker's 3 slots sized the tokens: 3 calls ran at once
    assert int(client.get(most) or 0) == 3
    client.close()
    broker.close()


# -- run budget -------------------------------------------------------------


@pytest.mark.parametrize("budget", [1, 4])
def test_one_wake_up_runs_up_to_budget_calls_each_a_fresh_fair_choice(
    redis_url: str, client: redis.Redis, run_worker: Any, wait: Any, budget: int
) -> None:
    broker, _, counter = make_broker(redis_url, max_wakeups=1, wakeup_budget=budget)
    ran: List[str] = []

    @lru_actor(broker=broker)
    def job(label: str) -> None:
        ran.append(label)
        if label == "flood-0":  # a quiet key arrives while the flood's first call runs
            job.lru_send("quiet", "quiet")

    for n in range(20):
        job.lru_send("flood", f"flood-{n}")
    with run_worker(broker, threads=1):
        wait(lambda: len(ran) == 21)
        wait(lambda: job.dispatcher.scheduler.storage.wakeup_status().outstanding == 0)
    # the quiet call was the very next fair choice, inside the same budget
    assert ran.index("quiet") == 1
    assert counter.count == -(-21 // budget)  # ceil(21 / budget) wake-ups for 21 calls
    assert queued(client) == 0
    broker.close()


def test_plain_messages_on_the_queue_are_not_starved(
    redis_url: str, client: redis.Redis, run_worker: Any, wait: Any
) -> None:
    broker, _, _ = make_broker(redis_url, max_wakeups=8)
    order = "ranch-test:order"

    @lru_actor(broker=broker)
    def fair(n: int) -> None:
        client.rpush(order, "r")

    @dramatiq.actor(broker=broker)
    def plain(n: int) -> None:
        client.rpush(order, "p")

    for n in range(1000):
        fair.lru_send(f"tenant{n % 5}", n)
    for n in range(50):
        plain.send(n)
    with run_worker(broker, threads=4):
        wait(lambda: client.llen(order) == 1050, timeout=60)
    done = [entry.decode() for entry in client.lrange(order, 0, -1)]
    ranch_before_last_plain = done[: max(i for i, kind in enumerate(done) if kind == "p")].count("r")
    # the 8 wake-ups ahead of them run 8 calls each (the budget) before going to the tail:
    # the plain calls are done after about 64 Ranch calls, long before the 1,000
    print(f"Ranch calls run before the last plain one: {ranch_before_last_plain}")
    assert ranch_before_last_plain <= 200, ranch_before_last_plain
    broker.close()


# -- lru_send_many ----------------------------------------------------------


def round_trips(client: redis.Redis, action: Callable[[], Any], *, whole: bool = False) -> List[str]:
    """The commands clients send to Redis while ``action`` runs (from MONITOR;
    commands that scripts run inside Redis and connection set-up are left out,
    and so are pub/sub commands: Celery result consumers of earlier tests in
    this process unsubscribe when they are garbage collected)."""
    gc.collect()  # let those go first
    sentinel = f"end-of-action-{time.monotonic_ns()}"
    seen: List[str] = []
    with client.monitor() as monitor:
        action()
        client.echo(sentinel)
        for entry in monitor.listen():
            command = entry["command"]
            if sentinel in command:
                break
            name = command.split(" ")[0].upper()
            pubsub = name in ("SUBSCRIBE", "UNSUBSCRIBE", "PSUBSCRIBE", "PUNSUBSCRIBE")
            if entry.get("client_type") != "lua" and name not in ("HELLO", "CLIENT", "ECHO") and not pubsub:
                seen.append(command if whole else name)
    return seen


def test_lru_send_many_runs_every_call_with_its_result(
    redis_url: str, client: redis.Redis, run_worker: Any
) -> None:
    broker, backend, _ = make_broker(redis_url)

    @lru_actor(broker=broker, store_results=True, max_retries=0)
    def add(a: int, b: int = 0) -> int:
        if a < 0:
            raise ValueError("negative")
        return a + b

    calls = [((n,), {"b": 100}) for n in range(25)] + [([-1], None), ((7,), {})]
    messages = add.lru_send_many("batch", calls)
    assert [m.args for m in messages] == [(n,) for n in range(25)] + [(-1,), (7,)]
    assert len({m.message_id for m in messages}) == 27
    assert queued(client) == 1  # one wake-up for the batch; the worker fans out
    with run_worker(broker, threads=4):
        results = [m.get_result(backend=backend, block=True, timeout=TIMEOUT_MS) for m in messages[:25]]
        assert results == [n + 100 for n in range(25)]
        with pytest.raises(ResultFailure):
            messages[25].get_result(backend=backend, block=True, timeout=TIMEOUT_MS)
        assert messages[26].get_result(backend=backend, block=True, timeout=TIMEOUT_MS) == 7
    assert add.get_client_metadata("batch")["served_total"] == 27
    broker.close()


def test_lru_send_many_is_one_round_trip_per_batch(redis_url: str, client: redis.Redis) -> None:
    broker, _, _ = make_broker(redis_url)

    @lru_actor(broker=broker)
    def job(n: int) -> None:
        pass

    # Load the scripts first (Ranch's push and push_many, Dramatiq's enqueue): a first
    # use adds a NOSCRIPT reply and a SCRIPT LOAD (a push_many of one call runs push).
    job.lru_send("warm", -1)
    job.lru_send_many("warm-many", [((-1,), None), ((-2,), None)])
    messages: List[Any] = []
    sent = round_trips(
        client,
        lambda: messages.extend(job.lru_send_many("bulk", [((n,), None) for n in range(2500)])),
        whole=True,
    )
    assert all(command.split(" ")[0].upper() == "EVALSHA" for command in sent), [c[:40] for c in sent]
    # Another client's Ranch script (a sweep of an earlier test's lease keeper, under
    # load) may land in the window: count this producer's steps by their script.
    ranch = {hashlib.sha1(scripts.source(name).encode()).hexdigest(): name for name in scripts.NAMES}
    steps = [ranch.get(command.split(" ")[1].strip('"')) for command in sent]
    # 3 storage steps (1,000 + 1,000 + 500) and at most one publish each (Dramatiq's script)
    assert steps.count("push_many") == 3, steps
    assert steps.count(None) <= 3, steps
    assert len(messages) == 2500 and job.get_system_status()["backlog_size"] == 2503
    broker.close()


def test_lru_send_many_bad_input_names_the_call_and_stores_nothing(
    redis_url: str, client: redis.Redis
) -> None:
    broker, _, _ = make_broker(redis_url)

    @lru_actor(broker=broker)
    def job(*args: Any, **kwargs: Any) -> None:
        pass

    good = ((1,), {"x": 2})
    cases: List[Tuple[Any, Any, str]] = [
        ([good, good, "ab"], TypeError, r"calls\[2\] must be an \(args, kwargs\) pair"),
        ([good, (1, 2, 3)], TypeError, r"calls\[1\] must be an \(args, kwargs\) pair"),
        ([good, ("ab", None)], TypeError, r"calls\[1\]: args must be a list or tuple"),
        ([good, ((), [("x", 1)])], TypeError, r"calls\[1\]: kwargs must be a mapping"),
        ([good, ((), {1: 2})], TypeError, r"calls\[1\]: kwargs must be a mapping with str keys"),
        ([good, good, good, ((object(),), None)], TypeError, r"calls\[3\]: argument 1 \(args\[0\]\)"),
        ([good] * 1500 + [((), {"when": object()})], TypeError, r"calls\[1500\]: keyword 'when'"),
        (5, TypeError, "calls must be an iterable"),
        ("ab", TypeError, "calls must be an iterable"),
        ({"a": 1}, TypeError, "calls must be an iterable"),
    ]
    for calls, error, match in cases:
        with pytest.raises(error, match=match):
            job.lru_send_many("k", calls)
    for key, error in [("", ValueError), (5, TypeError)]:
        with pytest.raises(error, match="lru_key"):
            job.lru_send_many(key, [good])
    with pytest.raises(ValueError, match="priority_weight"):
        job.lru_send_many("k", [good], priority_weight=0)
    with pytest.raises(ValueError, match="expiry"):
        job.lru_send_many("k", [good], expiry=-1)
    with pytest.raises(TypeError, match="tag 'a' must be a str"):
        job.lru_send_many("k", [good], tags={"a": 1})
    assert job.get_system_status()["backlog_size"] == 0
    assert queued(client) == 0
    assert job.lru_send_many("k", []) == []
    assert queued(client) == 0
    broker.close()


def test_lru_send_many_expiry_and_weight_apply_to_every_call(
    redis_url: str, client: redis.Redis, run_worker: Any
) -> None:
    broker, backend, _ = make_broker(redis_url)

    @lru_actor(broker=broker, store_results=True)
    def job(n: int) -> int:
        return n

    messages = job.lru_send_many("late", [((n,), None) for n in range(3)], expiry=0.01, tags={"t": "v"})
    fresh = job.lru_send_many("fresh", [((n,), None) for n in range(3)], priority_weight=0.5)
    assert job.get_client_metadata("fresh")["weight"] == 0.5
    assert job.get_tagged_clients("t", "v") == ["late"]
    time.sleep(0.05)  # let the expiry (10 ms) pass before any worker runs
    with run_worker(broker, threads=2):
        assert [m.get_result(backend=backend, block=True, timeout=TIMEOUT_MS) for m in fresh] == [0, 1, 2]
        for message in messages:
            with pytest.raises(ResultFailure) as info:
                message.get_result(backend=backend, block=True, timeout=TIMEOUT_MS)
            assert info.value.orig_exc_type == "CallExpired"
    broker.close()
