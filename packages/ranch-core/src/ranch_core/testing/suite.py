"""``StorageConformance``: every guarantee of Ranch, as tests any storage inherits."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test

from ranch_core.algorithm import MAX_WEIGHT, MIN_WEIGHT
from ranch_core.errors import DuplicateTask
from ranch_core.models import ScheduledTask
from ranch_core.protocols import EXPIRED_BATCH, MAX_BATCH, RECLAIM_BATCH, Storage
from ranch_core.scheduler import FairScheduler
from ranch_core.testing.machine import BAD_PUSHES, build_machine
from ranch_core.testing.tokens import build_token_machine

KEY_NAMES = st.sampled_from(["k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"])
POW2_WEIGHTS = st.sampled_from([0.25, 0.5, 1.0, 2.0, 4.0])
EXPIRY_SECONDS = st.sampled_from([0.0, 1.0, 3.0])
NO_VALUE: st.SearchStrategy[Optional[float]] = st.none()
ANY_WEIGHTS = st.floats(min_value=0.05, max_value=20.0, allow_nan=False, allow_infinity=False)


class _Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _lag(counts: Dict[str, int], weights: Dict[str, float], i: str, j: str) -> float:
    return abs(counts[i] * weights[i] - counts[j] * weights[j])


class StorageConformance:
    """Subclass this in a test module and implement :meth:`make_storage`.

    Each test builds its own storage through :meth:`make_storage`, which must
    return a new, empty storage every call (for a shared server, a fresh
    namespace), using the JSON serializer: the bad-input checks expect sets,
    NaN and arbitrary objects to be refused. ``conformance_settings`` sets Hypothesis' budget; the stateful
    test compares every step with :class:`~ranch_core.testing.model.ReferenceModel`.
    """

    conformance_settings = settings(
        max_examples=60,
        stateful_step_count=60,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    property_settings = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

    def make_storage(self) -> Storage:
        """A new, empty storage."""
        raise NotImplementedError

    def scheduler(self, **options: Any) -> Tuple[FairScheduler, _Clock]:
        clock = _Clock()
        return FairScheduler(self.make_storage(), clock=clock, **options), clock

    # -- the whole contract, step for step ---------------------------------

    def test_matches_reference_model(self) -> None:
        """Every operation, interleaved at random, does what the model does."""
        machine = build_machine(self.make_storage)
        run_state_machine_as_test(machine, settings=self.conformance_settings)

    token_settings = settings(
        max_examples=40,
        stateful_step_count=40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )

    def test_wakeup_token_protocol(self) -> None:
        """Wake-up tokens: bounded, never a call run twice at once, and live
        after any interleaving of pushes, takes, finishes, kills, purges,
        lost publishes and sweeps (see :mod:`ranch_core.testing.tokens`)."""
        run_state_machine_as_test(build_token_machine(self.make_storage), settings=self.token_settings)

    # -- the guarantees, each on its own -----------------------------------

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
                counts[task.key] += 1
                for i in weights:
                    for j in weights:
                        assert _lag(counts, weights, i, j) <= weights[i] + weights[j] + 1e-9
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
                pending[task.key] -= 1
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
                seen[task.key] += 1
                assert seen[task.key] <= 1, f"{task.key} served twice before the newcomer"

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
                counts[task.key] += 1
                assert _lag(counts, weights, "idle", "busy") <= w_idle + w_busy + 1e-9

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
                            first_pops[task.key].append(task.payload)
                        held.append(task)
                elif held:
                    task = held.pop(rnd.randrange(len(held)))
                    assert (scheduler.ack if op == "ack" else scheduler.release)(task.task_id)
            for key, order in first_pops.items():
                assert order == submitted[key][: len(order)]

        check()

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

    # -- limits of one step ------------------------------------------------

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
            counts[task.key] += 1
        assert counts == {"fast": 20, "slow": 10}

    # -- bad input ---------------------------------------------------------

    def test_bad_push_raises_and_stores_nothing(self) -> None:
        for bad in BAD_PUSHES:
            scheduler, _ = self.scheduler()
            args: Dict[str, Any] = {
                "key": "a", "payload": 1, "weight": None, "expiry": None, "task_id": None, "tags": None,
            }  # fmt: skip
            args.update(bad)
            try:
                scheduler.push(
                    args["key"], args["payload"], weight=args["weight"], expiry=args["expiry"],
                    task_id=args["task_id"], tags=args["tags"],
                )  # fmt: skip
            except (TypeError, ValueError) as exc:
                assert str(exc), "the error must say what is wrong"
                (argument,) = bad
                named = {"key": "key", "weight": "weight", "expiry": "expiry", "task_id": "task_id"}
                named.update(payload="payload", tags="tag")
                assert named[argument] in str(exc), f"{exc!r} does not name {argument}"
            else:
                raise AssertionError(f"push accepted {bad!r}")
            assert len(scheduler) == 0
            assert scheduler.status().backlog_size == 0
            assert scheduler.metadata("a").weight == 1.0
            assert scheduler.metadata("a").tags == {}
            assert scheduler.pop() is None

    def test_bad_tracker_input_raises(self) -> None:
        scheduler, _ = self.scheduler()
        calls: List[Callable[[], Any]] = [
            lambda: scheduler.set_weight("a", 0),
            lambda: scheduler.set_weight("a", math.nan),
            lambda: scheduler.set_weight("a", 1e308),
            lambda: scheduler.set_weight("a", 10**400),
            lambda: scheduler.set_weight("", 1.0),
            lambda: scheduler.set_custom_data("a", "x", object()),
            lambda: scheduler.set_custom_data("a", "", 1),
            lambda: scheduler.add_tag("a", "", "v"),
            lambda: scheduler.add_tag("a", "plan", 3),  # type: ignore[arg-type]
            lambda: scheduler.metadata(None),  # type: ignore[arg-type]
        ]
        for call in calls:
            try:
                call()
            except (TypeError, ValueError):
                continue
            raise AssertionError("bad tracker input accepted")
        assert scheduler.metadata("a").to_dict() == {
            "key": "a", "weight": 1.0, "last_served": None, "pending_tasks": 0,
            "served_total": 0, "tags": {}, "custom_data": {},
        }  # fmt: skip
