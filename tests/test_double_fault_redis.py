"""A publish that fails while Redis is down too: the call is still stored and runs.

Real redis-server with AOF: the wake-up's publish fails (the "broker" here is
a callable that fails after Redis went down). Since wake-up tokens (DESIGN.md
"Wake-ups"), a failed publish never removes the call: the producer logs it
and returns, the call is still there when Redis is back, and its token,
unclaimed, is replaced by a sweep once its ttl has passed.
"""

from __future__ import annotations

import time
import uuid

import pytest
from ranch_core import FairScheduler
from ranch_core.calls import Call
from ranch_core.dispatcher import FairDispatcher
from ranch_redis import RedisStorage
from ranch_redis.testing import RedisServer


def storage_time() -> float:
    return time.time()


@pytest.mark.redis
def test_a_publish_failing_while_redis_is_down_leaves_the_call_stored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with RedisServer(extra_args=["--appendonly", "yes", "--appendfsync", "always"]) as server:
        storage = RedisStorage.from_url(
            server.url, namespace=f"df-{uuid.uuid4().hex}", retries=1, backoff=0.01
        )

        published = []

        def wake(token: str) -> None:
            if not published:
                published.append(None)
                server.stop()  # the broker fails while the storage is gone too
                raise ConnectionError("broker unreachable")
            published.append(token)

        dispatcher = FairDispatcher(FairScheduler(storage), wake, token_ttl=1.0)
        assert dispatcher.submit("tenant", Call(args=[1]), task_id="call-1") == "call-1"
        assert "could not publish wake-up" in caplog.text and "broker unreachable" in caplog.text

        server.start()  # AOF: the stored call survived, with its unclaimed token
        assert storage.waiting() == 1 and storage.wakeup_status().in_flight == 1
        dispatcher.scheduler.clock = lambda: storage_time() + 2.0  # past the token's ttl
        dispatcher.sweep()
        assert len(published) == 2  # the sweep replaced the lost wake-up
        claimed = dispatcher.take(published[-1])
        assert claimed is not None and claimed.task_id == "call-1" and claimed.call.args == [1]
        storage.close()
