"""The Celery app of ``ranch-demo``: one plain task and one ``lru_task`` with the same body.

In-process runs (``memory://`` broker) build it with :func:`make_demo_app`.
Worker processes of ``ranch-demo --redis URL`` load it with
``celery -A ranch_celery.demo_app worker``; they read the Redis URL and the
run id from ``RANCH_DEMO_REDIS_URL`` / ``RANCH_DEMO_RUN``.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Dict, List, Optional

from celery import Celery
from celery.signals import worker_ready
from ranch_core.demo.execution import Execution, perform

from ranch_celery.task import lru_task

PLAIN_TASK = "ranch_demo.plain"
FAIR_TASK = "ranch_demo.fair"

#: In-process runs: execution records per sink name.
MEMORY_SINKS: Dict[str, List[Execution]] = {}
_SINK_LOCK = threading.Lock()


def queue_name(run_id: str) -> str:
    """Queue (and backlog) of one demo run, so runs never see each other's messages."""
    return f"ranch-demo-{run_id}"


def ready_key(run_id: str) -> str:
    """Redis list the worker processes of a run announce themselves on."""
    return f"ranch-demo:{run_id}:ready"


def make_demo_app(broker_url: str, run_id: str) -> Celery:
    """The demo app on ``broker_url`` (``memory://`` or a Redis URL) for run ``run_id``."""
    in_process = broker_url.startswith("memory://")
    app = Celery("ranch_demo", broker=broker_url, set_as_current=False)
    queue = queue_name(run_id)
    app.conf.update(
        task_default_queue=queue,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        task_acks_late=True,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        # No remote control: its pidbox keys would outlive the run in the user's Redis.
        worker_enable_remote_control=False,
        # On Redis, a worker's warm shutdown waits out one poll: 0.1 s, not 1 s.
        broker_transport_options={"polling_interval": 0.005 if in_process else 0.1},
    )
    client: Optional[Any] = None
    if not in_process:
        import redis

        client = redis.Redis.from_url(broker_url)

    def record(sink: str, execution: Execution) -> None:
        if client is None:
            with _SINK_LOCK:
                MEMORY_SINKS.setdefault(sink, []).append(execution)
        else:
            client.rpush(sink, execution.to_json())

    def plain(self: Any, sink: str, key: str, index: int, submitted_at: float, work: float) -> None:
        record(sink, perform(key, index, submitted_at, work, worker=self.request.hostname or ""))

    app.task(name=PLAIN_TASK, shared=False, bind=True)(plain)

    @lru_task(app, name=FAIR_TASK, shared=False, bind=True, backlog=queue)
    def fair(self: Any, sink: str, key: str, index: int, submitted_at: float, work: float) -> None:
        record(sink, perform(key, index, submitted_at, work, worker=self.request.hostname or ""))

    if client is not None:
        ready = ready_key(run_id)

        def announce(sender: Any = None, **_kwargs: Any) -> None:
            assert client is not None
            client.rpush(ready, getattr(sender, "hostname", "?"))

        worker_ready.connect(announce, weak=False)

    return app


_url = os.environ.get("RANCH_DEMO_REDIS_URL")
_run = os.environ.get("RANCH_DEMO_RUN")
#: The app ``celery -A ranch_celery.demo_app`` loads (only in demo worker processes).
app: Optional[Celery] = make_demo_app(_url, _run) if _url and _run else None
