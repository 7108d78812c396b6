"""Bad input to lru_delay: a clear error, nothing stored, nothing published."""

from __future__ import annotations

import math
import time

import pytest
import redis
from celery import Celery
from ranch_celery import lru_task
from ranch_celery_testapp import make_app
from ranch_redis import RedisStorage
from ranch_redis.testing import free_port

pytestmark = [pytest.mark.redis]


class NotJSON:
    pass


BAD_CALLS = [
    # (args for lru_delay, kwargs for lru_delay, expected exception, message it must match)
    (("",), {}, ValueError, "lru_key"),  # empty key
    ((5,), {}, TypeError, "lru_key"),  # key not a str
    ((None,), {}, TypeError, "lru_key"),
    (("k",), {"priority_weight": 0}, ValueError, "priority_weight"),
    (("k",), {"priority_weight": -1.0}, ValueError, "priority_weight"),
    (("k",), {"priority_weight": math.nan}, ValueError, "priority_weight"),
    (("k",), {"priority_weight": math.inf}, ValueError, "priority_weight"),
    (("k",), {"priority_weight": "2"}, TypeError, "priority_weight"),
    (("k",), {"expiry": -1}, ValueError, "expiry"),
    (("k",), {"expiry": math.inf}, ValueError, "expiry"),
    (("k",), {"expiry": "soon"}, TypeError, "expiry"),
    # Arguments kombu's JSON (Celery's json serializer) cannot encode: the error names the argument.
    (("k", NotJSON()), {}, TypeError, r"argument 1 \(args\[0\]\) of type NotJSON cannot be encoded"),
    (("k", 1, {1, 2}), {}, TypeError, r"argument 2 \(args\[1\]\) of type set cannot be encoded"),
    (("k",), {"b": object()}, TypeError, r"keyword 'b' of type object cannot be encoded"),
    (("k",), {"c": [1, {"deep": object()}]}, TypeError, r"keyword 'c' of type list cannot be encoded"),
    (("k",), {"tags": ["vip"]}, TypeError, "tags"),
    (("k",), {"tags": {"": "x"}}, ValueError, "tag name"),
    (("k",), {"tags": {"tier": 3}}, TypeError, "tier"),
]


@pytest.mark.parametrize(("args", "kwargs", "error", "match"), BAD_CALLS)
def test_bad_lru_delay_stores_and_publishes_nothing(redis_url, args, kwargs, error, match) -> None:
    app = make_app(redis_url)
    kw = app.tasks["t.kw"]
    broker = redis.Redis.from_url(redis_url)
    with pytest.raises(error, match=match):
        kw.lru_delay(*args, **kwargs)
    assert kw.get_system_status()["backlog_size"] == 0
    assert broker.llen("celery") == 0
    assert not broker.keys("celery-task-meta-*")
    # The same check does see a good call.
    kw.lru_delay("k", 1)
    assert kw.get_system_status()["backlog_size"] == 1
    assert broker.llen("celery") == 1
    broker.close()


def test_bad_lru_apply_async_options(redis_url) -> None:
    app = make_app(redis_url)
    kw = app.tasks["t.kw"]
    broker = redis.Redis.from_url(redis_url)
    with pytest.raises(TypeError, match="countdown"):
        kw.lru_apply_async("k", (1,), countdown="soon")
    with pytest.raises(TypeError, match="args must be a list or tuple"):
        kw.lru_apply_async("k", "abc")
    with pytest.raises(TypeError, match="kwargs"):
        kw.lru_apply_async("k", (1,), {1: 2})
    with pytest.raises(ValueError, match="task_id"):
        kw.lru_apply_async("k", (1,), task_id="")
    kw.lru_apply_async("k", (1,), task_id="same")
    with pytest.raises(ValueError, match="already"):
        kw.lru_apply_async("k", (2,), task_id="same")
    assert kw.get_system_status()["backlog_size"] == 1
    assert broker.llen("celery") == 1
    broker.close()


def test_a_failed_publish_leaves_the_call_stored_for_the_sweep(redis_url, caplog) -> None:
    # DESIGN.md "Wake-ups": write the call first, then publish; a publish that
    # fails leaves the call stored and its token unclaimed, and the sweep repairs it.
    # The broker is down (nothing listens on this port); the storage is fine.
    app = Celery("down", broker=f"redis://127.0.0.1:{free_port()}/0")
    app.conf.update(
        broker_connection_retry=False,
        broker_connection_max_retries=0,
        broker_connection_timeout=0.5,
        task_publish_retry=False,
        broker_transport_options={"max_retries": 0},
    )
    storage = RedisStorage.from_url(redis_url, namespace="down")

    @lru_task(app, storage=storage, shared=False)
    def job(x: int) -> int:
        return x

    result = job.lru_delay("k", 1)
    assert "could not publish wake-up" in caplog.text
    assert storage.status().backlog_size == 1
    assert storage.wakeup_status().in_flight == 1  # unclaimed: replaced by a sweep after its ttl
    assert storage.pop(time.time(), 10).task.task_id == result.id
    storage.close()
