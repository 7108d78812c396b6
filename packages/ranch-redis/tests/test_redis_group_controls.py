"""Group-level controls in Redis: where a held group lives, the group's sums, ``why``.

The semantics are ranch-core's (the conformance suite's group properties and the
differential test hold the scripts to them step for step); these tests pin the
Redis side: a held group leaves ``active`` while its members stay in ``m:``, a
group parked by its rate waits in ``parked`` under its hex, ``metadata("g")``
reads the group's sums (not its pairs), and ``why`` names the group that holds
a pair's call.
"""

from __future__ import annotations

import uuid
from typing import Iterator, Tuple

import pytest
import redis
from ranch_core import FairScheduler
from ranch_core.keys import key_order
from ranch_redis import RedisStorage, layout
from ranch_redis.cli.read import group_rows
from ranch_redis.cli.why import explain


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url)
    yield c
    c.close()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def scheduler(client: redis.Redis) -> Tuple[FairScheduler, RedisStorage, str, Clock]:
    ns = f"grp-{uuid.uuid4().hex}"
    storage = RedisStorage(client, namespace=ns)
    clock = Clock()
    return FairScheduler(storage, clock=clock), storage, ns, clock


def test_a_paused_group_leaves_active_and_its_members_stay(client: redis.Redis) -> None:
    fair, storage, ns, _ = scheduler(client)
    for m in ("a", "b"):
        fair.push(("G", m), m, task_id=f"G-{m}")
    fair.push("G", "own", task_id="G-own")
    fair.push("H", "h", task_id="H-1")
    fair.pause_key("G")
    active = client.zrange(layout.active_key(ns), 0, -1)
    assert [m[16:] for m in active] == [layout.hex_key("H").encode()]
    members = client.zrange(layout.members_key(ns, "G"), 0, -1)
    assert sorted(m[16:] for m in members) == [b"", b"61", b"62"]
    assert client.hget(layout.key_state_key(ns, "G"), "pk") == b"p"
    assert storage.status().active_keys == 4  # the held group's members count as active keys
    task = fair.pop()
    assert task is not None and task.key == "H" and fair.pop() is None
    place = storage.why("G-a", 100.0)
    assert (place.blocked_by, place.blocked_group, place.place) == ("paused", "G", None)
    assert "held by: its group 'G' is paused" in "\n".join(explain(place, 100.0))
    own = storage.why("G-own", 100.0)
    assert (own.blocked_by, own.blocked_group) == ("paused", None)  # a string key's controls are its own
    fair.resume_key("G")
    assert sorted(key_order(t.key) for t in iter(fair.pop, None)) == [("G", ""), ("G", "a"), ("G", "b")]


def test_a_group_at_its_cap_and_a_group_parked_by_its_rate(client: redis.Redis) -> None:
    fair, storage, ns, clock = scheduler(client)
    fair.set_concurrency_limit("G", 1)
    fair.push(("G", "a"), 1, task_id="a1")
    fair.push(("G", "b"), 2, task_id="b1")
    first = fair.pop()
    assert first is not None and fair.pop() is None
    held = "b1" if first.task_id == "a1" else "a1"
    place = storage.why(held, clock.now)
    assert (place.blocked_by, place.blocked_group, place.running, place.concurrency_limit) == (
        "concurrency limit",
        "G",
        1,
        1,
    )
    assert "its group 'G''s concurrency limit: 1 running of 1" in "\n".join(explain(place, clock.now))
    assert fair.metadata("G").running == 1
    fair.ack(first.task_id)
    second = fair.pop()
    assert second is not None and second.task_id == held
    fair.ack(second.task_id)

    fair.set_concurrency_limit("G", None)
    fair.set_rate_limit("G", "1/s")
    fair.push(("G", "a"), 3, task_id="a2")
    fair.push(("G", "b"), 4, task_id="b2")
    popped = fair.pop()
    assert popped is not None and fair.pop() is None
    parked = client.zrange(layout.parked_key(ns), 0, -1, withscores=True)
    assert parked == [(layout.hex_key("G").encode(), clock.now + 1.0)]
    waiting = "b2" if popped.task_id == "a2" else "a2"
    place = storage.why(waiting, clock.now)
    assert (place.blocked_by, place.blocked_group, place.eligible_at) == ("rate limit", "G", clock.now + 1.0)
    clock.now += 1.0
    assert fair.pop() is not None


def test_a_string_keys_metadata_reads_the_group_sums_not_its_pairs(client: redis.Redis) -> None:
    fair, _, ns, clock = scheduler(client)
    for m in range(30):
        fair.push(("G", f"m{m}"), m, expiry=5.0 if m % 3 == 0 else None)
    fair.push("G", "own")
    fair.push(("G", "late"), "x", delay=60.0)
    for _ in range(4):
        assert fair.pop() is not None
    before = fair.metadata("G")
    assert (before.pending_tasks, before.running, before.delayed_tasks) == (31 - 4, 4, 1)
    # Without the set of the group's pairs the string key's counts are the same: no walk over them.
    client.delete(layout.group_members_key(ns, "G"))
    assert fair.metadata("G") == before
    clock.now += 10.0  # the expiring calls (every third pair) are due: not counted
    members = [fair.metadata(("G", f"m{m}")).pending_tasks for m in range(30)]
    after = fair.metadata("G").pending_tasks
    own = client.llen(layout.queue_key(ns, "G"))
    assert after == sum(members) + own < before.pending_tasks


def test_ranch_key_of_a_pair_shows_its_groups_controls(client: redis.Redis) -> None:
    fair, storage, _, clock = scheduler(client)
    fair.push(("G", "a"), 1)
    assert group_rows(storage, "G", clock.now) == []
    assert group_rows(storage, ("G", "a"), clock.now) == [("group controls", "G: none")]
    fair.pause_key("G")
    fair.set_concurrency_limit("G", 2)
    fair.set_rate_limit("G", "3/s")
    assert group_rows(storage, ("G", "a"), clock.now) == [
        ("group controls", "G: paused, concurrency limit 2 (0 running in the group), rate limit 3/s")
    ]


@pytest.mark.parametrize(("field", "raw"), [("gq", b"abc"), ("gq", b"-3"), ("gx", b"1.5"), ("gd", b"nan")])
def test_a_corrupt_group_sum_strands_nothing_and_repair_counts_it_again(
    client: redis.Redis, field: str, raw: bytes
) -> None:
    fair, storage, ns, clock = scheduler(client)
    fair.set_concurrency_limit("G", 10)
    fair.set_rate_limit(("G", "b"), "1/s", burst=2)
    pushed = {
        fair.push(key, i) for i, key in enumerate(["G", ("G", "a"), ("G", "b"), ("G", "a"), ("G", "b")])
    }
    pushed.add(fair.push(("G", "c"), "later", delay=1.0))
    client.hset(layout.key_state_key(ns, "G"), field, raw)
    fixes = [str(fix) for fix in fair.repair()]
    assert any(f"field {field!r} held {raw!r}" in fix for fix in fixes), fixes
    sums = client.hmget(layout.key_state_key(ns, "G"), "gq", "gd", "gx")
    assert sums == [b"4", b"1", b"0"]
    clock.now += 2.0
    ran = []
    for _ in range(3):
        while (task := fair.pop()) is not None:
            ran.append(task.task_id)
            assert fair.ack(task.task_id)
        clock.now += 1.0
    assert sorted(ran) == sorted(pushed)
    meta = fair.metadata("G")
    assert (meta.pending_tasks, meta.delayed_tasks, meta.running) == (0, 0, 0)
    assert storage.status().active_keys == 0
