"""Bad input to lru_delay: a clear error, nothing stored, nothing published."""

from __future__ import annotations

import math

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
    # (args for lru_delay, kwargs for lru_delay, expected exception)
    (("",), {}, ValueError),  # empty key
    ((5,), {}, TypeError),  # key not a str
    ((None,), {}, TypeError),
    (("k",), {"priority_weight": 0}, ValueError),
    (("k",), {"priority_weight": -1.0}, ValueError),
    (("k",), {"priority_weight": math.nan}, ValueError),
    (("k",), {"priority_weight": math.inf}, ValueError),
    (("k",), {"priority_weight": "2"}, TypeError),
    (("k",), {"expiry": -1}, ValueError),
    (("k",), {"expiry": math.inf}, ValueError),
    (("k",), {"expiry": "soon"}, TypeError),
    (("k", NotJSON()), {}, TypeError),  # argument JSON cannot encode
    (("k", {1, 2}), {}, TypeError),
    (("k", b"bytes"), {}, TypeError),
    (("k", math.nan), {}, TypeError),  # strict JSON: no NaN
    (("k",), {"b": object()}, TypeError),  # keyword argument JSON cannot encode
    (("k",), {"tags": ["vip"]}, TypeError),
    (("k",), {"tags": {"": "x"}}, ValueError),
    (("k",), {"tags": {"tier": 3}}, TypeError),
]


@pytest.mark.parametrize(("args", "kwargs", "error"), BAD_CALLS)
def test_bad_lru_delay_stores_and_publishes_nothing(redis_url, args, kwargs, error) -> None:
    app = make_app(redis_url)
    kw = app.tasks["t.kw"]
    broker = redis.Redis.from_url(redis_url)
    with pytest.raises(error):
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
        kw.lru_apply_async("k", (1,), countdown=5)
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


def test_a_failed_publish_leaves_no_call_behind(redis_url) -> None:
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

    with pytest.raises(Exception) as raised:
        job.lru_delay("k", 1)
    assert not isinstance(raised.value, (TypeError, ValueError))
    assert storage.status().backlog_size == 0
    storage.close()
