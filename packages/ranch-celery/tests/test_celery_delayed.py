"""Delayed calls on Celery (``countdown``/``eta``), next to the same plain calls (issue 15).

Real ``celery worker`` subprocesses, real Redis broker, result backend and storage.
A delayed call is stored at once, runs no earlier than asked, holds no
worker slot while it waits, and then takes its fair turn in its key.
"""

from __future__ import annotations

import datetime
import json
import time
from typing import Any, List, Tuple

import pytest
import redis
from celery import chain, group
from celery.exceptions import TaskRevokedError
from ranch_celery_testapp import make_canvas_app
from ranch_celery_testkit import wait_for

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def stamps(rec: Any, tag: str) -> List[Tuple[Any, int, float]]:
    """[(lru_key, x, start time)] of the ``t.stamped`` calls of ``tag``, in start order."""
    return [tuple(json.loads(raw)) for raw in rec.lrange(f"stamps:{tag}", 0, -1)]  # type: ignore[misc]


def test_countdown_and_eta_run_no_earlier_than_asked_like_plain_calls(redis_url, start_worker, rec) -> None:
    app = make_canvas_app(redis_url)
    stamped = app.tasks["t.stamped"]
    start_worker()
    utc = datetime.timezone.utc
    asked = time.time()
    results = {
        "countdown": stamped.lru_apply_async("k", (1, "t"), countdown=1.0),
        "eta": stamped.lru_apply_async(
            "k", (2, "t"), eta=datetime.datetime.now(utc) + datetime.timedelta(seconds=1)
        ),
        "eta-iso": stamped.lru_apply_async(
            "k", (3, "t"), eta=(datetime.datetime.now(utc) + datetime.timedelta(seconds=1)).isoformat()
        ),
        # A naive eta is in the app's timezone (UTC by default), as Celery's worker reads it.
        "eta-naive": stamped.lru_apply_async(
            "k", (4, "t"), eta=datetime.datetime.now(utc).replace(tzinfo=None) + datetime.timedelta(seconds=1)
        ),
        "plain": stamped.apply_async((5, "t"), countdown=1.0),
    }
    status = stamped.get_system_status()
    assert status["delayed"] >= 3 and status["backlog_size"] == 0  # stored, not waiting yet
    assert stamped.get_client_metadata("k")["delayed_tasks"] == status["delayed"]
    assert [results[name].get(timeout=30) for name in results] == [1, 2, 3, 4, 5]
    started = {x: when for _, x, when in stamps(rec, "t")}
    for x in (1, 2, 3, 4, 5):
        assert started[x] >= asked + 1.0 - 0.05, f"call {x} ran {asked + 1.0 - started[x]:.3f} s early"
    assert stamped.get_system_status()["delayed"] == 0


def test_a_delayed_call_holds_no_slot_and_takes_its_fair_turn_when_due(redis_url, start_worker, rec) -> None:
    app = make_canvas_app(redis_url)
    stamped = app.tasks["t.stamped"]
    start_worker()  # solo: one slot
    bulk = stamped.lru_delay_many("bulk", [((n, "f", 0.05), None) for n in range(40)])
    due = time.time() + 0.6
    late = stamped.lru_apply_async("late", (99, "f"), countdown=0.6)
    assert late.get(timeout=30) == 99
    for result in bulk:
        result.get(timeout=60)
    runs = stamps(rec, "f")
    late_start = next(when for key, _, when in runs if key == "late")
    assert late_start >= due - 0.05
    # The slot ran the bulk key while the delayed call waited ...
    assert any(when < due for key, _, when in runs if key == "bulk")
    # ... and once due it was served next: not behind the 40 calls queued before it
    # (at most the bulk call already taken when it became due starts in between).
    between = [x for key, x, when in runs if key == "bulk" and due <= when < late_start]
    assert len(between) <= 1, f"{len(between)} bulk calls started between its due time and its start"


def test_group_and_chain_with_countdown_store_delayed_calls_in_bulk(redis_url, start_worker, rec) -> None:
    app = make_canvas_app(redis_url)
    stamped, step = app.tasks["t.stamped"], app.tasks["t.step"]
    asked = time.time()
    grouped = group(stamped.lru_s("g", n, "g") for n in range(20)).apply_async(countdown=0.8)
    status = stamped.get_system_status()
    assert status["delayed"] == 20 and status["backlog_size"] == 0  # one bulk submit, none runnable yet
    ranch_chain = chain(step.lru_s("c", 1, "c"), step.lru_s("c", tag="c")).apply_async(countdown=0.5)
    plain_chain = chain(step.s(1, "p"), step.s(tag="p")).apply_async(countdown=0.5)
    start_worker()
    assert grouped.get(timeout=30) == list(range(20))
    assert ranch_chain.get(timeout=30) == plain_chain.get(timeout=30) == 3
    assert all(when >= asked + 0.8 - 0.05 for _, _, when in stamps(rec, "g"))
    assert rec.lrange("steps:c", 0, -1) == ["c:1", "c:2"]


def test_a_revoked_delayed_call_never_runs(redis_url, start_worker, rec) -> None:
    app = make_canvas_app(redis_url)
    stamped = app.tasks["t.stamped"]
    doomed = stamped.lru_apply_async("k", (1, "r"), countdown=0.5)
    kept = stamped.lru_apply_async("k", (2, "r"), countdown=0.5)
    assert stamped.revoke_call(doomed.id) is True
    start_worker()
    assert kept.get(timeout=30) == 2
    with pytest.raises(TaskRevokedError):
        doomed.get(timeout=10)
    assert [x for _, x, _ in stamps(rec, "r")] == [2]


def test_a_delayed_call_runs_after_its_wake_up_was_purged(redis_url, start_worker, rec) -> None:
    """The deferred wake-up published with the call is gone (the broker queue
    was purged): the workers' sweep promotes the due call and wakes a worker."""
    app = make_canvas_app(redis_url)
    stamped = app.tasks["t.stamped"]
    result = stamped.lru_apply_async("k", (7, "p"), countdown=0.3)
    broker = redis.Redis.from_url(redis_url)
    assert broker.llen("celery") == 1  # the deferred wake-up (Celery holds it until its eta)
    broker.delete("celery")
    broker.close()
    worker = start_worker()
    wait_for(lambda: rec.llen("stamps:p") == 1, 30, "the delayed call to run", worker)
    assert result.get(timeout=10) == 7


def test_bad_countdown_and_eta_raise_and_store_nothing(redis_url) -> None:
    app = make_canvas_app(redis_url)
    stamped = app.tasks["t.stamped"]
    now = datetime.datetime.now(datetime.timezone.utc)
    bad = [
        ({"countdown": "soon"}, TypeError, "countdown must be a number"),
        ({"countdown": float("nan")}, TypeError, "countdown must be a number"),
        ({"eta": 5}, TypeError, "eta must be a datetime"),
        ({"eta": "tomorrow"}, ValueError, "eta must be a datetime"),
        ({"countdown": 1, "eta": now}, TypeError, "countdown= or eta="),
        ({"countdown": 1e12}, ValueError, "delay must be at most"),
    ]
    for options, error, message in bad:
        with pytest.raises(error, match=message):
            stamped.lru_apply_async("k", (1, "x"), **options)
    with pytest.raises(TypeError, match="countdown must be a number"):
        stamped.lru_s("k", 1, "x").set(countdown="soon").delay()
    status = stamped.get_system_status()
    assert status["delayed"] == 0 and status["backlog_size"] == 0
    # A moment already past is no delay: the call waits at once, as in Celery.
    stamped.lru_apply_async("k", (1, "x"), countdown=-5)
    stamped.lru_apply_async("k", (2, "x"), eta=now - datetime.timedelta(seconds=5))
    status = stamped.get_system_status()
    assert status["delayed"] == 0 and status["backlog_size"] == 2
