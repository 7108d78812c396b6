"""User keys never collide and never leave their namespace (checked on the real key names)."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any, Iterator, List

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ranch_core.models import ScheduledTask
from ranch_redis import RedisStorage
from ranch_redis.layout import base, registry_key
from redis.crc import key_slot

NASTY = st.sampled_from(["{", "}", ":", " ", "{}", "}{", "\x00", "\n", "é", "😀", "ranch:{", "q:", "k:", ","])
USER_KEYS = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=30),
    st.lists(NASTY, min_size=1, max_size=6).map("".join),
    st.text(st.sampled_from("{}: é😀"), min_size=1, max_size=12),
    # Long keys, up to 10 KB: a run of one character plus a distinguishing tail.
    st.tuples(st.sampled_from("{}: é😀a"), st.integers(1000, 10_240), NASTY).map(
        lambda t: t[0] * t[1] + t[2]
    ),
)


@pytest.fixture(scope="module")
def client(redis_server: Any) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_server.url)
    yield c
    c.close()


def all_keys(client: redis.Redis) -> List[bytes]:
    return list(client.scan_iter(count=1000))


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])  # examples: the profile
@given(keys=st.lists(USER_KEYS, min_size=1, max_size=8), namespace=st.sampled_from(["ns", "a:b", "x y", "é"]))
def test_keys_stay_in_their_namespace_and_never_collide(
    client: redis.Redis, keys: List[str], namespace: str
) -> None:
    client.flushall()
    # A neighbour namespace whose data must stay byte for byte the same.
    neighbour = RedisStorage(client, namespace=namespace + "-other")
    neighbour.push(ScheduledTask("n1", "k", 1, 0.0))
    neighbour.add_tag("k", "t", "v")
    # The registry of namespaces (``ranch backlogs``) is the one key outside every namespace.
    registry = registry_key().encode()
    before = {k: client.dump(k) for k in all_keys(client) if k != registry}

    storage = RedisStorage(client, namespace=namespace)
    pushed: Counter[str] = Counter()
    for i, key in enumerate(keys):
        storage.push(ScheduledTask(f"t{i}", key, {"i": i}, 0.0))
        storage.add_tag(key, key, key)
        storage.set_custom_data(key, key, key)
        pushed[key] += 1

    prefix = base(namespace).encode()
    slot = key_slot(prefix + b"stats")
    assert client.smembers(registry) == {namespace.encode(), (namespace + "-other").encode()}
    for name in all_keys(client):
        if name in before or name == registry:
            continue
        assert name.startswith(prefix), name
        assert key_slot(name) == slot, name
    assert {k: client.dump(k) for k in before} == before

    # No two keys share a backlog: each key sees exactly its own tasks, in order.
    for key, count in pushed.items():
        meta = storage.metadata(key)
        assert meta.pending_tasks == count
        assert meta.tags == {key: key}
        assert meta.custom_data == {key: key}
        assert storage.keys_with_tag(key) == [key]
    assert len({n for n in all_keys(client) if n.startswith(prefix + b"q:")}) == len(pushed)
    served = []
    for _ in keys:
        result = storage.pop(1.0, 10.0)
        assert result.task is not None
        served.append(result.task)
    assert Counter(t.key for t in served) == pushed
    for task in served:
        assert task.payload == {"i": int(task.task_id[1:])}
        assert keys[task.payload["i"]] == task.key
    assert storage.pop(1.0, 10.0).task is None


def test_ten_kilobyte_keys(client: redis.Redis) -> None:
    storage = RedisStorage(client, namespace=f"big-{uuid.uuid4().hex}")
    long_a = "{" + "a" * 10_240 + "}"
    long_b = "{" + "a" * 10_239 + "b}"
    storage.push(ScheduledTask("1", long_a, "A", 0.0))
    storage.push(ScheduledTask("2", long_b, "B", 0.0))
    assert storage.metadata(long_a).pending_tasks == 1
    assert storage.metadata(long_b).pending_tasks == 1
    first = storage.pop(1.0, 5.0).task
    second = storage.pop(1.0, 5.0).task
    assert first is not None and second is not None
    # Never served, equal pass: the smaller key (code point order) goes first.
    assert (first.key, second.key) == (long_a, long_b)
    assert (first.payload, second.payload) == ("A", "B")


def test_namespace_must_be_a_valid_hash_tag(client: redis.Redis) -> None:
    for bad in ("", "a{b", "a}b"):
        with pytest.raises(ValueError, match="namespace"):
            RedisStorage(client, namespace=bad)
    with pytest.raises(TypeError, match="namespace"):
        RedisStorage(client, namespace=3)  # type: ignore[arg-type]
