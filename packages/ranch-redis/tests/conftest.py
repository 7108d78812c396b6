"""Fixtures of the ranch-redis tests (the servers every test directory shares are in the root conftest.py)."""

from __future__ import annotations

import time
from typing import Callable, Iterator

import pytest
import redis
from ranch_redis.testing import RedisClusterServers


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterServers]:
    """One real 3-master Redis Cluster on loopback ports, started once for the session
    (creating one takes seconds); each test works in a namespace of its own."""
    with RedisClusterServers(masters=3) as servers:
        yield servers


@pytest.fixture
def kill_blocked_client(redis_url: str) -> Iterator[Callable[[str], None]]:
    """``kill(command)``: drop the connection blocked in ``command`` (``"blpop"``) on the
    session's Redis as soon as the server lists one; fails after 30 s without one."""
    admin = redis.Redis.from_url(redis_url)

    def kill(command: str) -> None:
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline:
            blocked = [c for c in admin.client_list() if c.get("cmd") == command]
            if blocked:
                admin.client_kill_filter(_id=blocked[0]["id"])
                return
            time.sleep(0.01)  # the server's client list changes with nothing to await
        raise AssertionError(f"no client blocked in {command} within 30 s")

    yield kill
    admin.close()
