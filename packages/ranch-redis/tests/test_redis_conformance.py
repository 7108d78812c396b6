"""RedisStorage passes ranch-core's conformance suite against a real redis-server."""

from __future__ import annotations

import uuid
from typing import Any, Iterator

import pytest
import redis
from ranch_core.protocols import Storage
from ranch_core.testing import StorageConformance
from ranch_redis import RedisStorage


@pytest.fixture(scope="module")
def shared_client(redis_server: Any) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    yield client
    client.close()


class TestRedisConformance(StorageConformance):
    @pytest.fixture(autouse=True)
    def _client(self, shared_client: redis.Redis) -> None:
        self.client = shared_client

    def make_storage(self) -> Storage:
        # A fresh namespace is a fresh, empty storage on the shared server.
        return RedisStorage(self.client, namespace=f"conf-{uuid.uuid4().hex}")
