"""Group-level controls in the in-memory storage, one rule of the spec at a time.

A string key's controls are its group's (every member and the group's own
calls), a pair's its member's; a call starts only if both allow it. The
conformance suite (``ranch_core.testing.groups.GroupControlProperties`` and
the two-level controls machine) checks the behaviour of every storage; these
tests check the in-memory storage's own bookkeeping too: groups leaving and
rejoining the selection heap, the parking lot of groups, the runnable count
wake-up tokens are minted for, and the per-group sums behind ``metadata("g")``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Dict, List, Optional, Tuple

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from ranch_core import BacklogFull, FairScheduler, InMemoryStorage, ScheduledTask, validation
from ranch_core.backends.records import GroupState
from ranch_core.keys import Key, group_of
from ranch_core.models import WakeupPolicy
from ranch_core.testing.controls_machine import BAD_GROUP_CONTROLS
from ranch_core.testing.model import ControlledSelection, ModelControls

POLICY = WakeupPolicy(max_wakeups=64, ttl=2.0, defer=True)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(**options: Any) -> Tuple[FairScheduler, InMemoryStorage, Clock]:
    clock = Clock()
    storage = InMemoryStorage()
    return FairScheduler(storage, clock=clock, **options), storage, clock


def drain(scheduler: FairScheduler) -> List[ScheduledTask]:
    """Pop (without acknowledging) until nothing may start."""
    popped: List[ScheduledTask] = []
    while (task := scheduler.pop()) is not None:
        popped.append(task)
    return popped


def queued_groups(storage: InMemoryStorage) -> List[str]:
    """The groups with a live entry in the storage's selection heap."""
    live = {name for *_, name, version in storage._heap if storage._groups[name].version == version}
    return sorted(name for name in live if storage._groups[name].queued)


# -- 1. a string key's controls are its group's ---------------------------------


def test_pausing_a_string_key_pauses_its_group_and_a_pair_only_its_member() -> None:
    scheduler, _, _ = make()
    keys: List[Key] = ["t", ("t", "u1"), ("t", "u2"), "other"]
    for key in keys:
        scheduler.push_many(key, range(2))
    scheduler.pause_key("t")
    assert {task.key for task in drain(scheduler)} == {"other"}
    scheduler.resume_key("t")
    scheduler.pause_key(("t", "u1"))
    assert Counter(task.key for task in drain(scheduler)) == {"t": 2, ("t", "u2"): 2}
    scheduler.resume_key(("t", "u1"))
    assert [task.key for task in drain(scheduler)] == [("t", "u1")] * 2


def test_the_own_member_has_no_controls_of_its_own() -> None:
    """Controls set on the string key hold for the group; the own calls follow
    them as any member does, and nothing else (no default of their own)."""
    scheduler, storage, _ = make(default_concurrency_limit=1)
    scheduler.set_concurrency_limit("t", 3)
    scheduler.push_many("t", range(5))
    assert len(drain(scheduler)) == 3  # the group's 3, not the default's 1
    own = storage._keys["t"].controls
    assert (own.limit, own.rate, own.paused, own.max_backlog) == (None, None, False, None)
    assert storage._groups["t"].controls.limit == 3


# -- 2. both levels must allow a start; both count it -----------------------------


def test_a_start_takes_from_both_buckets() -> None:
    """Member bucket of one call, group bucket of two: the first start takes
    from both, so the member waits and a sibling takes the group's last call."""
    scheduler, storage, clock = make()
    scheduler.set_rate_limit("t", "1/s", burst=2)
    scheduler.set_rate_limit(("t", "a"), "1/s", burst=1)
    scheduler.push_many(("t", "a"), range(3))
    scheduler.push_many(("t", "b"), range(3))
    assert [task.key for task in drain(scheduler)] == [("t", "a"), ("t", "b")]
    group, member = storage._groups["t"], storage._keys[("t", "a")]
    assert group.controls.tat == clock.now + 2.0 and member.controls.tat == clock.now + 1.0
    clock.now += 1.0
    assert len(drain(scheduler)) == 1  # one call back in each bucket: the group's allows one


@pytest.mark.parametrize("end", ["ack", "finish", "release", "requeue", "reclaim"])
def test_every_end_of_a_lease_frees_the_group_and_the_member(end: str) -> None:
    scheduler, storage, clock = make(lease_seconds=5.0)
    scheduler.set_concurrency_limit("t", 1)
    scheduler.set_concurrency_limit(("t", "a"), 1)
    scheduler.push_many(("t", "a"), range(2))
    scheduler.push_many(("t", "b"), range(2))
    task = scheduler.pop()
    assert task is not None and scheduler.pop() is None
    assert (storage._groups["t"].controls.running, storage._keys[task.key].controls.running) == (1, 1)
    if end == "ack":
        scheduler.ack(task.task_id)
    elif end == "finish":
        scheduler.finish(task.task_id)
    elif end == "release":
        scheduler.release(task.task_id)
    elif end == "requeue":
        scheduler.requeue(task, "again")
    else:
        clock.now += 6.0
        assert scheduler.reclaim() == [task]
    assert (storage._groups["t"].controls.running, storage._keys[task.key].controls.running) == (0, 0)
    assert scheduler.pop() is not None and scheduler.pop() is None


# -- 3. defaults ---------------------------------------------------------------------


def test_defaults_apply_to_groups_and_pairs_without_their_own_setting() -> None:
    scheduler, _, _ = make(default_concurrency_limit=2)
    scheduler.set_concurrency_limit("big", 10)
    keys: List[Key] = ["big", ("big", "a"), ("big", "b"), ("small", "a"), ("small", "b")]
    for key in keys:
        scheduler.push_many(key, range(6))
    popped = Counter(task.key for task in drain(scheduler))
    # big: 10 places, each pair at the default 2, the own calls unbounded but by the group.
    assert popped[("big", "a")] == popped[("big", "b")] == 2 and popped["big"] == 6
    # small: the default caps the group at 2 in all.
    assert popped[("small", "a")] + popped[("small", "b")] == 2
    assert scheduler.metadata("small").concurrency_limit == 2
    assert scheduler.metadata(("big", "a")).concurrency_limit == 2


def test_a_default_lowered_under_a_queued_group_parks_it_at_its_next_pop() -> None:
    """Groups follow a changed default at their next step: a group still in
    the heap, now past the new default cap, is parked when it reaches the
    top (once), and comes back when a call ends."""
    scheduler, storage, clock = make()
    scheduler.push_many(("t", "a"), range(3))
    scheduler.push_many(("t", "b"), range(3))
    first = scheduler.pop()
    assert first is not None and storage._groups["t"].queued
    storage.set_control(None, "concurrency_limit", 1, clock.now)
    assert scheduler.pop() is None
    assert not storage._groups["t"].queued and storage._groups["t"].controls.parked == "capped"
    assert storage._runnable == 0
    scheduler.ack(first.task_id)
    assert storage._runnable == 1
    assert scheduler.pop() is not None and scheduler.pop() is None


def test_in_a_key_space_of_strings_a_default_rate_is_per_key_as_before() -> None:
    scheduler, _, clock = make(default_rate_limit="1/s")
    for key in ["a", "b", "c"]:
        scheduler.push_many(key, range(3))
    assert sorted(str(task.key) for task in drain(scheduler)) == ["a", "b", "c"]
    clock.now += 1.0
    assert len(drain(scheduler)) == 3


# -- 4. selection: a blocked group leaves the heap, its members stay in its heap ------


def test_a_blocked_group_leaves_the_storage_heap_and_its_members_stay() -> None:
    scheduler, storage, _ = make()
    for m in range(5):
        scheduler.push_many(("t", f"m{m}"), range(2))
    scheduler.push("u", 1)
    group = storage._groups["t"]
    assert queued_groups(storage) == ["t", "u"] and group.ready == 5
    scheduler.pause_key("t")
    assert queued_groups(storage) == ["u"] and group.ready == 5 and not group.queued
    assert all(storage._keys[("t", f"m{m}")].ready for m in range(5))
    scheduler.set_concurrency_limit("t", 1)
    scheduler.resume_key("t")
    assert queued_groups(storage) == ["t", "u"]
    assert scheduler.pop() is not None  # the group takes its one place: out again
    assert not group.queued and group.ready == 5


def test_a_rate_parked_group_waits_in_the_group_parking_lot() -> None:
    scheduler, storage, clock = make()
    scheduler.set_rate_limit("t", "2/s")
    for m in range(3):
        scheduler.push_many(("t", f"m{m}"), range(2))
    assert scheduler.pop() is not None
    taken = scheduler.take()
    assert taken.task is None and taken.retry_at == clock.now + 0.5
    group = storage._groups["t"]
    assert not group.queued and group.controls.scheduled and len(storage._group_parking) == 1
    assert len(storage._parking) == 0  # the members are not parked: they wait in their group's heap
    clock.now += 0.5
    assert scheduler.pop() is not None and group.controls.scheduled


def test_a_group_coming_back_joins_the_current_round() -> None:
    """Parking earns no credit: a group paused while another was served
    comes back at the virtual time, not at its old pass."""
    scheduler, _, _ = make()
    scheduler.push_many(("t", "a"), range(6))
    scheduler.push_many("u", range(6))
    scheduler.pause_key("t")
    assert [task.key for task in drain(scheduler)] == ["u"] * 6
    scheduler.push_many("u", range(4))
    scheduler.resume_key("t")
    order = [group_of(task.key) for task in drain(scheduler)]
    assert order[:6] in (["t", "u"] * 3, ["u", "t"] * 3)


# -- 5. runnable calls and wake-up tokens ---------------------------------------------


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ({}, 15),
        ({"group_cap": 2}, 2),
        ({"member_cap": 1}, 5),
        ({"group_cap": 4, "member_cap": 1}, 4),
        ({"group_rate": ("1/s", 3)}, 3),
        ({"paused": True}, 0),
    ],
)
def test_runnable_count_is_the_groups_room_or_its_members_sum(setup: Dict[str, Any], expected: int) -> None:
    scheduler, storage, _ = make()
    if "group_cap" in setup:
        scheduler.set_concurrency_limit("t", setup["group_cap"])
    if "group_rate" in setup:
        scheduler.set_rate_limit("t", setup["group_rate"][0], burst=setup["group_rate"][1])
    if setup.get("paused"):
        scheduler.pause_key("t")
    for m in range(5):
        if "member_cap" in setup:
            scheduler.set_concurrency_limit(("t", f"m{m}"), setup["member_cap"])
        scheduler.push_many(("t", f"m{m}"), range(3))
    assert storage._runnable == expected
    assert storage._groups["t"].members_count == 5 * setup.get("member_cap", 3)


def test_a_capped_group_of_many_members_gets_one_wakeup_per_free_place() -> None:
    scheduler, storage, _ = make()
    scheduler.set_concurrency_limit("t", 3)
    minted: List[str] = []
    for m in range(20):
        minted += scheduler.store(("t", f"m{m}"), range(4), wakeups=POLICY).wakeups
    assert len(minted) == 3 and storage._runnable == 3
    taken = [scheduler.take(token, POLICY) for token in minted]
    assert all(t.task is not None and t.wakeups == () for t in taken)
    assert storage._runnable == 0
    first = taken[0].task
    assert first is not None
    finished = scheduler.finish(first.task_id, token=minted[0], wakeups=POLICY)
    assert finished.publish == (minted[0],)  # the freed place passes its token on


def test_a_rate_parked_group_keeps_one_deferred_wakeup_for_its_refill() -> None:
    scheduler, storage, clock = make()
    scheduler.set_rate_limit("t", "2/s")
    (token,) = scheduler.store(("t", "a"), range(3), wakeups=POLICY).wakeups
    scheduler.push_many(("t", "b"), range(3))
    first = scheduler.take(token, POLICY)
    assert first.task is not None
    finished = scheduler.finish(first.task.task_id, token=token, wakeups=POLICY)
    assert finished.deferred and finished.retry_at == clock.now + 0.5
    assert storage.wakeup_status().deferred == 1


# -- 6. max_backlog of a group --------------------------------------------------------


def test_a_group_backlog_limit_refuses_any_member_past_it_and_stores_nothing() -> None:
    scheduler, storage, _ = make()
    scheduler.set_max_backlog("t", 4)
    scheduler.push_many(("t", "a"), range(2))
    scheduler.push("t", "own", delay=30.0)  # delayed calls count too
    before = scheduler.metadata("t"), scheduler.status(), dict(storage._keys)
    with pytest.raises(BacklogFull) as caught:
        scheduler.push_many(("t", "new"), range(2), tags={"x": "y"}, weight=0.5)
    assert (caught.value.key, caught.value.limit) == ("t", 4)
    assert str(caught.value) == "key 't' holds 3 waiting calls, its max_backlog is 4: 2 more refused"
    assert (scheduler.metadata("t"), scheduler.status(), dict(storage._keys)) == before
    assert scheduler.keys_with_tag("x") == []
    scheduler.push(("t", "new"), 1)  # exactly full
    with pytest.raises(BacklogFull):
        scheduler.store("t", [1], wakeups=POLICY)
    assert storage.wakeup_status().outstanding == 0


def test_a_pairs_own_backlog_limit_is_checked_first() -> None:
    scheduler, _, _ = make()
    scheduler.set_max_backlog("t", 3)
    scheduler.set_max_backlog(("t", "a"), 1)
    scheduler.push(("t", "a"), 1)
    with pytest.raises(BacklogFull) as caught:
        scheduler.push_many(("t", "a"), range(5))  # past both: the pair's is named
    assert (caught.value.key, caught.value.limit) == (("t", "a"), 1)
    scheduler.push_many(("t", "b"), range(2))
    with pytest.raises(BacklogFull) as group:
        scheduler.push(("t", "b"), 3)
    assert (group.value.key, group.value.limit) == ("t", 3)


def test_in_a_key_space_of_strings_the_backlog_message_is_unchanged() -> None:
    scheduler, _, _ = make()
    scheduler.set_max_backlog("k", 1)
    scheduler.push("k", 1)
    with pytest.raises(
        BacklogFull, match=r"^key 'k' holds 1 waiting calls, its max_backlog is 1: 1 more refused$"
    ):
        scheduler.push("k", 2)


# -- 7. purge of a whole group ----------------------------------------------------------


def test_purging_a_group_takes_own_calls_first_then_members_in_key_order() -> None:
    _, storage, _ = make()
    keys: List[Key] = [("t", "b"), "t", ("t", "a")]
    for key in keys:
        storage.push_many([ScheduledTask(f"{key}-{n}", key, n, 1.0) for n in range(2)])
    storage.push(ScheduledTask("late", ("t", "a"), 9, 1.0, not_before=50.0))
    storage.push(ScheduledTask("other", "u", 0, 1.0))
    first = storage.purge_key("t", 3)
    assert [task.task_id for task in first] == ["t-0", "t-1", "('t', 'a')-0"]
    rest = storage.purge_key("t", 10)
    assert [task.task_id for task in rest] == ["('t', 'a')-1", "late", "('t', 'b')-0", "('t', 'b')-1"]
    assert storage.purge_key("t", 10) == []
    meta = storage.metadata("t")
    assert (meta.pending_tasks, meta.delayed_tasks) == (0, 0)
    assert storage.metadata("u").pending_tasks == 1 and storage._runnable == 1


def test_purging_a_pair_takes_only_that_member() -> None:
    scheduler, _, _ = make()
    keys: List[Key] = ["t", ("t", "a"), ("t", "b")]
    for key in keys:
        scheduler.push_many(key, range(3))
    assert scheduler.purge_key(("t", "a")) == 3
    assert scheduler.metadata("t").pending_tasks == 6
    assert scheduler.purge_key("t") == 6 and len(scheduler) == 0


# -- 8. metadata("g"): the group's controls and running, from sums ---------------------


def test_group_metadata_reports_the_groups_controls_and_running() -> None:
    scheduler, _, _ = make(default_rate_limit="5/s")
    scheduler.set_rate_limit("t", "10/s", burst=5)
    scheduler.set_concurrency_limit("t", 4)
    scheduler.set_max_backlog("t", 40)
    scheduler.set_concurrency_limit(("t", "a"), 1)
    scheduler.push_many(("t", "a"), range(3))
    scheduler.push_many(("t", "b"), range(3))
    assert len(drain(scheduler)) == 2  # a at its cap; each pair's default bucket (5/s) holds one start
    meta = scheduler.metadata("t")
    assert (meta.concurrency_limit, meta.rate_limit, meta.paused, meta.max_backlog) == (4, "10/s", False, 40)
    assert (meta.running, meta.pending_tasks) == (2, 4)
    pair = scheduler.metadata(("t", "a"))
    assert (pair.concurrency_limit, pair.rate_limit, pair.max_backlog, pair.running) == (1, "5/s", None, 1)


class _NoScan(dict):  # type: ignore[type-arg]
    """A group's members that refuse to be walked: metadata must not."""

    def values(self) -> Any:
        raise AssertionError("metadata walked the group's members")

    def __iter__(self) -> Any:
        raise AssertionError("metadata walked the group's members")


def test_group_metadata_does_not_walk_the_members() -> None:
    scheduler, storage, clock = make()
    for m in range(50):
        scheduler.push_many(("t", f"m{m}"), range(2), expiry=5.0 if m % 2 else None)
    scheduler.push("t", "own", delay=1.0)
    task = scheduler.pop()
    assert task is not None
    group = storage._groups["t"]
    group.members = _NoScan(group.members)
    clock.now += 6.0
    meta = storage.metadata("t", now=clock.now)
    assert task.key == ("t", "m0")  # no expiry: 100 waiting, 1 running, 50 due (odd members)
    assert (meta.pending_tasks, meta.running, meta.delayed_tasks) == (49, 1, 1)


OPS = st.lists(
    st.tuples(
        st.sampled_from(["push", "delay", "pop", "ack", "release", "purge", "expire", "revoke"]),
        st.sampled_from(["g", ("g", "a"), ("g", "b"), ("h", "a")]),
        st.integers(1, 3),
    ),
    max_size=60,
)


@settings(deadline=None)
@given(OPS)
def test_group_sums_always_equal_the_members_counts(ops: List[Tuple[str, Key, int]]) -> None:
    """The sums behind ``metadata("g")`` (pending, expiring, delayed, running,
    ready members' runnable calls) equal their brute-force sums after every step."""
    scheduler, storage, clock = make(lease_seconds=3.0)
    running: List[str] = []
    for op, key, n in ops:
        clock.now += 0.5
        if op == "push":
            scheduler.push_many(key, range(n), expiry=1.0 if n == 2 else None)
        elif op == "delay":
            scheduler.push_many(key, range(n), delay=float(n))
        elif op == "pop":
            running += [t.task_id for t in (scheduler.pop() for _ in range(n)) if t is not None]
        elif op in ("ack", "release") and running:
            task_id = running.pop(n % len(running))
            getattr(scheduler, op)(task_id)
        elif op == "purge":
            scheduler.purge_key(key)
        elif op == "expire":
            storage.expire(clock.now, n)
        elif op == "revoke" and storage._waiting_ids:
            scheduler.revoke_call(sorted(storage._waiting_ids)[0])
        for group in storage._groups.values():
            check_sums(group, clock.now)
        assert storage._runnable == sum(g.controls.counted for g in storage._groups.values())


def check_sums(group: GroupState, now: float) -> None:
    members = list(group.members.values())
    assert group.pending == sum(len(s.tasks) for s in members)
    assert group.delayed == sum(len(s.delayed) for s in members)
    assert group.controls.running == sum(s.controls.running for s in members)
    assert group.expiring.count_due(now) == sum(s.expiring.count_due(now) for s in members)
    assert group.members_count == sum(s.controls.counted for s in members if s.ready)
    assert group.ready == len([s for s in members if s.ready])
    assert group.queued == bool(group.ready)  # no controls here: queued iff a member is ready


# -- 9. bad input -------------------------------------------------------------------------


def test_bad_group_control_input_names_the_argument_and_changes_nothing() -> None:
    scheduler, storage, _ = make()
    scheduler.push_many(("a", "u1"), range(2))
    scheduler.set_concurrency_limit("a", 1)
    before = scheduler.metadata("a"), scheduler.metadata(("a", "u1")), storage._runnable
    for method, args, kwargs, argument in BAD_GROUP_CONTROLS:
        with pytest.raises((TypeError, ValueError), match=argument):
            getattr(scheduler, method)(*args, **kwargs)
        assert (scheduler.metadata("a"), scheduler.metadata(("a", "u1")), storage._runnable) == before
    with pytest.raises(ValueError, match="unknown control"):
        storage.set_control(("a", "u1"), "speed", 1, 0.0)
    with pytest.raises(ValueError, match="has no default"):
        storage.set_control(None, "paused", True, 0.0)


# -- 10. step for step: selection under controls at both levels is the naive rule's ---------


STEP_KEYS: List[Key] = ["a", ("a", "u1"), ("a", "u2"), ("b", "u1"), ("b", "u2"), "c"]
STEP_TARGETS: List[Key] = [*STEP_KEYS, "b"]
STEP_RATES = {"1/s": 1.0, "2/s": 2.0, "4/s": 4.0}


@settings(deadline=None, max_examples=200)
@given(
    defaults=st.tuples(st.sampled_from([None, None, None, 1, 2, 3]), st.sampled_from([None, None, "2/s"])),
    steps=st.lists(
        st.tuples(
            st.sampled_from(["push", "push", "pop", "pop", "pop", "ack", "ack", "release"])
            | st.sampled_from(["limit", "rate", "pause", "tick"]),
            st.sampled_from(STEP_TARGETS),
            st.integers(0, 3),
        ),
        min_size=20,
        max_size=100,
    ),
)
# A member idle while its sibling was served joins at its group's virtual time.
@example((None, None), [("push", ("b", "u2"), 3), ("pop", "a", 2), ("push", ("b", "u1"), 1), ("pop", "a", 2)])
def test_selection_under_group_controls_is_the_naive_rules_step_for_step(
    defaults: Tuple[Optional[int], Optional[str]], steps: List[Tuple[str, Key, int]]
) -> None:
    """Every pop serves exactly the call the naive rule
    (:class:`~ranch_core.testing.model.ControlledSelection`) serves, under caps,
    rates and pauses at both levels, defaults, and the clock moving."""
    storage = InMemoryStorage()
    now = 100.0
    model = ControlledSelection(ModelControls(default_limit=defaults[0]))
    if defaults[0] is not None:
        storage.set_control(None, "concurrency_limit", defaults[0], now)
    if defaults[1] is not None:
        storage.set_control(None, "rate_limit", validation.check_rate_limit(defaults[1], 1), now)
        model.controls.default_rate = (defaults[1], STEP_RATES[defaults[1]], 1)
    ids = iter(range(10_000))
    for op, key, n in steps:
        leases = sorted(model.leases)
        if op == "push":
            tasks = [ScheduledTask(f"t{next(ids)}", key, None, now) for _ in range(n + 1)]
            storage.push_many(tasks)
            for task in tasks:
                model.add(key, task.task_id)
        elif op == "pop":
            for _ in range(n + 1):
                got = storage.pop(now, 1_000.0).task
                expected = model.pop(now)
                assert (got and got.task_id) == expected, (got, expected)
        elif op in ("ack", "release") and leases:
            task_id = leases[n % len(leases)]
            ended = model.end(task_id)
            if op == "ack":
                assert storage.ack(task_id)
            else:
                assert storage.release(task_id)
                model.add(ended, task_id, head=True)
        elif op == "limit":
            limit = [None, 1, 2, 3][n]
            storage.set_control(key, "concurrency_limit", limit, now)
            if limit is None:
                model.controls.limit.pop(key, None)
            else:
                model.controls.limit[key] = limit
        elif op == "rate":
            text = [None, "1/s", "2/s", "4/s"][n]
            burst = 1 + n % 2
            rate = None if text is None else validation.check_rate_limit(text, burst)
            storage.set_control(key, "rate_limit", rate, now)
            model.controls.set_rate(key, None if text is None else (text, STEP_RATES[text], burst), now)
        elif op == "pause":
            storage.set_control(key, "paused", n % 2 == 0, now)
            if n % 2 == 0:
                model.controls.paused.add(key)
            else:
                model.controls.paused.discard(key)
        elif op == "tick":
            now += [0.125, 0.25, 0.5, 1.0][n]
