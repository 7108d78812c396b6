"""The Dramatiq app the multi-process tests run under the ``dramatiq`` CLI.

Imported by worker processes (``dramatiq ranch_dramatiq_testapp --path
<this dir>``) with ``RANCH_DQ_REDIS_URL`` set, and by the tests themselves
(:func:`build`, to send calls as a producer). Every run of ``record_call``
is written to Redis: ``started`` (list of ``"<pid> <message id>"``) and
``finished`` (hash: message id -> number of completed runs).
"""

from __future__ import annotations

import os
import time
from typing import Any, Tuple

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import CurrentMessage, Middleware
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend
from ranch_dramatiq import Ranch, lru_actor

STARTED = "ranch-test:started"
FINISHED = "ranch-test:finished"
READY = "ranch-test:ready"


class CountReady(Middleware):
    """Counts worker processes that finished booting (tests wait for all of them)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def after_worker_boot(self, broker: Any, worker: Any) -> None:
        self.client.incr(READY)


def build(url: str, *, lease_seconds: float = 10.0, heartbeat_ms: int = 60000) -> Tuple[RedisBroker, Any]:
    """A broker with Results, CurrentMessage and Ranch, and the ``record_call`` actor."""
    broker = RedisBroker(url=url, heartbeat_timeout=heartbeat_ms)
    broker.add_middleware(Results(backend=RedisBackend(url=url)))
    broker.add_middleware(CurrentMessage())
    broker.add_middleware(Ranch(lease_seconds=lease_seconds, sweep_interval=lease_seconds / 4))
    recorder = redis.Redis.from_url(url)
    broker.add_middleware(CountReady(recorder))

    @lru_actor(broker=broker, store_results=True, max_retries=0)
    def record_call(label: str, seconds: float = 0.0) -> str:
        message = CurrentMessage.get_current_message()
        assert message is not None
        recorder.rpush(STARTED, f"{os.getpid()} {message.message_id}")
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.01)
        recorder.hincrby(FINISHED, message.message_id, 1)
        return label

    return broker, record_call


if "RANCH_DQ_REDIS_URL" in os.environ:
    broker, record_call = build(
        os.environ["RANCH_DQ_REDIS_URL"],
        lease_seconds=float(os.environ.get("RANCH_DQ_LEASE", "10")),
        heartbeat_ms=int(os.environ.get("RANCH_DQ_HEARTBEAT_MS", "60000")),
    )
    dramatiq.set_broker(broker)
