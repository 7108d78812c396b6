"""``StorageUnavailable`` says what happened (hardening issue, bug 7).

Refused connection: nothing was sent, so nothing was stored and the message
says so, without the "Redis may have run it" hint. A connection that timed out
after the command was sent keeps the hint.
"""

from __future__ import annotations

import pytest
import redis
from ranch_core.errors import StorageUnavailable
from ranch_core.models import ScheduledTask
from ranch_redis import RedisStorage
from ranch_redis.connection import Retrier, not_connected
from ranch_redis.testing import RedisServer, block_server, free_port


def test_refused_connection_says_nothing_was_stored() -> None:
    port = free_port()  # nothing listens there
    storage = RedisStorage.from_url(f"redis://127.0.0.1:{port}/0", namespace="refused", retries=1, backoff=0)
    with pytest.raises(StorageUnavailable) as raised:
        storage.push(ScheduledTask("t", "k", 1, 0.0))
    message = str(raised.value)
    assert f"the Redis server at redis://127.0.0.1:{port}/0 is not reachable (connection refused)" in message
    assert "nothing was stored or changed (push, 2 attempts)" in message
    assert "may have run" not in message and "push again" not in message
    for call in (storage.status, lambda: storage.pop(1.0, 5.0)):
        with pytest.raises(StorageUnavailable, match="is not reachable"):
            call()
    storage.close()


def test_a_reply_lost_after_sending_keeps_the_ambiguity_hint() -> None:
    with RedisServer(extra_args=["--enable-debug-command", "local"]) as server:
        storage = RedisStorage.from_url(server.url, namespace="lost", retries=0, socket_timeout=0.2)
        storage.push(ScheduledTask("warm-up", "w", 0, 0.0))  # scripts loaded: no NOSCRIPT below
        admin = redis.Redis.from_url(server.url)
        sleeper = block_server(admin, server.url)
        with pytest.raises(StorageUnavailable) as raised:
            storage.push(ScheduledTask("t", "k", 1, 0.0))
        sleeper.join()
        message = str(raised.value)
        assert "unavailable after 1 attempt (push)" in message
        assert "Redis may have run it: push again with the same task_id" in message
        assert "not reachable" not in message
        admin.close()
        storage.close()


def test_not_connected_tells_connect_failures_from_dropped_connections() -> None:
    def raised(exc: BaseException, context: BaseException) -> BaseException:
        try:
            try:
                raise context
            except BaseException:
                raise exc
        except BaseException as caught:
            return caught

    refused = raised(redis.ConnectionError("Error 111 connecting to h:1. Refused."), ConnectionRefusedError())
    assert not_connected(refused) == "connection refused"
    timeout = raised(redis.TimeoutError("Timeout connecting to server"), OSError("timed out"))
    assert not_connected(timeout) == "connect timed out"
    assert not_connected(redis.ConnectionError("Error -2 connecting to nowhere:1.")) is not None
    assert not_connected(redis.ConnectionError("Connection closed by server.")) is None
    assert not_connected(redis.TimeoutError("Timeout reading from h:1")) is None


def test_one_dropped_attempt_among_refused_ones_keeps_the_hint() -> None:
    errors = [
        redis.ConnectionError("Connection closed by server."),
        redis.ConnectionError("Error 111 connecting to h:1."),
    ]

    def call(retry: bool) -> None:
        raise errors[retry]

    with pytest.raises(StorageUnavailable, match="may have run"):
        Retrier("h:1", retries=1, backoff=0)(call, operation="ack", note="Redis may have run it")
