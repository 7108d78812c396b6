"""lru_delay end to end on a real Redis broker and result backend, with a real worker process."""

from __future__ import annotations

import time

import pytest
from celery.exceptions import TaskRevokedError
from ranch_celery import EXPIRED_REASON
from ranch_celery_testapp import make_app
from ranch_celery_testkit import wait_for

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def test_results_exceptions_retries_bind_kwargs_and_expiry(redis_url, start_worker, rec) -> None:
    app = make_app(redis_url)
    tasks = app.tasks
    # Sent before any worker runs, so the order below is deterministic.
    expiring = tasks["t.add"].lru_delay("late", 1, 1, expiry=0.3)
    added = tasks["t.add"].lru_delay("a", 2, 3)
    failed = tasks["t.fail"].lru_delay("b", "no luck")
    keywords = tasks["t.kw"].lru_delay("c", 1, b=2, c={"x": [1, 2]})
    me = tasks["t.whoami"].lru_delay("d")
    # A retry goes back to the tail of its key's backlog: the three calls of
    # key "r" sent after it run before its second attempt.
    retried = tasks["t.retrying"].lru_delay("r", "retry", 1, 0)
    for n in range(3):
        tasks["t.record"].lru_delay("r", "retry", "r", n)
    delayed = tasks["t.retrying"].lru_delay("s", "countdown", 1, 1.0)
    gives_up = tasks["t.give_up"].lru_delay("g")
    time.sleep(0.5)  # let the first call expire

    worker = start_worker()
    assert added.get(timeout=20) == 5
    with pytest.raises(ValueError, match="no luck"):
        failed.get(timeout=20)
    assert failed.state == "FAILURE"
    assert keywords.get(timeout=20) == [1, 2, {"x": [1, 2]}]
    assert me.get(timeout=20) == {"id": me.id, "key": "d", "retries": 0}
    assert retried.get(timeout=20) == {"retries": 1, "id": retried.id}
    assert rec.lrange("order:retry", 0, -1) == ["r:retry0", "r:0", "r:1", "r:2", "r:retry1"]
    assert delayed.get(timeout=20) == {"retries": 1, "id": delayed.id}
    first, second = (float(t) for t in rec.lrange("times:countdown", 0, -1))
    assert second - first >= 1.0
    with pytest.raises(RuntimeError, match="failed 2 times"):  # max_retries=1: two attempts
        gives_up.get(timeout=20)
    assert gives_up.state == "FAILURE"
    with pytest.raises(TaskRevokedError, match="expired"):
        expiring.get(timeout=20)
    assert expiring.state == "REVOKED"
    assert EXPIRED_REASON in str(expiring.result)

    # The result is stored before the lease is acked: wait for the acks.
    for name in ("t.add", "t.record"):
        wait_for(lambda: tasks[name].get_system_status()["leased"] == 0, 10, "leases to be acked", worker)
    status = tasks["t.add"].get_system_status()
    assert status["backlog_size"] == 0 and status["expired_total"] == 1 and status["health"] is True
    record_status = tasks["t.record"].get_system_status()
    assert record_status["backlog_size"] == 0 and record_status["leased"] == 0
    # retrying shares the "t.record" backlog: 3 record calls + 2x2 attempts of the two retrying calls
    assert record_status["served_total"] == 7


def test_the_async_result_id_is_the_users_call(redis_url, start_worker) -> None:
    app = make_app(redis_url)
    result = app.tasks["t.whoami"].lru_apply_async("k", task_id="my-own-id")
    assert result.id == "my-own-id"
    start_worker()
    assert result.get(timeout=20)["id"] == "my-own-id"


def test_wake_ups_follow_the_tasks_routing(redis_url, start_worker) -> None:
    import redis

    app = make_app(redis_url)
    by_conf = app.tasks["t.routed_by_conf"].lru_delay("k")  # task_routes in app.conf
    broker = redis.Redis.from_url(redis_url)
    assert broker.llen("ranch-images") == 1 and broker.llen("celery") == 0
    start_worker(queues="ranch-images")  # an existing worker of that queue, nothing new
    assert by_conf.get(timeout=20) == "ranch-images"
    broker.close()
