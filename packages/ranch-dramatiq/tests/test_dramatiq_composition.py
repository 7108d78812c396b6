"""``lru_message`` in Dramatiq's composition: pipelines, groups and group callbacks through the backlog.

Real RedisBroker, Results and GroupCallbacks on Redis, a real
``dramatiq.Worker`` in this process, and ``dramatiq`` CLI worker processes
for a pipeline whose later steps are enqueued by another process. Each
workflow runs with plain messages and with Ranch messages; the results
must agree, and every Ranch step must have gone through its key's backlog
(``served_total``).
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Iterator, Tuple

import dramatiq
import pytest
import redis
from dramatiq import group, pipeline
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import GroupCallbacks
from dramatiq.rate_limits.backends import RedisBackend as RateLimiterBackend
from dramatiq.results import ResultFailure, Results
from dramatiq.results.backends import RedisBackend
from ranch_dramatiq import Ranch, lru_actor

pytestmark = pytest.mark.redis
TIMEOUT_MS = 15_000


@pytest.fixture
def real(redis_url: str) -> Iterator[Tuple[RedisBroker, redis.Redis, Any, Any]]:
    """A broker with Results, GroupCallbacks and Ranch; ``add`` (Ranch) and ``log`` (plain) actors."""
    broker = RedisBroker(url=redis_url)
    broker.add_middleware(Results(backend=RedisBackend(url=redis_url)))
    broker.add_middleware(GroupCallbacks(RateLimiterBackend(url=redis_url)))
    broker.add_middleware(Ranch(lease_seconds=10))
    client = redis.Redis.from_url(redis_url)

    @lru_actor(broker=broker, store_results=True, max_retries=0)
    def add(a: int, b: int = 0) -> int:
        client.rpush("ran", f"{a}+{b}")
        return a + b

    @dramatiq.actor(broker=broker)
    def log(label: str) -> None:
        client.rpush("log", label)

    previous = dramatiq.get_broker()
    dramatiq.set_broker(broker)  # Message.get_result() and pipeline.completed use the global broker
    try:
        yield broker, client, add, log
    finally:
        dramatiq.set_broker(previous)
        client.close()
        broker.close()


def served(actor: Any, key: str) -> int:
    return int(actor.get_client_metadata(key)["served_total"])


def queued(client: redis.Redis) -> int:
    return int(client.llen("dramatiq:default"))


def test_pipeline_of_ranch_messages(real: Any, run_worker: Any) -> None:
    broker, _, add, _ = real
    plain = pipeline([add.message(1), add.message(2), add.message(3)], broker=broker).run()
    ranch = pipeline(
        [add.lru_message("k", 1), add.lru_message("k", 2), add.lru_message("k", 3)], broker=broker
    )
    assert ranch.run() is ranch
    mixed = (add.message(10) | add.lru_message("m", 20) | add.message(30)).run()
    with run_worker(broker, threads=2):
        assert plain.get_result(block=True, timeout=TIMEOUT_MS) == 6
        assert ranch.get_result(block=True, timeout=TIMEOUT_MS) == 6
        assert mixed.get_result(block=True, timeout=TIMEOUT_MS) == 60
        assert list(ranch.get_results(block=True, timeout=TIMEOUT_MS)) == [1, 3, 6]
        assert ranch.completed and ranch.completed_count == 3
    assert served(add, "k") == 3  # every step went through the backlog
    assert served(add, "m") == 1  # only the Ranch step of the mixed pipeline


def test_pipeline_pipe_ignore_and_failure(real: Any, run_worker: Any) -> None:
    broker, client, add, _ = real
    ignoring = add.lru_message_with_options("k", (5,), pipe_ignore=True)
    result = pipeline([add.lru_message("k", 1), ignoring], broker=broker).run()
    failing = {
        "plain": pipeline([add.message(1, b="x"), add.message(2)], broker=broker).run(),
        "ranch": pipeline([add.lru_message("k", 1, b="x"), add.lru_message("k", 2)], broker=broker).run(),
    }
    with run_worker(broker, threads=2):
        assert result.get_result(block=True, timeout=TIMEOUT_MS) == 5
        for each in failing.values():
            with pytest.raises(ResultFailure):  # 1 + "x"
                each.messages[0].get_result(block=True, timeout=TIMEOUT_MS)
        time.sleep(0.2)
    ran = client.lrange("ran", 0, -1)
    assert ran.count(b"1+x") == 2 and b"2+0" not in ran  # a failed step ends its pipeline
    assert all(not each.completed for each in failing.values())
    assert served(add, "k") == 3


def test_group_results_and_one_bulk_submit(real: Any, run_worker: Any) -> None:
    broker, client, add, _ = real
    plain = group([add.message(n) for n in range(20)], broker=broker).run()
    wakeups_before = queued(client)
    ranch = group([add.lru_message("tenant", n, b=1) for n in range(50)], broker=broker).run()
    assert queued(client) - wakeups_before == 1  # 50 calls, one submit_many, one wake-up
    assert add.get_system_status()["backlog_size"] == 50
    with run_worker(broker, threads=2):
        assert list(plain.get_results(block=True, timeout=TIMEOUT_MS)) == list(range(20))
        assert list(ranch.get_results(block=True, timeout=TIMEOUT_MS)) == [n + 1 for n in range(50)]
        ranch.wait(timeout=TIMEOUT_MS)
        assert ranch.completed and ranch.completed_count == 50
    assert served(add, "tenant") == 50


def test_group_is_fair_across_keys(real: Any, run_worker: Any) -> None:
    broker, client, add, _ = real
    children = [add.lru_message("bulk", n) for n in range(60)] + [add.lru_message("quiet", 1000)]
    fair = group(children, broker=broker).run()
    with run_worker(broker, threads=1):
        fair.wait(timeout=TIMEOUT_MS)
    order = [item.decode() for item in client.lrange("ran", 0, -1)]
    assert order.index("1000+0") < 3  # not after the 60 bulk calls


def test_group_completion_callbacks(real: Any, run_worker: Any, wait: Callable[..., Any]) -> None:
    broker, client, add, log = real
    plain = group([add.message(n) for n in range(5)], broker=broker)
    plain.add_completion_callback(log.message("plain done"))
    ranch = group([add.lru_message("k", n) for n in range(5)], broker=broker)
    ranch.add_completion_callback(log.message("ranch done"))
    ranch.add_completion_callback(add.lru_message("callbacks", 100, b=1))  # a Ranch callback
    with_pipelines = group(
        [pipeline([add.lru_message("p", n), add.lru_message("p", 10)], broker=broker) for n in range(3)],
        broker=broker,
    )
    with_pipelines.add_completion_callback(log.message("pipelines done"))
    for each in (plain, ranch, with_pipelines):
        each.run()
    with run_worker(broker, threads=2):
        wait(lambda: client.llen("log") == 3 and served(add, "callbacks") == 1)
        assert list(with_pipelines.get_results(block=True, timeout=TIMEOUT_MS)) == [10, 11, 12]
        time.sleep(0.2)  # no callback runs twice
    assert sorted(client.lrange("log", 0, -1)) == [b"pipelines done", b"plain done", b"ranch done"]
    assert b"100+1" in client.lrange("ran", 0, -1)
    assert (served(add, "k"), served(add, "p"), served(add, "callbacks")) == (5, 6, 1)


def test_enqueued_directly_and_send_with_options(real: Any, run_worker: Any) -> None:
    broker, _, add, _ = real
    direct = broker.enqueue(add.lru_message("k", 1, b=2))
    sent = add.send_with_options(args=(3,), lru_key="k")
    with run_worker(broker):
        assert direct.get_result(block=True, timeout=TIMEOUT_MS) == 3
        assert sent.get_result(block=True, timeout=TIMEOUT_MS) == 3
    assert served(add, "k") == 2


def test_nested_groups_and_pipelines_in_a_group(real: Any, run_worker: Any) -> None:
    broker, client, add, _ = real
    inner = group([add.lru_message("k", n) for n in range(3)], broker=broker)
    chained = pipeline([add.lru_message("k", 10), add.lru_message("k", 1)], broker=broker)
    outer = group([inner, chained, add.message(7)], broker=broker).run()
    assert queued(client) == 2  # the plain message and one wake-up: the inner group is in the outer batch
    with run_worker(broker, threads=2):
        assert list(outer.get_results(block=True, timeout=TIMEOUT_MS)) == [[0, 1, 2], 11, 7]
    assert served(add, "k") == 5


def test_a_group_that_fails_midway_keeps_what_it_enqueued(real: Any) -> None:
    broker, client, add, log = real
    children = [
        add.lru_message("k", 1),
        log.message("before"),
        add.lru_message("k", 2),
        log.message({"a set"}),
    ]
    with pytest.raises(TypeError):  # JSON cannot encode the last, plain message
        group(children, broker=broker).run()
    # as with Dramatiq, which enqueued the children before the failure
    assert add.get_system_status()["backlog_size"] == 2
    assert queued(client) == 2  # the plain "before" and one wake-up


def test_a_ranch_message_of_a_plain_actor_is_enqueued_plainly(
    real: Any, run_worker: Any, wait: Callable[..., Any], caplog: Any
) -> None:
    broker, client, _, log = real
    message = log.message_with_options(args=("plain",), lru_key="k")
    with caplog.at_level("WARNING", logger="ranch_dramatiq"):
        broker.enqueue(message)
    assert "is not an lru_actor in this process" in caplog.text
    with run_worker(broker):
        wait(lambda: client.lrange("log", 0, -1) == [b"plain"])


def test_bad_compositions_store_nothing(real: Any) -> None:
    broker, client, add, _ = real
    with pytest.raises(TypeError, match=r"Ranch message 2 of the group .*set"):
        group(
            [add.lru_message("k", 1), add.lru_message("k", 2), add.lru_message("k", {3})], broker=broker
        ).run()
    with pytest.raises(TypeError, match=r"Ranch message 1 of the group"):
        group([add.lru_message("a", 1), add.lru_message("b", {2})], broker=broker).run()
    with pytest.raises(ValueError, match="priority_weight"):
        add.lru_message("k", 1, priority_weight=-1)
    with pytest.raises(TypeError, match="delay"):
        add.lru_message_with_options("k", (1,), delay=10)
    assert client.dbsize() == 0  # nothing stored, nothing enqueued


def test_ranch_settings_travel_with_the_message(real: Any, run_worker: Any) -> None:
    broker, _, add, _ = real
    message = add.lru_message("vip", 1, priority_weight=0.5, tags={"plan": "gold"})
    assert message.options["lru_key"] == "vip"
    pipeline([add.message(0), message], broker=broker).run()  # stored by the worker
    expired = add.lru_message("late", 1, expiry=0)
    group([expired], broker=broker).run()
    time.sleep(0.05)
    with run_worker(broker):
        assert message.get_result(block=True, timeout=TIMEOUT_MS) == 1
        with pytest.raises(ResultFailure) as info:
            expired.get_result(block=True, timeout=TIMEOUT_MS)
    assert info.value.orig_exc_type == "CallExpired"
    metadata = add.get_client_metadata("vip")
    assert metadata["weight"] == 0.5 and metadata["tags"] == {"plan": "gold"}


def test_worker_processes_store_the_later_steps(
    redis_url: str, testapp: Any, cli_workers: Any, wait: Callable[..., Any]
) -> None:
    """The producer runs no worker: the ``dramatiq`` CLI process that runs a step
    stores the next Ranch step (Pipelines) and the Ranch completion callback
    (GroupCallbacks) in the backlog."""
    broker, _ = testapp.build(redis_url)
    add = broker.get_actor("add_numbers")
    client = redis.Redis.from_url(redis_url)
    steps = [add.lru_message("k", 1), add.lru_message("k", 2), add.message(3), add.lru_message("k", 4)]
    chained = pipeline(steps, broker=broker).run()
    fanned = group([add.lru_message("g", n) for n in range(10)], broker=broker)
    fanned.add_completion_callback(add.lru_message("done", 100))
    fanned.run()
    worker = cli_workers.start(processes=1, threads=2)
    try:
        assert chained.get_result(block=True, timeout=30_000) == 10
        assert list(fanned.get_results(block=True, timeout=30_000)) == list(range(10))
        wait(lambda: served(add, "done") == 1, timeout=30)
        assert (served(add, "k"), served(add, "g")) == (3, 10)
        added = [item.decode().split() for item in client.lrange("ranch-test:added", 0, -1)]
        assert len(added) == 15 and all(int(pid) != os.getpid() for pid, _ in added)
        assert worker.poll() is None
    finally:
        client.close()
        broker.close()
