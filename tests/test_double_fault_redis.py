"""A publish that fails while Redis is down too: the caller learns the call is still stored.

Real redis-server with AOF: the wake-up's publish fails (the "broker" here is
a callable that fails after Redis went down), the dispatcher's attempt to
remove the stored call fails because Redis is down, and the error must say
so, keep the publish error as its cause, and the call must still be there
when Redis is back.
"""

from __future__ import annotations

import uuid

import pytest
from ranch_core import FairScheduler
from ranch_core.calls import Call
from ranch_core.dispatcher import FairDispatcher
from ranch_core.errors import PublishFailed
from ranch_redis import RedisStorage
from ranch_redis.testing import RedisServer


@pytest.mark.redis
def test_publish_and_remove_both_failing_reports_the_call_as_still_stored() -> None:
    with RedisServer(extra_args=["--appendonly", "yes", "--appendfsync", "always"]) as server:
        storage = RedisStorage.from_url(
            server.url, namespace=f"df-{uuid.uuid4().hex}", retries=1, backoff=0.01
        )

        def wake() -> None:
            server.stop()  # the broker fails while the storage is gone too
            raise ConnectionError("broker unreachable")

        dispatcher = FairDispatcher(FairScheduler(storage), wake)
        with pytest.raises(PublishFailed) as caught:
            dispatcher.submit("tenant", Call(args=[1]), task_id="call-1")
        error = caught.value
        assert isinstance(error.__cause__, ConnectionError) and "broker unreachable" in str(error)
        assert "call-1" in str(error) and "still stored" in str(error)
        assert "removing it failed too" in str(error) and "remove('tenant', 'call-1')" in str(error)

        server.start()  # AOF: the stored call survived
        assert storage.waiting() == 1
        claimed = dispatcher.take()
        assert claimed is not None and claimed.task_id == "call-1" and claimed.call.args == [1]
        storage.close()
