"""The ``ranch`` command on a backlog fed and served by a real ``celery worker`` (real Redis)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from ranch_celery_testapp import make_app
from ranch_celery_testkit import wait_for
from ranch_redis import RedisStorage

pytestmark = [pytest.mark.redis, pytest.mark.slow]

RANCH = os.path.join(os.path.dirname(sys.executable), "ranch")


def ranch(url: str, *args: str) -> Any:
    """``ranch *args --json`` against ``url``; its JSON output (exit code 0 required)."""
    done = subprocess.run(
        [RANCH, *args, "--json", "--url", url], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_command_reads_and_controls_a_celery_backlog(redis_url: str, start_worker: Any) -> None:
    app = make_app(redis_url)
    add = app.tasks["t.add"]
    flood = [add.lru_delay("flood", i, 1) for i in range(30)]
    quiet = [add.lru_delay("quiet", i, 2) for i in range(3)]
    failing = app.tasks["t.fail"].lru_delay("flood", "no luck")  # same queue, same backlog
    [backlog] = [b for b in ranch(redis_url, "backlogs") if b["backlog_size"] == 34]
    name = backlog["backlog"]
    assert name.startswith("celery:")  # the namespace of a backlog on a Redis broker
    keys = ranch(redis_url, "keys", name)["keys"]
    assert [(k["key"], k["waiting"]) for k in keys] == [("flood", 31), ("quiet", 3)]
    ranch(redis_url, "pause", name, "quiet")
    worker = start_worker("w1")
    assert [r.get(timeout=30) for r in flood] == [i + 1 for i in range(30)]
    with pytest.raises(ValueError, match="no luck"):
        failing.get(timeout=30)
    why = ranch(redis_url, "why", name, quiet[0].id)
    assert (why["state"], why["key"], why["blocked_by"]) == ("waiting", "quiet", "paused")
    ranch(redis_url, "resume", name, "quiet")  # the worker's sweep publishes the wake-up
    assert [r.get(timeout=30) for r in quiet] == [i + 2 for i in range(3)]
    wait_for(lambda: ranch(redis_url, "status", name)["running"] == 0, 10, "leases acked", worker)
    status = ranch(redis_url, "status", name)
    assert (status["waiting"], status["served_total"]) == (0, 34)
    served = {k["key"]: k["served"] for k in ranch(redis_url, "keys", name, "--sort", "served")["keys"]}
    assert served == {"flood": 31, "quiet": 3}
    # The worker's finishes counted every run and the one failure.
    storage = RedisStorage.from_url(redis_url, namespace=name)
    metrics = storage.metrics(0)
    storage.close()
    assert (metrics.failed, metrics.run.count, metrics.wait.count) == (1, 34, 34)
