"""Two-level keys ``(group, member)`` on Redis: a ``dramatiq`` CLI worker process (one
process, one thread) runs calls stored in ``RedisStorage`` before it starts. The actor
``key_seen`` of ``ranch_dramatiq_testapp`` writes each call's ``current_key()`` (its
``repr``) to the Redis list ``ranch-test:keys``. The same scenarios on the in-memory
storage: ``test_dramatiq_groups.py``.
"""

from __future__ import annotations

import ast
import json
from typing import Any, Iterator, List, Tuple

import pytest
import redis
from dramatiq import pipeline
from ranch_core.keys import group_of

pytestmark = [pytest.mark.redis, pytest.mark.slow]


@pytest.fixture
def job(redis_url: str, testapp: Any) -> Iterator[Any]:
    """The producer's ``key_seen`` actor (its own RedisBroker on the test Redis)."""
    broker, _ = testapp.build(redis_url)
    yield broker.get_actor("key_seen")
    broker.close()


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    the_client = redis.Redis.from_url(redis_url)
    yield the_client
    the_client.close()


def _seen(client: redis.Redis, testapp: Any) -> List[Tuple[str, Any, int]]:
    """``(label, key as the actor saw it, retries)`` of each run, in order."""
    rows = [json.loads(raw) for raw in client.lrange(testapp.KEYS, 0, -1)]
    return [(label, ast.literal_eval(key), retries) for label, key, retries in rows]


def _run_one_slot(client: redis.Redis, testapp: Any, cli_workers: Any, wait: Any, count: int) -> List[Any]:
    """Start one worker process with one thread; the keys of the first ``count`` runs."""
    cli_workers.start(processes=1, threads=1, prefetch=1)
    wait(lambda: client.llen(testapp.KEYS) >= count, timeout=30)
    return [key for _label, key, _retries in _seen(client, testapp)]


def test_a_group_of_one_member_gets_as_many_turns_as_a_group_of_twenty(
    job: Any, client: redis.Redis, testapp: Any, cli_workers: Any, wait: Any
) -> None:
    # Group A: one member, 40 calls (one bulk submit). Group B: 20 members, 2 calls each.
    job.lru_send_many(("A", "only"), [(("a",), None) for _ in range(40)])
    for _turn in range(2):
        for member in range(20):
            job.lru_send(("B", f"user_{member}"), "b")
    assert job.get_system_status()["backlog_size"] == 80
    order = _run_one_slot(client, testapp, cli_workers, wait, 80)
    assert len(order) == 80
    first = [group_of(key) for key in order[:40]]
    assert 18 <= first.count("A") <= 22, first
    assert all(isinstance(key, tuple) for key in order), order
    # Within B, the members take turns: every member ran once before any ran twice.
    b_members = [key[1] for key in order if key[0] == "B"]
    assert sorted(b_members[:20]) == sorted(f"user_{member}" for member in range(20))
    wait(lambda: job.get_client_metadata("B")["served_total"] == 40, timeout=10)


def test_a_pair_key_reaches_the_worker_as_a_tuple(
    job: Any, client: redis.Redis, testapp: Any, cli_workers: Any, wait: Any
) -> None:
    pair = ("tenant_a", "user_42")
    job.lru_send(pair, "send")
    job.lru_send(list(pair), "list")  # a list of two is a pair too
    job.lru_send_with_options(pair, ("with_options",), tags={"plan": "pro"})
    job.lru_send_many(pair, [(("many",), None)])
    job.send_with_options(args=("send_options",), lru_key=pair)
    # The pipeline's second step is stored by the worker from the encoded message (a list).
    pipeline(
        [job.lru_message(pair, "pipe_first"), job.lru_message(pair, "pipe_second")], broker=job.broker
    ).run()
    job.lru_send(pair, "retry")  # retried once after 200 ms: back through the broker (JSON)
    _run_one_slot(client, testapp, cli_workers, wait, 9)
    seen = _seen(client, testapp)
    labels = sorted(label for label, _key, _retries in seen)
    expected = ["send", "list", "with_options", "many", "send_options", "pipe_first", "pipe_second"]
    assert labels == sorted([*expected, "retry", "retry"])
    for label, key, _retries in seen:
        assert key == pair and isinstance(key, tuple), (label, key)
    assert [retries for label, _key, retries in seen if label == "retry"] == [0, 1]
    assert job.get_tagged_clients("plan") == [pair]
    wait(lambda: job.get_client_metadata(pair)["served_total"] == 9, timeout=10)


def test_priority_weight_of_a_group_acts_among_the_groups(
    job: Any, client: redis.Redis, testapp: Any, cli_workers: Any, wait: Any
) -> None:
    # A at 0.5 gets two turns to B's one; within A, x and y share equally.
    assert job.set_priority_weight("A", 0.5) is True
    for _ in range(30):
        for key in (("A", "x"), ("A", "y"), ("B", "z")):
            job.lru_send(key, "w")
    assert job.get_client_metadata("A")["weight"] == 0.5
    assert job.get_client_metadata(("A", "x"))["weight"] == 1.0
    assert job.get_client_metadata("A")["pending_tasks"] == 60
    order = _run_one_slot(client, testapp, cli_workers, wait, 90)
    first = [group_of(key) for key in order[:30]]
    assert 18 <= first.count("A") <= 22, first
    a_turns = [key for key in order[:30] if key[0] == "A"]
    assert abs(a_turns.count(("A", "x")) - a_turns.count(("A", "y"))) <= 2, a_turns
    wait(lambda: job.get_client_metadata("A")["served_total"] == 60, timeout=10)
    whole = job.get_client_metadata("A")
    assert whole["weight"] == 0.5 and whole["pending_tasks"] == 0


def test_priority_weight_of_a_member_acts_within_its_group(
    job: Any, client: redis.Redis, testapp: Any, cli_workers: Any, wait: Any
) -> None:
    # The groups share equally; in A, x (0.5) gets two turns to y's one.
    # priority_weight= on a pair's call sets the member's weight too.
    assert job.set_priority_weight(("A", "x"), 0.5) is True
    for _ in range(30):
        job.lru_send(("A", "x"), "w", priority_weight=0.5)
    for _ in range(30):
        for key in (("A", "y"), ("B", "z")):
            job.lru_send(key, "w")
    assert job.get_client_metadata(("A", "x"))["weight"] == 0.5
    assert job.get_client_metadata("A")["weight"] == 1.0
    order = _run_one_slot(client, testapp, cli_workers, wait, 90)
    first = order[:42]
    groups = [group_of(key) for key in first]
    assert 19 <= groups.count("A") <= 23, first
    a_turns = [key for key in first if key[0] == "A"]
    assert 12 <= a_turns.count(("A", "x")) <= 16, a_turns
    wait(lambda: job.get_client_metadata("A")["served_total"] == 60, timeout=10)
    assert job.get_client_metadata(("A", "x"))["served_total"] == 30
