"""Runtime cost (README, "Fair by time"): the model step for step, the SFQ(D) bound, bad input.

Part of :class:`~ranch_core.testing.StorageConformance`: a storage passes
it by implementing :class:`~ranch_core.protocols.RuntimeCosts`.
"""

from __future__ import annotations

import heapq
import math
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ranch_core import algorithm
from ranch_core.keys import one_level
from ranch_core.models import RuntimeCost, ScheduledTask
from ranch_core.protocols import RuntimeCosts
from ranch_core.scheduler import FairScheduler
from ranch_core.testing.base import KEY_NAMES, POW2_WEIGHTS, Clock, ConformanceBase
from ranch_core.testing.model import ReferenceModel

#: Run times the tests draw: dyadic, so every side computes the same doubles (0: the floor).
RUN_TIMES = st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.0, 4.0])
LEASE_SECONDS = 5.0
RUNTIME = RuntimeCost(first_estimate=1.0)

#: Run times each of which ``ack(cost=)`` must refuse, naming ``cost``.
BAD_COSTS: List[Any] = [-0.5, math.nan, math.inf, "1", True, 1e12, 10**400, [1.0]]

Step = Tuple[str, str, Any]


class Slots:
    """``slots`` workers on one scheduler and the model: each free slot pops,
    each call runs its drawn time on the test's clock and is acknowledged
    (with the time measured by the caller, or by the storage)."""

    def __init__(self, scheduler: FairScheduler, clock: Clock, slots: int) -> None:
        self.scheduler = scheduler
        self.clock = clock
        self.slots = slots
        self.model = ReferenceModel()
        self.running: List[Tuple[float, str, float, bool]] = []
        self.pending: Dict[str, int] = {}
        #: Each dispatch: the key, its run time and the estimate it was charged.
        self.dispatched: List[Tuple[str, float, float]] = []

    def push(self, key: str, n: int, weight: Optional[float] = None) -> None:
        ids = self.scheduler.push_many(key, range(n), weight=weight)
        for task_id, payload in zip(ids, range(n)):
            self.model.push(ScheduledTask(task_id, key, payload, self.clock.now), weight)
        self.pending[key] = self.pending.get(key, 0) + n

    def dispatch(self, run_time_of: Callable[[str], float], caller_measures: bool) -> Optional[str]:
        """One free slot pops and runs the call for ``run_time_of(key)``;
        the key served (``None``: nothing waits)."""
        task = self.scheduler.pop()
        expected, _, _ = self.model.pop(self.clock.now, self.scheduler.lease_seconds, RUNTIME)
        assert task == expected, f"popped {task}, the model says {expected}"
        if task is None:
            return None
        self.pending[one_level(task.key)] -= 1
        run_time = run_time_of(one_level(task.key))
        estimate = self.model.charges[task.task_id][1]
        self.dispatched.append((one_level(task.key), algorithm.runtime(run_time), estimate))
        heapq.heappush(self.running, (self.clock.now + run_time, task.task_id, run_time, caller_measures))
        return one_level(task.key)

    def finish_next(self) -> None:
        """The call that ends first ends: the clock moves to its end."""
        end, task_id, run_time, caller_measures = heapq.heappop(self.running)
        self.clock.now = max(self.clock.now, end)
        cost = run_time if caller_measures else None
        assert self.scheduler.ack(task_id, cost=cost) is True
        assert self.model.finish(task_id, self.clock.now, cost) is True


class RuntimeCostProperties(ConformanceBase):
    """``cost="runtime"``: what a storage with :class:`~ranch_core.protocols.RuntimeCosts` keeps."""

    #: Test-clock seconds of :meth:`test_slow_and_fast_keys_share_worker_time`
    #: (a storage whose every step is slow may shorten it).
    runtime_share_seconds = 15.0

    def runtime_scheduler(self) -> Tuple[FairScheduler, Clock]:
        """A runtime-cost scheduler on a new storage, with a clock the test moves;
        the test fails if the storage cannot charge by run time."""
        storage = self.make_storage()
        if not isinstance(storage, RuntimeCosts):
            pytest.fail(
                f"{type(storage).__name__} cannot charge by run time: a storage must implement "
                "ranch_core.protocols.RuntimeCosts (pop(runtime=), finish(cost=), run_estimate) "
                "to pass the conformance suite",
                pytrace=False,
            )
        clock = Clock()
        return FairScheduler(storage, clock=clock, cost=RUNTIME, lease_seconds=LEASE_SECONDS), clock

    def test_charges_the_estimate_and_corrects_it_at_finish(self) -> None:
        """The first call is charged the first estimate, the finish corrects it to the
        run time; a key's estimate is its moving average; a new key pays the storage's."""
        scheduler, clock = self.runtime_scheduler()
        for i in range(4):
            scheduler.push("slow", i)
            scheduler.push("fast", i)
        first = scheduler.pop()
        assert first is not None and first.key == "fast"  # equal passes: the smaller key
        clock.now += 4.0
        assert scheduler.ack(first.task_id) is True  # measured by the storage: 4 s
        assert scheduler.run_estimate("fast") == 4.0
        second = scheduler.pop()
        assert second is not None and second.key == "slow"
        assert scheduler.ack(second.task_id, cost=2.0) is True
        assert scheduler.run_estimate("slow") == 2.0
        # fast was charged 4 s, slow 2 s: slow runs until it has used as much.
        third = scheduler.pop()
        assert third is not None and third.key == "slow"
        assert scheduler.ack(third.task_id, cost=1.0) is True
        assert scheduler.run_estimate("slow") == 2.0 + 0.25 * (1.0 - 2.0)
        scheduler.push("new", 0)
        assert scheduler.run_estimate("new") is None

    def test_a_killed_call_is_charged_its_lease_time(self) -> None:
        """A lease that runs out charges the key the lease's time and feeds no average."""
        scheduler, clock = self.runtime_scheduler()
        scheduler.push("killed", 0)
        scheduler.push("killed", 1)
        scheduler.push("other", 0)
        task = scheduler.pop()
        assert task is not None and task.key == "killed"
        clock.now += LEASE_SECONDS + 1.0
        assert [t.task_id for t in scheduler.reclaim()] == [task.task_id]
        assert scheduler.run_estimate("killed") is None
        # killed paid 5 s at the first estimate's 1 s: other (pass 0) runs first.
        nxt = scheduler.pop()
        assert nxt is not None and nxt.key == "other"

    def test_bad_cost_raises_and_changes_nothing(self) -> None:
        """A bad run time, or one given without ``cost="runtime"``, raises naming
        ``cost``: the lease stays held and nothing is charged or learnt."""
        scheduler, clock = self.runtime_scheduler()
        scheduler.push("k", 0)
        task = scheduler.pop()
        assert task is not None
        clock.now += 1.0
        for bad in BAD_COSTS:
            try:
                scheduler.ack(task.task_id, cost=bad)
            except (TypeError, ValueError) as exc:
                assert "cost" in str(exc), exc
            else:
                raise AssertionError(f"ack accepted cost={bad!r}")
            assert scheduler.status().leased == 1
            assert scheduler.run_estimate("k") is None
        assert scheduler.ack(task.task_id, cost=0.5) is True
        assert scheduler.run_estimate("k") == 0.5
        plain, _ = self.scheduler()
        plain.push("k", 0)
        held = plain.pop()
        assert held is not None
        try:
            plain.ack(held.task_id, cost=1.0)
        except ValueError as exc:
            assert "cost" in str(exc), exc
        else:
            raise AssertionError("cost= accepted without cost='runtime'")
        assert plain.status().leased == 1
        for mode, error in [("time", ValueError), (3, TypeError), (None, TypeError)]:
            try:
                self.scheduler(cost=mode)
            except error as exc:
                assert "cost" in str(exc), exc
            else:
                raise AssertionError(f"cost={mode!r} accepted")

    def test_matches_reference_model_with_runtime_cost(self) -> None:
        """Pushes, pops, acks (measured by caller or storage), retries, releases,
        killed workers and weights, interleaved: every pop and every estimate is the model's."""

        steps = st.one_of(
            st.tuples(st.just("push"), KEY_NAMES, st.one_of(st.none(), POW2_WEIGHTS)),
            st.tuples(st.just("pop"), st.just(""), st.none()),
            st.tuples(st.sampled_from(["ack", "requeue"]), st.just(""), st.one_of(st.none(), RUN_TIMES)),
            st.tuples(st.just("release"), st.just(""), st.none()),
            st.tuples(st.just("clock"), st.just(""), st.sampled_from([0.25, 0.5, 1.0, 3.0, 6.0])),
            st.tuples(st.just("weight"), KEY_NAMES, POW2_WEIGHTS),
        )

        @self.property_settings
        @given(st.lists(steps, max_size=60), st.randoms(use_true_random=False))
        def check(program: List[Step], rnd: Any) -> None:
            scheduler, clock = self.runtime_scheduler()
            model = ReferenceModel()
            for n, (op, key, arg) in enumerate(program):
                leased = sorted(model.leases)
                if op == "push":
                    task_id = scheduler.push(key, n, weight=arg, task_id=f"t{n}")
                    model.push(ScheduledTask(task_id, key, n, clock.now), arg)
                elif op == "pop":
                    task = scheduler.pop()
                    expected, _, _ = model.pop(clock.now, LEASE_SECONDS, RUNTIME)
                    assert task == expected, f"popped {task}, the model says {expected}"
                elif op == "clock":
                    clock.now += arg
                elif op == "weight":
                    scheduler.set_weight(key, arg)
                    model.set_weight(key, arg)
                elif leased:
                    task_id = leased[rnd.randrange(len(leased))]
                    if op == "ack":
                        assert scheduler.ack(task_id, cost=arg) is model.finish(task_id, clock.now, arg)
                    elif op == "requeue":
                        old = model.leases[task_id][1]
                        retried = scheduler.retried(old, ["retry", n])
                        done = scheduler.finish(task_id, requeue=retried, cost=arg).done
                        assert done is model.finish(task_id, clock.now, arg, requeue=retried)
                    else:
                        assert scheduler.release(task_id) is model.release(task_id)
                for name in ["k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"]:
                    assert scheduler.run_estimate(name) == model.key(name).run_estimate, name
            for name in ["k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"]:
                assert scheduler.metadata(name).run_estimate == model.key(name).run_estimate, name

        check()

    def test_sfq_d_bound_with_d_slots(self) -> None:
        """With D slots, over any stretch in which keys f and g both wait, their service
        counted at measured run time differs by at most (D + 1) * (w_f * C_f + w_g * C_g)."""

        @self.property_settings
        @given(
            st.integers(1, 4),
            st.dictionaries(
                KEY_NAMES,
                st.tuples(POW2_WEIGHTS, st.integers(1, 25), st.lists(RUN_TIMES, min_size=1, max_size=4)),
                min_size=2,
                max_size=4,
            ),
            st.lists(st.tuples(st.integers(0, 60), KEY_NAMES, st.integers(1, 8)), max_size=6),
            st.lists(st.booleans(), min_size=1, max_size=8),
        )
        def check(
            slots: int,
            keys: Dict[str, Tuple[float, int, List[float]]],
            arrivals: List[Tuple[int, str, int]],
            measured_by_caller: List[bool],
        ) -> None:
            scheduler, clock = self.runtime_scheduler()
            sim = Slots(scheduler, clock, slots)
            weights = {key: weight for key, (weight, _, _) in keys.items()}
            for key, (weight, n, _) in keys.items():
                sim.push(key, n, weight)
            served: Dict[str, int] = dict.fromkeys(keys, 0)
            stretch: Dict[Tuple[str, str], List[float]] = {}
            widest: Dict[Tuple[str, str], float] = {}
            for step in range(400):
                for at, key, n in arrivals:
                    if at == step and key in keys:
                        sim.push(key, n)
                while len(sim.running) < slots:
                    both = {(i, j) for i in keys for j in keys if i < j and sim.pending[i] and sim.pending[j]}
                    for pair in list(stretch):
                        if pair not in both:
                            del stretch[pair]
                    for pair in both:
                        stretch.setdefault(pair, [0.0, 0.0, 0.0])
                    # Each key's calls take the run times of its list, in turn.
                    got = sim.dispatch(
                        lambda k: keys[k][2][served[k] % len(keys[k][2])],
                        measured_by_caller[step % len(measured_by_caller)],
                    )
                    if got is None:
                        break
                    served[got] += 1
                    cost = sim.dispatched[-1][1]
                    for (i, j), span in stretch.items():
                        if got == i:
                            span[0] += cost * weights[i]
                        elif got == j:
                            span[0] -= cost * weights[j]
                        span[1], span[2] = min(span[1], span[0]), max(span[2], span[0])
                        widest[(i, j)] = max(widest.get((i, j), 0.0), span[2] - span[1])
                if not sim.running:
                    if all(at < step for at, _, _ in arrivals):
                        break
                    continue
                sim.finish_next()
            largest: Dict[str, float] = {}
            for key, run_time, estimate in sim.dispatched:
                largest[key] = max(largest.get(key, 0.0), run_time, estimate)
            for (i, j), width in widest.items():
                bound = (slots + 1) * (weights[i] * largest[i] + weights[j] * largest[j])
                assert width <= bound + 1e-9, f"{i}, {j}: lag {width} > (D + 1)(a_f + a_g) = {bound}"

        check()

    def test_slow_and_fast_keys_share_worker_time(self) -> None:
        """The issue's measure on the test clock, shortened: 100 ms and 5 ms calls,
        4 slots, :attr:`runtime_share_seconds` (15 s; the issue's 60 s is
        ``benchmarks/runtime_share.py``; a quarter keeps this test under 15 s on
        Redis): the slow key holds 45-55 % of the worker time (by count it would
        hold ~95 %)."""
        scheduler, clock = self.runtime_scheduler()
        sim = Slots(scheduler, clock, 4)
        run_time = {"slow": 0.1, "fast": 0.005}
        busy = dict.fromkeys(run_time, 0.0)
        start = clock.now
        while clock.now - start < self.runtime_share_seconds:
            for key in run_time:
                if sim.pending.get(key, 0) < 8:
                    sim.push(key, 50)
            while len(sim.running) < 4:
                served = sim.dispatch(run_time.__getitem__, True)
                assert served is not None
                busy[served] += run_time[served]
            sim.finish_next()
        share = busy["slow"] / sum(busy.values())
        assert 0.45 <= share <= 0.55, share
