"""How ``KeyControlSteps._settle`` places a key after a serve or a push (its rate, the
waiters it wakes), the version a served key is re-sifted with, and a token's pop charged
by run time: corners the other tests left unasserted (tests from the mutation run of the
core with group controls, over ``parking.py`` and ``memory.py``).
"""

from __future__ import annotations

from typing import List

from ranch_core import InMemoryStorage
from ranch_core.backends import controls
from ranch_core.keys import Key
from ranch_core.models import RuntimeCost, ScheduledTask, WakeupPolicy
from ranch_core_teststeps import rated

A: Key = ("g", "a")
B: Key = ("g", "b")
SLOW: Key = ("s", "x")
POLICY = WakeupPolicy(max_wakeups=4, ttl=60.0)


def task(task_id: str, key: Key = "k") -> ScheduledTask:
    return ScheduledTask(task_id, key, 1, 0.0, None)


def pops(storage: InMemoryStorage, count: int, now: float = 0.0) -> List[str]:
    """The ids of ``count`` calls popped at ``now`` (each must find one)."""
    ids = []
    for _ in range(count):
        popped = storage.pop(now, 60.0).task
        assert popped is not None
        ids.append(popped.task_id)
    return ids


def served_empty_under_its_rate() -> InMemoryStorage:
    """Member "a" of "g" limited to 1/s, its one call served at 0: idle, its bucket empty
    until 1.0 (a pair: a string key's controls are its group's, settled by ``_settle_group``)."""
    storage = InMemoryStorage()
    storage.set_control(A, controls.RATE_LIMIT, rated("1/s"), 0.0)
    storage.push(task("a", A))
    assert pops(storage, 1) == ["a"]
    return storage


def test_a_call_pushed_to_a_key_its_serve_left_empty_and_rate_held_is_served_when_it_refills() -> None:
    # KeyControlSteps._settle: the key left idle by its serve kept the time its rate gives
    # (1.0); the push makes it active again at the same time, and it must be parked then.
    storage = served_empty_under_its_rate()
    storage.push(task("b", A))
    result = storage.pop(0.5, 60.0)
    assert result.task is None and result.retry_at == 1.0
    assert pops(storage, 1, now=1.0) == ["b"]


def test_a_subscriber_is_woken_when_a_push_parks_a_key_by_its_rate_first() -> None:
    # KeyControlSteps._settle: no key was parked, so the waiter's sleep ran to the lease's
    # deadline (60); the member parked until 1.0 wakes it to shorten its sleep.
    storage = served_empty_under_its_rate()
    woken: List[str] = []
    assert storage.subscribe(0.0, lambda: woken.append("w")) == (False, 60.0)
    storage.push(task("b", A))
    assert woken == ["w"]


def test_a_subscriber_is_woken_when_a_key_is_parked_by_its_rate_before_the_earliest() -> None:
    # KeyControlSteps._settle: ("s", "x") is parked until 10.0 (the earliest time known); "a" is
    # parked until 1.0, earlier, so the waiter must wake to shorten its sleep.
    storage = served_empty_under_its_rate()
    storage.set_control(SLOW, controls.RATE_LIMIT, rated("0.1/s"), 0.0)
    storage.push_many([task("s1", SLOW), task("s2", SLOW)])
    assert pops(storage, 1) == ["s1"]  # "s2" parked until 10.0
    woken: List[str] = []
    ready, _ = storage.subscribe(0.0, lambda: woken.append("w"))
    assert not ready
    storage.push(task("b", A))
    assert woken == ["w"]


def test_a_served_member_is_not_served_again_from_a_place_a_charge_left_behind() -> None:
    # InMemoryStorage._pop: the served key is re-sifted under a version none of its older
    # entries in the group's heap has. The negative charge leaves "a"'s entry at pass 1 as a
    # tombstone; after "a2" (pass 0.5 -> 1.5), "b" at pass 1 comes first.
    storage = InMemoryStorage()
    for key, name in ((A, "a"), (B, "b")):
        storage.push_many([task(f"{name}{n}", key) for n in range(1, 5)])
    assert pops(storage, 2) == ["a1", "b1"]  # both members at pass 1, "a" served first
    storage.charge(A, -0.5)
    assert pops(storage, 4) == ["a2", "b2", "a3", "b3"]


def test_a_pop_by_token_charges_the_call_by_run_time() -> None:
    # InMemoryStorage.pop: the runtime cost is passed on to the pop of a token's wake-up too,
    # so the finish learns the call's run time.
    storage = InMemoryStorage()
    (token,) = storage.push(task("a"), wakeups=POLICY)
    popped = storage.pop(0.0, 60.0, token=token, wakeups=POLICY, runtime=RuntimeCost())
    assert popped.task is not None and popped.task.task_id == "a"
    assert storage.finish("a", 5.0, cost=5.0, token=token, wakeups=POLICY).done
    assert storage.run_estimate("k") == 5.0
