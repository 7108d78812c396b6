"""RedisStorage on a real 3-master Redis Cluster started on loopback ports."""

from __future__ import annotations

import asyncio
import uuid
from typing import List, Tuple

import pytest
from ranch_core import FairScheduler
from ranch_core.backends.memory import InMemoryStorage
from ranch_core.models import ScheduledTask
from ranch_redis import AsyncRedisStorage, RedisStorage
from ranch_redis.layout import base
from ranch_redis.testing import RedisClusterServers
from redis.cluster import RedisCluster


@pytest.fixture
def cluster(redis_cluster: RedisClusterServers) -> RedisClusterServers:
    return redis_cluster  # the session's cluster (conftest.py): each test uses namespaces of its own


def node_of(client: RedisCluster, namespace: str) -> Tuple[str, int]:
    node = client.get_node_from_key(base(namespace) + "stats")
    return node.host, node.port


def test_push_pop_ack_on_a_cluster(cluster: RedisClusterServers) -> None:
    storage = RedisStorage.from_url(cluster.url, namespace=f"c-{uuid.uuid4().hex}", cluster=True)
    scheduler = FairScheduler(storage, lease_seconds=30)
    for i in range(30):
        scheduler.push(f"key{i % 3}", {"i": i}, task_id=f"t{i}")
    scheduler.set_weight("key0", 0.5)
    scheduler.add_tag("key1", "plan", "pro")
    order = []
    while (task := scheduler.pop()) is not None:
        order.append(task.key)
        assert scheduler.ack(task.task_id)
    assert len(order) == 30
    assert order[:3] == ["key0", "key1", "key2"]
    assert scheduler.keys_with_tag("plan") == ["key1"]
    status = scheduler.status()
    assert (status.backlog_size, status.leased, status.served_total) == (0, 0, 30)
    assert scheduler.metadata("key0").weight == 0.5
    storage.close()


def test_two_namespaces_on_different_nodes(cluster: RedisClusterServers) -> None:
    client = RedisCluster.from_url(cluster.url)
    first = "tenant-0"
    second = next(
        f"tenant-{i}" for i in range(1, 1000) if node_of(client, f"tenant-{i}") != node_of(client, first)
    )
    storages = {ns: RedisStorage(client, namespace=ns) for ns in (first, second)}
    for ns, storage in storages.items():
        storage.push(ScheduledTask(f"{ns}-task", "k", ns, 0.0))

    # Each namespace's keys all sit on its own node, none on the other's.
    for ns, other in ((first, second), (second, first)):
        host, port = node_of(client, ns)
        node = client.get_node(host=host, port=port)
        names = client.keys(target_nodes=node)  # test inspection only
        assert any(name.startswith(base(ns).encode()) for name in names), names
        assert not any(name.startswith(base(other).encode()) for name in names), names
    for ns, storage in storages.items():
        task = storage.pop(1.0, 5.0).task
        assert task is not None and task.payload == ns
        assert storage.ack(task.task_id)
    client.close()


def test_cluster_matches_in_memory(cluster: RedisClusterServers) -> None:
    """The scripts behave on a cluster node exactly as on a single server."""
    import random

    rnd = random.Random(3)
    storage = RedisStorage.from_url(cluster.url, namespace=f"d-{uuid.uuid4().hex}", cluster=True)
    memory = InMemoryStorage()
    now = 0.0
    for step in range(400):
        now += 0.1
        if rnd.random() < 0.5:
            task = ScheduledTask(f"s{step}", f"k{rnd.randrange(20)}", step, now)
            weight = rnd.choice([None, rnd.uniform(0.1, 3)])
            memory.push(task, weight=weight)
            storage.push(task, weight=weight)
        else:
            expected = memory.pop(now, 1.0)
            assert storage.pop(now, 1.0) == expected
            if expected.task is not None and rnd.random() < 0.7:
                assert storage.ack(expected.task.task_id) == memory.ack(expected.task.task_id)
    assert storage.status() == memory.status()
    storage.close()


def test_the_asyncio_storage_from_url_on_a_cluster(cluster: RedisClusterServers) -> None:
    """``AsyncRedisStorage.from_url(cluster=True)`` makes a ``redis.asyncio.RedisCluster`` client."""
    from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster

    async def main() -> List[str]:
        namespace = f"ac-{uuid.uuid4().hex}"
        async with AsyncRedisStorage.from_url(cluster.url, namespace=namespace, cluster=True) as storage:
            assert isinstance(storage.client, AsyncRedisCluster)
            for n in range(4):
                await storage.push(ScheduledTask(f"t{n}", f"k{n % 2}", n, 0.0))
            order = []
            while (task := (await storage.pop(1.0, 30.0)).task) is not None:
                order.append(task.task_id)
                assert await storage.ack(task.task_id)
            return order

    assert asyncio.run(main()) == ["t0", "t1", "t2", "t3"]


def test_controls_on_a_cluster(cluster: RedisClusterServers) -> None:
    """Caps, pause, the parked index and purge live in the namespace's slot like everything else."""
    storage = RedisStorage.from_url(cluster.url, namespace=f"cc-{uuid.uuid4().hex}", cluster=True)
    clock = [100.0]
    scheduler = FairScheduler(storage, lease_seconds=30, clock=lambda: clock[0])
    scheduler.set_concurrency_limit("capped", 1)
    scheduler.set_rate_limit("slow", "1/s")
    scheduler.pause_key("paused")
    for key in ("capped", "slow", "paused"):
        scheduler.push_many(key, range(3))
    first = [scheduler.pop() for _ in range(3)]
    assert sorted(t.key for t in first if t is not None) == ["capped", "slow"]
    assert scheduler.metadata("capped").running == 1 and scheduler.metadata("paused").paused
    clock[0] += 1.0
    task = scheduler.pop()
    assert task is not None and task.key == "slow"
    assert scheduler.purge_key("paused") == 3
    assert scheduler.status().active_keys == 2
    storage.close()
