"""The Dramatiq app of ``ranch_dramatiq.demo``: one demo actor on a broker.

With ``--redis`` the demo starts ``python -m dramatiq ranch_dramatiq.demo_app``
worker processes; importing this module with ``RANCH_DEMO_REDIS_URL`` and
``RANCH_DEMO_RUN`` set builds the same broker and actor the demo sends to,
and each run of the actor appends its :class:`ranch_core.demo.Execution`
to a Redis list the demo reads back.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Tuple

import dramatiq
from dramatiq.broker import Broker
from dramatiq.middleware import Middleware
from ranch_core.demo.execution import Execution, perform

from ranch_dramatiq.actor import LRUActor, lru_actor

ENV_URL = "RANCH_DEMO_REDIS_URL"
ENV_RUN = "RANCH_DEMO_RUN"
QUEUE = "ranch_demo"


def build(broker: Broker, record: Callable[[Execution], Any]) -> LRUActor:
    """Declare the demo actor on ``broker``; each run passes its record to ``record``."""

    @lru_actor(broker=broker, actor_name="ranch_demo_call", queue_name=QUEUE, max_retries=0)
    def demo_call(key: str, index: int, submitted_at: float, work_seconds: float) -> None:
        record(perform(key, index, submitted_at, work_seconds))

    return demo_call


def executions_key(run_id: str) -> str:
    """The Redis list holding a run's execution records (one JSON line each)."""
    return f"ranch-demo:{run_id}:executions"


def ready_key(run_id: str) -> str:
    """The Redis counter of worker processes that finished booting."""
    return f"ranch-demo:{run_id}:ready"


def broker_namespace(run_id: str) -> str:
    """The Dramatiq namespace of one run, so every run starts on empty queues."""
    return f"ranch-demo-{run_id}"


class ReportReady(Middleware):
    """Counts worker processes that are up, so the demo starts sending only then."""

    def __init__(self, client: Any, key: str) -> None:
        self.client = client
        self.key = key

    def after_worker_boot(self, broker: Broker, worker: Any) -> None:
        self.client.incr(self.key)


def redis_app(url: str, run_id: str) -> Tuple[Broker, LRUActor, Any]:
    """The broker, demo actor and Redis client of run ``run_id`` on ``url``."""
    import redis
    from dramatiq.brokers.redis import RedisBroker
    from dramatiq.middleware import default_middleware

    client = redis.Redis.from_url(url)
    # Dramatiq < 2 puts Prometheus in the default middleware: an HTTP server and
    # files under the temporary folder that would outlive the demo.
    middleware = [m() for m in default_middleware if m.__name__ != "Prometheus"]
    broker = RedisBroker(  # type: ignore[no-untyped-call]
        url=url, namespace=broker_namespace(run_id), middleware=middleware
    )
    broker.add_middleware(ReportReady(client, ready_key(run_id)))
    key = executions_key(run_id)
    actor = build(broker, lambda execution: client.rpush(key, execution.to_json()))
    return broker, actor, client


if ENV_URL in os.environ and ENV_RUN in os.environ:
    broker, demo_call, _client = redis_app(os.environ[ENV_URL], os.environ[ENV_RUN])
    dramatiq.set_broker(broker)
