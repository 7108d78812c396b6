"""Celery's ``apply_async`` options on ``lru_apply_async`` (issue 15), next to the same plain call.

Real ``celery worker`` subprocesses, real Redis broker and result backend.
Bad options raise naming the option, and nothing is stored.
"""

from __future__ import annotations

import datetime
import time
from typing import Any

import pytest
from celery import group
from celery.exceptions import TaskRevokedError, TimeLimitExceeded
from ranch_celery_testapp import make_canvas_app
from ranch_celery_testkit import wait_for

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def stored(task: Any) -> int:
    return int(task.get_system_status()["backlog_size"])


def test_expires_is_ranch_expiry_and_ends_revoked_like_a_plain_expired_call(redis_url, start_worker) -> None:
    app = make_canvas_app(redis_url)
    add = app.tasks["t.add"]
    soon = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=0.2)
    ranch = [
        add.lru_apply_async("k", (1, 2), expires=0.2),
        add.lru_apply_async("k", (1, 2), expires=soon),
        add.lru_apply_async("k", (1, 2), expires=soon.isoformat()),
    ]
    plain = add.apply_async((1, 2), expires=0.2)
    kept = add.lru_apply_async("k", (2, 3), expires=60)
    time.sleep(0.4)
    start_worker()
    assert kept.get(timeout=20) == 5
    for result in [*ranch, plain]:
        with pytest.raises(TaskRevokedError):
            result.get(timeout=20)
        assert result.state == "REVOKED"


def test_expires_and_expiry_together_are_refused(redis_url) -> None:
    add = make_canvas_app(redis_url).tasks["t.add"]
    with pytest.raises(TypeError, match=r"expires=.*expiry="):
        add.lru_apply_async("k", (1, 2), expires=5, expiry=5)
    with pytest.raises(TypeError, match=r"expires=.*expiry="):
        add.lru_signature("k", (1, 2), expiry=5, expires=5).delay()
    assert stored(add) == 0


def test_task_id_headers_shadow_and_time_limits_reach_self_request_as_in_a_plain_call(
    redis_url, start_worker
) -> None:
    app = make_canvas_app(redis_url)
    info = app.tasks["t.request_info"]
    options = {"headers": {"x-trace": "t-1"}, "shadow": "nickname", "time_limit": 30, "soft_time_limit": 20}
    ranch = info.lru_apply_async("tenant", task_id="ranch-id", **options)
    plain = info.apply_async(task_id="plain-id", **options)
    assert ranch.id == "ranch-id"
    start_worker()
    seen, expected = ranch.get(timeout=20), plain.get(timeout=20)
    assert seen.pop("key") == "tenant" and expected.pop("key") is None
    assert seen.pop("id") == "ranch-id" and expected.pop("id") == "plain-id"
    assert seen.pop("root_id") == "ranch-id" and expected.pop("root_id") == "plain-id"
    assert (
        seen
        == expected
        == {
            "shadow": "nickname",
            "timelimit": [30, 20],
            "headers": {"x-trace": "t-1"},
            "parent_id": None,
            "stamps": {},
        }
    )


def test_the_shadow_log_line_names_the_shadow(redis_url, start_worker) -> None:
    app = make_canvas_app(redis_url)
    result = app.tasks["t.add"].lru_apply_async("k", (1, 2), shadow="add-for-tenant-k")
    worker = start_worker()
    assert result.get(timeout=20) == 3
    wait_for(lambda: "Task add-for-tenant-k[" in worker.log.read_text(), 10, "the shadow in the log", worker)


def test_queue_picks_the_backlog_of_that_queue_as_plain_routing_does(redis_url, start_worker) -> None:
    import redis

    app = make_canvas_app(redis_url)
    add, routed = app.tasks["t.add"], app.tasks["t.routed_by_conf"]
    broker = redis.Redis.from_url(redis_url)
    ranch = add.lru_apply_async("k", (1, 2), queue="ranch-images")
    plain = add.apply_async((1, 2), queue="ranch-images")
    # Stored in the backlog of queue "ranch-images" (t.routed_by_conf's), its wake-up on that queue.
    assert stored(routed) == 1 and stored(add) == 0
    assert broker.llen("ranch-images") == 2 and broker.llen("celery") == 0
    start_worker(queues="ranch-images")
    assert ranch.get(timeout=20) == plain.get(timeout=20) == 3
    with pytest.raises(ValueError, match=r"queue='nowhere'.*ranch-images"):
        add.lru_apply_async("k", (1, 2), queue="nowhere")
    assert stored(add) == 0 and stored(routed) == 0


def test_ignore_result_runs_the_call_and_stores_no_result(redis_url, start_worker, rec) -> None:
    app = make_canvas_app(redis_url)
    step = app.tasks["t.step"]
    ranch = step.lru_apply_async("k", (1, "ignored"), ignore_result=True)
    plain = step.apply_async((2, "ignored"), ignore_result=True)
    start_worker()
    wait_for(lambda: rec.llen("steps:ignored") == 2, 20, "both calls to run")
    assert sorted(rec.lrange("steps:ignored", 0, -1)) == ["None:2", "k:1"]
    assert app.backend.get_task_meta(ranch.id)["status"] == "PENDING"
    assert app.backend.get_task_meta(plain.id)["status"] == "PENDING"


def test_link_takes_a_list_of_signatures(redis_url, start_worker, rec) -> None:
    app = make_canvas_app(redis_url)
    step = app.tasks["t.step"]
    result = step.lru_apply_async("a", (1, "many"), link=[step.lru_s("b", "many"), step.s("many")])
    start_worker()
    assert result.get(timeout=20) == 2
    assert sorted(child.get(timeout=20) for child in result.children[0].results) == [3, 3]
    assert sorted(rec.lrange("steps:many", 0, -1)) == ["None:2", "a:1", "b:2"]


def test_per_call_time_limits_on_prefork_as_in_a_plain_call(redis_url, start_worker, rec) -> None:
    app = make_canvas_app(redis_url)
    sleeper, add = app.tasks["t.sleeper"], app.tasks["t.add"]
    soft = sleeper.lru_apply_async("k", (10, "soft"), soft_time_limit=0.5)
    soft_plain = sleeper.apply_async((10, "soft-plain"), soft_time_limit=0.5)
    hard = sleeper.lru_apply_async("k", (10, "hard"), time_limit=1)
    hard_plain = sleeper.apply_async((10, "hard-plain"), time_limit=1)
    after = add.lru_delay("other", 2, 3)
    started = time.monotonic()
    worker = start_worker(pool="prefork", concurrency=1)
    assert soft.get(timeout=30) == soft_plain.get(timeout=30) == "soft"
    for result in (hard, hard_plain):
        with pytest.raises(TimeLimitExceeded):
            result.get(timeout=30)
        assert result.state == "FAILURE"
    # The pool replaced the killed process and the backlog goes on.
    assert after.get(timeout=30) == 5
    assert time.monotonic() - started < 25  # no 10 s sleep ran to its end
    wait_for(lambda: add.get_system_status()["leased"] == 0, 10, "the leases to be acked", worker)
    assert sleeper.get_system_status()["backlog_size"] == 0
    log = worker.log.read_text()
    assert f"Hard time limit (1.0s) exceeded for t.sleeper[{hard.id}]" in log
    assert f"Soft time limit (0.5s) exceeded for t.sleeper[{soft.id}]" in log


def test_per_call_hard_time_limit_on_gevent_as_in_a_plain_call(redis_url, start_worker, rec) -> None:
    """Celery's gevent pool enforces a message's hard limit (a ``gevent.Timeout``) and no
    soft limit: a Ranch call's own limits do the same, and the worker goes on."""
    app = make_canvas_app(redis_url)
    sleeper, add = app.tasks["t.sleeper"], app.tasks["t.add"]
    hard = sleeper.lru_apply_async("k", (10, "hard"), time_limit=0.5)
    hard_plain = sleeper.apply_async((10, "hard-plain"), time_limit=0.5)
    soft = sleeper.lru_apply_async("k", (0.6, "soft"), soft_time_limit=0.2)
    soft_plain = sleeper.apply_async((0.6, "soft-plain"), soft_time_limit=0.2)
    after = add.lru_delay("other", 2, 3)
    started = time.monotonic()
    worker = start_worker(pool="gevent", concurrency=4)
    for result in (hard, hard_plain):
        with pytest.raises(TimeLimitExceeded):
            result.get(timeout=30)
        assert result.state == "FAILURE"
    assert soft.get(timeout=30) == soft_plain.get(timeout=30) == "slept"
    assert after.get(timeout=30) == 5
    assert time.monotonic() - started < 25  # no 10 s sleep ran to its end
    wait_for(lambda: sleeper.get_system_status()["leased"] == 0, 10, "the leases to be acked", worker)
    assert f"Hard time limit (0.5s) exceeded for t.sleeper[{hard.id}]" in worker.log.read_text()
    assert rec.lrange("steps:hard", 0, -1) == ["k:start"]  # ended by the limit, not run twice


def test_per_call_time_limits_are_not_enforced_on_solo_as_in_celery(redis_url, start_worker) -> None:
    app = make_canvas_app(redis_url)
    sleeper = app.tasks["t.sleeper"]
    ranch = sleeper.lru_apply_async("k", (0.5, "solo"), soft_time_limit=0.1, time_limit=0.25)
    plain = sleeper.apply_async((0.5, "solo-plain"), soft_time_limit=0.1, time_limit=0.25)
    start_worker(pool="solo")
    assert ranch.get(timeout=20) == plain.get(timeout=20) == "slept"


def test_bad_options_raise_naming_the_option_and_store_nothing(redis_url) -> None:
    app = make_canvas_app(redis_url)
    add, step = app.tasks["t.add"], app.tasks["t.step"]
    refused = ["priority", "routing_key", "exchange", "serializer", "compression", "retry", "retry_policy"]
    for name in refused:
        with pytest.raises(TypeError, match=f"does not support {name}="):
            add.lru_apply_async("k", (1, 2), **{name: 1})
    bad = [
        ({"no_such_option": 1}, TypeError, "no_such_option"),
        ({"link": "t.add"}, TypeError, "link must be a Celery signature"),
        ({"link_error": [1]}, TypeError, "link_error must be a Celery signature"),
        ({"time_limit": -1}, ValueError, "time_limit must be > 0"),
        ({"soft_time_limit": "soon"}, TypeError, "soft_time_limit must be a number"),
        ({"time_limit": 1, "soft_time_limit": 2}, ValueError, "soft_time_limit must be less"),
        ({"expires": -1}, ValueError, "expires must be >= 0"),
        ({"expires": "tomorrow"}, ValueError, "expires must be seconds"),
        ({"headers": ["x"]}, TypeError, "headers must be a mapping"),
        ({"shadow": 3}, TypeError, "shadow must be a str"),
        ({"ignore_result": "yes"}, TypeError, "ignore_result must be True or False"),
        ({"queue": 3}, TypeError, "queue must be a queue name"),
        ({"task_id": ""}, ValueError, "task_id"),
        ({"link": add.s(1).set(lru_key="k", junk=object())}, TypeError, "options"),
    ]
    for options, error, message in bad:
        with pytest.raises(error, match=message):
            add.lru_apply_async("k", (1, 2), **options)
    # The same through signatures and a group: raised when applied, nothing stored.
    with pytest.raises(TypeError, match="countdown must be a number"):
        step.lru_s("k", 1, "x").set(countdown="5").delay()
    with pytest.raises(TypeError, match=r"Ranch call 1 of the group.*args\[0\]"):
        group(step.lru_s("k", 1, "x"), step.lru_s("k", object(), "x")).apply_async()
    with pytest.raises(TypeError, match="Ranch call 1 of the group"):
        group(step.lru_s("a", 1, "x"), step.lru_s("b", object(), "x")).apply_async()
    assert stored(add) == 0 and stored(step) == 0


def test_stamps_reach_self_request_as_in_a_plain_call(redis_url, start_worker) -> None:
    app = make_canvas_app(redis_url)
    info = app.tasks["t.request_info"]
    ranch, plain = info.lru_signature("k"), info.signature()
    for signature in (ranch, plain):
        signature.stamp(tenant="t-1")
    ranch_result, plain_result = ranch.apply_async(), plain.apply_async()
    start_worker()
    assert ranch_result.get(timeout=20)["stamps"] == plain_result.get(timeout=20)["stamps"]
    assert ranch_result.get(timeout=20)["stamps"] == {"tenant": "t-1"}
