"""Runtime cost (``cost="runtime"``) on a real redis-server: the Lua steps match
the reference model and keep the SFQ(D) bound, as the in-memory storages do."""

from __future__ import annotations

import uuid
from typing import Any, Iterator

import pytest
import redis
from ranch_core.protocols import Storage
from ranch_core.testing.runtime import RuntimeCostProperties
from ranch_redis import RedisStorage


@pytest.fixture(scope="module")
def runtime_client(redis_server: Any) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url)
    yield client
    client.close()


class TestRedisRuntimeCost(RuntimeCostProperties):
    @pytest.fixture(autouse=True)
    def _client(self, runtime_client: redis.Redis) -> None:
        self.client = runtime_client

    def make_storage(self) -> Storage:
        return RedisStorage(self.client, namespace=f"rt-{uuid.uuid4().hex}")
