"""Fairness as properties: LRU order, weighted shares, bounded lag, one round, no banking, FIFO."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, Dict, List, Optional, Set, Tuple

from hypothesis import given
from hypothesis import strategies as st

from ranch_core.algorithm import MAX_WEIGHT, MIN_WEIGHT
from ranch_core.keys import one_level
from ranch_core.models import ScheduledTask
from ranch_core.testing.base import (
    ANY_WEIGHTS,
    KEY_NAMES,
    POW2_WEIGHTS,
    ConformanceBase,
    lag,
)


class FairnessProperties(ConformanceBase):
    """Fairness: what the algorithm promises any storage keeps."""

    def test_equal_weights_serve_least_recently_served(self) -> None:
        """Equal weights: each pop serves the key with work served longest ago (never-served first)."""

        @self.property_settings
        @given(st.lists(st.one_of(st.tuples(st.just("push"), KEY_NAMES), st.just(("pop", ""))), max_size=80))
        def check(program: List[Tuple[str, str]]) -> None:
            scheduler, _ = self.scheduler()
            pending: Counter[str] = Counter()
            last: Dict[str, int] = {}
            previous: Optional[str] = None
            for step, (op, key) in enumerate(program):
                if op == "push":
                    scheduler.push(key, step)
                    pending[key] += 1
                    continue
                task = scheduler.pop()
                waiting = [k for k, n in pending.items() if n]
                if not waiting:
                    assert task is None
                    continue
                assert task is not None
                expected = min(waiting, key=lambda k: (last.get(k, -1), k))
                assert task.key == expected
                if previous == task.key:
                    assert waiting == [task.key], "served one key twice in a row while another waited"
                previous = task.key
                pending[task.key] -= 1
                last[task.key] = step
                scheduler.ack(task.task_id)

        check()

    def test_weighted_shares_and_bounded_lag(self) -> None:
        """Backlogged keys get service proportional to 1/weight; lag stays within w_i + w_j."""

        @self.property_settings
        @given(st.dictionaries(KEY_NAMES, POW2_WEIGHTS, min_size=2, max_size=5), st.integers(20, 200))
        def check(weights: Dict[str, float], pops: int) -> None:
            scheduler, _ = self.scheduler()
            for key, weight in weights.items():
                for n in range(pops):
                    scheduler.push(key, n, weight=weight)
            counts = dict.fromkeys(weights, 0)
            for _ in range(pops):
                task = scheduler.pop()
                assert task is not None
                counts[one_level(task.key)] += 1
                for i in weights:
                    for j in weights:
                        assert lag(counts, weights, i, j) <= weights[i] + weights[j] + 1e-9
            inverse = sum(1 / w for w in weights.values())
            w_max = max(weights.values())
            for key, weight in weights.items():
                share = pops * (1 / weight) / inverse
                assert abs(counts[key] - share) <= 2 * w_max / weight + 1

        check()

    def test_bounded_lag_with_arrivals(self) -> None:
        """Over every stretch in which keys i and j both have work, lag <= w_i + w_j."""

        @self.property_settings
        @given(
            st.dictionaries(KEY_NAMES, ANY_WEIGHTS, min_size=2, max_size=4),
            st.lists(
                st.one_of(st.tuples(st.just("push"), KEY_NAMES, st.integers(1, 6)), st.just(("pop", "", 0))),
                max_size=120,
            ),
        )
        def check(weights: Dict[str, float], program: List[Tuple[str, str, int]]) -> None:
            scheduler, _ = self.scheduler()
            for key, weight in weights.items():
                scheduler.set_weight(key, weight)
            pending: Counter[str] = Counter()
            # For each pair: weighted-service difference since the stretch began, and its min/max.
            stretch: Dict[Tuple[str, str], List[float]] = {}
            for op, key, n in program:
                if op == "push":
                    if key in weights:
                        for _ in range(n):
                            scheduler.push(key, None)
                        pending[key] += n
                    continue
                both = {(i, j) for i in weights for j in weights if i < j and pending[i] and pending[j]}
                for pair in list(stretch):
                    if pair not in both:
                        del stretch[pair]
                for pair in both:
                    stretch.setdefault(pair, [0.0, 0.0, 0.0])
                task = scheduler.pop()
                if task is None:
                    assert not any(pending.values())
                    continue
                pending[one_level(task.key)] -= 1
                for (i, j), span in stretch.items():
                    if task.key == i:
                        span[0] += weights[i]
                    elif task.key == j:
                        span[0] -= weights[j]
                    span[1], span[2] = min(span[1], span[0]), max(span[2], span[0])
                    assert span[2] - span[1] <= weights[i] + weights[j] + 1e-9

        check()

    def test_new_key_served_within_one_round(self) -> None:
        """A key that turns active is served before any other key is served twice."""

        @self.property_settings
        @given(
            st.dictionaries(KEY_NAMES, ANY_WEIGHTS, min_size=1, max_size=6),
            st.integers(0, 300),
            st.integers(0, 40),
            ANY_WEIGHTS,
        )
        def check(weights: Dict[str, float], flood: int, served_before: int, new_weight: float) -> None:
            scheduler, _ = self.scheduler()
            for key, weight in weights.items():
                for i in range(flood + served_before + 2):
                    scheduler.push(key, i, weight=weight)
            for _ in range(served_before):
                task = scheduler.pop()
                assert task is not None
                scheduler.ack(task.task_id)
            scheduler.push("newcomer", "hello", weight=new_weight)
            seen: Counter[str] = Counter()
            while True:
                task = scheduler.pop()
                assert task is not None
                if task.key == "newcomer":
                    break
                seen[one_level(task.key)] += 1
                assert seen[one_level(task.key)] <= 1, (
                    f"{one_level(task.key)} served twice before the newcomer"
                )

        check()

    def test_no_banking_while_idle(self) -> None:
        """A key idle while others were served cannot catch up afterwards."""

        @self.property_settings
        @given(st.integers(0, 200), POW2_WEIGHTS, POW2_WEIGHTS, st.integers(1, 60))
        def check(idle_pops: int, w_idle: float, w_busy: float, after: int) -> None:
            scheduler, _ = self.scheduler()
            scheduler.push("idle", "first", weight=w_idle)
            first = scheduler.pop()
            assert first is not None and first.key == "idle"
            for i in range(idle_pops + after + 2):
                scheduler.push("busy", i, weight=w_busy)
            for _ in range(idle_pops):
                task = scheduler.pop()
                assert task is not None and task.key == "busy"
            for i in range(after + 2):
                scheduler.push("idle", i)
            counts = {"idle": 0, "busy": 0}
            weights = {"idle": w_idle, "busy": w_busy}
            for _ in range(after):
                task = scheduler.pop()
                assert task is not None
                counts[one_level(task.key)] += 1
                assert lag(counts, weights, "idle", "busy") <= w_idle + w_busy + 1e-9

        check()

    def test_fifo_within_a_key(self) -> None:
        """Per key, tasks are first handed out in submission order, releases included."""

        @self.property_settings
        @given(
            st.lists(
                st.one_of(
                    st.tuples(st.just("push"), KEY_NAMES),
                    st.tuples(st.just("pop"), st.just("")),
                    st.tuples(st.sampled_from(["ack", "release"]), st.just("")),
                ),
                max_size=100,
            ),
            st.randoms(use_true_random=False),
        )
        def check(program: List[Tuple[str, str]], rnd: Any) -> None:
            scheduler, _ = self.scheduler()
            submitted: Dict[str, List[int]] = defaultdict(list)
            first_pops: Dict[str, List[int]] = defaultdict(list)
            seen: Set[int] = set()
            held: List[ScheduledTask] = []
            for step, (op, key) in enumerate(program):
                if op == "push":
                    scheduler.push(key, step)
                    submitted[key].append(step)
                elif op == "pop":
                    task = scheduler.pop()
                    if task is not None:
                        if task.payload not in seen:
                            seen.add(task.payload)
                            first_pops[one_level(task.key)].append(task.payload)
                        held.append(task)
                elif held:
                    task = held.pop(rnd.randrange(len(held)))
                    assert (scheduler.ack if op == "ack" else scheduler.release)(task.task_id)
            for key, order in first_pops.items():
                assert order == submitted[key][: len(order)]

        check()

    def test_weights_are_bounded_and_shares_stay_exact(self) -> None:
        """Weights outside [MIN_WEIGHT, MAX_WEIGHT] are refused; 0.5 vs 1.0 gets 20 of 30."""
        scheduler, _ = self.scheduler()
        for bad in (1e308, 10**400, MAX_WEIGHT * 1.001, MIN_WEIGHT / 2):
            try:
                scheduler.set_weight("huge", bad)
            except ValueError as exc:
                assert "weight" in str(exc) and str(MAX_WEIGHT) in str(exc)
            else:
                raise AssertionError(f"weight {bad!r} accepted")
        scheduler.set_weight("edge", MAX_WEIGHT)
        scheduler.push("huge", 0, weight=MAX_WEIGHT)
        scheduler.push("edge", 0)
        for _ in range(2):
            task = scheduler.pop()
            assert task is not None
            scheduler.ack(task.task_id)
        for i in range(30):
            scheduler.push("fast", i, weight=0.5)
            scheduler.push("slow", i, weight=1.0)
        counts: Counter[str] = Counter()
        for _ in range(30):
            task = scheduler.pop()
            assert task is not None
            counts[one_level(task.key)] += 1
        assert counts == {"fast": 20, "slow": 10}
