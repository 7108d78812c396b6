"""A call's life as properties: expiry, counts, leases, per-pop caps, weight and tags in the push."""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Set, Tuple

from hypothesis import given
from hypothesis import strategies as st

from ranch_core.models import ScheduledTask
from ranch_core.protocols import EXPIRED_BATCH, RECLAIM_BATCH
from ranch_core.testing.base import (
    EXPIRY_SECONDS,
    KEY_NAMES,
    NO_VALUE,
    ConformanceBase,
)


class LifecycleProperties(ConformanceBase):
    """A call's life in a storage: stored, leased, finished, put back or expired; nothing lost or doubled."""

    def test_expired_tasks_never_run_and_are_reported(self) -> None:
        """A task is handed out only before its expiry; every other one is reported once."""

        @self.property_settings
        @given(
            st.lists(
                st.one_of(
                    st.tuples(st.just("push"), KEY_NAMES, st.one_of(st.none(), st.floats(0, 10))),
                    st.tuples(st.just("pop"), st.just(""), st.none()),
                    st.tuples(st.just("wait"), st.just(""), st.floats(0, 5)),
                ),
                max_size=80,
            )
        )
        def check(program: List[Tuple[str, str, Optional[float]]]) -> None:
            expired: List[ScheduledTask] = []
            scheduler, clock = self.scheduler(on_expired=expired.append)
            pushed: Set[str] = set()
            ran: List[str] = []
            for op, key, value in program:
                if op == "push":
                    pushed.add(scheduler.push(key, None, expiry=value))
                elif op == "wait":
                    assert value is not None
                    clock.now += value
                else:
                    task = scheduler.pop()
                    if task is not None:
                        assert task.expires_at is None or clock.now < task.expires_at
                        ran.append(task.task_id)
                        scheduler.ack(task.task_id)
            while (task := scheduler.pop()) is not None:
                assert not task.expired(clock.now)
                ran.append(task.task_id)
                scheduler.ack(task.task_id)
            for task in expired:
                assert task.expired(clock.now)
            dropped = [t.task_id for t in expired]
            assert sorted(ran + dropped) == sorted(pushed), "a task was lost or handed out twice"
            assert scheduler.status().expired_total == len(dropped)

        check()

    def test_counts_never_include_expired_calls(self) -> None:
        """Without any pop, counts leave out expired calls; each is reported once and never runs."""

        @self.property_settings
        @given(
            st.lists(
                st.one_of(
                    st.tuples(st.just("push"), KEY_NAMES, st.one_of(st.none(), EXPIRY_SECONDS)),
                    st.tuples(
                        st.sampled_from(["status", "len", "meta", "sweep", "pop"]), KEY_NAMES, NO_VALUE
                    ),
                    st.tuples(st.just("wait"), st.just(""), st.sampled_from([0.5, 1.0, 2.0])),
                ),
                max_size=60,
            )
        )
        def check(program: List[Tuple[str, str, Optional[float]]]) -> None:
            reported: List[str] = []
            scheduler, clock = self.scheduler(on_expired=lambda t: reported.append(t.task_id))
            live: Dict[str, ScheduledTask] = {}  # pushed, neither run nor reported
            pushed: Set[str] = set()
            ended: List[str] = []  # ran or reported expired

            def unexpired(key: Optional[str] = None) -> int:
                return sum(
                    1 for t in live.values() if not t.expired(clock.now) and (key is None or t.key == key)
                )

            def settle() -> None:
                for task_id in reported:
                    assert live.pop(task_id).expired(clock.now), "reported a call before its expiry"
                    ended.append(task_id)
                reported.clear()

            for op, key, value in program:
                if op == "push":
                    task_id = scheduler.push(key, None, expiry=value)
                    pushed.add(task_id)
                    live[task_id] = ScheduledTask(
                        task_id, key, None, clock.now, None if value is None else clock.now + value
                    )
                elif op == "wait":
                    assert value is not None
                    clock.now += value
                elif op == "status":
                    assert scheduler.status().backlog_size == unexpired()
                elif op == "len":
                    assert len(scheduler) == unexpired()
                elif op == "meta":
                    assert scheduler.metadata(key).pending_tasks == unexpired(key)
                elif op == "sweep":
                    scheduler.expire(3)
                else:
                    task = scheduler.pop()
                    if task is not None:
                        assert not task.expired(clock.now), "an expired call was handed out"
                        del live[task.task_id]
                        ended.append(task.task_id)
                        scheduler.ack(task.task_id)
                settle()
            clock.now += 100.0
            assert len(scheduler) == unexpired()
            settle()
            while (task := scheduler.pop()) is not None:
                assert task.expires_at is None
                del live[task.task_id]
                ended.append(task.task_id)
            settle()
            assert not live and not reported
            assert sorted(ended) == sorted(pushed), "a call ended twice or never"
            assert scheduler.status().backlog_size == 0

        check()

    def test_push_sets_weight_and_tags_in_the_same_step(self) -> None:
        """``push(..., weight=, tags=)`` applies both with the call; a refused push applies neither."""
        scheduler, _ = self.scheduler()
        scheduler.push("a", 1, weight=0.5, tags={"plan": "pro", "region": "eu"}, task_id="t")
        meta = scheduler.metadata("a")
        assert (meta.weight, meta.tags) == (0.5, {"plan": "pro", "region": "eu"})
        assert scheduler.keys_with_tag("plan", "pro") == ["a"]
        try:
            scheduler.push("b", 1, weight=2.0, tags={"plan": "free"}, task_id="t")
        except ValueError:
            pass
        else:
            raise AssertionError("a duplicate task id was accepted")
        meta = scheduler.metadata("b")
        assert (meta.weight, meta.tags, meta.pending_tasks) == (1.0, {}, 0)
        assert scheduler.keys_with_tag("plan") == ["a"]

    def test_leases_lose_nothing_and_duplicate_nothing(self) -> None:
        """Ack, release, crashes (lost leases) and reclaim: each task finishes exactly once."""

        @self.property_settings
        @given(
            st.lists(
                st.sampled_from(["push", "pop", "ack", "release", "crash", "wait", "reclaim"]), max_size=120
            ),
            st.randoms(use_true_random=False),
        )
        def check(program: List[str], rnd: Any) -> None:
            held: Dict[str, ScheduledTask] = {}

            def lost(task: ScheduledTask) -> None:
                held.pop(task.task_id, None)  # held too long: the lease ran out and was put back

            scheduler, clock = self.scheduler(lease_seconds=10.0, on_reclaimed=lost)
            pushed: List[str] = []
            finished: List[str] = []
            keys = ["a", "b", "c"]
            for op in program:
                if op == "push":
                    pushed.append(scheduler.push(rnd.choice(keys), len(pushed)))
                elif op == "pop":
                    task = scheduler.pop()
                    if task is not None:
                        assert task.task_id not in held, "a task was leased twice at once"
                        held[task.task_id] = task
                elif op == "wait":
                    clock.now += 4.0
                elif op == "reclaim":
                    scheduler.reclaim()
                elif held:
                    task_id = rnd.choice(sorted(held))
                    if op == "crash":
                        del held[task_id]  # the worker died: its lease just runs out
                    elif op == "ack":
                        if scheduler.ack(task_id):
                            finished.append(task_id)
                        del held[task_id]
                    else:
                        scheduler.release(task_id)
                        del held[task_id]
            for task_id in list(held):
                assert scheduler.ack(task_id)
                finished.append(task_id)
            clock.now += 100.0
            while (task := scheduler.pop()) is not None:
                assert scheduler.ack(task.task_id)
                finished.append(task.task_id)
            assert sorted(finished) == sorted(pushed)
            status = scheduler.status()
            assert (status.backlog_size, status.leased, len(scheduler)) == (0, 0, 0)

        check()

    def test_pop_reclaims_at_most_reclaim_batch(self) -> None:
        """One pop puts back at most RECLAIM_BATCH ran-out leases, earliest deadline first."""
        storage = self.make_storage()
        for i in range(RECLAIM_BATCH + 5):
            storage.push(ScheduledTask(f"t{i:04d}", f"k{i % 3}", i, 0.0))
        for _ in range(RECLAIM_BATCH + 5):
            leased = storage.pop(0.0, 10.0).task
            assert leased is not None
        first = storage.pop(1000.0, 10.0)
        assert len(first.reclaimed) == RECLAIM_BATCH
        assert [t.task_id for t in first.reclaimed] == [f"t{i:04d}" for i in range(RECLAIM_BATCH)]
        assert first.task is not None
        second = storage.pop(1000.0, 10.0)
        assert len(second.reclaimed) == 5
        assert storage.status().leased == 2

    def test_pop_drops_at_most_expired_batch(self) -> None:
        """One pop drops at most EXPIRED_BATCH expired tasks, then returns early (task None)."""
        storage = self.make_storage()
        for i in range(EXPIRED_BATCH + 5):
            storage.push(ScheduledTask(f"t{i:04d}", "k", i, 0.0, expires_at=1.0))
        storage.push(ScheduledTask("live", "k", "ok", 0.0))
        first = storage.pop(1.0, 10.0)  # now == expires_at: expired
        assert first.task is None and len(first.expired) == EXPIRED_BATCH
        second = storage.pop(1.0, 10.0)
        assert len(second.expired) == 5
        assert second.task is not None and second.task.task_id == "live"
        assert storage.status().expired_total == EXPIRED_BATCH + 5

    def test_lease_deadline_boundary(self) -> None:
        """A lease whose deadline is ``<= now`` is put back; one a hair later is not."""
        storage = self.make_storage()
        storage.push(ScheduledTask("a", "k", 1, 0.0))
        storage.push(ScheduledTask("b", "k", 2, 0.0))
        assert storage.pop(10.0, 5.0).task is not None  # a: deadline 15.0
        assert storage.pop(10.0, 6.0).task is not None  # b: deadline 16.0
        before = math.nextafter(15.0, 0.0)
        assert storage.reclaim(before) == []
        assert storage.pop(before, 5.0) == storage.pop(before, 5.0)
        assert storage.status().leased == 2
        back = storage.pop(15.0, 5.0)
        assert [t.task_id for t in back.reclaimed] == ["a"]
        assert back.task is not None and back.task.task_id == "a"
        assert [t.task_id for t in storage.reclaim(math.nextafter(16.0, 0.0))] == []
        assert [t.task_id for t in storage.reclaim(16.0)] == ["b"]
