"""Fixtures shared by every test directory: real servers on loopback."""

from __future__ import annotations

from typing import Iterator

import pytest


@pytest.fixture(scope="session")
def redis_server() -> Iterator[object]:
    """One real ``redis-server`` on 127.0.0.1 and a free port for the session."""
    from ranch_redis.testing import RedisServer

    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: object) -> Iterator[str]:
    """URL of the session's Redis, flushed before each test."""
    import redis

    url: str = redis_server.url  # type: ignore[attr-defined]
    client = redis.Redis.from_url(url)
    client.flushall()
    client.close()
    yield url
