"""Bad input raises a clear TypeError/ValueError and stores nothing; corrupt data is skipped."""

from __future__ import annotations

import logging
import math
import uuid
from typing import Any, Dict, Iterator, List

import pytest
import redis
from ranch_core import FairScheduler, InMemoryStorage
from ranch_core.errors import CorruptTask
from ranch_core.models import PopResult, ScheduledTask, WakeupPolicy
from ranch_core.protocols import EXPIRED_BATCH
from ranch_redis import RedisStorage, layout


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url)
    yield c
    c.close()


def snapshot(client: redis.Redis) -> Dict[bytes, Any]:
    return {k: client.dump(k) for k in client.scan_iter()}


class Unencodable:
    def __reduce__(self) -> Any:
        raise TypeError("not today")


@pytest.mark.parametrize(
    ("serializer", "payload"),
    [
        ("json", object()),
        ("json", {1, 2}),
        ("json", math.nan),
        ("json", {"nested": [b"bytes"]}),
        ("pickle", Unencodable()),
        ("pickle", lambda: None),
    ],
)
def test_payload_the_serializer_cannot_encode(client: redis.Redis, serializer: str, payload: Any) -> None:
    storage = RedisStorage(client, namespace="bad", serializer=serializer)
    storage.push(ScheduledTask("ok", "k", 1 if serializer == "json" else object.__name__, 0.0))
    before = snapshot(client)
    with pytest.raises(TypeError, match="payload cannot be"):
        storage.push(ScheduledTask("t", "k", payload, 0.0))
    assert snapshot(client) == before


def test_duplicate_task_id_waiting_or_leased(client: redis.Redis) -> None:
    storage = RedisStorage(client, namespace="dup")
    storage.push(ScheduledTask("t", "k", 1, 0.0))
    before = snapshot(client)
    with pytest.raises(ValueError, match="already waiting or leased"):
        storage.push(ScheduledTask("t", "other", 2, 0.0), weight=3.0)
    assert snapshot(client) == before
    assert storage.pop(1.0, 5.0).task is not None
    before = snapshot(client)
    with pytest.raises(ValueError, match="already waiting or leased"):
        storage.push(ScheduledTask("t", "k", 1, 0.0))
    assert snapshot(client) == before
    assert storage.ack("t")
    storage.push(ScheduledTask("t", "k", 1, 0.0))  # finished ids may be reused


@pytest.mark.parametrize(
    ("task", "weight", "error"),
    [
        (ScheduledTask("t", "", 1, 0.0), None, ValueError),
        (ScheduledTask("t", 3, 1, 0.0), None, TypeError),  # type: ignore[arg-type]
        (ScheduledTask("t", "\ud800", 1, 0.0), None, ValueError),
        (ScheduledTask("", "k", 1, 0.0), None, ValueError),
        (ScheduledTask(None, "k", 1, 0.0), None, TypeError),  # type: ignore[arg-type]
        (ScheduledTask("t", "k", 1, 0.0), 0.0, ValueError),
        (ScheduledTask("t", "k", 1, 0.0), math.inf, ValueError),
        (ScheduledTask("t", "k", 1, 0.0), "2", TypeError),
    ],
)
def test_bad_push_arguments(client: redis.Redis, task: ScheduledTask, weight: Any, error: type) -> None:
    storage = RedisStorage(client, namespace="args")
    with pytest.raises(error):
        storage.push(task, weight=weight)
    assert snapshot(client) == {}


def test_bad_tracker_arguments(client: redis.Redis) -> None:
    storage = RedisStorage(client, namespace="tracker")
    with pytest.raises(TypeError, match="JSON"):
        storage.set_custom_data("k", "n", object())
    with pytest.raises(TypeError, match="JSON"):
        storage.set_custom_data("k", "n", math.inf)
    with pytest.raises(ValueError, match="weight"):
        storage.set_weight("k", -1.0)
    with pytest.raises(TypeError, match="tag value"):
        storage.add_tag("k", "n", 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tag name"):
        storage.add_tag("k", "", "v")
    assert snapshot(client) == {}


def test_bad_configuration(client: redis.Redis, redis_url: str) -> None:
    with pytest.raises(ValueError, match="unknown serializer"):
        RedisStorage(client, serializer="yaml")
    with pytest.raises(ValueError, match="decode_responses"):
        RedisStorage(redis.Redis.from_url(redis_url, decode_responses=True))
    with pytest.raises(ValueError, match="decode_responses"):
        RedisStorage.from_url(redis_url, decode_responses=True)
    with pytest.raises(ValueError, match="retries"):
        RedisStorage(client, retries=-1)
    with pytest.raises(ValueError, match="backoff"):
        RedisStorage(client, backoff=math.nan)
    with pytest.raises(TypeError, match="url"):
        RedisStorage.from_url(None)  # type: ignore[arg-type]


def test_pickle_only_by_name(client: redis.Redis) -> None:
    # JSON by default: a set is refused; pickle, asked for by name, keeps it.
    with pytest.raises(TypeError):
        RedisStorage(client, namespace="p").push(ScheduledTask("t", "k", {1}, 0.0))
    storage = RedisStorage(client, namespace="p", serializer="pickle")
    storage.push(ScheduledTask("t", "k", {1, (2, 3)}, 0.0))
    task = storage.pop(1.0, 5.0).task
    assert task is not None and task.payload == {1, (2, 3)}


def test_corrupt_tasks_are_reported_and_skipped(
    client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    errors: List[CorruptTask] = []
    storage = RedisStorage(client, namespace="corrupt", on_corrupt=errors.append)
    scheduler = FairScheduler(storage, clock=lambda: 10.0)
    for i, key in enumerate(["a", "b", "c", "d", "e"]):
        scheduler.push(key, {"n": i}, task_id=key)
    tasks = "ranch:{corrupt}:tasks"
    body = client.hget(tasks, "a")
    assert body is not None
    client.hset(tasks, "a", body.replace(b'{"n":0}', b"{not json"))  # payload not decodable
    client.hset(tasks, "b", b"garbage")  # record not readable
    client.hdel(tasks, "c")  # id without a record
    with caplog.at_level(logging.ERROR, logger="ranch_redis"):
        served = []
        while (task := scheduler.pop()) is not None:
            served.append(task.task_id)
            scheduler.ack(task.task_id)
    assert served == ["d", "e"]
    assert sorted(str(e).split("task ")[1].split(" ")[0] for e in errors) == ["'a'", "'b'", "'c'"]
    assert storage.corrupt_total == 3
    assert sum("is corrupt" in r.getMessage() for r in caplog.records) == 3
    status = scheduler.status()
    assert (status.backlog_size, status.active_keys, status.leased) == (0, 0, 0)
    assert client.hlen(tasks) == 0


def test_corrupt_lease_is_dropped_at_reclaim(client: redis.Redis) -> None:
    errors: List[CorruptTask] = []
    storage = RedisStorage(client, namespace=f"c-{uuid.uuid4().hex}", on_corrupt=errors.append)
    storage.push(ScheduledTask("x", "k", 1, 0.0))
    storage.push(ScheduledTask("y", "k", 2, 0.0))
    assert storage.pop(1.0, 1.0).task is not None
    assert storage.pop(1.0, 1.0).task is not None
    client.hset(f"ranch:{{{storage.namespace}}}:tasks", "x", b"1,,zz")
    reclaimed = storage.reclaim(5.0)
    assert [t.task_id for t in reclaimed] == ["y"]
    assert len(errors) == 1
    assert storage.status().backlog_size == 1


def spoil_payload(client: redis.Redis, namespace: str, task_id: str) -> None:
    """Make the stored payload undecodable; the record itself stays readable to the scripts."""
    tasks = layout.tasks_key(namespace)
    body = client.hget(tasks, task_id)
    assert body is not None
    head, _, _ = body.rpartition(b",")
    client.hset(tasks, task_id, head + b",{not json")


def test_a_corrupt_call_served_with_a_token_hands_the_token_to_the_next_call(client: redis.Redis) -> None:
    """The pop reports the corrupt call, finishes it keeping its token, and serves what waits."""
    errors: List[CorruptTask] = []
    namespace = f"ct-{uuid.uuid4().hex}"
    storage = RedisStorage(client, namespace=namespace, on_corrupt=errors.append)
    policy = WakeupPolicy(max_wakeups=4, ttl=100.0)
    token = storage.push(ScheduledTask("bad", "a", 1, 0.0), wakeups=policy)[0]
    storage.push(ScheduledTask("good", "b", 2, 0.0), wakeups=policy)
    spoil_payload(client, namespace, "bad")
    result = storage.pop(1.0, 10.0, token=token, wakeups=policy)
    assert result.task is not None and result.task.task_id == "good"
    assert [str(e).split("task ")[1].split(" ")[0] for e in errors] == ["'bad'"]
    status = storage.status()
    assert (status.backlog_size, status.leased, status.served_total) == (0, 1, 2)


def test_a_corrupt_call_served_with_a_token_when_nothing_else_waits_serves_nothing(
    client: redis.Redis,
) -> None:
    errors: List[CorruptTask] = []
    namespace = f"ct-{uuid.uuid4().hex}"
    storage = RedisStorage(client, namespace=namespace, on_corrupt=errors.append)
    policy = WakeupPolicy(max_wakeups=4, ttl=100.0)
    token = storage.push(ScheduledTask("bad", "a", 1, 0.0), wakeups=policy)[0]
    spoil_payload(client, namespace, "bad")
    assert storage.pop(1.0, 10.0, token=token, wakeups=policy) == PopResult(None)
    assert len(errors) == 1
    status = storage.status()
    assert (status.backlog_size, status.leased) == (0, 0)
    assert storage.wakeup_status() == InMemoryStorage().wakeup_status()  # no token left held


def test_a_corrupt_call_served_after_expired_ones_reports_both_and_serves_nothing(
    client: redis.Redis,
) -> None:
    errors: List[CorruptTask] = []
    namespace = f"ce-{uuid.uuid4().hex}"
    storage = RedisStorage(client, namespace=namespace, on_corrupt=errors.append)
    storage.push(ScheduledTask("old", "a", 1, 0.0, 5.0))
    storage.push(ScheduledTask("bad", "a", 2, 0.0))
    storage.push(ScheduledTask("next", "a", 3, 0.0))
    spoil_payload(client, namespace, "bad")
    result = storage.pop(10.0, 10.0)
    assert result.task is None and [t.task_id for t in result.expired] == ["old"]
    assert len(errors) == 1
    again = storage.pop(10.0, 10.0).task
    assert again is not None and again.task_id == "next"
    status = storage.status()
    assert (status.backlog_size, status.leased, status.expired_total) == (0, 1, 1)


def test_a_pop_that_only_drops_corrupt_records_pops_again(client: redis.Redis) -> None:
    """One script call drops at most EXPIRED_BATCH records: the pop calls again until it serves."""
    errors: List[CorruptTask] = []
    namespace = f"cb-{uuid.uuid4().hex}"
    storage = RedisStorage(client, namespace=namespace, on_corrupt=errors.append)
    ids = [f"bad{n:03}" for n in range(EXPIRED_BATCH + 1)]
    storage.push_many([ScheduledTask(task_id, "a", 1, 0.0) for task_id in ids])
    storage.push(ScheduledTask("good", "b", 2, 0.0))
    tasks = layout.tasks_key(namespace)
    for task_id in ids:  # each record now names another key than the one it waits in
        enqueued, expires, _, data = client.hget(tasks, task_id).split(b",", 3)  # type: ignore[union-attr]
        client.hset(tasks, task_id, b",".join([enqueued, expires, layout.hex_key("z").encode(), data]))
    result = storage.pop(1.0, 10.0)
    assert result.task is not None and result.task.task_id == "good"
    assert len(errors) == EXPIRED_BATCH + 1
    assert storage.status().backlog_size == 0
