"""Two-level keys ``(group, member)`` on Redis: a real ``celery worker`` subprocess (solo
pool, one slot) runs calls stored in ``RedisStorage`` before it starts. The task
``t.key_seen`` writes each call's ``self.request.lru_key`` (its ``repr``) to the Redis
list ``keys``. The same scenarios on the in-memory storage: ``test_celery_groups.py``.
"""

from __future__ import annotations

import ast
import json
from typing import Any, List, Tuple

import pytest
from celery import chain
from ranch_celery_testapp import make_app
from ranch_celery_testkit import wait_for
from ranch_core.keys import group_of

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def _seen(rec: Any) -> List[Tuple[str, Any, int]]:
    """``(label, key as the task saw it, retries)`` of each run, in order."""
    rows = [json.loads(raw) for raw in rec.lrange("keys", 0, -1)]
    return [(label, ast.literal_eval(key), retries) for label, key, retries in rows]


def _keys_after(rec: Any, count: int, worker: Any) -> List[Any]:
    wait_for(lambda: rec.llen("keys") >= count, 30, f"{count} executions", worker)
    return [key for _label, key, _retries in _seen(rec)]


def test_a_group_of_one_member_gets_as_many_turns_as_a_group_of_twenty(
    redis_url: str, start_worker: Any, rec: Any
) -> None:
    job = make_app(redis_url).tasks["t.key_seen"]
    # Group A: one member, 40 calls (one bulk submit). Group B: 20 members, 2 calls each.
    job.lru_delay_many(("A", "only"), [(("a",), None) for _ in range(40)])
    for turn in range(2):
        for member in range(20):
            job.lru_delay(("B", f"user_{member}"), "b")
    assert job.get_system_status()["backlog_size"] == 80
    worker = start_worker(concurrency=1)
    order = _keys_after(rec, 80, worker)
    assert len(order) == 80
    first = [group_of(key) for key in order[:40]]
    assert 18 <= first.count("A") <= 22, first
    assert all(isinstance(key, tuple) for key in order), order
    # Within B, the members take turns: every member ran once before any ran twice.
    b_members = [key[1] for key in order if key[0] == "B"]
    assert sorted(b_members[:20]) == sorted(f"user_{member}" for member in range(20))
    assert job.get_client_metadata("B")["served_total"] == 40


def test_a_pair_key_reaches_the_worker_as_a_tuple(redis_url: str, start_worker: Any, rec: Any) -> None:
    job = make_app(redis_url).tasks["t.key_seen"]
    pair = ("tenant_a", "user_42")
    results = [
        job.lru_delay(pair, "delay"),
        job.lru_delay(list(pair), "list"),  # a list of two is a pair too
        job.apply_async(("signature_options",), lru_key=pair),
        *job.lru_delay_many(pair, [(("many",), None)]),
        # The chain's second step is stored by the worker from the JSON message (a list).
        chain(job.lru_s(pair, "chain_first"), job.lru_s(pair, "chain_second")).apply_async(),
        job.lru_delay(pair, "retry"),  # retried once with a countdown: back through JSON
    ]
    worker = start_worker(concurrency=1)
    for result in results:
        result.get(timeout=30)
    wait_for(lambda: rec.llen("keys") >= 8, 10, "8 executions", worker)
    seen = _seen(rec)
    labels = sorted(label for label, _key, _retries in seen)
    assert labels == sorted(
        ["delay", "list", "signature_options", "many", "chain_first", "chain_second", "retry", "retry"]
    )
    for label, key, _retries in seen:
        assert key == pair and isinstance(key, tuple), (label, key)
    assert [retries for label, _key, retries in seen if label == "retry"] == [0, 1]
    assert job.get_client_metadata(pair)["served_total"] == 8


def test_priority_weight_of_a_group_acts_among_the_groups(
    redis_url: str, start_worker: Any, rec: Any
) -> None:
    job = make_app(redis_url).tasks["t.key_seen"]
    # A at 0.5 gets two turns to B's one; within A, x and y share equally.
    assert job.set_priority_weight("A", 0.5) is True
    for _ in range(30):
        for key in (("A", "x"), ("A", "y"), ("B", "z")):
            job.lru_delay(key, "w")
    assert job.get_client_metadata("A")["weight"] == 0.5
    assert job.get_client_metadata(("A", "x"))["weight"] == 1.0
    assert job.get_client_metadata("A")["pending_tasks"] == 60
    worker = start_worker(concurrency=1)
    order = _keys_after(rec, 90, worker)
    first = [group_of(key) for key in order[:30]]
    assert 18 <= first.count("A") <= 22, first
    a_turns = [key for key in order[:30] if key[0] == "A"]
    assert abs(a_turns.count(("A", "x")) - a_turns.count(("A", "y"))) <= 2, a_turns
    whole = job.get_client_metadata("A")
    assert whole["weight"] == 0.5 and whole["pending_tasks"] == 0 and whole["served_total"] == 60


def test_priority_weight_of_a_member_acts_within_its_group(
    redis_url: str, start_worker: Any, rec: Any
) -> None:
    job = make_app(redis_url).tasks["t.key_seen"]
    # The groups share equally; in A, x (0.5) gets two turns to y's one.
    # priority_weight= on a pair's call sets the member's weight too.
    assert job.set_priority_weight(("A", "x"), 0.5) is True
    for _ in range(30):
        job.lru_delay(("A", "x"), "w", priority_weight=0.5)
    for _ in range(30):
        for key in (("A", "y"), ("B", "z")):
            job.lru_delay(key, "w")
    assert job.get_client_metadata(("A", "x"))["weight"] == 0.5
    assert job.get_client_metadata("A")["weight"] == 1.0
    worker = start_worker(concurrency=1)
    order = _keys_after(rec, 90, worker)
    first = order[:42]
    groups = [group_of(key) for key in first]
    assert 19 <= groups.count("A") <= 23, first
    a_turns = [key for key in first if key[0] == "A"]
    assert 12 <= a_turns.count(("A", "x")) <= 16, a_turns
    assert job.get_client_metadata(("A", "x"))["served_total"] == 30
    assert job.get_client_metadata("A")["served_total"] == 60
