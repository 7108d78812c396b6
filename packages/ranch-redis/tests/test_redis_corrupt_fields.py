"""A corrupt field never makes a script fail halfway; the repair sweep finds and fixes damage.

Hardening issue, bug 9: each numeric field a script reads (the stats hash's
``seq``, ``vt``, ``expired``; a key's ``p``, ``s``, ``w``, ``n``, ``l``) is
corrupted in turn, then every step runs. Every step must complete (a corrupt
field takes its safe default) and every call must come out exactly once:
nothing is stranded. :meth:`RedisStorage.repair` reports and fixes each.
"""

from __future__ import annotations

import uuid
from typing import Iterator, List, Set

import pytest
import redis
from ranch_core import FairScheduler
from ranch_core.errors import CorruptTask
from ranch_core.keys import Key
from ranch_core.models import ScheduledTask
from ranch_redis import RedisStorage, layout

FIELDS = [
    ("stats", "seq", b"abc"),
    ("stats", "seq", b"1.5"),
    ("stats", "seq", b"-4"),
    ("stats", "vt", b"abc"),
    ("stats", "vt", b"nan"),
    ("stats", "vt", b"inf"),
    ("stats", "expired", b"abc"),
    ("stats", "expired", b"2.5"),
    ("key", "p", b"abc"),
    ("key", "p", b"nan"),
    ("key", "p", b"-inf"),
    ("key", "s", b"abc"),
    ("key", "s", b"-1"),
    ("key", "w", b"nan"),
    ("key", "w", b"abc"),
    ("key", "w", b"1e308"),
    ("key", "w", b"0"),
    ("key", "n", b"abc"),
    ("key", "n", b"nan"),
]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url)
    yield c
    c.close()


def corrupt(client: redis.Redis, namespace: str, where: str, field: str, raw: bytes) -> None:
    name = layout.stats_key(namespace) if where == "stats" else layout.key_state_key(namespace, "a")
    client.hset(name, field, raw)


@pytest.mark.parametrize(("where", "field", "raw"), FIELDS)
def test_every_step_completes_with_a_corrupt_field(
    client: redis.Redis, where: str, field: str, raw: bytes
) -> None:
    namespace = f"cf-{uuid.uuid4().hex}"
    errors: List[CorruptTask] = []
    expired: List[str] = []
    clock = Clock()
    storage = RedisStorage(client, namespace=namespace, on_corrupt=errors.append)
    scheduler = FairScheduler(
        storage, clock=clock, lease_seconds=5.0, on_expired=lambda t: expired.append(t.task_id)
    )
    pushed: Set[str] = set()
    for task_id, key, expiry in [("a1", "a", None), ("a2", "a", None), ("b1", "b", None), ("a3", "a", 1.0)]:
        pushed.add(scheduler.push(key, task_id, expiry=expiry, task_id=task_id))
    held = scheduler.pop()
    assert held is not None
    corrupt(client, namespace, where, field, raw)

    # Every step, each over the corrupt field.
    pushed.add(scheduler.push("a", "a4", task_id="a4", tags={"plan": "pro"}))
    pushed.add(scheduler.push("c", "c1", task_id="c1"))
    storage.charge("a", 0.25)
    assert scheduler.release(held.task_id)
    assert storage.remove("c", "c1")
    pushed.discard("c1")
    clock.now += 2.0  # a3 expires
    assert len(scheduler) == len(pushed) - 1
    assert scheduler.status().backlog_size == len(pushed) - 1
    assert scheduler.metadata("a").pending_tasks == 3
    assert expired == ["a3"]
    ran: List[str] = []
    retried = False
    while (task := scheduler.pop()) is not None:
        if not retried:
            assert scheduler.requeue(task, task.payload)
            retried = True
            continue
        ran.append(task.task_id)
        assert scheduler.ack(task.task_id)
    assert sorted(ran) == sorted(pushed - {"a3"}), "a call was stranded or ran twice"
    status = scheduler.status()
    assert (status.backlog_size, status.active_keys, status.leased) == (0, 0, 0)
    assert status.expired_total >= 1
    assert scheduler.reclaim() == []


@pytest.mark.parametrize(("where", "field", "raw"), FIELDS)
def test_repair_reports_and_fixes_each_corrupt_field(
    client: redis.Redis, where: str, field: str, raw: bytes
) -> None:
    namespace = f"rf-{uuid.uuid4().hex}"
    errors: List[CorruptTask] = []
    storage = RedisStorage(client, namespace=namespace, on_corrupt=errors.append)
    scheduler = FairScheduler(storage, clock=lambda: 100.0)
    scheduler.push("a", 1)
    scheduler.push("a", 2)
    task = scheduler.pop()
    assert task is not None and scheduler.ack(task.task_id)
    corrupt(client, namespace, where, field, raw)
    found = scheduler.repair()
    assert found == errors and len(found) == 1
    assert f"field {field!r} held {raw!r}; reset to its default" in str(found[0])
    name = layout.stats_key(namespace) if where == "stats" else layout.key_state_key(namespace, "a")
    fixed = client.hget(name, field)
    assert fixed is None or float(fixed) == float(fixed)  # deleted (weight) or a number again
    assert scheduler.repair() == []  # nothing left to fix
    assert scheduler.pop() is not None


def test_metadata_reads_unreadable_fields_as_defaults_and_reports_them(client: redis.Redis) -> None:
    errors: List[CorruptTask] = []
    storage = RedisStorage(client, namespace=f"md-{uuid.uuid4().hex}", on_corrupt=errors.append)
    storage.push(ScheduledTask("t", "a", 1, 0.0), tags={"plan": "pro"})
    name = layout.key_state_key(storage.namespace, "a")
    client.hset(
        name, mapping={"w": b"1e308", "n": b"abc", "l": b"nan", "d:x": b"{not json", "t:bad": b"\xff"}
    )
    meta = storage.metadata("a")
    assert (meta.weight, meta.served_total, meta.last_served) == (1.0, 0, None)
    assert (meta.tags, meta.custom_data, meta.pending_tasks) == ({"plan": "pro"}, {}, 1)
    assert sorted(str(e).split("field ")[1].split(" ")[0] for e in errors) == [
        "'d:x'", "'l'", "'n'", "'t:bad'", "'w'",
    ]  # fmt: skip


def strand(client: redis.Redis, storage: RedisStorage, key: str) -> None:
    """Take ``key`` out of the active set, as a script that failed halfway in 0.1 did."""
    active = layout.active_key(storage.namespace)
    members = [m for m in client.zrange(active, 0, -1) if m.endswith(layout.hex_key(key).encode())]
    assert client.zrem(active, *members) == 1


def test_a_stranded_key_is_found_and_made_active_again(client: redis.Redis) -> None:
    errors: List[CorruptTask] = []
    storage = RedisStorage(client, namespace=f"st-{uuid.uuid4().hex}", on_corrupt=errors.append)
    scheduler = FairScheduler(storage, clock=lambda: 100.0)
    scheduler.push("a", 1, task_id="a1")
    scheduler.push("a", 2, task_id="a2")
    strand(client, storage, "a")
    scheduler.push("a", 3, task_id="a3")  # the list is not empty: the push does not activate it
    assert scheduler.pop() is None
    found = scheduler.repair()
    assert [str(e) for e in found] == [
        f"namespace {storage.namespace!r}: key 'a' holds tasks but was not selectable; made active again"
    ]
    assert errors == found and storage.corrupt_total == 1
    ran = []
    while (task := scheduler.pop()) is not None:
        ran.append(task.task_id)
        scheduler.ack(task.task_id)
    assert ran == ["a1", "a2", "a3"]
    assert client.scard(layout.keys_key(storage.namespace)) == 0


def test_repair_walks_the_keys_in_bounded_batches(client: redis.Redis) -> None:
    storage = RedisStorage(client, namespace=f"bb-{uuid.uuid4().hex}")
    scheduler = FairScheduler(storage, clock=lambda: 100.0)
    keys = [f"k{i}" for i in range(300)]
    for key in keys:
        scheduler.push(key, key)
    for key in keys[::2]:
        strand(client, storage, key)
    client.sadd(layout.keys_key(storage.namespace), layout.hex_key("gone"))  # a stale entry
    per_call = []
    while True:
        per_call.append(len(scheduler.repair(limit=20)))
        if client.hget(layout.stats_key(storage.namespace), "rc") == b"0":
            break
        assert len(per_call) < 100, "the cursor never came back to 0"
    assert sum(per_call) == 150
    assert max(per_call) < 150, "one call checked every key"
    assert not client.sismember(layout.keys_key(storage.namespace), layout.hex_key("gone"))
    assert scheduler.status().active_keys == 300
    assert scheduler.repair(limit=1000) == []


#: The per-key controls' fields (ranch-redis README, "Per-key controls"), in a namespace using them.
CONTROL_FIELDS = [
    ("stats", "nr", b"abc"),
    ("stats", "np", b"-1"),
    ("stats", "ck", b"nan"),
    ("key", "r", b"abc"),
    ("key", "r", b"1.5"),
    ("key", "ct", b"abc"),
    ("key", "cl", b"0"),
    ("key", "cl", b"abc"),
    ("key", "mb", b"-1"),
    ("key", "ta", b"nan"),
    ("key", "pk", b"x"),
]


@pytest.mark.parametrize(("where", "field", "raw"), CONTROL_FIELDS)
def test_every_step_completes_with_a_corrupt_control_field(
    client: redis.Redis, where: str, field: str, raw: bytes
) -> None:
    namespace = f"cc-{uuid.uuid4().hex}"
    errors: List[CorruptTask] = []
    storage = RedisStorage(client, namespace=namespace, on_corrupt=errors.append)
    scheduler = FairScheduler(storage, clock=Clock(), lease_seconds=5.0)
    scheduler.set_concurrency_limit("a", 5)
    scheduler.set_rate_limit("b", "1000/s", burst=10)
    pushed = {
        scheduler.push(key, task_id, task_id=task_id)
        for task_id, key in [("a1", "a"), ("a2", "a"), ("b1", "b")]
    }
    held = scheduler.pop()
    assert held is not None
    corrupt(client, namespace, where, field, raw)
    pushed.add(scheduler.push("a", "a3", task_id="a3"))
    assert scheduler.release(held.task_id)
    scheduler.pause_key("a")
    scheduler.resume_key("a")
    ran: List[str] = []
    while (task := scheduler.pop()) is not None:
        ran.append(task.task_id)
        assert scheduler.ack(task.task_id)
    assert sorted(ran) == sorted(pushed), "a call was stranded or ran twice"
    assert scheduler.metadata("a").running == 0 and scheduler.status().leased == 0
    found = scheduler.repair()
    assert all("reset to its default" in str(e) for e in found)
    assert scheduler.repair() == []


@pytest.mark.parametrize(("where", "field", "raw"), CONTROL_FIELDS)
def test_repair_reports_and_fixes_each_corrupt_control_field(
    client: redis.Redis, where: str, field: str, raw: bytes
) -> None:
    namespace = f"rc-{uuid.uuid4().hex}"
    errors: List[CorruptTask] = []
    storage = RedisStorage(client, namespace=namespace, on_corrupt=errors.append)
    scheduler = FairScheduler(storage, clock=lambda: 100.0)
    scheduler.set_concurrency_limit("a", 5)
    scheduler.push("a", 1)
    corrupt(client, namespace, where, field, raw)
    found = scheduler.repair()
    assert found == errors and len(found) == 1
    assert f"field {field!r} held {raw!r}; reset to its default" in str(found[0])
    assert scheduler.repair() == []
    task = scheduler.pop()
    assert task is not None and scheduler.ack(task.task_id)


#: Two-level keys: the group's fields in its string key's hash, and a pair's own.
GROUP_FIELDS = [
    ("a", "gr", b"abc"),
    ("a", "gr", b"-1"),
    ("a", "gv", b"nan"),
    ("a", "mp", b"abc"),
    ("a", "ms", b"1.5"),
    ("a", "p", b"abc"),
    ("a", "s", b"abc"),
    ("a", "w", b"0"),
    (("a", "x"), "p", b"inf"),
    (("a", "x"), "s", b"abc"),
    (("a", "x"), "w", b"nan"),
    (("a", "x"), "n", b"abc"),
]


@pytest.mark.parametrize(("key", "field", "raw"), GROUP_FIELDS)
def test_every_step_completes_with_a_corrupt_field_of_a_group(
    client: redis.Redis, key: Key, field: str, raw: bytes
) -> None:
    """Pairs and the string key of their group: a corrupt field of either level strands
    no call, runs none twice; the repair sweep leaves nothing to fix after."""
    namespace = f"cg-{uuid.uuid4().hex}"
    clock = Clock()
    storage = RedisStorage(client, namespace=namespace, on_corrupt=lambda e: None)
    scheduler = FairScheduler(storage, clock=clock, lease_seconds=5.0)
    pushed: Set[str] = set()
    keys: List[Key] = ["a", ("a", "x"), ("a", "y"), ("a", "x"), "b", "a", ("b", "z")]
    for i, k in enumerate(keys):
        pushed.add(scheduler.push(k, i, task_id=f"t{i}"))
    held = scheduler.pop()
    assert held is not None
    client.hset(layout.key_state_key(namespace, key), field, raw)
    pushed.add(scheduler.push(("a", "x"), "late", task_id="late"))
    storage.charge("a", 0.25)
    storage.charge(("a", "y"), -0.5)
    assert scheduler.release(held.task_id)
    assert scheduler.status().backlog_size == len(pushed)
    ran: List[str] = []
    while (task := scheduler.pop()) is not None:
        ran.append(task.task_id)
        assert scheduler.ack(task.task_id)
    scheduler.repair()
    while (task := scheduler.pop()) is not None:  # made selectable again by the repair
        ran.append(task.task_id)
        assert scheduler.ack(task.task_id)
    assert sorted(ran) == sorted(pushed), "a call was stranded or ran twice"
    status = scheduler.status()
    assert (status.backlog_size, status.active_keys, status.leased) == (0, 0, 0)
