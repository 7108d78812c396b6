"""The paths that only run when something goes wrong, with real workers (issue 17)."""

from __future__ import annotations

import datetime
import time

import pytest
from ranch_celery.retries import delay_of
from ranch_celery_testapp import make_app
from ranch_celery_testkit import wait_for

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def test_retry_with_eta_waits_for_the_eta_in_the_broker(redis_url, start_worker, rec) -> None:
    app = make_app(redis_url)
    result = app.tasks["t.retry_eta"].lru_delay("k", "eta", 1.0)
    worker = start_worker()
    assert result.get(timeout=20) == 1, worker.log_tail()
    first, second = (float(t) for t in rec.lrange("times:eta", 0, -1))
    assert second - first >= 0.9  # eta is to the second in Celery's message, not finer
    wait_for(lambda: app.tasks["t.record"].get_system_status()["leased"] == 0, 10, "the ack", worker)


def test_a_retry_that_cannot_be_stored_comes_back_with_its_lease(redis_url, start_worker, rec) -> None:
    app = make_app(redis_url, lease=2.0)
    result = app.tasks["t.retry_unstorable"].lru_delay("k", "unstorable")
    worker = start_worker(env={"RANCH_TEST_LEASE": "2", "RANCH_TEST_SWEEP": "0.3"})
    # First attempt: the requeue fails (the new args cannot be encoded), the lease is kept;
    # it runs out after 2 s and the sweep puts the call back with its stored args.
    assert result.get(timeout=20) == 2, worker.log_tail()
    log = worker.log.read_text()
    assert "could not put call" in log and result.id in log
    assert rec.get("attempts:unstorable") == "2"


def test_a_delayed_retry_that_cannot_be_published_is_retried_at_once(redis_url, start_worker, rec) -> None:
    app = make_app(redis_url)
    result = app.tasks["t.pickled_retry"].lru_delay("k", "pickled", {3, 1, 2})  # a set: pickle only
    worker = start_worker()
    started = time.monotonic()
    assert result.get(timeout=20) == [1, 2, 3], worker.log_tail()
    assert time.monotonic() - started < 30  # not after its 30 s countdown
    assert "could not publish the delayed retry" in worker.log.read_text()
    assert rec.llen("times:pickled") == 2


def test_delay_of_reads_eta_and_countdown() -> None:
    now = datetime.datetime(2026, 1, 1, 12, 0, 0)
    assert delay_of({"eta": "2026-01-01T12:00:05"}, now=now) == 5.0
    assert delay_of({"eta": now - datetime.timedelta(seconds=3)}, now=now) == 0.0
    aware = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=60)
    assert 50 < delay_of({"eta": aware}) <= 60
    assert delay_of({"countdown": 2}) == 2.0 and delay_of({"countdown": -1}) == 0.0
    assert delay_of({}) == 0.0
