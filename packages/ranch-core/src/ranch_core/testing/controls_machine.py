"""A Hypothesis state machine for per-key controls, checked against a naive shadow.

Any interleaving of pushes (single and batches, some expiring), pops,
acks, releases, retries, killed workers whose lease runs out, the clock
moving, and every control: concurrency limits, rate limits (with bursts),
pause and resume, backlog limits, purge and revoke, and bad input for each.
The shadow keeps, per key, the waiting and running calls and a plain token
bucket (tokens and the time they were counted: an independent formulation
of the rate rule). Checked at every step:

* a pop never starts a call of a paused key, of a key at its cap, or of a
  key whose bucket holds less than one call;
* in any window of ``T`` seconds (since the key's rate was last set) a key
  starts at most ``burst + rate * T`` calls;
* work conservation: a pop returns nothing only if no key that may start a
  call has one waiting;
* counts are exact: ``pending_tasks`` and ``running`` per key, ``leased``;
  the controls read back as set;
* purge and revoke report exactly the calls they removed; a push beyond
  ``max_backlog`` raises :class:`~ranch_core.errors.BacklogFull` and stores
  nothing.

:func:`build_group_controls_machine` does the same for two-level keys, with
controls at both levels (a string key's are its group's, a pair's its
member's), against :class:`~ranch_core.testing.model.ModelControls`: a
group's cap is never exceeded by its members together, no window of ``T``
seconds holds more than ``burst + rate * T`` starts of a group or of a
member, a paused group's members never start, a pop returns nothing only if
no call may start at both levels, counts are exact at both levels
(``metadata("g")`` is the group's), ``purge_key("g")`` empties the whole
group and ``max_backlog`` holds per pair and per group.

Both machines are :class:`ControlsMachineBase`: the calls, the workers and
the checks above; each keeps its own shadow of the controls and draws its
own keys.

:data:`BAD_CONTROLS` lists bad input for every argument of the controls
(:class:`~ranch_core.testing.controls.ControlProperties` checks each).
"""

from __future__ import annotations

import itertools
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple, Type

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from ranch_core.errors import BacklogFull
from ranch_core.keys import Key, group_of, is_pair, key_text
from ranch_core.models import ScheduledTask
from ranch_core.protocols import Storage
from ranch_core.scheduler import FairScheduler
from ranch_core.testing.model import ModelControls, levels

KEYS = ["a", "b", "c"]
LEASE_SECONDS = 5.0
RATES = {"1/s": 1.0, "2/s": 2.0, "4/s": 4.0, "30/m": 0.5}
#: Slack for float arithmetic in the bucket checks: none. Every time and
#: rate is a dyadic fraction (steps of 1/8 s, intervals of 1/4 to 2 s), so
#: both the storage's and the shadow's arithmetic are exact.
EPSILON = 0.0

#: ``(method, args, kwargs, the argument the error must name)``: each must be refused.
BAD_CONTROLS: List[Tuple[str, Tuple[Any, ...], Dict[str, Any], str]] = [
    ("set_concurrency_limit", ("a", 0), {}, "limit"),
    ("set_concurrency_limit", ("a", -2), {}, "limit"),
    ("set_concurrency_limit", ("a", 1.5), {}, "limit"),
    ("set_concurrency_limit", ("a", True), {}, "limit"),
    ("set_concurrency_limit", ("a", "2"), {}, "limit"),
    ("set_concurrency_limit", ("", 1), {}, "key"),
    ("set_rate_limit", ("a", "x/s"), {}, "rate"),
    ("set_rate_limit", ("a", 10), {}, "rate"),
    ("set_rate_limit", ("a", "10/d"), {}, "rate"),
    ("set_rate_limit", ("a", "0/s"), {}, "rate"),
    ("set_rate_limit", ("a", "-1/m"), {}, "rate"),
    ("set_rate_limit", ("a", "nan/s"), {}, "rate"),
    ("set_rate_limit", ("a", "10/s"), {"burst": 0}, "burst"),
    ("set_rate_limit", ("a", "10/s"), {"burst": 1.5}, "burst"),
    ("set_rate_limit", ("a", "10/s"), {"burst": None}, "burst"),
    ("set_rate_limit", ("a", None), {"burst": 0}, "burst"),
    ("set_rate_limit", (None, "10/s"), {}, "key"),
    ("set_max_backlog", ("a", -1), {}, "limit"),
    ("set_max_backlog", ("a", 2.0), {}, "limit"),
    ("set_max_backlog", ("a", True), {}, "limit"),
    ("pause_key", ("",), {}, "key"),
    ("pause_key", (3,), {}, "key"),
    ("resume_key", (None,), {}, "key"),
    ("purge_key", ("",), {}, "key"),
    ("revoke_call", ("",), {}, "task_id"),
    ("revoke_call", (5,), {}, "task_id"),
]

#: Bad two-level keys for every control: each must be refused naming ``key``.
BAD_GROUP_CONTROLS: List[Tuple[str, Tuple[Any, ...], Dict[str, Any], str]] = [
    ("set_concurrency_limit", (("a", ""), 1), {}, "key"),
    ("set_concurrency_limit", (("a", "u1"), 0), {}, "limit"),
    ("set_rate_limit", (("", "u1"), "1/s"), {}, "key"),
    ("set_rate_limit", (("a", "u1"), "fast"), {}, "rate"),
    ("set_max_backlog", (("a", "u1", "x"), 1), {}, "key"),
    ("set_max_backlog", (("a", "u1"), -1), {}, "limit"),
    ("pause_key", (("a",),), {}, "key"),
    ("pause_key", (("a", 1),), {}, "key"),
    ("resume_key", (("a", None),), {}, "key"),
    ("purge_key", (("a", ""),), {}, "key"),
    ("purge_key", ((),), {}, "key"),
]

#: The keys of the two-level controls machine: a group with its own calls
#: and two members, a group of members only, and a group of its own calls.
GROUP_KEYS: List[Key] = ["a", ("a", "u1"), ("a", "u2"), ("b", "u1"), ("b", "u2"), "c"]
#: What the machine sets controls on: every key, and ``"b"`` (a group whose
#: string key has no calls of its own).
CONTROL_TARGETS: List[Key] = [*GROUP_KEYS, "b"]


class Bucket:
    """The shadow's token bucket: ``tokens`` as counted at ``at``."""

    def __init__(self, per_second: float, burst: int, now: float, used: float = 0.0) -> None:
        self.per_second = per_second
        self.burst = burst
        self.tokens = burst - min(used, float(burst))
        self.at = now

    def level(self, now: float) -> float:
        return min(float(self.burst), self.tokens + (now - self.at) * self.per_second)

    def take(self, now: float) -> None:
        self.tokens = self.level(now) - 1
        self.at = now


# The strategies both machines draw from (a rule's keys are each machine's own).
COUNTS = st.integers(1, 4)
EXPIRIES = st.one_of(st.none(), st.sampled_from([0.5, 3.0]))
CONCURRENCY_LIMITS = st.sampled_from([None, 1, 2, 3])
RATE_LIMITS = st.sampled_from([None, *RATES])
BURSTS = st.integers(1, 3)

#: What ``metadata(key)`` reports of the controls: limit, rate text, paused, max_backlog.
ReadBack = Tuple[Optional[int], Optional[str], bool, Optional[int]]


class ControlsMachineBase(RuleBasedStateMachine):
    """What both controls machines share: the scheduler on a fake clock, where
    each call is (waiting, leased, its worker dead), what the scheduler reports,
    the workers' rules, revoke, purge, pushes and the exact counts.

    A subclass keeps the shadow of the controls (the hooks below), sets the
    controls, and declares the rules that draw its keys (``push`` and
    ``purge`` call :meth:`_push` and :meth:`_purge`).
    """

    scheduler: FairScheduler

    def __init__(self, keys: Sequence[Key]) -> None:
        super().__init__()
        self.now = 1_000_000.0
        self.keys = list(keys)
        self.ids = itertools.count()
        #: Per key, its waiting calls: task id -> when it expires.
        self.waiting: Dict[Key, Dict[str, Optional[float]]] = {k: {} for k in keys}
        #: Leased calls: task id -> key.
        self.running: Dict[str, Key] = {}
        self.dead: Set[str] = set()
        #: Start times per control target since its rate in force was last set.
        self.starts: Dict[Key, List[float]] = {k: [] for k in keys}
        self.revoked: List[Tuple[str, str]] = []
        #: Calls reclaimed and dropped as expired by one pop (reported expired first).
        self.gone: Set[str] = set()

    def _connect(
        self, storage: Storage, default_limit: Optional[int] = None, default_rate: Optional[str] = None
    ) -> None:
        self.scheduler = FairScheduler(
            storage,
            lease_seconds=LEASE_SECONDS,
            clock=lambda: self.now,
            on_expired=self._on_expired,
            on_reclaimed=self._on_reclaimed,
            on_revoked=self._on_revoked,
            default_concurrency_limit=default_limit,
            default_rate_limit=default_rate,
        )

    # -- the shadow of the controls (each machine keeps its own) -----------------

    def _may_start(self, key: Key) -> bool:
        """Whether the controls let a call of ``key`` start now."""
        raise NotImplementedError

    def _start(self, key: Key, task_id: str) -> None:
        """Check that the controls allowed the start of ``task_id``, and count it."""
        raise NotImplementedError

    def _end(self, key: Key) -> None:
        """A lease of ``key`` ends (ack, release, requeue, reclaim)."""

    def _refusal(self, key: Key, count: int) -> Optional[Tuple[Key, int]]:
        """``(key, limit)`` whose ``max_backlog`` refuses ``count`` calls of ``key``, ``None`` if they fit."""
        raise NotImplementedError

    def _read_back(self, key: Key) -> ReadBack:
        raise NotImplementedError

    def _shadow_running(self, key: Key) -> int:
        """The calls of ``key`` running, as the shadow counts them."""
        return self._running_of(key)

    # -- what the scheduler reports ----------------------------------------------

    def _on_expired(self, task: ScheduledTask) -> None:
        assert task.expired(self.now), f"{task.task_id} reported before its expiry"
        if task.task_id in self.dead:  # put back by this pop, and dropped at once
            self.gone.add(task.task_id)
            return
        assert self.waiting[task.key].pop(task.task_id, "gone") != "gone", "expired twice"

    def _on_reclaimed(self, task: ScheduledTask) -> None:
        assert self.running.pop(task.task_id) == task.key
        assert task.task_id in self.dead, "a live worker's lease was put back"
        self.dead.discard(task.task_id)
        self._end(task.key)
        if task.task_id in self.gone:
            self.gone.discard(task.task_id)
        else:
            self.waiting[task.key][task.task_id] = task.expires_at

    def _on_revoked(self, task: ScheduledTask, reason: str) -> None:
        self.revoked.append((task.task_id, reason))

    # -- the calls ---------------------------------------------------------------

    def _covered(self, key: Key) -> List[Key]:
        """The keys whose calls ``key`` names: a group's every key, or the pair."""
        if is_pair(key):
            return [key]
        return [k for k in self.keys if group_of(k) == key]

    def _live(self, key: Key) -> List[str]:
        return [t for t, at in self.waiting[key].items() if at is None or self.now < at]

    def _running_of(self, key: Key) -> int:
        covered = self._covered(key)
        return sum(1 for k in self.running.values() if k in covered)

    def _live_ids(self) -> List[str]:
        return sorted(t for t in self.running if t not in self.dead)

    # -- producers ---------------------------------------------------------------

    def _push(self, key: Key, count: int, expiry: Optional[float]) -> None:
        ids = [f"t{next(self.ids)}" for _ in range(count)]
        refusal = self._refusal(key, count)
        try:
            if count == 1:
                self.scheduler.push(key, ids[0], task_id=ids[0], expiry=expiry)
            else:
                self.scheduler.push_many(key, ids, task_ids=ids, expiry=expiry)
        except BacklogFull as exc:
            assert refusal is not None, f"BacklogFull for {key!r}: {exc}"
            assert (exc.key, exc.limit) == refusal, f"refused by {(exc.key, exc.limit)}, not {refusal}"
            return
        assert refusal is None, f"stored {count} calls of {key!r} past the max_backlog of {refusal}"
        for task_id in ids:
            self.waiting[key][task_id] = None if expiry is None else self.now + expiry

    # -- workers -----------------------------------------------------------------

    @rule(times=st.integers(1, 3))
    def pop(self, times: int) -> None:
        for _ in range(times):
            self._pop()

    def _pop(self) -> None:
        task = self.scheduler.pop()
        if task is None:
            for key in self.keys:
                live = self._live(key)
                assert not (live and self._may_start(key)), (
                    f"pop returned nothing while {key_text(key)} may start one of {live}"
                )
            return
        key = task.key
        assert task.task_id in self.waiting[key], f"popped {task.task_id}, not waiting"
        self._start(key, task.task_id)
        del self.waiting[key][task.task_id]
        self.running[task.task_id] = key

    def _check_window(self, target: Key, burst: int, per_second: float) -> None:
        starts = self.starts[target]
        starts.append(self.now)
        for i in range(len(starts)):
            count = len(starts) - i
            span = starts[-1] - starts[i]
            assert count <= burst + per_second * span + EPSILON, (
                f"{key_text(target)} started {count} calls in {span} s at {per_second}/s, burst {burst}"
            )

    @precondition(lambda self: bool(self._live_ids()))
    @rule(data=st.data(), op=st.sampled_from(["ack", "release", "requeue"]))
    def finish(self, data: st.DataObject, op: str) -> None:
        task_id = data.draw(st.sampled_from(self._live_ids()))
        key = self.running.pop(task_id)
        self._end(key)
        if op == "ack":
            assert self.scheduler.ack(task_id)
        elif op == "release":
            assert self.scheduler.release(task_id)
            self.waiting[key][task_id] = None
        else:
            assert self.scheduler.storage.requeue(ScheduledTask(task_id, key, task_id, self.now))
            self.waiting[key][task_id] = None

    @precondition(lambda self: bool(self._live_ids()))
    @rule(data=st.data())
    def kill_worker(self, data: st.DataObject) -> None:
        self.dead.add(data.draw(st.sampled_from(self._live_ids())))

    @rule(seconds=st.sampled_from([0.125, 0.25, 0.5, 1.0, 3.0, 6.0]))
    def advance_clock(self, seconds: float) -> None:
        self.now += seconds
        for task_id in self._live_ids():  # live workers renew their leases
            assert self.scheduler.extend(task_id)

    # -- controls, purge and revoke (the storage's side) -------------------------

    def _pause(self, key: Key, paused: bool) -> None:
        if paused:
            self.scheduler.pause_key(key)
        else:
            self.scheduler.resume_key(key)

    def _purge(self, key: Key) -> None:
        self.revoked.clear()
        count = self.scheduler.purge_key(key)
        expected = sorted((t, "purged") for k in self._covered(key) for t in self.waiting[k])
        assert sorted(self.revoked) == expected, f"purge_key({key!r})"
        assert count == len(expected)
        for k in self._covered(key):
            self.waiting[k].clear()

    @rule(data=st.data())
    def revoke(self, data: st.DataObject) -> None:
        waiting = sorted(t for key in self.keys for t in self.waiting[key])
        task_id = data.draw(st.sampled_from([*waiting, *sorted(self.running), "nope"]))
        self.revoked.clear()
        expected = task_id in waiting
        assert self.scheduler.revoke_call(task_id) is expected
        assert self.revoked == ([(task_id, "revoked")] if expected else [])
        for key in self.keys:
            self.waiting[key].pop(task_id, None)

    # -- counts ------------------------------------------------------------------

    @invariant()
    def counts_are_exact(self) -> None:
        for key in self.keys:
            meta = self.scheduler.metadata(key)  # drops expired calls first (reported)
            live = sum(len(self._live(k)) for k in self._covered(key))
            assert meta.pending_tasks == live, key
            assert meta.running == self._running_of(key) == self._shadow_running(key), key
            got = (meta.concurrency_limit, meta.rate_limit, meta.paused, meta.max_backlog)
            assert got == self._read_back(key), f"{key!r}: {got} != {self._read_back(key)}"
        assert self.scheduler.status().leased == len(self.running)


def build_controls_machine(make_storage: Callable[[], Storage]) -> Type[RuleBasedStateMachine]:
    """A state machine class testing the per-key controls of storages made by ``make_storage``."""

    class ControlsMachine(ControlsMachineBase):
        def __init__(self) -> None:
            super().__init__(KEYS)
            self._connect(make_storage())
            self.limit: Dict[Key, Optional[int]] = dict.fromkeys(KEYS)
            self.rate: Dict[Key, Optional[Tuple[str, Bucket]]] = dict.fromkeys(KEYS)
            self.paused: Dict[Key, bool] = dict.fromkeys(KEYS, False)
            self.max_backlog: Dict[Key, Optional[int]] = dict.fromkeys(KEYS)

        # -- the rule, naively -------------------------------------------------

        def _may_start(self, key: Key) -> bool:
            if self.paused[key]:
                return False
            limit = self.limit[key]
            if limit is not None and self._running_of(key) >= limit:
                return False
            rate = self.rate[key]
            return rate is None or rate[1].level(self.now) >= 1 - EPSILON

        def _start(self, key: Key, task_id: str) -> None:
            assert not self.paused[key], f"popped {task_id} of paused key {key!r}"
            limit = self.limit[key]
            assert limit is None or self._running_of(key) < limit, f"{key!r} went past its cap {limit}"
            rate = self.rate[key]
            if rate is not None:
                bucket = rate[1]
                assert bucket.level(self.now) >= 1 - EPSILON, f"{key!r} started a call with its bucket empty"
                bucket.take(self.now)
                self._check_window(key, bucket.burst, bucket.per_second)

        def _refusal(self, key: Key, count: int) -> Optional[Tuple[Key, int]]:
            limit = self.max_backlog[key]
            return None if limit is None or len(self.waiting[key]) + count <= limit else (key, limit)

        def _read_back(self, key: Key) -> ReadBack:
            rate = self.rate[key]
            return (self.limit[key], rate and rate[0], self.paused[key], self.max_backlog[key])

        @initialize(
            limits=st.lists(st.sampled_from([None, 1, 2]), min_size=3, max_size=3),
            rates=st.lists(RATE_LIMITS, min_size=3, max_size=3),
            burst=BURSTS,
        )
        def configure(self, limits: List[Optional[int]], rates: List[Optional[str]], burst: int) -> None:
            for key, limit, rate in zip(KEYS, limits, rates):
                self.set_concurrency_limit(key, limit)
                self.set_rate_limit(key, rate, burst)

        # -- calls and controls, of the keys -----------------------------------

        @rule(key=st.sampled_from(KEYS), count=COUNTS, expiry=EXPIRIES)
        def push(self, key: str, count: int, expiry: Optional[float]) -> None:
            self._push(key, count, expiry)

        @rule(key=st.sampled_from(KEYS), limit=CONCURRENCY_LIMITS)
        def set_concurrency_limit(self, key: str, limit: Optional[int]) -> None:
            self.scheduler.set_concurrency_limit(key, limit)
            self.limit[key] = limit

        @rule(key=st.sampled_from(KEYS), rate=RATE_LIMITS, burst=BURSTS)
        def set_rate_limit(self, key: str, rate: Optional[str], burst: int) -> None:
            self.scheduler.set_rate_limit(key, rate, burst=burst)
            old = self.rate[key]
            if rate is None:
                self.rate[key] = None
            else:
                used = 0.0 if old is None else old[1].burst - old[1].level(self.now)
                self.rate[key] = (rate, Bucket(RATES[rate], burst, self.now, used))
            self.starts[key] = []

        @rule(key=st.sampled_from(KEYS), paused=st.booleans())
        def pause_or_resume(self, key: str, paused: bool) -> None:
            self._pause(key, paused)
            self.paused[key] = paused

        @rule(key=st.sampled_from(KEYS), limit=st.sampled_from([None, 0, 1, 3, 6]))
        def set_max_backlog(self, key: str, limit: Optional[int]) -> None:
            self.scheduler.set_max_backlog(key, limit)
            self.max_backlog[key] = limit

        @rule(key=st.sampled_from(KEYS))
        def purge(self, key: str) -> None:
            self._purge(key)

    return ControlsMachine


def _set_or_clear(own: Dict[Key, int], key: Key, value: Optional[int]) -> None:
    """Keep ``value`` as ``key``'s own setting (``None``: it has none)."""
    if value is None:
        own.pop(key, None)
    else:
        own[key] = value


def build_group_controls_machine(make_storage: Callable[[], Storage]) -> Type[RuleBasedStateMachine]:
    """A state machine class testing controls at both levels of two-level keys
    (README, "Two-level keys") on storages made by ``make_storage``, against
    :class:`~ranch_core.testing.model.ModelControls`."""

    class GroupControlsMachine(ControlsMachineBase):
        def __init__(self) -> None:
            super().__init__(CONTROL_TARGETS)
            self.model = ModelControls()

        # -- the rule: the model's ---------------------------------------------

        def _may_start(self, key: Key) -> bool:
            return self.model.may_start(key, self.now)

        def _start(self, key: Key, task_id: str) -> None:
            for target in levels(key):
                what = f"{key_text(key)} (its {'member' if is_pair(target) else 'group'} {key_text(target)})"
                assert target not in self.model.paused, f"popped {task_id} of paused {what}"
                limit = self.model.limit_of(target)
                running = self.model.running.get(target, 0)
                assert limit is None or running < limit, f"{what} went past its cap {limit}"
                bucket = self.model.bucket(target, self.now)
                assert bucket is None or bucket.level(self.now) >= 1, f"{what} started with its bucket empty"
            self.model.start(key, self.now)
            for target in levels(key):
                bucket = self.model.bucket(target, self.now)
                if bucket is not None:
                    self._check_window(target, bucket.burst, bucket.per_second)

        def _end(self, key: Key) -> None:
            self.model.end(key)

        def _refusal(self, key: Key, count: int) -> Optional[Tuple[Key, int]]:
            return self.model.refusal(key, count, {k: len(w) for k, w in self.waiting.items()})

        def _read_back(self, key: Key) -> ReadBack:
            return self.model.read_back(key)

        def _shadow_running(self, key: Key) -> int:
            return self.model.running.get(key, 0)

        @initialize(
            default_limit=st.sampled_from([None, None, 1, 2, 3]),
            default_rate=st.sampled_from([None, None, None, *RATES]),
            limits=st.lists(
                st.sampled_from([None, 1, 2]), min_size=len(CONTROL_TARGETS), max_size=len(CONTROL_TARGETS)
            ),
            rates=st.lists(
                st.sampled_from([None, None, *RATES]),
                min_size=len(CONTROL_TARGETS),
                max_size=len(CONTROL_TARGETS),
            ),
            burst=BURSTS,
        )
        def configure(
            self,
            default_limit: Optional[int],
            default_rate: Optional[str],
            limits: List[Optional[int]],
            rates: List[Optional[str]],
            burst: int,
        ) -> None:
            self._connect(make_storage(), default_limit, default_rate)
            self.model.default_limit = default_limit
            self.model.default_rate = None if default_rate is None else (default_rate, RATES[default_rate], 1)
            for key, limit, rate in zip(CONTROL_TARGETS, limits, rates):
                self.set_concurrency_limit(key, limit)
                if rate is not None:
                    self.set_rate_limit(key, rate, burst)

        # -- calls and controls, of every target -------------------------------

        @rule(key=st.sampled_from(CONTROL_TARGETS), count=COUNTS, expiry=EXPIRIES)
        def push(self, key: Key, count: int, expiry: Optional[float]) -> None:
            self._push(key, count, expiry)

        @rule(key=st.sampled_from(CONTROL_TARGETS), limit=CONCURRENCY_LIMITS)
        def set_concurrency_limit(self, key: Key, limit: Optional[int]) -> None:
            self.scheduler.set_concurrency_limit(key, limit)
            _set_or_clear(self.model.limit, key, limit)

        @rule(key=st.sampled_from(CONTROL_TARGETS), rate=RATE_LIMITS, burst=BURSTS)
        def set_rate_limit(self, key: Key, rate: Optional[str], burst: int) -> None:
            self.scheduler.set_rate_limit(key, rate, burst=burst)
            self.model.set_rate(key, None if rate is None else (rate, RATES[rate], burst), self.now)
            self.starts[key] = []

        @rule(key=st.sampled_from(CONTROL_TARGETS), paused=st.booleans())
        def pause_or_resume(self, key: Key, paused: bool) -> None:
            self._pause(key, paused)
            if paused:
                self.model.paused.add(key)
            else:
                self.model.paused.discard(key)

        @rule(key=st.sampled_from(CONTROL_TARGETS), limit=st.sampled_from([None, 0, 2, 4, 8]))
        def set_max_backlog(self, key: Key, limit: Optional[int]) -> None:
            self.scheduler.set_max_backlog(key, limit)
            _set_or_clear(self.model.max_backlog, key, limit)

        @rule(key=st.sampled_from(CONTROL_TARGETS))
        def purge(self, key: Key) -> None:
            self._purge(key)

    return GroupControlsMachine
