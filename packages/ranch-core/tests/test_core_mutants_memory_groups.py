"""``InMemoryStorage`` with two-level keys: a pair's pass, heap places and
counts, a group re-placed by a run-time correction, and the run estimate in
``metadata`` (tests from the mutation run of 2026-11-30 over the core with
group controls: corners the group tests left unasserted).
"""

from __future__ import annotations

from typing import List, Optional

import pytest
from ranch_core import InMemoryStorage
from ranch_core.backends import controls
from ranch_core.keys import Key
from ranch_core.models import RuntimeCost, ScheduledTask
from ranch_core.validation import check_rate_limit

A: Key = ("g", "a")
B: Key = ("g", "b")


def task(task_id: str, key: Key = "k", at: float = 0.0, expires_at: object = None) -> ScheduledTask:
    return ScheduledTask(task_id, key, 1, at, expires_at)  # type: ignore[arg-type]


def pops(
    storage: InMemoryStorage, count: int, now: float = 0.0, runtime: Optional[RuntimeCost] = None
) -> List[str]:
    """The ids of ``count`` calls popped at ``now`` (each must find one)."""
    ids = []
    for _ in range(count):
        popped = storage.pop(now, 60.0, runtime=runtime).task
        assert popped is not None
        ids.append(popped.task_id)
    return ids


def two_members(calls: int) -> InMemoryStorage:
    """Group "g" with members "a" and "b", ``calls`` calls each (a1.., b1..)."""
    storage = InMemoryStorage()
    for key, name in ((A, "a"), (B, "b")):
        storage.push_many([task(f"{name}{n}", key) for n in range(1, calls + 1)])
    return storage


def test_charging_a_pair_adds_to_its_pass_within_its_group() -> None:
    """``InMemoryStorage.charge`` of a pair: its own pass, re-placed in its group's heap."""
    storage = two_members(3)
    storage.charge(A, 1.5)  # a: 1.5, b: 0
    assert pops(storage, 3) == ["b1", "b2", "a1"]  # b: 0 -> 1 -> 2; a: 1.5 -> 2.5
    storage.charge(A, 0.25)  # a: 2.75, not 0.25
    assert pops(storage, 3) == ["b3", "a2", "a3"]


def test_a_pairs_old_heap_places_stay_stale_across_charges_pause_and_resume() -> None:
    """Every step that re-places a pair (``_enqueue_heap``) gives it a version
    none of its older entries in the group's heap has: here its first entry,
    at pass 0, must not serve it after five steps moved it to pass 6."""
    storage = two_members(2)
    storage.charge(A, 5.0)
    storage.set_control(A, controls.PAUSE, True, 0.0)
    storage.set_control(A, controls.PAUSE, False, 0.0)
    storage.charge(A, 0.5)
    storage.charge(A, 0.5)
    assert pops(storage, 4) == ["b1", "b2", "a1", "a2"]


def test_a_run_time_correction_of_an_idle_member_re_places_its_group() -> None:
    """``_settle_charge``: the member left the heap, its group is still queued."""
    storage = InMemoryStorage()
    storage.push(task("a1", A))
    storage.push_many([task("b1", B), task("b2", B)])
    storage.push_many([task("h1", "h"), task("h2", "h")])
    assert pops(storage, 2, runtime=RuntimeCost(first_estimate=1.0)) == ["a1", "h1"]
    # g and h both at pass 1 (g served first); a1 ran 5 s: g is corrected to 5.
    assert storage.finish("a1", 5.0, cost=5.0).done
    assert pops(storage, 3, now=5.0) == ["h2", "b1", "b2"]


def test_a_remove_parks_a_pair_again_under_a_slower_default_rate() -> None:
    """``_take_out`` settles the key it took from: parked by its rate, it is
    parked under its own key at the time the default now in force says."""
    storage = InMemoryStorage()
    storage.set_control(None, controls.RATE_LIMIT, check_rate_limit("1/s"), 0.0)
    storage.push_many([task("a", A), task("b", A), task("c", A)])
    assert pops(storage, 1) == ["a"]  # "b" and "c" parked until 1.0
    # Keys without a rate of their own follow the new default at their next step.
    storage.set_control(None, controls.RATE_LIMIT, check_rate_limit("0.1/s"), 0.5)
    assert storage.remove(A, "c")  # settled at 0.5: parked again, until 5.5
    result = storage.pop(1.0, 60.0)
    assert result.task is None and result.retry_at == pytest.approx(5.5)
    assert pops(storage, 1, now=5.5) == ["b"]


def test_metadata_of_a_pair_counts_due_calls_only_when_given_now() -> None:
    storage = InMemoryStorage()
    storage.push(task("a", A, expires_at=5.0))
    storage.push(task("b", A))
    assert storage.metadata(A).pending_tasks == 2  # no clock: every stored call
    assert storage.metadata(A, 4.0).pending_tasks == 2
    assert storage.metadata(A, 5.0).pending_tasks == 1  # "a" is due: left out


@pytest.mark.parametrize("key", [A, "k"], ids=["pair", "string"])
def test_metadata_shows_the_run_estimate_a_key_learned(key: Key) -> None:
    storage = InMemoryStorage()
    storage.push(task("a", key))
    assert storage.metadata(key).run_estimate is None
    assert storage.pop(0.0, 60.0, runtime=RuntimeCost()).task is not None
    assert storage.finish("a", 2.0, cost=2.0).done
    assert storage.run_estimate(key) == 2.0
    assert storage.metadata(key).run_estimate == 2.0
