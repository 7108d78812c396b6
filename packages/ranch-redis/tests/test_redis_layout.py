"""``layout`` names every Redis key the scripts write and every reply code; corrupt records paths."""

from __future__ import annotations

import uuid
from typing import Iterator, List

import pytest
import redis
from ranch_core import FairScheduler
from ranch_core.errors import CorruptTask
from ranch_core.models import ScheduledTask, WakeupPolicy
from ranch_redis import RedisStorage, layout, records, scripts
from ranch_redis.connection import describe_client, describe_url


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url)
    yield c
    c.close()


def test_layout_names_every_key_a_namespace_writes(client: redis.Redis) -> None:
    ns = f"lay-{uuid.uuid4().hex}"
    storage = RedisStorage(client, namespace=ns)
    scheduler = FairScheduler(storage, clock=lambda: 10.0)
    scheduler.push("a", 1, expiry=60, tags={"plan": "pro"}, task_id="t1")
    scheduler.push("a", 2, task_id="t2")
    assert scheduler.pop() is not None
    scheduler.repair()
    storage.set_custom_data("a", "x", 1)
    # String keys alone write no members zset (layout, "Two-level keys").
    named = {
        layout.stats_key(ns), layout.tasks_key(ns), layout.leases_key(ns), layout.active_key(ns),
        layout.keys_key(ns), layout.queue_key(ns, "a"), layout.key_state_key(ns, "a"),
        layout.tag_index_key(ns, "plan"), layout.wake_key(ns),
        layout.waiting_index_key(ns), layout.served_index_key(ns), layout.started_key(ns),
    }  # fmt: skip
    written = {k.decode() for k in client.scan_iter(match=layout.base(ns) + "*")}
    assert written == named
    # The expiry indexes exist while an expiring task waits.
    scheduler.push("b", 3, expiry=60, task_id="t3")
    assert client.zscore(layout.expiry_key(ns), "t3") == 70.0
    assert client.zscore(layout.key_expiry_key(ns, "b"), "t3") == 70.0
    assert layout.queue_key(ns, "a") == f"ranch:{{{ns}}}:q:61"


def test_layout_names_every_key_the_controls_write(client: redis.Redis) -> None:
    ns = f"lay-{uuid.uuid4().hex}"
    storage = RedisStorage(client, namespace=ns)
    clock = [10.0]
    scheduler = FairScheduler(storage, clock=lambda: clock[0])
    policy = WakeupPolicy(max_wakeups=4, ttl=2.0, defer=True)
    scheduler.set_rate_limit("a", "1/s")
    scheduler.store("a", [1, 2], wakeups=policy)
    assert scheduler.pop() is not None
    assert scheduler.take("stale", policy).deferred  # "a" is parked by its rate; the token deferred
    assert client.zscore(layout.parked_key(ns), layout.hex_key("a")) == 11.0
    assert client.zscore(layout.deferred_key(ns), "stale") == 11.0
    named = {
        layout.stats_key(ns), layout.tasks_key(ns), layout.leases_key(ns), layout.keys_key(ns),
        layout.queue_key(ns, "a"), layout.key_state_key(ns, "a"), layout.wake_key(ns),
        layout.parked_key(ns), layout.deferred_key(ns), layout.flight_key(ns), layout.held_key(ns),
        layout.motion_key(ns), layout.waiting_index_key(ns), layout.served_index_key(ns),
        layout.started_key(ns),
    }  # fmt: skip
    written = {k.decode() for k in client.scan_iter(match=layout.base(ns) + "*")}
    assert written <= named and layout.parked_key(ns) in written


def test_layout_names_the_delayed_calls_keys(client: redis.Redis) -> None:
    ns = f"lay-{uuid.uuid4().hex}"
    scheduler = FairScheduler(RedisStorage(client, namespace=ns), clock=lambda: 10.0)
    scheduler.push("a", 1, delay=5.0, task_id="t1")
    assert client.zscore(layout.delayed_key(ns), "t1") == 15.0
    assert client.zscore(layout.key_delayed_key(ns, "a"), "t1") == 15.0
    named = {
        layout.stats_key(ns), layout.tasks_key(ns), layout.key_state_key(ns, "a"), layout.wake_key(ns),
        layout.delayed_key(ns), layout.key_delayed_key(ns, "a"),
    }  # fmt: skip
    written = {k.decode() for k in client.scan_iter(match=layout.base(ns) + "*")}
    assert written <= named


def test_reply_codes_are_named_and_written_into_the_scripts() -> None:
    assert layout.REPLIES["PUSH_STORED"] == layout.PUSH_STORED
    assert len(set(layout.REPLIES)) == len(layout.REPLIES) and "PREFIX" not in layout.REPLIES
    text = scripts.source("push")
    assert f"return {layout.PUSH_DUPLICATE}" in text and "__" not in text.replace("__index", "")
    with pytest.raises(ValueError, match="unknown script 'nope'"):
        scripts.source("nope")


def test_a_script_naming_an_undefined_constant_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(scripts.CONSTANTS, "__PUSH_STORED__")
    with pytest.raises(AssertionError, match="names a constant that is not defined"):
        scripts.source("push")


def test_records_read_odd_values() -> None:
    assert records.key_name(b"zz") == "zz"
    assert records.key_name(b"61") == "a"
    meta, bad = records.parse_metadata("a", [2, b"", b"", 0, b"", b"n", b"-3", b"w", b"0.5"])
    assert (meta.served_total, meta.weight, meta.pending_tasks, bad) == (0, 0.5, 2, ["n"])
    # Controls: the key's own setting, else the default; unreadable ones read as unset.
    reply = [0, b"4", b"2/s", 0, b"", b"cl", b"0", b"r", b"x", b"mb", b"-1"]
    reply += [b"rr", b"1", b"rt", b"1/s", b"ps", b"1"]
    meta, bad = records.parse_metadata("a", reply)
    assert (meta.concurrency_limit, meta.running, meta.rate_limit, meta.paused, meta.max_backlog) == (
        4,
        0,
        "1/s",
        True,
        None,
    )
    assert bad == ["cl", "mb", "r"]
    meta, _ = records.parse_metadata("a", [0, b"", b"2/s", 0, b"", b"cl", b"3", b"r", b"2"])
    assert (meta.concurrency_limit, meta.running, meta.rate_limit) == (3, 2, "2/s")
    # A string key whose group has pairs: the running count covers them (reply[4]).
    meta, _ = records.parse_metadata("a", [0, b"", b"", 0, 5, b"r", b"2"])
    assert meta.running == 5
    # A pair's hex key reads back as the pair.
    assert records.key_name(b"61:62") == ("a", "b")


def test_corrupt_records_found_by_expire_and_release_are_reported(client: redis.Redis) -> None:
    errors: List[CorruptTask] = []
    storage = RedisStorage(client, namespace=f"cr-{uuid.uuid4().hex}", on_corrupt=errors.append)
    tasks = layout.tasks_key(storage.namespace)
    storage.push(ScheduledTask("e", "k", 1, 0.0, expires_at=5.0))
    body = client.hget(tasks, "e")
    assert body is not None
    client.hset(tasks, "e", body.replace(b",1", b",{bad json"))  # the payload no longer decodes
    assert storage.expire(10.0, 5) == []  # dropped, reported, not returned
    assert len(errors) == 1 and "'e' is corrupt" in str(errors[0])
    assert storage.status().expired_total == 1
    storage.push(ScheduledTask("r", "k", 1, 0.0))
    assert storage.pop(1.0, 5.0).task is not None
    client.hset(tasks, "r", b"garbage")
    assert storage.release("r") is False
    assert len(errors) == 2 and storage.status().leased == 0


def test_where_errors_point_to() -> None:
    assert describe_url("redis://:pw@h:99999/0") == "redis://h/0"
    assert describe_url("rediss://h:7000") == "rediss://h:7000"
    assert describe_client(redis.Redis(unix_socket_path="/tmp/r.sock")) == "unix:///tmp/r.sock"

    class Cluster:
        startup_nodes = {"b:2": 1, "a:1": 1}

    assert describe_client(Cluster()) == "cluster a:1,b:2"


def test_a_reclaimed_lease_that_no_longer_decodes_is_reported_and_removed(client: redis.Redis) -> None:
    errors: List[CorruptTask] = []
    storage = RedisStorage(client, namespace=f"rl-{uuid.uuid4().hex}", on_corrupt=errors.append)
    assert repr(storage) == f"RedisStorage({storage._retry.where!r}, namespace={storage.namespace!r})"
    storage.push(ScheduledTask("x", "k", [1], 0.0))
    storage.push(ScheduledTask("old", "k", 2, 0.0, expires_at=3.0))
    storage.push(ScheduledTask("y", "k", 3, 0.0))
    assert storage.pop(1.0, 1.0).task is not None  # x leased until 2.0
    tasks = layout.tasks_key(storage.namespace)
    body = client.hget(tasks, "x")
    assert body is not None
    client.hset(tasks, "x", body.replace(b"[1]", b"[1"))
    result = storage.pop(5.0, 1.0)  # reclaims x (corrupt: removed), drops "old" (expired), serves y
    assert result.reclaimed == () and [t.task_id for t in result.expired] == ["old"]
    assert result.task is not None and result.task.task_id == "y"
    assert len(errors) == 1 and "'x' is corrupt" in str(errors[0])
    assert storage.status().backlog_size == 0 and client.hlen(tasks) == 1  # only y, leased
    with pytest.raises(ValueError, match="corrupt task body"):
        layout.decode_body(b"1.0,,zz,payload")


def test_benchmark_prefill_arguments_store_a_whole_push(client: redis.Redis) -> None:
    storage = RedisStorage(client, namespace=f"pf-{uuid.uuid4().hex}")
    args = storage._push_args(ScheduledTask("t", "k", 1, 0.0), 0.5)
    assert storage._scripts["push"](keys=[layout.stats_key(storage.namespace)], args=[*args, "0"]) == 1
    assert storage.metadata("k").weight == 0.5 and storage.waiting() == 1
    with pytest.raises(ValueError, match="without expiry"):
        storage._push_args(ScheduledTask("u", "k", 1, 0.0, expires_at=5.0), None)


def test_layout_names_the_wake_up_and_slot_keys(client: redis.Redis) -> None:
    ns = f"lay-{uuid.uuid4().hex}"
    storage = RedisStorage(client, namespace=ns)
    policy = WakeupPolicy(max_wakeups=4, ttl=30.0)
    scheduler = FairScheduler(storage, clock=lambda: 10.0)
    scheduler.store("a", [1, 2, 3], wakeups=policy)
    stored = scheduler.store("a", [4], wakeups=policy)
    taken = scheduler.take(stored.wakeups[0], policy)
    assert taken.task is not None
    storage.register_slots("worker-1", 8, 10.0, 30.0)
    written = {k.decode() for k in client.scan_iter(match=layout.base(ns) + "*")}
    tokens = {
        layout.flight_key(ns), layout.held_key(ns), layout.bound_key(ns), layout.holder_key(ns),
        layout.workers_key(ns), layout.slots_key(ns), layout.motion_key(ns),
    }  # fmt: skip
    assert tokens <= written
    assert client.hget(layout.slots_key(ns), "worker-1") == b"8"
    assert client.zscore(layout.workers_key(ns), "worker-1") == 40.0


def test_layout_names_every_key_pairs_write(client: redis.Redis) -> None:
    """A pair ``(group, member)`` is spelled ``<hex group>:<hex member>``; its group gets a
    ready-members zset and a set of its pairs; a task read back carries the tuple."""
    ns = f"lay-{uuid.uuid4().hex}"
    storage = RedisStorage(client, namespace=ns)
    scheduler = FairScheduler(storage, clock=lambda: 10.0)
    pair = ("a:b", "c")
    scheduler.push(pair, 1, tags={"plan": "pro"}, task_id="t1")
    scheduler.push(pair, 2, task_id="t2")
    task = scheduler.pop()
    assert task is not None and task.key == pair
    assert layout.hex_key(pair) == "613a62:63" and layout.key_of_hex("613a62:63") == pair
    assert layout.hex_key("a:b") == "613a62"  # a string key's hex never holds ':'
    named = {
        layout.stats_key(ns), layout.tasks_key(ns), layout.leases_key(ns), layout.active_key(ns),
        layout.keys_key(ns), layout.queue_key(ns, pair), layout.key_state_key(ns, pair),
        layout.key_state_key(ns, "a:b"), layout.members_key(ns, "a:b"),
        layout.group_members_key(ns, "a:b"), layout.tag_index_key(ns, "plan"), layout.wake_key(ns),
        layout.waiting_index_key(ns), layout.served_index_key(ns), layout.started_key(ns),
    }  # fmt: skip
    written = {k.decode() for k in client.scan_iter(match=layout.base(ns) + "*")}
    assert written == named
    assert client.zrange(layout.active_key(ns), 0, -1) == [b"%016x613a62" % 1]
    assert client.zrange(layout.members_key(ns, "a:b"), 0, -1) == [b"%016x63" % 1]
    assert client.hgetall(layout.tag_index_key(ns, "plan")) == {layout.tag_field(pair): b"pro"}
    assert storage.keys_with_tag("plan") == [pair]
