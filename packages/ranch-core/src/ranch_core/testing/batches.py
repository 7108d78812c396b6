"""Batches and wake-up tokens as properties: push_many (all or none, in order), tokens, worker slots."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Dict, List, Tuple

from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test

from ranch_core.errors import DuplicateTask
from ranch_core.models import ScheduledTask
from ranch_core.protocols import MAX_BATCH
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
                served[task.key].append((task.task_id, task.payload))
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
        registration that ran out is forgotten."""

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

        check()
