"""The ``ranch`` command on a backlog fed and served by a real ``dramatiq.Worker`` (RedisBroker)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from dramatiq.results import ResultFailure
from ranch_dramatiq import lru_actor
from ranch_redis import RedisStorage

pytestmark = pytest.mark.redis
RANCH = os.path.join(os.path.dirname(sys.executable), "ranch")
TIMEOUT_MS = 15_000


def ranch(url: str, *args: str) -> Any:
    """``ranch *args --json`` against ``url``; its JSON output (exit code 0 required)."""
    done = subprocess.run(
        [RANCH, *args, "--json", "--url", url], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_command_reads_and_controls_a_dramatiq_backlog(
    redis_url: str, real: Any, run_worker: Any, wait: Any
) -> None:
    broker, backend, _ = real

    @lru_actor(broker=broker, store_results=True, queue_name="reports")
    def double(x: int) -> int:
        return 2 * x

    @lru_actor(broker=broker, store_results=True, queue_name="reports", max_retries=0)
    def broken(x: int) -> int:
        raise ValueError(f"no luck {x}")

    flood = [double.lru_send("flood", i) for i in range(20)]
    quiet = [double.lru_send("quiet", i) for i in range(2)]
    failing = broken.lru_send("flood", 1)  # same queue, same backlog
    backlogs = {b["backlog"]: b for b in ranch(redis_url, "backlogs")}
    assert backlogs["dramatiq:reports"]["backlog_size"] == 23  # the broker's namespace and the queue
    keys = ranch(redis_url, "keys", "reports", "--namespace", "dramatiq")["keys"]
    assert [(k["key"], k["waiting"]) for k in keys] == [("flood", 21), ("quiet", 2)]
    ranch(redis_url, "pause", "dramatiq:reports", "quiet")
    with run_worker(broker, threads=2):
        flood_results = [m.get_result(backend=backend, block=True, timeout=TIMEOUT_MS) for m in flood]
        assert flood_results == [2 * i for i in range(20)]
        with pytest.raises(ResultFailure, match="no luck 1"):
            failing.get_result(backend=backend, block=True, timeout=TIMEOUT_MS)
        why = ranch(redis_url, "why", "dramatiq:reports", quiet[0].message_id)
        assert (why["state"], why["key"], why["blocked_by"]) == ("waiting", "quiet", "paused")
        ranch(redis_url, "resume", "dramatiq:reports", "quiet")  # the middleware's sweep wakes a worker
        assert [m.get_result(backend=backend, block=True, timeout=TIMEOUT_MS) for m in quiet] == [0, 2]
        wait(lambda: ranch(redis_url, "status", "dramatiq:reports")["running"] == 0)
    status = ranch(redis_url, "status", "dramatiq:reports")
    assert (status["waiting"], status["served_total"]) == (0, 23)
    # The worker's finishes counted every run and the one failure.
    storage = RedisStorage.from_url(redis_url, namespace="dramatiq:reports")
    metrics = storage.metrics(0)
    storage.close()
    assert (metrics.failed, metrics.run.count, metrics.wait.count) == (1, 23, 23)
