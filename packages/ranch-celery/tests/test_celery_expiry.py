"""Expired calls stop counting without any worker, and their results end REVOKED (issue 9, bug 5)."""

from __future__ import annotations

import time

import pytest
from celery import Celery
from ranch_celery import EXPIRED_REASON, lru_task


@pytest.mark.redis
def test_expired_calls_leave_the_counts_and_are_revoked_with_no_worker_running(redis_url: str) -> None:
    app = Celery("expiry", broker=redis_url, backend=redis_url, set_as_current=False)

    @lru_task(app, shared=False, name="expiry.job")
    def job(n: int) -> int:
        return n

    # A second of expiry: four pushes and a read take milliseconds, even on a loaded machine
    # (0.2 s was once too short for them in CI).
    doomed = [job.lru_delay("tenant", n, expiry=1.0) for n in range(3)]
    kept = job.lru_delay("tenant", 99)
    assert job.get_client_metadata("tenant")["pending_tasks"] == 4
    # The expiry is wall-clock time: each read drops the calls whose time has come.
    deadline = time.monotonic() + 30
    while job.get_client_metadata("tenant")["pending_tasks"] != 1:
        assert time.monotonic() < deadline, "the expired calls still count"
        time.sleep(0.05)

    status = job.get_system_status()
    assert status["backlog_size"] == 1 and status["expired_total"] == 3
    for result in doomed:
        assert result.state == "REVOKED"
        assert EXPIRED_REASON in str(app.backend.get_task_meta(result.id)["result"])
    assert kept.state == "PENDING"
