"""TLS (rediss://) with a throwaway CA, and ACL users, on a real redis-server."""

from __future__ import annotations

import ssl
from typing import Iterator

import pytest
import redis
from ranch_core import FairScheduler
from ranch_core.errors import StorageUnavailable
from ranch_redis import RedisStorage
from ranch_redis.testing import TLSRedisServer


@pytest.fixture(scope="module")
def tls_server() -> Iterator[TLSRedisServer]:
    with TLSRedisServer() as server:
        yield server


def test_rediss_with_ca_certificate(tls_server: TLSRedisServer) -> None:
    storage = RedisStorage.from_url(
        tls_server.url, namespace="tls", ssl_ca_certs=str(tls_server.tls.ca_cert), ssl_cert_reqs="required"
    )
    scheduler = FairScheduler(storage)
    task_id = scheduler.push("tenant", {"secret": "over TLS"})
    task = scheduler.pop()
    assert task is not None and task.task_id == task_id and task.payload == {"secret": "over TLS"}
    assert scheduler.ack(task_id)
    pool_kwargs = storage.client.connection_pool.connection_kwargs
    assert pool_kwargs["ssl_ca_certs"] == str(tls_server.tls.ca_cert)
    storage.close()


def test_server_not_trusted_without_the_ca(tls_server: TLSRedisServer) -> None:
    storage = RedisStorage.from_url(tls_server.url, namespace="tls", retries=1, backoff=0.01)
    with pytest.raises(StorageUnavailable) as raised:
        storage.status()
    assert f"127.0.0.1:{tls_server.port}" in str(raised.value)
    assert isinstance(raised.value.__cause__, redis.ConnectionError)


def test_plain_redis_is_refused_by_a_tls_port(tls_server: TLSRedisServer) -> None:
    url = tls_server.url.replace("rediss://", "redis://")
    storage = RedisStorage.from_url(url, namespace="tls", retries=0, socket_timeout=1.0)
    with pytest.raises(StorageUnavailable):
        storage.waiting()


def test_acl_user_over_tls(tls_server: TLSRedisServer) -> None:
    ca = str(tls_server.tls.ca_cert)
    admin = redis.Redis.from_url(tls_server.url, ssl_ca_certs=ca)
    admin.acl_setuser(
        "ranch-app", enabled=True, passwords=["+app-pw"], keys=["ranch:{acl}:*"], commands=["+@all"]
    )
    admin.close()
    url = tls_server.url.replace("rediss://", "rediss://ranch-app:app-pw@")
    storage = RedisStorage.from_url(url, namespace="acl", ssl_ca_certs=ca)
    scheduler = FairScheduler(storage)
    scheduler.push("k", 1)
    assert scheduler.pop() is not None
    storage.close()
    # The ACL really limits the user to its namespace's keys.
    other = RedisStorage.from_url(url, namespace="other", ssl_ca_certs=ca)
    with pytest.raises(redis.ResponseError, match="no permissions"):
        other.waiting()
    wrong = RedisStorage.from_url(url.replace("app-pw", "bad-pw"), namespace="acl", ssl_ca_certs=ca)
    with pytest.raises(StorageUnavailable) as raised:
        wrong.waiting()
    assert "bad-pw" not in str(raised.value)


def test_ssl_module_available() -> None:
    assert ssl.OPENSSL_VERSION


def test_client_certificate_required() -> None:
    """ssl_certfile/ssl_keyfile pass through: a server that demands client certificates accepts ours."""
    with TLSRedisServer(client_certificates=True) as server:
        tls = server.tls
        storage = RedisStorage.from_url(
            server.url,
            namespace="mtls",
            ssl_ca_certs=str(tls.ca_cert),
            ssl_certfile=str(tls.client_cert),
            ssl_keyfile=str(tls.client_key),
        )
        scheduler = FairScheduler(storage)
        scheduler.push("k", {"mutual": True})
        task = scheduler.pop()
        assert task is not None and task.payload == {"mutual": True}
        storage.close()
        without = RedisStorage.from_url(
            server.url, namespace="mtls", ssl_ca_certs=str(tls.ca_cert), retries=0, socket_timeout=2.0
        )
        with pytest.raises(StorageUnavailable):
            without.waiting()
