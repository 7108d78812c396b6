"""A Hypothesis state machine driving a real storage and the model side by side."""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple, Type, TypeVar

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from ranch_core.keys import Key, group_of, key_order
from ranch_core.models import LRUKeyMetadata, ScheduledTask
from ranch_core.protocols import EXPIRE_ON_READ, Controls, Storage
from ranch_core.scheduler import FairScheduler
from ranch_core.testing.model import ReferenceModel

KEYS: List[Key] = ["a", "b", "c", "d", "{x}:y"]
#: String keys and two-level keys: members of the group of the string key
#: ``"a"``, and of a group ``"e"`` that has no string key of its own (as
#: many keys as :data:`KEYS` and one more, so a run costs about the same).
TWO_LEVEL_KEYS: List[Key] = ["a", "b", "{x}:y", ("a", "u1"), ("a", "{x}:y"), ("e", "u1")]
WEIGHTS = st.sampled_from([0.25, 0.5, 1.0, 1.5, 2.0, 3.0])
EXPIRIES = st.one_of(st.none(), st.sampled_from([0.0, 1.0, 2.5, 10.0]))
PAYLOADS = st.one_of(
    st.integers(-(2**31), 2**31), st.text(max_size=8), st.lists(st.integers(0, 9), max_size=3)
)
TAGS = st.one_of(
    st.none(),
    st.dictionaries(st.sampled_from(["plan", "region"]), st.sampled_from(["", "pro", "eu"]), max_size=2),
)
LEASE_SECONDS = 5.0

T = TypeVar("T")

#: Arguments each of which must be refused by ``push`` with nothing stored.
BAD_PUSHES: List[Dict[str, Any]] = [
    {"key": ""},
    {"key": None},
    {"key": 3},
    {"key": b"bytes"},
    {"key": "\ud800"},
    {"key": ("a",)},
    {"key": ("a", "u", "v")},
    {"key": ("", "u")},
    {"key": ("a", "")},
    {"key": ("a", 3)},
    {"key": [None, "u"]},
    {"weight": 0},
    {"weight": -1.0},
    {"weight": math.nan},
    {"weight": math.inf},
    {"weight": "1"},
    {"weight": True},
    {"weight": 1e308},
    {"weight": 10**400},
    {"weight": 0.0009},
    {"weight": 1000.5},
    {"expiry": -0.5},
    {"expiry": math.nan},
    {"expiry": "soon"},
    {"expiry": 10**400},
    {"expiry": 1e12},
    {"delay": -1.0},
    {"delay": math.nan},
    {"delay": "later"},
    {"delay": 1e12},
    {"tags": ["plan"]},
    {"tags": {"": "pro"}},
    {"tags": {"plan": 3}},
    {"tags": {"plan": "pro", 7: "x"}},
    {"task_id": ""},
    {"task_id": 7},
    {"payload": object()},
    {"payload": {1, 2}},
    {"payload": math.nan},
]


def _cost(_key: str, meta: LRUKeyMetadata) -> float:
    """The machine's weight function: custom data ``cost`` if set, else the weight."""
    cost = meta.custom_data.get("cost", meta.weight)
    return cost  # type: ignore[no-any-return]


def build_machine(
    make_storage: Callable[[], Storage], keys: Sequence[Key] = KEYS
) -> Type[RuleBasedStateMachine]:
    """A state machine class testing storages made by ``make_storage``, on
    ``keys`` (:data:`TWO_LEVEL_KEYS` for a storage that takes pairs)."""
    key_names = st.sampled_from(list(keys))

    class StorageMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.now = 1_000_000.0
            storage = make_storage()
            self.model = ReferenceModel(count_running=isinstance(storage, Controls))
            self.expired: List[str] = []
            self.reported: Set[str] = set()
            self.reclaimed: List[str] = []
            self.scheduler = FairScheduler(
                storage,
                weight_function=_cost,
                lease_seconds=LEASE_SECONDS,
                clock=lambda: self.now,
                on_expired=self._on_expired,
                on_reclaimed=lambda t: self.reclaimed.append(t.task_id),
            )
            self.counter = 0

        def _on_expired(self, task: ScheduledTask) -> None:
            assert task.task_id not in self.reported, f"{task.task_id} reported expired twice"
            assert task.expired(self.now), f"{task.task_id} reported before its expiry"
            self.reported.add(task.task_id)
            self.expired.append(task.task_id)

        def _read(self, read: Callable[[], T]) -> T:
            """A scheduler read (it drops due tasks first), mirrored in the model."""
            self.expired.clear()
            value = read()
            expected = self.model.expire(self.now, EXPIRE_ON_READ)
            assert self.expired == [t.task_id for t in expected]
            return value

        @initialize()
        def start_empty(self) -> None:
            assert len(self.scheduler) == 0

        def _new_id(self) -> str:
            self.counter += 1
            return f"t{self.counter}"

        def _push(
            self,
            key: Key,
            payload: Any,
            weight: Optional[float],
            expiry: Optional[float],
            tags: Optional[Dict[str, str]] = None,
        ) -> None:
            task_id = self._new_id()
            got = self.scheduler.push(key, payload, weight=weight, expiry=expiry, task_id=task_id, tags=tags)
            assert got == task_id
            task = ScheduledTask(
                task_id, key, payload, self.now, None if expiry is None else self.now + expiry
            )
            self.model.push(task, weight, tags)

        @rule(
            key=key_names,
            payload=PAYLOADS,
            weight=st.one_of(st.none(), WEIGHTS),
            expiry=EXPIRIES,
            tags=TAGS,
        )
        def push(
            self,
            key: Key,
            payload: Any,
            weight: Optional[float],
            expiry: Optional[float],
            tags: Optional[Dict[str, str]],
        ) -> None:
            self._push(key, payload, weight, expiry, tags)

        @rule(keys=st.lists(key_names, min_size=1, max_size=6), expiry=EXPIRIES)
        def push_many(self, keys: List[Key], expiry: Optional[float]) -> None:
            for i, key in enumerate(keys):
                self._push(key, i, None, expiry)

        @rule(
            key=key_names,
            payloads=st.lists(PAYLOADS, min_size=1, max_size=6),
            weight=st.one_of(st.none(), WEIGHTS),
            expiry=EXPIRIES,
            tags=TAGS,
        )
        def push_batch(
            self,
            key: Key,
            payloads: List[Any],
            weight: Optional[float],
            expiry: Optional[float],
            tags: Optional[Dict[str, str]],
        ) -> None:
            """``push_many``: one storage step, ids in the order given."""
            ids = [self._new_id() for _ in payloads]
            got = self.scheduler.push_many(
                key, payloads, weight=weight, expiry=expiry, tags=tags, task_ids=ids
            )
            assert got == ids
            expires_at = None if expiry is None else self.now + expiry
            for task_id, payload in zip(ids, payloads):
                self.model.push(ScheduledTask(task_id, key, payload, self.now, expires_at), weight, tags)

        @rule(
            key=key_names,
            payloads=st.lists(PAYLOADS, min_size=1, max_size=3),
            delay=st.sampled_from([0.5, 1.0, 3.0, 7.0]),
            expiry=EXPIRIES,
        )
        def push_delayed(self, key: Key, payloads: List[Any], delay: float, expiry: Optional[float]) -> None:
            """Delayed calls (``delay``): stored now, joining their key when due."""
            ids = [self._new_id() for _ in payloads]
            if len(ids) == 1:
                got = [self.scheduler.push(key, payloads[0], expiry=expiry, task_id=ids[0], delay=delay)]
            else:
                got = self.scheduler.push_many(key, payloads, expiry=expiry, task_ids=ids, delay=delay)
            assert got == ids
            expires_at = None if expiry is None else self.now + expiry
            for task_id, payload in zip(ids, payloads):
                task = ScheduledTask(task_id, key, payload, self.now, expires_at, self.now + delay)
                self.model.push(task, None)

        @rule(data=st.data())
        def push_bad_input(self, data: st.DataObject) -> None:
            live = sorted(self.model.live_ids())
            choices = BAD_PUSHES + [{"task_id": task_id} for task_id in live]
            bad = data.draw(st.sampled_from(choices))
            before = self._read(lambda: (self.scheduler.status(), self.scheduler.metadata("a")))
            args: Dict[str, Any] = {
                "key": "a", "payload": 1, "weight": None, "expiry": None, "task_id": None, "tags": None,
                "delay": None,
            }  # fmt: skip
            args.update(bad)
            try:
                self.scheduler.push(
                    args["key"], args["payload"], weight=args["weight"], expiry=args["expiry"],
                    task_id=args["task_id"], tags=args["tags"], delay=args["delay"],
                )  # fmt: skip
            except (TypeError, ValueError):
                pass
            else:
                raise AssertionError(f"push accepted bad input {bad!r}")
            after = self._read(lambda: (self.scheduler.status(), self.scheduler.metadata("a")))
            assert after == before

        def _pop(self) -> Optional[ScheduledTask]:
            self.expired.clear()
            self.reclaimed.clear()
            task = self.scheduler.pop()
            expected, expired, reclaimed = self.model.pop(self.now, LEASE_SECONDS)
            assert self.reclaimed == [t.task_id for t in reclaimed]
            assert self.expired == [t.task_id for t in expired]
            assert task == expected, f"popped {task}, model says {expected}"
            assert task is None or task.task_id not in self.reported, "an expired task was handed out"
            if expected is not None:
                # The weight function weighs the served key's group.
                own = self.model.keys.get(group_of(expected.key))
                cost = None if own is None else own.custom_data.get("cost", None)
                if cost is not None:
                    self.model.apply_weight_function(expected.key, cost)
            return task

        @rule()
        def pop(self) -> None:
            self._pop()

        @rule(n=st.integers(1, 5))
        def pop_and_ack(self, n: int) -> None:
            for _ in range(n):
                task = self._pop()
                if task is not None:
                    assert self.scheduler.ack(task.task_id) is self.model.ack(task.task_id)

        @rule(data=st.data(), op=st.sampled_from(["ack", "release", "extend", "requeue"]))
        def finish(self, data: st.DataObject, op: str) -> None:
            task_id = data.draw(st.sampled_from([*sorted(self.model.leases), "t1", "nope"]))
            if op == "requeue":
                old = self.model.leases.get(task_id, (0.0, None))[1]
                key = "a" if old is None else old.key
                expires_at = None if old is None else old.expires_at
                retried = ScheduledTask(task_id, key, ["retry", task_id], self.now, expires_at)
                assert self.scheduler.storage.requeue(retried) is self.model.requeue(retried)
            elif op == "ack":
                assert self.scheduler.ack(task_id) is self.model.ack(task_id)
            elif op == "release":
                assert self.scheduler.release(task_id) is self.model.release(task_id)
            else:
                assert self.scheduler.extend(task_id) is self.model.extend(task_id, self.now + LEASE_SECONDS)

        @precondition(lambda self: self.model.waiting() > 0)
        @rule(data=st.data())
        def remove(self, data: st.DataObject) -> None:
            waiting = sorted(
                ((t.key, t.task_id) for s in self.model.keys.values() for t in s.tasks),
                key=lambda pair: (key_order(pair[0]), pair[1]),
            )
            key, task_id = data.draw(st.sampled_from([*waiting, ("a", "nope")]))
            assert self.scheduler.remove(key, task_id) is self.model.remove(key, task_id)

        @rule(limit=st.integers(1, 3))
        def expire(self, limit: int) -> None:
            self.expired.clear()
            got = [t.task_id for t in self.scheduler.expire(limit)]
            expected = [t.task_id for t in self.model.expire(self.now, limit)]
            assert got == expected == self.expired

        @rule(seconds=st.sampled_from([0.5, 1.0, 3.0, 6.0]), reclaim=st.booleans())
        def advance_clock(self, seconds: float, reclaim: bool) -> None:
            self.now += seconds
            if reclaim:
                got = [t.task_id for t in self.scheduler.reclaim()]
                assert got == [t.task_id for t in self.model.reclaim(self.now)]

        @rule(
            key=key_names,
            op=st.sampled_from(["weight", "cost", "tag"]),
            weight=WEIGHTS,
            cost=st.sampled_from([0.5, 2.0, 4.0, -1.0, 0, "x", None]),
            tag=st.tuples(st.sampled_from(["plan", "region"]), st.sampled_from(["", "pro", "eu"])),
        )
        def track(self, key: Key, op: str, weight: float, cost: Any, tag: Tuple[str, str]) -> None:
            if op == "weight":
                self.scheduler.set_weight(key, weight)
                self.model.set_weight(key, weight)
            elif op == "cost":
                # An invalid weight-function result must fall back to the stored weight.
                self.scheduler.set_custom_data(key, "cost", cost)
                self.model.key(key).custom_data["cost"] = cost
            else:
                self.scheduler.add_tag(key, *tag)
                self.model.key(key).tags[tag[0]] = tag[1]

        @invariant()
        def same_tags(self) -> None:
            for name, value in [("plan", None), ("plan", "pro"), ("region", ""), ("none", None)]:
                assert self.scheduler.keys_with_tag(name, value) == self.model.keys_with_tag(name, value)

        @invariant()
        def same_status(self) -> None:
            # Counts never include a task whose expiry has passed.
            assert self._read(self.scheduler.status) == self.model.status(self.now)
            assert self._read(lambda: len(self.scheduler)) == self.model.waiting(self.now)

        @invariant()
        def wait_answers_at_once(self) -> None:
            # With no time to wait, wait() is the check alone: a call waits
            # (expired or not, until dropped) or a lease's deadline passed.
            runnable = (
                any(state.tasks for state in self.model.keys.values())
                or any(deadline <= self.now for deadline, _ in self.model.leases.values())
                or any(due <= self.now for due, _ in self.model.delayed.values())
            )
            assert self.scheduler.storage.wait(self.now, 0) == runnable

        @invariant()
        def same_metadata(self) -> None:
            groups = sorted({group_of(k) for k in keys} - set(keys))  # groups pushed only pairs
            for key in [*keys, *groups]:
                got = self._read(lambda: self.scheduler.metadata(key))  # noqa: B023 - called at once
                assert got == self.model.metadata(key, self.now), key

    return StorageMachine
