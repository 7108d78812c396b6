"""The first steps of a fresh ``InMemoryStorage``: the passes a new group and a new
pair start from, seen in the first pop order (tests from the mutation run of
2026-11-30 over the constructors of ``records.py``, ``controls.py``, ``memory.py``
and ``tokens.py``: initial values the other tests left unasserted).
"""

from __future__ import annotations

from typing import List

from ranch_core import InMemoryStorage
from ranch_core.keys import Key
from ranch_core.models import ScheduledTask

A: Key = ("g", "a")
Z: Key = ("g", "z")


def task(task_id: str, key: Key) -> ScheduledTask:
    return ScheduledTask(task_id, key, 1, 0.0, None)  # type: ignore[arg-type]


def pops(storage: InMemoryStorage, count: int) -> List[str]:
    """The ids of ``count`` calls popped at 0.0 (each must find one)."""
    ids = []
    for _ in range(count):
        popped = storage.pop(0.0, 60.0).task
        assert popped is not None
        ids.append(popped.task_id)
    return ids


def test_a_new_groups_members_keep_the_passes_they_were_charged_before_their_first_call() -> None:
    """A new group's virtual time starts at 0.0 (``GroupState.__init__``): members
    charged 0.5 and 0.75 before they ever waited join at those passes, so the
    cheaper one is served first, not a tie broken by member name."""
    storage = InMemoryStorage()
    storage.charge(Z, 0.5)
    storage.charge(A, 0.75)
    storage.push(task("a1", A))
    storage.push(task("z1", Z))
    assert pops(storage, 2) == ["z1", "a1"]


def test_a_new_pair_charged_below_zero_joins_its_groups_round_no_earlier() -> None:
    """A new pair's pass starts at 0.0 (``KeyState.__init__``): charged -0.5 before
    its first call it still joins at the group's virtual time 0.0, level with a
    fresh member, and the tie goes to the member name ("a" before "z")."""
    storage = InMemoryStorage()
    storage.charge(Z, -0.5)
    storage.push(task("z1", Z))
    storage.push(task("a1", A))
    assert pops(storage, 2) == ["a1", "z1"]
