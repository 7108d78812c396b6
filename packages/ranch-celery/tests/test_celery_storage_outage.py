"""A wake-up that meets its storage down is not lost (issue 9, bug 3).

The broker (and result backend) is the session's Redis; the storage is a
second redis-server with an append-only file, stopped while the worker
takes the wake-up and started again (same port, same data) afterwards.
"""

from __future__ import annotations

import time

import pytest
from ranch_celery_testapp import make_app
from ranch_celery_testkit import wait_for
from ranch_redis.testing import RedisServer

pytestmark = [pytest.mark.redis, pytest.mark.slow]

#: The sweep interval of this test: the longest a call may wait once the storage is back.
#: The idle refill (the only other way back) needs two sweep intervals.
SWEEP = 10.0
#: One sweep interval plus slack for a loaded machine, still short of the idle refill's two.
WITHIN_A_SWEEP = 1.5 * SWEEP


def test_a_call_runs_within_the_sweep_interval_after_storage_comes_back(redis_url, start_worker) -> None:
    durable = ["--appendonly", "yes", "--appendfsync", "always"]
    with RedisServer(extra_args=durable) as storage_server:
        app = make_app(redis_url, storage_url=storage_server.url, sweep=SWEEP)
        add = app.tasks["t.add"]
        result = add.lru_delay("tenant", 20, 22)  # stored; its wake-up waits in the broker
        assert add.get_system_status()["backlog_size"] == 1
        storage_server.stop()
        env = {"RANCH_TEST_STORAGE_URL": storage_server.url, "RANCH_TEST_SWEEP": str(SWEEP)}
        worker = start_worker(env=env)
        wait_for(
            lambda: "wake-up published again" in worker.log.read_text(),
            20,
            "the worker to meet the storage down",
            worker,
        )
        storage_server.start()
        back = time.monotonic()
        assert result.get(timeout=WITHIN_A_SWEEP) == 42, worker.log_tail()
        assert time.monotonic() - back < WITHIN_A_SWEEP
        wait_for(lambda: add.get_system_status()["leased"] == 0, 10, "the lease to be acked", worker)
        assert add.get_system_status()["backlog_size"] == 0
