"""RedisStorage passes ranch-core's conformance suite against a real redis-server."""

from __future__ import annotations

import uuid
from typing import Any, Iterator

import pytest
import redis
from hypothesis import settings
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
    #: (group, member) keys mixed with string keys (ranch-redis README, "Two-level keys").
    two_level_keys = True

    @pytest.fixture(autouse=True)
    def _client(self, shared_client: redis.Redis) -> None:
        self.client = shared_client

    @property
    def conformance_settings(self) -> settings:
        # Half the profile's examples: 16.6 s under coverage in CI at two thirds (with the
        # two-level model), over the 15 s a test; the differential test holds every script
        # to memory.
        return settings(super().conformance_settings, max_examples=max(1, settings().max_examples // 2))

    @property
    def controls_settings(self) -> settings:
        # Two thirds of the profile's examples (the in-memory storages run three times as
        # many: 15.4 s under coverage in CI at the full profile): every Lua control step is
        # also held to memory's, step for step, by the differential test.
        return settings(super().controls_settings, max_examples=max(1, settings().max_examples * 2 // 3))

    def make_storage(self) -> Storage:
        # A fresh namespace is a fresh, empty storage on the shared server.
        return RedisStorage(self.client, namespace=f"conf-{uuid.uuid4().hex}")


class WithoutControls:
    """A RedisStorage that hides its per-key controls: a third-party storage without them."""

    def __init__(self, storage: RedisStorage) -> None:
        self.storage = storage

    def __getattr__(self, name: str) -> Any:
        if name in ("set_control", "purge_key", "revoke"):
            raise AttributeError(name)
        return getattr(self.storage, name)


def test_a_storage_without_controls_fails_the_controls_tests(shared_client: redis.Redis) -> None:
    suite = TestRedisConformance()
    suite.client = shared_client
    suite.make_storage = lambda: WithoutControls(RedisStorage(shared_client, namespace="plain"))  # type: ignore[method-assign,assignment,return-value]
    with pytest.raises(pytest.fail.Exception, match=r"ranch_core\.protocols\.Controls"):
        suite.test_a_paused_key_gets_no_wakeups_until_it_is_resumed()
