"""``InMemoryStorage``'s heap against a naive model of the fair-scheduling rule.

The storage keeps active keys in a heap with lazy deletion: a charge or a serve
pushes a fresh entry and bumps the key's version, and an emptied key bumps it
once more, so every older entry is a tombstone. The model below keeps no heap:
each pop scans every active key for the smallest ``(pass, last served, key)``.
Where the two disagree on the order of serves, a tombstone came back to life
(MUTANTS.md: the ``_deactivate`` version mutants) or a pass went wrong.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from hypothesis import example, given
from hypothesis import strategies as st
from ranch_core import InMemoryStorage, algorithm
from ranch_core.models import ScheduledTask

LEASE = 1000.0  # no lease runs out: the clock stays at 0


class ModelKey:
    def __init__(self) -> None:
        self.pass_ = 0.0
        self.seq = algorithm.NEVER_SERVED
        self.weight = algorithm.DEFAULT_WEIGHT
        self.tasks: List[str] = []


class Model:
    """The rule of ``ranch_core.algorithm``, spelled out with a linear scan and no tombstones."""

    def __init__(self) -> None:
        self.keys: Dict[str, ModelKey] = {}
        self.virtual_time = 0.0
        self.serve_seq = algorithm.NEVER_SERVED

    def key(self, key: str) -> ModelKey:
        return self.keys.setdefault(key, ModelKey())

    def push(self, key: str, task_id: str) -> None:
        state = self.key(key)
        if not state.tasks:  # the key turns active: it joins the current round
            state.pass_ = max(state.pass_, self.virtual_time)
        state.tasks.append(task_id)

    def pop(self) -> Optional[Tuple[str, str]]:
        active = [(s.pass_, s.seq, k) for k, s in self.keys.items() if s.tasks]
        if not active:
            return None
        key = min(active)[2]
        state = self.keys[key]
        self.virtual_time = state.pass_
        state.pass_ += state.weight
        self.serve_seq += 1
        state.seq = self.serve_seq
        return key, state.tasks.pop(0)

    def remove(self, key: str) -> Optional[str]:
        tasks = self.key(key).tasks
        return tasks.pop() if tasks else None

    def charge(self, key: str, extra: float) -> None:
        self.key(key).pass_ += extra


def task(task_id: str, key: str) -> ScheduledTask:
    return ScheduledTask(task_id, key, None, 0.0, None)


KEYS = st.sampled_from("ABC")
#: Binary fractions: the model's passes add up exactly as the storage's do.
AMOUNTS = st.sampled_from([-0.5, 0.25, 0.5, 1.0, 3.0])
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("push"), KEYS, st.integers(1, 3)),
        st.tuples(st.just("pop"), st.integers(1, 3)),
        st.tuples(st.just("remove"), KEYS, st.integers(1, 3)),
        st.tuples(st.just("charge"), KEYS, AMOUNTS),
        st.tuples(st.just("weight"), KEYS, st.sampled_from([0.5, 1.0, 2.0])),
    ),
    max_size=40,
)


@given(OPS)
@example(  # found by the deep profile against the _deactivate mutants: a pop empties C, whose
    # entry from an earlier activation (a remove left it) must stay dead when C returns
    [
        ("push", "A", 2),
        ("push", "C", 1),
        ("remove", "C", 1),
        ("push", "C", 1),
        ("charge", "C", -0.5),
        ("pop", 2),
        ("charge", "C", 1.0),
        ("push", "C", 1),
        ("pop", 1),
    ]
)
def test_the_heap_serves_in_the_order_of_a_linear_scan(ops: List[tuple]) -> None:
    storage, model = InMemoryStorage(serializer=None), Model()
    made = 0
    for op in ops:
        if op[0] == "push":
            for _ in range(op[2]):
                made += 1
                storage.push(task(f"t{made}", op[1]))
                model.push(op[1], f"t{made}")
        elif op[0] == "pop":
            for _ in range(op[1]):
                popped = storage.pop(0.0, LEASE).task
                got = None if popped is None else (popped.key, popped.task_id)
                assert got == model.pop()
        elif op[0] == "remove":  # failed publishes take back the key's newest calls
            for _ in range(op[2]):
                task_id = model.remove(op[1])
                assert storage.remove(op[1], task_id or "absent") == (task_id is not None)
        elif op[0] == "charge":
            storage.charge(op[1], op[2])
            model.charge(op[1], op[2])
        else:
            storage.set_weight(op[1], op[2])
            model.key(op[1]).weight = op[2]
        assert storage.status().active_keys == sum(1 for s in model.keys.values() if s.tasks)
    rest = [storage.pop(0.0, LEASE).task for _ in range(made + 1)]
    assert [(t.key, t.task_id) for t in rest if t is not None] == [model.pop() for t in rest if t is not None]
    assert model.pop() is None


def test_a_key_emptied_by_remove_does_not_revive_the_entry_its_charge_left() -> None:
    """A charged key that empties and comes back is due at its new pass, not the old entry's.

    A's charge leaves a live heap entry at pass 0.5 (version 2); ``remove`` empties A,
    which must turn that entry into a tombstone. A second charge while A is idle moves
    its pass to 3.5; when A returns it must wait behind B's serves at 0, 1, 2 and 3.
    With the version reset or stepped back on deactivation (``_deactivate`` mutants 3
    and 4), A's next entry gets version 2 again and the old one at 0.5 serves A early.
    """
    storage = InMemoryStorage(serializer=None)
    storage.push(task("a1", "A"))
    storage.charge("A", 0.5)  # active: a fresh entry at 0.5, the first one a tombstone
    assert storage.remove("A", "a1")  # A empties: its entry at 0.5 must die too
    storage.charge("A", 3.0)  # idle: no entry, the pass is 3.5
    for n in range(6):
        storage.push(task(f"b{n}", "B"))
    storage.push(task("a2", "A"))  # A returns at max(3.5, virtual time 0)
    order = []
    for _ in range(7):
        popped = storage.pop(0.0, LEASE).task
        assert popped is not None
        order.append(popped.task_id)
    assert order == ["b0", "b1", "b2", "b3", "a2", "b4", "b5"]
