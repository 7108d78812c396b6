"""The no-server path: memory:// broker, in-memory storage, a real Celery worker in this process."""

from __future__ import annotations

from typing import Any, List

import pytest
from celery import Celery
from ranch_celery import lru_task
from ranch_celery.inprocess import in_process_worker
from ranch_core import LRUKeyMetadata


def _app() -> Celery:
    app = Celery("memtest", broker="memory://", backend="cache+memory://", set_as_current=False)
    app.conf.update(
        broker_transport_options={"polling_interval": 0.005},
        task_default_queue="ranch-memtest",
        worker_prefetch_multiplier=1,
    )
    return app


def test_in_process_worker_runs_calls_fairly_with_a_weight_function() -> None:
    app = _app()
    order: List[str] = []

    def vip_first(key: str, meta: LRUKeyMetadata) -> float:
        return 0.5 if "vip" in meta.tags else 1.0

    @lru_task(app, shared=False, bind=True, weight_function=vip_first)
    def job(self: Any, n: int) -> str:
        order.append(self.request.lru_key)
        if n < 0:
            raise RuntimeError("negative")
        return f"{self.request.lru_key}:{n}"

    job.add_tag("v", "vip")
    results = [job.lru_delay(key, n) for n in range(30) for key in ("v", "o")]
    failing = job.lru_delay("o", -1)
    with in_process_worker(app, hostname="mem@test"):
        assert results[0].get(timeout=20) == "v:0"
        assert all(r.get(timeout=20) for r in results)
        with pytest.raises(RuntimeError, match="negative"):
            failing.get(timeout=20)
    # The weight function made "v" cost 0.5: twice the service of "o" while both wait.
    first = order[:30]
    assert first.count("v") == 20, first
    status = job.get_system_status()
    assert status["backlog_size"] == 0 and status["leased"] == 0 and status["served_total"] == 61
