"""Batches and wake-up tokens as properties: push_many (all or none, in order), tokens, worker slots."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Dict, List, Tuple

from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test

from ranch_core.errors import DuplicateTask
from ranch_core.keys import one_level
from ranch_core.models import ScheduledTask, WakeupPolicy
from ranch_core.protocols import LOST_AFTER, MAX_BATCH
from ranch_core.testing.base import (
    KEY_NAMES,
    ConformanceBase,
)
from ranch_core.testing.tokens import build_token_machine


class BatchAndWakeupProperties(ConformanceBase):
    """Bulk pushes and the wake-up token protocol."""

    def test_wakeup_token_protocol(self) -> None:
        """Wake-up tokens: bounded, never a call run twice at once, and live
        after any interleaving of pushes, takes, finishes, kills, purges,
        lost publishes and sweeps (see :mod:`ranch_core.testing.tokens`)."""
        run_state_machine_as_test(build_token_machine(self.make_storage), settings=self.token_settings)

    def test_push_many_stores_in_order_and_returns_the_ids(self) -> None:
        """``push_many``: the ids in the order given, FIFO within the key in that order, counts."""

        @self.property_settings
        @given(st.lists(st.tuples(KEY_NAMES, st.integers(1, 30)), min_size=1, max_size=4))
        def check_order(batches: List[Tuple[str, int]]) -> None:
            scheduler, _ = self.scheduler()
            expected: Dict[str, List[Any]] = defaultdict(list)
            for number, (key, size) in enumerate(batches):
                payloads = [[number, n] for n in range(size)]
                ids = scheduler.push_many(key, payloads, weight=0.5, tags={"batch": str(number)})
                assert len(ids) == size == len(set(ids))
                expected[key] += list(zip(ids, payloads))
                meta = scheduler.metadata(key)
                assert meta.pending_tasks == len(expected[key]) and meta.weight == 0.5
                assert meta.tags == {"batch": str(number)}
            assert len(scheduler) == sum(len(pairs) for pairs in expected.values())
            served: Dict[str, List[Any]] = defaultdict(list)
            while (task := scheduler.pop()) is not None:
                served[one_level(task.key)].append((task.task_id, task.payload))
            assert served == expected

        check_order()

    def test_push_many_is_all_or_none(self) -> None:
        """A batch with a bad payload, a duplicate id (inside it or already
        stored) or too many tasks stores nothing: no task, no weight, no tag."""
        scheduler, _ = self.scheduler()
        scheduler.push("k", 0, task_id="old")
        before = scheduler.status(), scheduler.metadata("k")
        bad: List[Dict[str, Any]] = [
            {"payloads": [1, object(), 3]},
            {"payloads": [1, 2], "task_ids": ["x", "x"]},
            {"payloads": [1, 2], "task_ids": ["x", "old"]},
            {"payloads": list(range(MAX_BATCH + 1)), "direct": True},
        ]
        for case in bad:
            try:
                if case.get("direct"):
                    tasks = [ScheduledTask(f"d{n}", "k", n, 0.0) for n in case["payloads"]]
                    scheduler.storage.push_many(tasks, weight=0.5, tags={"plan": "pro"})
                else:
                    scheduler.push_many(
                        "k", case["payloads"], weight=0.5, tags={"plan": "pro"}, task_ids=case.get("task_ids")
                    )
            except (TypeError, ValueError) as exc:
                assert not isinstance(exc, DuplicateTask) or "task_ids" in case
            else:
                raise AssertionError(f"push_many accepted {case!r}")
            assert (scheduler.status(), scheduler.metadata("k")) == before
        many = scheduler.push_many("k", range(MAX_BATCH + 5))
        assert len(many) == MAX_BATCH + 5 and len(scheduler) == MAX_BATCH + 6

    def test_worker_slots_count_only_live_workers(self) -> None:
        """``register_slots``: the live total; a worker's new count replaces its old one; a
        registration that ran out is forgotten. ``live_slots`` reads the same total at any time."""

        workers = st.sampled_from(["w1", "w2", "w3"])

        @self.property_settings
        @given(st.lists(st.tuples(workers, st.integers(0, 64), st.integers(0, 5))))
        def check(steps: List[Tuple[str, int, int]]) -> None:
            storage = self.make_storage()
            now = 1000.0
            live: Dict[str, Tuple[int, float]] = {}
            for worker, slots, advance in steps:
                now += advance
                live = {name: entry for name, entry in live.items() if entry[1] > now}
                live[worker] = (slots, now + 3.0)
                assert storage.register_slots(worker, slots, now, 3.0) == sum(n for n, _ in live.values())
                later = now + advance
                expected = sum(n for n, deadline in live.values() if deadline > later)
                assert storage.live_slots(later) == expected  # read only: nothing forgotten

        check()

    def test_lost_tokens_are_replaced_when_the_broker_queue_stops_moving(self) -> None:
        """A late token in flight is replaced at once only if no wake-up was
        taken for a ttl; while wake-ups are taken, only ``LOST_AFTER`` ttls
        past its deadline; without movement, each replacement waits twice as
        long as the one before, until a wake-up is taken again."""
        storage = self.make_storage()
        policy = WakeupPolicy(max_wakeups=2, ttl=1.0)
        tasks = [ScheduledTask(f"t{n}", "k", n, 0.0) for n in range(6)]
        (first,) = storage.push_many(tasks, wakeups=policy)
        (second,) = storage.sweep_wakeups(0.5, policy)  # deadline 1.5

        def in_flight() -> int:
            return storage.wakeup_status().in_flight

        # `first` is taken at 0.9 (held for a long lease): the queue moves.
        assert storage.pop(0.9, 1000.0, token=first, wakeups=policy).task is not None
        assert storage.sweep_wakeups(1.6, policy) == [] and in_flight() == 1  # `second` late, kept
        late = 1.5 + LOST_AFTER * 1.0
        # Wake-ups keep arriving (unknown tokens, refused while 2 are outstanding).
        for now in (2.5, 3.5, 4.5, late - 0.4):
            assert storage.pop(now, 1000.0, token=f"other-{now}", wakeups=policy).task is None
            assert storage.sweep_wakeups(now + 0.1, policy) == [] and in_flight() == 1
        storage.pop(late - 0.05, 1000.0, token=f"other-{late}", wakeups=policy)
        (third,) = storage.sweep_wakeups(late, policy)  # LOST_AFTER ttls late: replaced
        assert third != second and in_flight() == 1
        # Nothing is taken any more: replaced at its deadline, then after 2, 4 ttls.
        quiet = late + 1.0
        (fourth,) = storage.sweep_wakeups(quiet, policy)
        assert storage.sweep_wakeups(quiet + 1.0, policy) == [] and in_flight() == 1
        (fifth,) = storage.sweep_wakeups(quiet + 2.0, policy)
        assert storage.sweep_wakeups(quiet + 5.0, policy) == [] and in_flight() == 1
        (sixth,) = storage.sweep_wakeups(quiet + 6.0, policy)
        assert len({third, fourth, fifth, sixth}) == 4
        # A wake-up is taken: the next lost token is replaced after one ttl again.
        taken = storage.pop(quiet + 6.5, 1000.0, token=sixth, wakeups=policy).task
        assert taken is not None
        passed = storage.finish(taken.task_id, quiet + 6.5, token=sixth, wakeups=policy)
        assert passed.publish == (sixth,)  # in flight again, deadline quiet + 7.5
        assert storage.sweep_wakeups(quiet + 7.4, policy) == []  # before its deadline
        assert len(storage.sweep_wakeups(quiet + 7.5, policy)) == 1  # no backoff left over
