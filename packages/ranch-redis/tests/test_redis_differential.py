"""RedisStorage and InMemoryStorage, driven by the same operations, answer identically.

The storages are called directly (no scheduler), with awkward floats (weights
and charges that are not round binary fractions, negative charges), keys
whose order differs between code points and naive byte tricks, and both
serializers. Every return value and, after every step, status, metadata and
tags must be equal: the Lua arithmetic must match Python's double for double.
The per-key controls are driven too (caps, rates with bursts, pause, backlog
limits, defaults, purge, revoke): parking, the GCRA bucket, ``retry_at`` and
``running`` must agree to the bit.
"""

from __future__ import annotations

import uuid
from typing import Any, Dict, Iterator, List, Optional

import attrs
import pytest
import redis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from ranch_core import validation
from ranch_core.backends import controls
from ranch_core.backends.memory import InMemoryStorage
from ranch_core.errors import BacklogFull
from ranch_core.keys import Key
from ranch_core.models import LRUKeyMetadata, ScheduledTask
from ranch_core.protocols import Controls
from ranch_redis import RedisStorage

KEYS: List[Key] = [
    "a",
    "ab",
    "b",
    "a:b",
    "{x}",
    "} {",
    "é",
    "\u00ff",
    "\u0100",
    "😀",
    "\uffff",
    "\x00",
    "a" * 300,
]
#: Two-level keys beside string keys of the same groups (a string key is its group's own member).
PAIRS: List[Key] = [
    ("a", "b"),
    ("a", "x"),
    ("ab", "a"),
    ("a:b", "é"),
    ("\x00", "\x00"),
    ("b", "a:b"),
    ("é", "😀"),
]
WEIGHTS = st.one_of(
    st.sampled_from([1.0, 0.5, 2.0, 0.1, 1 / 3, 3.7]),
    st.floats(min_value=1e-3, max_value=50.0, allow_nan=False, allow_infinity=False),
)
TAGS = ["plan", "{t}"]
CHARGES = st.floats(min_value=-5.0, max_value=5.0, allow_nan=False, allow_infinity=False)
STEPS = st.sampled_from([0.0, 0.1, 1 / 3, 1.0, 2.5, 7.0, 1e-9])
RATES = st.sampled_from([None, "1/s", "3/s", "0.7/s", "100/m"])
PAYLOADS = st.one_of(
    st.none(),
    st.integers(),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.floats(allow_nan=False, allow_infinity=False), max_size=3),
)


def comparable(meta: Any, storage: Any) -> Any:
    """``meta`` as a storage without per-key controls reports it: ``running``
    is counted only by storages that implement :class:`Controls` (the Redis
    half of issue 11 adds it to RedisStorage)."""
    if isinstance(meta, LRUKeyMetadata) and not isinstance(storage, Controls):
        return attrs.evolve(meta, running=0)
    return meta


@pytest.fixture(scope="module")
def client(redis_server: Any) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_server.url)
    yield c
    c.close()


def build(client: redis.Redis, serializer: str, keys: List[Key] = KEYS, steps: Any = STEPS) -> type:
    key_names = st.sampled_from(keys)
    control_keys = st.sampled_from(keys[:4])

    class Differential(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.mem = InMemoryStorage(serializer=serializer)
            self.red = RedisStorage(client, namespace=f"diff-{uuid.uuid4().hex}", serializer=serializer)
            self.now = 100.0
            self.ids: List[str] = []
            self.counter = 0

        def both(self, name: str, *args: Any, **kwargs: Any) -> Any:
            try:
                expected: Any = comparable(getattr(self.mem, name)(*args, **kwargs), self.red)
            except (TypeError, ValueError, BacklogFull) as exc:
                expected = (type(exc), str(exc))
            try:
                got: Any = getattr(self.red, name)(*args, **kwargs)
            except (TypeError, ValueError, BacklogFull) as exc:
                got = (type(exc), str(exc))
            assert got == expected, (name, args, got, expected)
            return got

        @rule(
            key=key_names,
            payload=PAYLOADS,
            weight=st.one_of(st.none(), WEIGHTS),
            ttl=st.one_of(st.none(), st.sampled_from([0.0, 0.5, 1.0, 3.0, 20.0])),
            reuse=st.booleans(),
            tags=st.one_of(
                st.none(), st.dictionaries(st.sampled_from(TAGS), st.sampled_from(["", "x", "é"]))
            ),
        )
        def push(
            self,
            key: Key,
            payload: Any,
            weight: Optional[float],
            ttl: Optional[float],
            reuse: bool,
            tags: Optional[Dict[str, str]],
        ) -> None:
            if reuse and self.ids:
                task_id = self.ids[-1]
            else:
                self.counter += 1
                task_id = f"t{self.counter}"
                self.ids.append(task_id)
            expires = None if ttl is None else self.now + ttl
            task = ScheduledTask(task_id, key, payload, self.now, expires)
            self.both("push", task, weight=weight, tags=tags)

        @rule(
            key=key_names,
            payloads=st.lists(PAYLOADS, min_size=1, max_size=3),
            delay=st.sampled_from([0.1, 1 / 3, 1.0, 2.5]),
            ttl=st.one_of(st.none(), st.sampled_from([0.5, 3.0])),
        )
        def push_delayed(self, key: Key, payloads: List[Any], delay: float, ttl: Optional[float]) -> None:
            """Delayed calls: promoted by pops in (due, task id) order, counted apart, reached by
            purge, revoke and max_backlog, the same in both storages."""
            tasks = []
            for payload in payloads:
                self.counter += 1
                self.ids.append(f"t{self.counter}")
                expires = None if ttl is None else self.now + ttl
                tasks.append(
                    ScheduledTask(f"t{self.counter}", key, payload, self.now, expires, self.now + delay)
                )
            self.both("push_many", tasks)

        @rule(step=steps, limit=st.integers(1, 4))
        def expire(self, step: float, limit: int) -> None:
            self.now += step
            self.both("expire", self.now, limit)

        @rule(step=steps, lease=st.sampled_from([0.5, 1.0, 4.0]))
        def pop(self, step: float, lease: float) -> None:
            self.now += step
            self.both("pop", self.now, lease)

        @precondition(lambda self: self.ids)
        @rule(data=st.data(), op=st.sampled_from(["ack", "release"]))
        def finish(self, data: st.DataObject, op: str) -> None:
            self.both(op, data.draw(st.sampled_from(self.ids)))

        @precondition(lambda self: self.ids)
        @rule(data=st.data(), extra=st.sampled_from([-1.0, 0.0, 0.3, 2.0]))
        def extend(self, data: st.DataObject, extra: float) -> None:
            self.both("extend", data.draw(st.sampled_from(self.ids)), self.now + extra)

        @rule(step=steps)
        def reclaim(self, step: float) -> None:
            self.now += step
            self.both("reclaim", self.now)

        @precondition(lambda self: self.ids)
        @rule(data=st.data(), key=key_names)
        def remove(self, data: st.DataObject, key: Key) -> None:
            self.both("remove", key, data.draw(st.sampled_from(self.ids)))

        @rule(key=key_names, extra=CHARGES)
        def charge(self, key: Key, extra: float) -> None:
            self.both("charge", key, extra)

        @rule(key=key_names, weight=WEIGHTS)
        def set_weight(self, key: Key, weight: float) -> None:
            self.both("set_weight", key, weight)

        @rule(key=key_names, name=st.sampled_from(["n", "é", "a:b"]), value=PAYLOADS)
        def set_custom_data(self, key: Key, name: str, value: Any) -> None:
            self.both("set_custom_data", key, name, value)

        @rule(
            key=key_names,
            name=st.sampled_from(["plan", "{t}"]),
            value=st.sampled_from(["", "x", "é"]),
        )
        def add_tag(self, key: Key, name: str, value: str) -> None:
            self.both("add_tag", key, name, value)

        @rule(
            key=st.one_of(control_keys, st.none()),
            limit=st.sampled_from([None, 1, 2]),
            rate=RATES,
            burst=st.integers(1, 3),
            which=st.sampled_from([controls.CONCURRENCY_LIMIT, controls.RATE_LIMIT]),
        )
        def set_limit(
            self, key: Optional[Key], limit: Optional[int], rate: Optional[str], burst: int, which: str
        ) -> None:
            value: Any = (
                limit if which == controls.CONCURRENCY_LIMIT else validation.check_rate_limit(rate, burst)
            )
            self.both("set_control", key, which, value, self.now)

        @rule(key=control_keys, paused=st.booleans())
        def pause(self, key: Key, paused: bool) -> None:
            self.both("set_control", key, controls.PAUSE, paused, self.now)

        @rule(key=control_keys, limit=st.sampled_from([None, 0, 2, 5]))
        def set_max_backlog(self, key: Key, limit: Optional[int]) -> None:
            self.both("set_control", key, controls.MAX_BACKLOG, limit, self.now)

        @rule(key=key_names, limit=st.integers(1, 3))
        def purge_key(self, key: Key, limit: int) -> None:
            self.both("purge_key", key, limit)

        @precondition(lambda self: self.ids)
        @rule(data=st.data())
        def revoke(self, data: st.DataObject) -> None:
            self.both("revoke", data.draw(st.sampled_from(self.ids)))

        @invariant()
        def same_state(self) -> None:
            for now in (None, self.now, self.now + 1.0):
                self.both("status", now)
                self.both("waiting", now)
            for key in keys:
                self.both("metadata", key)
                self.both("metadata", key, self.now + 0.5)
            for name in ("plan", "{t}"):
                self.both("keys_with_tag", name)
                self.both("keys_with_tag", name, "x")

    return Differential


#: Shares of the loaded profile's examples (ci and dev: 20 and 15; deep: 166 and 125). The
#: scripts never see the serializer: the pickle run checks the payload bytes (binary, commas
#: and NULs inside a task's record) going through them, which every push and pop does alike.
BUDGET = {"json": (1, 3), "pickle": (1, 4)}


@pytest.mark.parametrize("serializer", ["json", "pickle"])
def test_redis_matches_in_memory_step_for_step(client: redis.Redis, serializer: str) -> None:
    share, of = BUDGET[serializer]
    run_state_machine_as_test(
        build(client, serializer),
        settings=settings(
            max_examples=max(1, settings().max_examples * share // of),
            stateful_step_count=50,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


@pytest.mark.parametrize("serializer", ["json", "pickle"])
def test_redis_matches_in_memory_with_pairs(client: redis.Redis, serializer: str) -> None:
    """Two-level keys: pairs and string keys of the same groups, selection by group then
    member, both passes charged, a string key's metadata covering its group."""
    share, of = BUDGET[serializer]
    run_state_machine_as_test(
        build(client, serializer, [*KEYS[:6], *PAIRS]),
        settings=settings(
            max_examples=max(1, settings().max_examples * share // of),
            stateful_step_count=50,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


def test_redis_matches_in_memory_under_controls_with_pairs(client: redis.Redis) -> None:
    """Controls on pairs and on string keys of their groups: a parked member leaves its
    group's ready members, the group the top level with its last one."""
    keys: List[Key] = [("a", "b"), "a", ("a", "c"), ("b", "a"), "b", ("ab", "a")]
    run_state_machine_as_test(
        build(client, "json", keys, st.sampled_from([0.0, 0.1, 1 / 3, 0.25, 1e-9])),
        settings=settings(
            max_examples=max(1, settings().max_examples // 3),
            stateful_step_count=60,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


def test_redis_matches_in_memory_under_controls(client: redis.Redis) -> None:
    """Four keys and small clock steps, so the controls bite: keys capped, paused, parked by
    their rate and back, buckets charged across rate changes, defaults, purges, revokes."""
    run_state_machine_as_test(
        build(client, "json", KEYS[:4], st.sampled_from([0.0, 0.1, 1 / 3, 0.25, 1e-9])),
        settings=settings(
            max_examples=max(1, settings().max_examples // 3),  # about 0.5 s an example
            stateful_step_count=60,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


def test_long_run_with_many_keys_matches(client: redis.Redis) -> None:
    """A deterministic 3,000-step run over 200 keys, weights and charges included."""
    import random

    rnd = random.Random(7)
    mem = InMemoryStorage()
    red = RedisStorage(client, namespace=f"diff-{uuid.uuid4().hex}")
    now = 0.0
    leased: List[str] = []
    weights: Dict[str, float] = {}
    for step in range(3000):
        now += rnd.choice([0.0, 0.01, 0.1, 1 / 7])
        roll = rnd.random()
        if roll < 0.45:
            key = f"k{rnd.randrange(200)}"
            weight = rnd.choice([None, None, rnd.uniform(0.05, 5.0)])
            if weight is not None:
                weights[key] = weight
            task = ScheduledTask(
                f"s{step}", key, {"n": step}, now, rnd.choice([None, now + rnd.uniform(0, 3)])
            )
            mem.push(task, weight=weight)
            red.push(task, weight=weight)
        elif roll < 0.85:
            expected = mem.pop(now, 2.0)
            assert red.pop(now, 2.0) == expected
            if expected.task is not None:
                leased.append(expected.task.task_id)
        elif roll < 0.95 and leased:
            task_id = leased.pop(rnd.randrange(len(leased)))
            op = rnd.choice(["ack", "release"])
            assert getattr(red, op)(task_id) == getattr(mem, op)(task_id)
        else:
            key = f"k{rnd.randrange(200)}"
            extra = rnd.uniform(-1, 1)
            mem.charge(key, extra)
            red.charge(key, extra)
    assert red.status() == mem.status()
    for i in range(200):
        assert red.metadata(f"k{i}") == comparable(mem.metadata(f"k{i}"), red)


@pytest.mark.parametrize("serializer", ["json"])
def test_redis_matches_in_memory_with_controls_at_both_levels(client: redis.Redis, serializer: str) -> None:
    """Controls on pairs and on their groups' string keys at once (and defaults, which
    apply to groups and pair members): a call starts only where both levels allow it
    (a quarter of the profile's examples: its steps cost more, keep it under 15 s)."""
    share, of = 1, 4
    keys: List[Key] = [("a", "b"), "a", ("ab", "a"), "ab", ("a", "x"), *KEYS[2:6], *PAIRS[3:]]
    run_state_machine_as_test(
        build(client, serializer, keys),
        settings=settings(
            max_examples=max(1, settings().max_examples * share // of),
            stateful_step_count=50,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
