"""Two-level keys (:mod:`ranch_core.keys`): a group's share does not grow with
its members, members share their group's turns fairly, and the shapes round-trip.

A storage that does not take pairs yet (``two_level_keys = False``) must
refuse them with a ``TypeError`` and store nothing; these tests check that
instead.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Dict, List, Tuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ranch_core.keys import Key, group_of
from ranch_core.testing.base import POW2_WEIGHTS, ConformanceBase


class TwoLevelKeyProperties(ConformanceBase):
    """Hierarchical fairness: across groups first, then within the chosen group."""

    def _refuses_pairs(self) -> None:
        scheduler, _ = self.scheduler()
        with pytest.raises(TypeError, match="key"):
            scheduler.push(("g", "m"), 1)
        assert len(scheduler) == 0

    def test_a_groups_share_does_not_grow_with_its_members(self) -> None:
        """Group A (one key: a string or a pair) and group B with ``n`` members,
        all backlogged: after every pop the groups' weighted service differs
        by at most ``w_A + w_B``, whatever ``n``."""
        if not self.two_level_keys:
            self._refuses_pairs()
            return

        @self.property_settings
        @given(
            members=st.integers(1, 30),
            weights=st.tuples(POW2_WEIGHTS, POW2_WEIGHTS),
            a_is_pair=st.booleans(),
            pops=st.integers(10, 120),
        )
        def check(members: int, weights: Tuple[float, float], a_is_pair: bool, pops: int) -> None:
            scheduler, _ = self.scheduler()
            w_a, w_b = weights
            a_key: Key = ("A", "only") if a_is_pair else "A"
            scheduler.push_many(a_key, range(pops))
            scheduler.set_weight("A", w_a)
            for m in range(members):
                scheduler.push_many(("B", f"m{m}"), range(pops))
            scheduler.set_weight("B", w_b)
            served: Counter[str] = Counter()
            for _ in range(pops):
                task = scheduler.pop()
                assert task is not None
                scheduler.ack(task.task_id)
                served[group_of(task.key)] += 1
                lag = abs(served["A"] * w_a - served["B"] * w_b)
                assert lag <= w_a + w_b, f"groups lag {lag} after {dict(served)}"

        check()

    def test_members_share_their_groups_turns(self) -> None:
        """Within a group, backlogged members differ in weighted service (counted
        over the group's dispatches) by at most the sum of their weights, while
        another group takes its own turns."""
        if not self.two_level_keys:
            self._refuses_pairs()
            return

        @self.property_settings
        @given(
            weights=st.lists(POW2_WEIGHTS, min_size=2, max_size=5),
            own=st.booleans(),
            pops=st.integers(10, 150),
        )
        def check(weights: List[float], own: bool, pops: int) -> None:
            scheduler, _ = self.scheduler()
            keys: List[Key] = [("G", f"m{i}") for i in range(len(weights))]
            member_weight: Dict[Key, float] = dict(zip(keys, weights))
            for key, weight in member_weight.items():
                scheduler.push_many(key, range(pops), weight=weight)
            if own:  # the group's own calls are one more member, of weight 1
                scheduler.push_many("G", range(pops))
                member_weight["G"] = 1.0
            scheduler.push_many("H", range(pops))
            served: Counter[Key] = Counter()
            for _ in range(pops):
                task = scheduler.pop()
                assert task is not None
                served[task.key] += 1
                for i in member_weight:
                    for j in member_weight:
                        lag = abs(served[i] * member_weight[i] - served[j] * member_weight[j])
                        assert lag <= member_weight[i] + member_weight[j], f"{i} and {j}: lag {lag}"
            assert abs(served["H"] - sum(served[k] for k in member_weight)) <= 2

        check()

    def test_a_new_member_starts_within_a_round_of_its_group(self) -> None:
        """A member that turns active joins its group's current round: with
        ``k`` equally weighted members backlogged, it is served within ``k + 1``
        of its group's dispatches, however long the others have waited."""
        if not self.two_level_keys:
            self._refuses_pairs()
            return

        @self.property_settings
        @given(members=st.integers(1, 12), before=st.integers(0, 60))
        def check(members: int, before: int) -> None:
            scheduler, _ = self.scheduler()
            for m in range(members):
                scheduler.push_many(("G", f"m{m}"), range(before + members + 2))
            scheduler.push_many("other", range(2 * (before + members + 2)))
            for _ in range(before):
                assert scheduler.pop() is not None
            scheduler.push(("G", "new"), "hello")
            group_turns = 0
            while True:
                task = scheduler.pop()
                assert task is not None
                if group_of(task.key) == "G":
                    group_turns += 1
                    if task.key == ("G", "new"):
                        break
            assert group_turns <= members + 1

        check()

    def test_keys_of_both_shapes_round_trip(self) -> None:
        """A pair pops as the tuple it was pushed as (a list of two becomes a
        tuple); a string key's metadata counts its whole group, a pair's its own;
        ``set_weight`` of the string key weights the group."""
        if not self.two_level_keys:
            self._refuses_pairs()
            return
        scheduler, _ = self.scheduler()
        as_json: Any = ["t", "u1"]  # JSON carries a pair as a list
        scheduler.push(as_json, "a")
        scheduler.push(("t", "u2"), "b", weight=0.5)
        scheduler.push("t", "c")
        scheduler.set_weight("t", 2.0)
        group, member = scheduler.metadata("t"), scheduler.metadata(("t", "u2"))
        assert (group.pending_tasks, group.weight) == (3, 2.0)
        assert (member.key, member.pending_tasks, member.weight) == (("t", "u2"), 1, 0.5)
        assert scheduler.metadata(("t", "u1")).weight == 1.0
        popped = [scheduler.pop() for _ in range(3)]
        assert sorted(repr(task.key) for task in popped if task is not None) == [
            "'t'",
            "('t', 'u1')",
            "('t', 'u2')",
        ]
        meta = scheduler.metadata("t")
        assert (meta.pending_tasks, meta.served_total) == (0, 3)
        assert scheduler.metadata(("t", "u1")).served_total == 1
