"""``ExpiryIndex`` against a plain sorted list, past its block size (tests from the mutation run)."""

from __future__ import annotations

import random
from bisect import insort
from typing import List, Tuple

import pytest
from ranch_core.backends.expiry import LOAD, ExpiryIndex

Entry = Tuple[float, str]


def check_against(index: ExpiryIndex, model: List[Entry]) -> None:
    """Same entries, same counts at every boundary, and the documented block layout."""
    assert len(index) == len(model)
    times = sorted({t for t, _ in model} | {-1.0, 1e9})
    for now in times:
        due = [e for e in model if e[0] <= now]
        assert index.count_due(now) == len(due), now
        for limit in (1, 2, LOAD, len(due), len(due) + 1):
            if limit >= 1:
                assert index.due(now, limit) == due[:limit], (now, limit)
    # Blocks hold at most 2 * LOAD entries, none is empty, each max is its block's last entry.
    blocks, maxes = index._blocks, index._maxes
    assert [e for block in blocks for e in block] == model
    assert all(0 < len(block) <= 2 * LOAD for block in blocks)
    assert maxes == [block[-1] for block in blocks]


def test_matches_a_sorted_list_through_splits_and_removals() -> None:
    rng = random.Random(17)
    index, model = ExpiryIndex(), []
    # Few distinct times: many ties, ordered by task id within a time.
    for n in range(5 * 2 * LOAD + 7):
        entry = (float(rng.randrange(40)), f"t{n:05}")
        index.add(*entry)
        insort(model, entry)
    assert len(index._blocks) >= 5
    check_against(index, model)
    for entry in rng.sample(model, len(model) * 2 // 3):
        assert index.discard(*entry)
        model.remove(entry)
    check_against(index, model)
    for entry in list(model):
        assert index.discard(*entry)
        model.remove(entry)
    check_against(index, model)
    assert index._blocks == [] and index._maxes == []


def test_appending_past_the_last_block_and_removing_its_last_entry() -> None:
    index = ExpiryIndex()
    for n in range(2 * LOAD + 1):  # in order: every add appends to the last block, then it splits
        index.add(float(n), "t")
    assert [len(block) for block in index._blocks] == [LOAD, LOAD + 1]
    assert index._maxes == [(float(LOAD - 1), "t"), (float(2 * LOAD), "t")]
    assert index.discard(float(2 * LOAD), "t")  # the last entry: the block's max moves back
    assert index._maxes[-1] == (float(2 * LOAD - 1), "t")
    index.add(float(2 * LOAD - 1), "u")  # after the new max
    assert index._maxes[-1] == (float(2 * LOAD - 1), "u")
    assert index.discard(float(LOAD - 1), "t")  # the first block's max
    assert index._maxes[0] == (float(LOAD - 2), "t")
    assert len(index) == 2 * LOAD


@pytest.mark.parametrize(
    "missing",
    [(5.0, "absent"), (5.0, "a"), (1e9, "z"), (-1.0, "a")],
    ids=["same-time", "other-id-in-block", "after-every-entry", "before-every-entry"],
)
def test_discarding_an_absent_entry_changes_nothing(missing: Entry) -> None:
    index = ExpiryIndex()
    index.add(5.0, "b")
    index.add(7.0, "c")
    assert index.discard(*missing) is False
    assert len(index) == 2
    assert index.due(10.0, 10) == [(5.0, "b"), (7.0, "c")]
    assert index.discard(5.0, "b") is True and index.discard(5.0, "b") is False
    assert len(index) == 1


def test_an_entry_expiring_exactly_now_is_due() -> None:
    index = ExpiryIndex()
    for task_id in ("a", "m", "z"):
        index.add(3.0, task_id)
    index.add(4.0, "a")
    assert index.count_due(3.0) == 3
    assert index.count_due(2.999) == 0
    assert index.due(3.0, 2) == [(3.0, "a"), (3.0, "m")]
    assert index.due(3.0, 3) == [(3.0, "a"), (3.0, "m"), (3.0, "z")]
    assert index.due(3.0, 4) == [(3.0, "a"), (3.0, "m"), (3.0, "z")]
