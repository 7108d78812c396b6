"""AsyncRedisStorage passes the conformance suite (through ``BlockingFacade``) on a real redis-server."""

from __future__ import annotations

import uuid
from typing import Any, Iterator

import pytest
import redis.asyncio
from hypothesis import settings
from ranch_core.protocols import Storage
from ranch_core.testing import BlockingFacade, StorageConformance
from ranch_core.testing.facade import run
from ranch_redis import AsyncRedisStorage


async def connect(url: str) -> redis.asyncio.Redis:
    # Made on the facade's private loop: on Python 3.9 an asyncio client binds
    # to the loop it is created on, and there is none outside a coroutine.
    return redis.asyncio.Redis.from_url(url)


@pytest.fixture(scope="module")
def async_client(redis_server: Any) -> Iterator[redis.asyncio.Redis]:
    client = run(connect(redis_server.url))
    run(client.flushall())
    yield client
    run(client.aclose())


class TestAsyncRedisConformance(StorageConformance):
    #: (group, member) keys mixed with string keys (ranch-redis README, "Two-level keys").
    two_level_keys = True

    @pytest.fixture(autouse=True)
    def _client(self, async_client: redis.asyncio.Redis) -> None:
        self.client = async_client

    # The scripts and the reading of their replies (operations.py) are those of
    # RedisStorage, whose conformance run has the full budget; here they check the
    # asyncio driver, which every call goes through alike, at a quarter of it (the
    # fairness properties push up to 1,000 calls).

    #: Test-clock seconds of the runtime share test (15 s elsewhere).
    runtime_share_seconds = 8.0

    @property
    def conformance_settings(self) -> settings:
        # A sixth: the reference-model machine took 16.2 s under coverage in CI at a quarter.
        return settings(super().conformance_settings, max_examples=max(1, settings().max_examples // 6))

    @property
    def property_settings(self) -> settings:
        return settings(super().property_settings, max_examples=max(1, settings().max_examples // 4))

    @property
    def token_settings(self) -> settings:
        return settings(super().token_settings, max_examples=max(1, settings().max_examples // 4))

    @property
    def controls_settings(self) -> settings:
        return settings(super().controls_settings, max_examples=max(1, settings().max_examples // 4))

    def make_storage(self) -> Storage:
        # A fresh namespace is a fresh, empty storage on the shared server.
        namespace = f"aconf-{uuid.uuid4().hex}"
        return BlockingFacade.of(lambda: AsyncRedisStorage(self.client, namespace=namespace))
