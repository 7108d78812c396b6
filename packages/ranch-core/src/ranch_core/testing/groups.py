"""Two-level keys (:mod:`ranch_core.keys`): a group's share does not grow with
its members, members share their group's turns fairly, and the shapes round-trip.

A storage that does not take pairs yet (``two_level_keys = False``) must
refuse them with a ``TypeError`` and store nothing; these tests check that
instead.

:class:`GroupControlProperties`: a string key's controls (cap, rate, pause,
``max_backlog``, purge) are its whole group's, a pair's its member's, and a
call starts only if both levels allow it. A storage still building them
sets ``group_controls = False`` (development only: those tests then check
nothing).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Dict, List, Optional, Tuple

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test

from ranch_core.errors import BacklogFull
from ranch_core.keys import Key, group_of
from ranch_core.models import ScheduledTask, WakeupPolicy
from ranch_core.scheduler import FairScheduler
from ranch_core.testing.base import POW2_WEIGHTS, Clock, ConformanceBase
from ranch_core.testing.controls_machine import BAD_GROUP_CONTROLS, build_group_controls_machine

#: A policy with room for many wake-ups, so only the runnable calls bound them.
MANY_WAKEUPS = WakeupPolicy(max_wakeups=64, ttl=2.0, defer=True)


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


class GroupControlProperties(ConformanceBase):
    """Controls at both levels of two-level keys (README, "Two-level keys"):
    ``set_control("g", ...)`` holds for group ``"g"`` as a whole (every member
    and its own calls), ``set_control(("g", "m"), ...)`` for the member; a
    call starts only if its member and its group allow it."""

    def _ready(self) -> bool:
        """Whether the storage has group controls (else these tests check nothing)."""
        return self.two_level_keys and self.group_controls

    @staticmethod
    def _drain(scheduler: FairScheduler) -> List[ScheduledTask]:
        """Pop (without acknowledging) until nothing may start."""
        popped: List[ScheduledTask] = []
        while (task := scheduler.pop()) is not None:
            popped.append(task)
        return popped

    def test_group_controls_hold_under_any_interleaving(self) -> None:
        """Caps, rate windows and pause at both levels, work conservation,
        exact counts (``metadata("g")`` is the group's), group purge and
        backlog limits, against :class:`~ranch_core.testing.model.ModelControls`
        (see :func:`~ranch_core.testing.controls_machine.build_group_controls_machine`)."""
        if not self._ready():
            return
        machine = build_group_controls_machine(self.make_storage)
        run_state_machine_as_test(machine, settings=self.group_controls_settings)

    def test_a_paused_group_holds_every_member(self) -> None:
        """``pause_key("g")`` holds the group's own calls and every member's;
        other groups run; resume mints wake-ups and the group's calls run,
        joining the current round (no credit for the pause)."""
        if not self._ready():
            return

        @self.property_settings
        @given(members=st.integers(1, 12), own=st.booleans(), calls=st.integers(1, 4))
        def check(members: int, own: bool, calls: int) -> None:
            scheduler, _ = self.scheduler()
            scheduler.pause_key("G")
            keys: List[Key] = [("G", f"m{m}") for m in range(members)] + (["G"] if own else [])
            for key in keys:
                assert scheduler.store(key, range(calls), wakeups=MANY_WAKEUPS).wakeups == ()
            scheduler.push_many("H", range(2 * calls * len(keys)))
            meta = scheduler.metadata("G")
            assert (meta.paused, meta.pending_tasks) == (True, calls * len(keys))
            assert not scheduler.metadata(("G", "m0")).paused  # a pair reports its own pause
            for _ in range(calls):
                task = scheduler.pop()
                assert task is not None and task.key == "H", "a member of a paused group started"
            assert len(scheduler.resume_key("G", wakeups=MANY_WAKEUPS)) >= 1
            popped = self._drain(scheduler)
            groups = [group_of(task.key) for task in popped]
            assert groups.count("G") == calls * len(keys)
            # It joins the current round: no credit for the pause, so it never
            # takes two turns in a row while H (which has more calls) waits.
            assert all(not (a == b == "G") for a, b in zip(groups, groups[1:])), groups

        check()

    def test_a_group_cap_holds_across_its_members(self) -> None:
        """``set_concurrency_limit("g", n)``: at most ``n`` calls of the whole
        group run at once, whichever members they belong to; the group runs
        exactly ``n`` (work-conserving); each end of a lease lets one more start."""
        if not self._ready():
            return

        @self.property_settings
        @given(members=st.integers(1, 12), cap=st.integers(1, 4), own=st.booleans())
        def check(members: int, cap: int, own: bool) -> None:
            scheduler, _ = self.scheduler()
            scheduler.set_concurrency_limit("G", cap)
            keys: List[Key] = [("G", f"m{m}") for m in range(members)] + (["G"] if own else [])
            for key in keys:
                scheduler.push_many(key, range(3))
            scheduler.push_many("H", range(3))
            popped = self._drain(scheduler)
            running = [task for task in popped if group_of(task.key) == "G"]
            assert len(running) == min(cap, 3 * len(keys))
            assert sum(1 for task in popped if task.key == "H") == 3
            meta = scheduler.metadata("G")
            assert (meta.concurrency_limit, meta.running) == (cap, len(running))
            backlog, now_running = 3 * len(keys) - len(running), len(running)
            for task in running:
                scheduler.ack(task.task_id)
                again = scheduler.pop()
                if backlog:
                    assert again is not None and group_of(again.key) == "G"
                    backlog -= 1
                else:
                    assert again is None
                    now_running -= 1
                assert scheduler.pop() is None
                assert scheduler.metadata("G").running == now_running

        check()

    def test_a_group_rate_holds_across_its_members(self) -> None:
        """``set_rate_limit("g", r, burst=b)``: the group's members together
        start ``min(backlog, b + floor(r * T))`` calls by time ``T``, never more."""
        if not self._ready():
            return

        @self.property_settings
        @given(
            members=st.integers(1, 8),
            rate=st.sampled_from([("4/s", 4.0), ("2/s", 2.0), ("30/m", 0.5)]),
            burst=st.integers(1, 3),
            own=st.booleans(),
        )
        def check(members: int, rate: Tuple[str, float], burst: int, own: bool) -> None:
            scheduler, clock = self.scheduler()
            scheduler.set_rate_limit("G", rate[0], burst=burst)
            keys: List[Key] = [("G", f"m{m}") for m in range(members)] + (["G"] if own else [])
            for key in keys:
                scheduler.push_many(key, range(6))
            backlog = 6 * len(keys)
            start, started = clock.now, 0
            for _ in range(33):
                while (task := scheduler.pop()) is not None:
                    assert group_of(task.key) == "G"
                    scheduler.ack(task.task_id)
                    started += 1
                allowed = burst + int((clock.now - start) * rate[1])
                assert started == min(backlog, allowed), f"{started} started by {clock.now - start} s"
                clock.now += 0.125
            assert scheduler.metadata("G").rate_limit == rate[0]

        check()

    def test_a_members_own_controls_hold_inside_an_open_group(self) -> None:
        """A pair's own cap, rate and pause hold for that member alone; the
        group's other members (and its own calls) run; a group cap above
        still bounds them all."""
        if not self._ready():
            return

        @self.property_settings
        @given(cap=st.integers(1, 3), group_cap=st.one_of(st.none(), st.integers(1, 12)))
        def check(cap: int, group_cap: Optional[int]) -> None:
            scheduler, _ = self.scheduler()
            if group_cap is not None:
                scheduler.set_concurrency_limit("G", group_cap)
            scheduler.set_concurrency_limit(("G", "capped"), cap)
            scheduler.pause_key(("G", "paused"))
            scheduler.set_rate_limit(("G", "rated"), "1/s", burst=1)
            keys: List[Key] = [("G", "capped"), ("G", "paused"), ("G", "rated"), ("G", "free"), "G"]
            for key in keys:
                scheduler.push_many(key, range(4))
            popped = Counter(task.key for task in self._drain(scheduler))
            assert popped[("G", "paused")] == 0 and popped[("G", "capped")] <= cap
            assert popped[("G", "rated")] <= 1
            total = sum(popped.values())
            if group_cap is None:
                assert popped == {("G", "capped"): cap, ("G", "rated"): 1, ("G", "free"): 4, "G": 4}
            else:
                assert total == min(group_cap, cap + 1 + 4 + 4)
            assert scheduler.metadata(("G", "capped")).concurrency_limit == cap
            assert scheduler.metadata("G").concurrency_limit == group_cap
            assert scheduler.metadata(("G", "paused")).paused and not scheduler.metadata("G").paused

        check()

    def test_a_capped_group_gets_one_wakeup_per_free_place(self) -> None:
        """Wake-ups are minted for runnable calls only: a group capped at ``n``
        with many members gets ``n`` wake-ups however many calls wait; raising
        the cap mints for the new places; the end of a lease passes its token on."""
        if not self._ready():
            return

        @self.property_settings
        @given(members=st.integers(2, 10), cap=st.integers(1, 4))
        def check(members: int, cap: int) -> None:
            storage = self.make_storage()
            scheduler = FairScheduler(storage, clock=Clock())
            scheduler.set_concurrency_limit("G", cap)
            minted: List[str] = []
            for m in range(members):
                minted += scheduler.store(("G", f"m{m}"), range(3), wakeups=MANY_WAKEUPS).wakeups
                minted += scheduler.store_one("G", m, wakeups=MANY_WAKEUPS)[1]
            assert len(minted) == cap
            tasks = []
            for token in minted:
                taken = scheduler.take(token, MANY_WAKEUPS)
                assert taken.task is not None and taken.wakeups == ()
                tasks.append((taken.task, token))
            assert scheduler.take("stale", MANY_WAKEUPS).task is None
            more = scheduler.set_concurrency_limit("G", cap + 2, wakeups=MANY_WAKEUPS)
            assert len(more) == 2
            task, token = tasks[0]
            assert scheduler.finish(task.task_id, token=token, wakeups=MANY_WAKEUPS).publish == (token,)

        check()

    def test_a_group_backlog_limit_counts_every_member(self) -> None:
        """``set_max_backlog("g", n)`` bounds the group's waiting and delayed
        calls, every member's: a push to any member past it raises
        ``BacklogFull`` naming the group, a batch is refused whole and
        nothing is stored; a pair's own limit holds too (checked first)."""
        if not self._ready():
            return
        scheduler, _ = self.scheduler()
        scheduler.set_max_backlog("G", 5)
        scheduler.push_many(("G", "a"), [1, 2])
        scheduler.push("G", 3)
        scheduler.push(("G", "b"), 4, delay=10.0)
        before = scheduler.metadata("G"), scheduler.metadata(("G", "b")), scheduler.status()
        with pytest.raises(BacklogFull) as caught:
            scheduler.push_many(("G", "b"), [5, 6], weight=0.5, tags={"plan": "pro"})
        assert (caught.value.key, caught.value.limit) == ("G", 5) and "max_backlog" in str(caught.value)
        with pytest.raises(BacklogFull):
            scheduler.store(("G", "c"), [5, 6], wakeups=MANY_WAKEUPS)
        assert (scheduler.metadata("G"), scheduler.metadata(("G", "b")), scheduler.status()) == before
        assert scheduler.metadata(("G", "c")).pending_tasks == 0
        scheduler.push(("G", "c"), 5)
        with pytest.raises(BacklogFull):
            scheduler.push("G", 6)
        scheduler.push("H", 6)  # other groups are not bound
        task = scheduler.pop()
        assert task is not None and group_of(task.key) == "G"
        scheduler.push(("G", "a"), 7)  # room again
        assert scheduler.requeue(task, "retry")  # a retry is never refused
        scheduler.set_max_backlog("G", None)
        scheduler.set_max_backlog(("G", "a"), 3)
        with pytest.raises(BacklogFull) as own:
            scheduler.push(("G", "a"), 8)
        assert (own.value.key, own.value.limit) == (("G", "a"), 3)
        scheduler.push(("G", "b"), 8)
        assert scheduler.metadata("G").max_backlog is None
        assert scheduler.metadata(("G", "a")).max_backlog == 3

    def test_purging_a_group_purges_every_member(self) -> None:
        """``purge_key("g")`` deletes the waiting and delayed calls of the
        group's own key and every member (running calls finish); a pair's
        purge only its own; other groups keep theirs."""
        if not self._ready():
            return

        @self.property_settings
        @given(members=st.integers(0, 6), calls=st.integers(1, 40), delayed=st.integers(0, 3))
        def check(members: int, calls: int, delayed: int) -> None:
            revoked: List[ScheduledTask] = []
            scheduler = FairScheduler(
                self.make_storage(), clock=Clock(), on_revoked=lambda task, reason: revoked.append(task)
            )
            keys: List[Key] = ["G"] + [("G", f"m{m}") for m in range(members)]
            for key in keys:
                scheduler.push_many(key, range(calls))
                scheduler.push_many(key, range(delayed), delay=5.0)
            scheduler.push_many("H", range(3))
            scheduler.push_many(("H", "x"), range(3))
            running = scheduler.pop()
            assert running is not None
            waiting = len(keys) * (calls + delayed) - (group_of(running.key) == "G")
            if members:
                assert scheduler.purge_key(("G", "m0")) == calls + delayed - (running.key == ("G", "m0"))
                waiting -= calls + delayed - (running.key == ("G", "m0"))
                assert scheduler.metadata(("G", "m0")).pending_tasks == 0
            revoked.clear()
            assert scheduler.purge_key("G") == waiting
            assert len({task.task_id for task in revoked}) == waiting == len(revoked)
            assert all(group_of(task.key) == "G" for task in revoked)
            meta = scheduler.metadata("G")
            assert (meta.pending_tasks, meta.delayed_tasks) == (0, 0)
            assert meta.running == (group_of(running.key) == "G")
            assert scheduler.metadata("H").pending_tasks == 6 - (group_of(running.key) == "H")

        check()

    def test_defaults_apply_to_groups_and_pairs_not_the_own_member(self) -> None:
        """The default concurrency limit and rate apply to every group and
        every pair without a setting of its own; the group's own calls
        have no controls of their own (their group's apply)."""
        if not self._ready():
            return
        scheduler, _ = self.scheduler(default_concurrency_limit=2)
        keys: List[Key] = ["G", ("G", "m"), ("H", "m1"), ("H", "m2")]
        for key in keys:
            scheduler.push_many(key, range(5))
        popped = Counter(group_of(task.key) for task in self._drain(scheduler))
        assert popped == {"G": 2, "H": 2}  # each group at the default cap
        scheduler.set_concurrency_limit("G", 6)
        assert len(self._drain(scheduler)) == 4  # the own calls, and the pair up to its default
        meta = scheduler.metadata("G")
        assert (meta.concurrency_limit, meta.running) == (6, 6)
        pair = scheduler.metadata(("G", "m"))
        assert (pair.concurrency_limit, pair.running) == (2, 2)  # the default holds the pair
        assert scheduler.metadata("H").concurrency_limit == 2
        assert scheduler.metadata(("H", "m1")).concurrency_limit == 2
        rated, clock = self.scheduler(default_rate_limit="1/s")
        for key in [*keys[:2], ("G", "b")]:
            rated.push_many(key, range(3))
        started = []
        for _ in range(12):
            started += [group_of(task.key) for task in self._drain(rated)]
            clock.now += 0.25
        assert len(started) == 3  # one group bucket: one start a second
        assert rated.metadata(("G", "m")).rate_limit == "1/s"
        assert rated.metadata("G").rate_limit == "1/s"

    def test_group_metadata_reports_the_groups_controls_and_counts(self) -> None:
        """``metadata("g")``: the group's controls (its string key's settings,
        else the defaults), and pending, running and delayed over every member;
        a pair's metadata its own."""
        if not self._ready():
            return
        scheduler, _ = self.scheduler(default_concurrency_limit=5)
        assert scheduler.metadata("G").concurrency_limit == 5
        scheduler.push_many(("G", "a"), range(3))
        scheduler.push_many(("G", "b"), range(2), delay=1.0)
        scheduler.push("G", "own")
        scheduler.set_rate_limit("G", "10/s", burst=4)
        scheduler.set_max_backlog("G", 50)
        scheduler.set_concurrency_limit(("G", "a"), 1)
        assert scheduler.pop() is not None and scheduler.pop() is not None
        meta = scheduler.metadata("G")
        assert (meta.concurrency_limit, meta.rate_limit, meta.paused, meta.max_backlog) == (
            5,
            "10/s",
            False,
            50,
        )
        assert (meta.pending_tasks, meta.running, meta.delayed_tasks) == (2, 2, 2)
        pair = scheduler.metadata(("G", "a"))
        assert (pair.concurrency_limit, pair.rate_limit, pair.max_backlog) == (1, None, None)
        assert (pair.pending_tasks, pair.running) == (2, 1)
        scheduler.pause_key("G")
        assert scheduler.metadata("G").paused and not scheduler.metadata(("G", "a")).paused

    def test_bad_group_control_input_raises_and_changes_nothing(self) -> None:
        """Bad two-level keys and values for every control raise naming the
        argument; nothing changes."""
        if not self._ready():
            return
        scheduler, _ = self.scheduler()
        scheduler.push_many(("a", "u1"), range(3))
        scheduler.set_concurrency_limit("a", 2)
        scheduler.set_concurrency_limit(("a", "u1"), 1)
        before = scheduler.metadata("a"), scheduler.metadata(("a", "u1")), scheduler.status()
        for method, args, kwargs, argument in BAD_GROUP_CONTROLS:
            with pytest.raises((TypeError, ValueError)) as caught:
                getattr(scheduler, method)(*args, **kwargs)
            assert argument in str(caught.value), f"{caught.value!r} does not name {argument}"
            after = scheduler.metadata("a"), scheduler.metadata(("a", "u1")), scheduler.status()
            assert after == before, (method, args, kwargs)
