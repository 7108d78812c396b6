"""A deliberately naive model of a storage: the spec, written to be read.

It scans every key to select (O(K)) and keeps plain lists. Storage
implementations must behave exactly like it, step for step.

Two-level keys (:mod:`ranch_core.keys`): it selects the group with the
smallest pass among the groups with a waiting call, then that group's member
with the smallest pass; a dispatch charges both, each at its own weight.

Per-key controls at both levels (:class:`ModelControls`): a string key's
controls are its group's, a pair's its member's, and a call may start only
if its member and its group both allow it. The controls machine
(:mod:`ranch_core.testing.controls_machine`) checks storages against it;
:class:`ControlledSelection` selects under those controls (eligible groups:
a ready member and group controls that allow a start; the smallest group,
then its smallest eligible member), and the in-memory storage is checked
against it step for step.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Mapping, Optional, Set, Tuple

import attrs

from ranch_core import algorithm
from ranch_core.keys import Key, group_of, is_pair, key_order, member_of
from ranch_core.models import LRUKeyMetadata, RuntimeCost, ScheduledTask, SystemStatus
from ranch_core.protocols import LOST_AFTER, MAX_BACKOFF, RECLAIM_BATCH, UNPARK_BATCH


@attrs.define
class ModelKey:
    weight: float = algorithm.DEFAULT_WEIGHT
    pass_: float = 0.0
    seq: int = algorithm.NEVER_SERVED
    last_served: Optional[float] = None
    served_total: int = 0
    tasks: List[ScheduledTask] = attrs.field(factory=list)
    tags: Dict[str, str] = attrs.field(factory=dict)
    custom_data: Dict[str, Any] = attrs.field(factory=dict)
    #: Moving average of measured run times (``cost="runtime"``).
    run_estimate: Optional[float] = None


@attrs.define
class ModelGroup:
    weight: float = algorithm.DEFAULT_WEIGHT
    pass_: float = 0.0
    seq: int = algorithm.NEVER_SERVED
    last_served: Optional[float] = None
    served_total: int = 0
    #: The members' virtual time.
    virtual_time: float = 0.0


@attrs.define
class ReferenceModel:
    """The reference behaviour of :class:`~ranch_core.protocols.Storage`."""

    keys: Dict[Key, ModelKey] = attrs.field(factory=dict)
    groups: Dict[str, ModelGroup] = attrs.field(factory=dict)
    virtual_time: float = 0.0
    serve_seq: int = algorithm.NEVER_SERVED
    leases: Dict[str, Tuple[float, ScheduledTask]] = attrs.field(factory=dict)
    expired_total: int = 0
    served_total: int = 0
    #: Wake-up tokens: in flight (id -> deadline) and held (id -> deadline,
    #: the task id it runs or ``None`` when kept); see :meth:`token_usable`.
    flight: Dict[str, float] = attrs.field(factory=dict)
    held: Dict[str, Tuple[float, Optional[str]]] = attrs.field(factory=dict)
    #: When a wake-up was last taken from the broker; retirements of lost
    #: tokens since, and the time of the last one.
    moved: float = -math.inf
    rounds: int = 0
    retired_at: float = -math.inf
    #: The storage has per-key controls (:class:`~ranch_core.protocols.Controls`):
    #: its metadata counts each key's leased calls in ``running``.
    count_running: bool = False
    #: Delayed calls not yet due: task id -> (due time, the task as it will pop).
    delayed: Dict[str, Tuple[float, ScheduledTask]] = attrs.field(factory=dict)
    #: ``cost="runtime"``: lease task id -> (started, estimate, group
    #: weight, key weight) as charged at the pop, and the moving average of
    #: every measured run.
    charges: Dict[str, Tuple[float, float, float, float]] = attrs.field(factory=dict)
    run_average: Optional[float] = None

    def key(self, key: Key) -> ModelKey:
        self.group(group_of(key))
        return self.keys.setdefault(key, ModelKey())

    def group(self, name: str) -> ModelGroup:
        return self.groups.setdefault(name, ModelGroup())

    def members(self, name: str) -> List[Tuple[Key, ModelKey]]:
        return [(k, s) for k, s in self.keys.items() if group_of(k) == name]

    def _group_active(self, name: str) -> bool:
        return any(s.tasks for _, s in self.members(name))

    def set_weight(self, key: Key, weight: float) -> None:
        """A pair's weight is within its group; a string key's is its group's."""
        if is_pair(key):
            self.key(key).weight = weight
        else:
            self.key(key)
            self.group(group_of(key)).weight = weight

    def weight_of(self, key: Key) -> float:
        return self.key(key).weight if is_pair(key) else self.group(group_of(key)).weight

    def live_ids(self) -> List[str]:
        waiting = [t.task_id for k in self.keys.values() for t in k.tasks]
        return waiting + list(self.leases) + list(self.delayed)

    def _add(self, task: ScheduledTask, *, head: bool) -> None:
        state = self.key(task.key)
        group = self.group(group_of(task.key))
        if not self._group_active(group_of(task.key)):
            group.pass_ = algorithm.activation_pass(group.pass_, self.virtual_time)
        if not state.tasks:
            state.pass_ = algorithm.activation_pass(state.pass_, group.virtual_time)
        if head:
            state.tasks.insert(0, task)
        else:
            state.tasks.append(task)

    def push(
        self, task: ScheduledTask, weight: Optional[float], tags: Optional[Mapping[str, str]] = None
    ) -> None:
        if task.task_id in self.live_ids():
            raise ValueError("duplicate task id")
        if weight is not None:
            self.set_weight(task.key, weight)
        self.key(task.key).tags.update(tags or {})
        if task.not_before is not None and task.not_before > task.enqueued_at:
            due = task.not_before
            self.delayed[task.task_id] = (due, attrs.evolve(task, not_before=None, enqueued_at=due))
        else:
            self._add(attrs.evolve(task, not_before=None), head=False)

    def promote(self, now: float, limit: int = UNPARK_BATCH) -> None:
        """Delayed calls due at ``now``, the first ``limit`` by ``(due, task_id)``,
        join the tail of their keys."""
        due = sorted((d, tid) for tid, (d, _) in self.delayed.items() if d <= now)[:limit]
        for _, task_id in due:
            self._add(self.delayed.pop(task_id)[1], head=False)

    def expire(self, now: float, limit: int) -> List[ScheduledTask]:
        """Drop the first ``limit`` waiting tasks by ``(expires_at, task_id)`` that are due."""
        due = sorted(
            (t.expires_at, t.task_id, t) for s in self.keys.values() for t in s.tasks if t.expired(now)
        )[:limit]
        for _, _, task in due:
            self.keys[task.key].tasks.remove(task)
        self.expired_total += len(due)
        return [task for _, _, task in due]

    def reclaim(self, now: float, limit: Optional[int] = None) -> List[ScheduledTask]:
        due = sorted((deadline, tid) for tid, (deadline, _) in self.leases.items() if deadline <= now)
        if limit is not None:
            due = due[:limit]
        tasks = []
        for deadline, tid in due:
            tasks.append(self.leases.pop(tid)[1])
            self.settle_charge(tasks[-1], deadline, None, learn=False)
        for task in reversed(tasks):
            self._add(task, head=True)
        return tasks

    def pop(
        self, now: float, lease_seconds: float, runtime: Optional[RuntimeCost] = None
    ) -> Tuple[Optional[ScheduledTask], List[ScheduledTask], List[ScheduledTask]]:
        """Returns (task, expired, reclaimed), as :meth:`FairScheduler.pop` reports them;
        with ``runtime``, the key is charged its run-time estimate (:meth:`estimate`)."""
        reclaimed = self.reclaim(now, RECLAIM_BATCH)
        self.promote(now)
        expired: List[ScheduledTask] = []
        while True:
            groups = [
                (algorithm.selection_order(g.pass_, g.seq, name), name)
                for name, g in self.groups.items()
                if self._group_active(name)
            ]
            if not groups:
                return None, expired, reclaimed
            name = min(groups)[1]
            group = self.groups[name]
            members = [
                (algorithm.selection_order(s.pass_, s.seq, member_of(k)), key_order(k), k)
                for k, s in self.members(name)
                if s.tasks
            ]
            key = min(members)[2]
            state = self.keys[key]
            task = state.tasks.pop(0)
            if task.expired(now):
                self.expired_total += 1
                expired.append(task)
                continue
            self.virtual_time = group.pass_
            group.virtual_time = state.pass_
            cost = 1.0
            if runtime is not None:
                cost = self.estimate(key, runtime)
                self.charges[task.task_id] = (now, cost, group.weight, state.weight)
            group.pass_ = algorithm.charged_pass(group.pass_, cost * group.weight)
            state.pass_ = algorithm.charged_pass(state.pass_, cost * state.weight)
            self.serve_seq += 1
            state.seq = group.seq = self.serve_seq
            state.last_served = group.last_served = now
            state.served_total += 1
            group.served_total += 1
            self.served_total += 1
            self.leases[task.task_id] = (now + lease_seconds, task)
            return task, expired, reclaimed

    def ack(self, task_id: str) -> bool:
        """An ack without a time: a runtime charge keeps its estimate."""
        self.charges.pop(task_id, None)
        return self.leases.pop(task_id, None) is not None

    # -- runtime cost (README, "Fair by time") -----------------------------

    def estimate(self, key: Key, runtime: RuntimeCost) -> float:
        """Per unit of weight, what a dispatch of ``key`` is charged: its
        average, else the storage-wide one, else the first estimate."""
        own = self.key(key).run_estimate
        if own is not None:
            return own
        return runtime.first_estimate if self.run_average is None else self.run_average

    def settle_charge(self, task: ScheduledTask, now: float, cost: Optional[float], *, learn: bool) -> None:
        """The lease of ``task`` ends: its key's pass moves from the estimate
        to the run time (``cost``, else ``now`` minus the start); with
        ``learn`` the run time feeds the averages."""
        charge = self.charges.pop(task.task_id, None)
        if charge is None:
            return
        started, estimate, group_weight, weight = charge
        seconds = algorithm.runtime(now - started if cost is None else cost)
        state = self.key(task.key)
        group = self.group(group_of(task.key))
        group.pass_ = algorithm.corrected_pass(group.pass_, estimate, seconds, group_weight)
        state.pass_ = algorithm.corrected_pass(state.pass_, estimate, seconds, weight)
        if learn:
            state.run_estimate = algorithm.smoothed(state.run_estimate, seconds)
            self.run_average = algorithm.smoothed(self.run_average, seconds)

    def finish(
        self, task_id: str, now: float, cost: Optional[float], requeue: Optional[ScheduledTask] = None
    ) -> bool:
        """A finish step: the lease ends (acknowledged, or retried with
        ``requeue``), its runtime charge settled at ``now`` with ``cost``."""
        lease = self.leases.pop(task_id, None)
        if lease is None:
            return False
        self.settle_charge(lease[1], now, cost, learn=True)
        if requeue is not None:
            self._add(requeue, head=False)
        return True

    # -- wake-up tokens (ranch-core README, "Wake-ups") --------------------

    def outstanding(self) -> int:
        return len(self.flight) + len(self.held)

    def token_mint(self, ids: Any, deadline: float, limit: int, max_wakeups: int) -> None:
        """Check that a step minted as many tokens as the rule says, and record them:
        while fewer are in flight than tasks wait and fewer than ``max_wakeups`` are outstanding."""
        expected = 0
        while (
            expected < limit
            and len(self.flight) + expected < self.waiting()
            and self.outstanding() + expected < max_wakeups
        ):
            expected += 1
        assert len(ids) == expected, f"minted {len(ids)} tokens, the model says {expected}"
        for token in ids:
            assert token not in self.flight and token not in self.held, f"token {token} minted twice"
            self.flight[token] = deadline

    def token_usable(self, token: str, max_wakeups: int) -> bool:
        """In flight, or held and kept, or unknown while there is room."""
        if token in self.flight:
            return True
        if token in self.held:
            return self.held[token][1] is None
        return self.outstanding() < max_wakeups

    def token_take(self, token: str, task: Optional[ScheduledTask], deadline: float) -> None:
        """After a pop with a usable token: held for ``task``, or retired if none."""
        self.flight.pop(token, None)
        self.held.pop(token, None)
        if task is not None:
            self.held[token] = (deadline, task.task_id)

    def token_hand_back(self, token: str, deadline: float, max_wakeups: int, keep: bool) -> str:
        """The token's fate after its call: ``"kept"``, ``"passed"`` or ``"retired"``."""
        have = self.held.pop(token, None) is not None or token not in self.flight
        have = have and self.outstanding() < max_wakeups  # a bound that shrank retires the excess
        if have and keep and self.waiting() > 0:
            self.held[token] = (deadline, None)
            return "kept"
        if have and self.waiting() > len(self.flight):
            self.flight[token] = deadline
            return "passed"
        return "retired"

    def token_extend(self, task_id: str, deadline: float) -> None:
        for token, (_, bound) in list(self.held.items()):
            if bound == task_id:
                self.held[token] = (deadline, bound)

    def token_delivered(self, token: str, now: float) -> None:
        """A wake-up reached a pop: the broker queue moves, unless its token is held."""
        if token not in self.held:
            self.moved, self.rounds = now, 0

    def token_sweep(self, now: float, ttl: float) -> None:
        """Retire held tokens whose deadline is ``<= now``, and lost tokens in
        flight: past their deadline after ``ttl`` without a delivery (then
        twice as long between two such sweeps), else ``LOST_AFTER`` ttls past
        it (then :meth:`token_mint`)."""
        self.held = {t: v for t, v in self.held.items() if v[0] > now}
        quiet = now - self.moved >= ttl
        if quiet and now - self.retired_at < ttl * 2**self.rounds:
            return
        cutoff = now if quiet else now - LOST_AFTER * ttl
        kept = {t: d for t, d in self.flight.items() if d > cutoff}
        if len(kept) < len(self.flight) and quiet:
            self.rounds, self.retired_at = min(self.rounds + 1, MAX_BACKOFF), now
        self.flight = kept

    def release(self, task_id: str) -> bool:
        lease = self.leases.pop(task_id, None)
        if lease is None:
            return False
        self.charges.pop(task_id, None)
        self._add(lease[1], head=True)
        return True

    def requeue(self, task: ScheduledTask) -> bool:
        self.charges.pop(task.task_id, None)
        if self.leases.pop(task.task_id, None) is None:
            return False
        self._add(task, head=False)
        return True

    def extend(self, task_id: str, deadline: float) -> bool:
        if task_id not in self.leases:
            return False
        self.leases[task_id] = (deadline, self.leases[task_id][1])
        return True

    def remove(self, key: Key, task_id: str) -> bool:
        if task_id in self.delayed and self.delayed[task_id][1].key == key:
            del self.delayed[task_id]
            return True
        state = self.keys.get(key)
        if state is None:
            return False
        for index, task in enumerate(state.tasks):
            if task.task_id == task_id:
                del state.tasks[index]
                return True
        return False

    def charge(self, key: Key, extra: float) -> None:
        if is_pair(key):
            self.key(key).pass_ += extra
        else:  # a string key's pass is its group's
            self.key(key)
            self.group(group_of(key)).pass_ += extra

    def apply_weight_function(self, key: Key, cost: Any) -> None:
        """What :class:`FairScheduler` does after a pop with a weight function
        (it weighs the served key's group)."""
        if isinstance(cost, bool) or not isinstance(cost, (int, float)):
            return
        if not math.isfinite(cost) or cost <= 0:
            return
        key = group_of(key)
        weight = self.weight_of(key)
        if float(cost) != weight:
            self.charge(key, float(cost) - weight)

    @staticmethod
    def _pending(tasks: List[ScheduledTask], now: Optional[float]) -> int:
        return sum(1 for t in tasks if now is None or not t.expired(now))

    def waiting(self, now: Optional[float] = None) -> int:
        return sum(self._pending(s.tasks, now) for s in self.keys.values())

    def metadata(self, key: Key, now: Optional[float] = None) -> LRUKeyMetadata:
        """A pair's own; a string key's counts, served and weight are its whole
        group's (also when only pairs were pushed to the group)."""
        state = self.keys.get(key)
        if state is None and (is_pair(key) or key not in self.groups):
            return LRUKeyMetadata(key=key)
        if is_pair(key):
            assert state is not None
            covered: List[Key] = [key]
            weight, last_served, served = state.weight, state.last_served, state.served_total
        else:
            group = self.groups[group_of(key)]
            covered = [k for k, _ in self.members(group_of(key))]
            weight, last_served, served = group.weight, group.last_served, group.served_total
        running = sum(1 for _, t in self.leases.values() if t.key in covered) if self.count_running else 0
        return LRUKeyMetadata(
            key=key,
            weight=weight,
            last_served=last_served,
            pending_tasks=sum(self._pending(self.keys[k].tasks, now) for k in covered),
            served_total=served,
            tags={} if state is None else dict(state.tags),
            custom_data={} if state is None else dict(state.custom_data),
            running=running,
            delayed_tasks=sum(1 for _, t in self.delayed.values() if t.key in covered),
            run_estimate=None if state is None else state.run_estimate,
        )

    def keys_with_tag(self, name: str, value: Optional[str]) -> List[Key]:
        return sorted(
            (k for k, s in self.keys.items() if name in s.tags and (value is None or s.tags[name] == value)),
            key=key_order,
        )

    def status(self, now: Optional[float] = None) -> SystemStatus:
        return SystemStatus(
            backlog_size=self.waiting(now),
            active_keys=sum(1 for s in self.keys.values() if s.tasks),
            leased=len(self.leases),
            expired_total=self.expired_total,
            served_total=self.served_total,
            delayed=len(self.delayed),
        )


# -- per-key controls at two levels (ranch-core README, "Two-level keys") ----


@attrs.define
class ModelBucket:
    """A plain token bucket: ``tokens`` as counted at ``at`` (an independent
    formulation of the storages' GCRA rule)."""

    per_second: float
    burst: int
    tokens: float
    at: float

    def level(self, now: float) -> float:
        """The calls the bucket holds at ``now`` (at most ``burst``)."""
        return min(float(self.burst), self.tokens + (now - self.at) * self.per_second)

    def take(self, now: float) -> None:
        """One call starts at ``now``."""
        self.tokens = self.level(now) - 1
        self.at = now


#: A rate as the model keeps it: its text (``"2/s"``), calls a second, burst.
ModelRate = Tuple[str, float, int]


def levels(key: Key) -> List[Key]:
    """The *control targets* a call of ``key`` needs the leave of: its group
    (named by the string key), and for a pair the member too."""
    group = group_of(key)
    return [group, key] if is_pair(key) else [group]


@attrs.define
class ModelControls:
    """The controls, naively, at both levels of keys.

    A target is a string key (whose controls are its whole group's: every
    member and the group's own calls) or a pair (the member's own). Each
    target has its own settings (absent: the default applies: the default
    concurrency limit and rate apply to every group and every pair without a
    setting of their own; the group's own member has no controls of its own),
    a running count and, under the rate in force, a bucket. A call may start
    only if every target of :func:`levels` allows it: not paused, fewer
    running than its limit, a bucket holding a call; a start counts at both
    levels and takes from both buckets. A push beyond a pair's own
    ``max_backlog`` (checked first) or its group's (the group's waiting and
    delayed calls, every member) is refused whole.
    """

    limit: Dict[Key, int] = attrs.field(factory=dict)
    rate: Dict[Key, ModelRate] = attrs.field(factory=dict)
    paused: Set[Key] = attrs.field(factory=set)
    max_backlog: Dict[Key, int] = attrs.field(factory=dict)
    default_limit: Optional[int] = None
    default_rate: Optional[ModelRate] = None
    running: Dict[Key, int] = attrs.field(factory=dict)
    #: Per target: the rate its bucket is kept under, and the bucket.
    buckets: Dict[Key, Tuple[ModelRate, ModelBucket]] = attrs.field(factory=dict)

    def limit_of(self, target: Key) -> Optional[int]:
        """The concurrency limit in force for ``target``."""
        return self.limit.get(target, self.default_limit)

    def rate_of(self, target: Key) -> Optional[ModelRate]:
        """The rate in force for ``target``."""
        return self.rate.get(target, self.default_rate)

    def bucket(self, target: Key, now: float) -> Optional[ModelBucket]:
        """``target``'s bucket under the rate in force (full when first needed)."""
        rate = self.rate_of(target)
        if rate is None:
            self.buckets.pop(target, None)
            return None
        kept = self.buckets.get(target)
        if kept is None or kept[0] != rate:
            self.buckets[target] = kept = (rate, ModelBucket(rate[1], rate[2], float(rate[2]), now))
        return kept[1]

    def set_rate(self, target: Key, rate: Optional[ModelRate], now: float) -> None:
        """Set ``target``'s own rate (``None``: the default applies). A new
        rate keeps the calls already charged (at most its burst); no rate
        in force resets the bucket (full when a rate applies again)."""
        old = self.bucket(target, now)
        if rate is None:
            self.rate.pop(target, None)
        else:
            self.rate[target] = rate
        new = self.rate_of(target)
        if new is None:
            self.buckets.pop(target, None)
        elif old is None or self.buckets[target][0] != new:
            used = 0.0 if old is None else old.burst - old.level(now)
            tokens = new[2] - min(used, float(new[2]))
            self.buckets[target] = (new, ModelBucket(new[1], new[2], tokens, now))

    def allows(self, target: Key, now: float) -> bool:
        """Whether ``target`` lets a call start at ``now``."""
        if target in self.paused:
            return False
        limit = self.limit_of(target)
        if limit is not None and self.running.get(target, 0) >= limit:
            return False
        bucket = self.bucket(target, now)
        return bucket is None or bucket.level(now) >= 1

    def may_start(self, key: Key, now: float) -> bool:
        """Whether a call of ``key`` may start at ``now``: both levels allow it."""
        return all(self.allows(target, now) for target in levels(key))

    def start(self, key: Key, now: float) -> None:
        """A call of ``key`` starts: it counts, and takes a call from the buckets, at both levels."""
        for target in levels(key):
            self.running[target] = self.running.get(target, 0) + 1
            bucket = self.bucket(target, now)
            if bucket is not None:
                bucket.take(now)

    def end(self, key: Key) -> None:
        """A lease of ``key`` ends (ack, retry, release, reclaim): freed at both levels."""
        for target in levels(key):
            self.running[target] -= 1

    def refusal(self, key: Key, adding: int, held: Mapping[Key, int]) -> Optional[Tuple[Key, int]]:
        """``(target, limit)`` whose ``max_backlog`` refuses ``adding`` calls
        of ``key``, ``None`` if they fit; ``held`` counts each key's waiting
        and delayed calls."""
        group = group_of(key)
        own = self.max_backlog.get(key) if is_pair(key) else None
        if own is not None and held.get(key, 0) + adding > own:
            return key, own
        limit = self.max_backlog.get(group)
        in_group = sum(n for k, n in held.items() if group_of(k) == group)
        if limit is not None and in_group + adding > limit:
            return group, limit
        return None

    def read_back(self, target: Key) -> Tuple[Optional[int], Optional[str], bool, Optional[int]]:
        """What ``metadata(target)`` reports: limit, rate text, paused, max_backlog."""
        rate = self.rate_of(target)
        return (
            self.limit_of(target),
            None if rate is None else rate[0],
            target in self.paused,
            self.max_backlog.get(target),
        )


@attrs.define
class _SelectionKey:
    pass_: float = 0.0
    seq: int = algorithm.NEVER_SERVED
    tasks: List[str] = attrs.field(factory=list)
    ready: bool = False


@attrs.define
class _SelectionGroup:
    pass_: float = 0.0
    seq: int = algorithm.NEVER_SERVED
    virtual_time: float = 0.0
    eligible: bool = False


@attrs.define
class ControlledSelection:
    """Selection under controls at both levels, naively (O(K) a pop): the
    rule :class:`ReferenceModel` selects by, with :class:`ModelControls`
    (weights 1, no expiry; calls named by their task ids).

    Before each pop, every key with calls whose own controls allow a start
    is *ready* (a pair's own controls; a group's own member has none), and
    every group with a ready member whose controls allow a start is
    *eligible*; a key or a group that turns ready joins at ``max(own pass,
    virtual time)`` (parking earns no credit). The eligible group with the
    smallest pass is served, then its ready member with the smallest pass;
    the start counts, and takes from the buckets, at both levels. A storage
    notices a key or group turning ready at its next step, the model at
    the next pop: both see the same virtual time, which only pops move.
    """

    controls: ModelControls = attrs.field(factory=ModelControls)
    keys: Dict[Key, _SelectionKey] = attrs.field(factory=dict)
    groups: Dict[str, _SelectionGroup] = attrs.field(factory=dict)
    virtual_time: float = 0.0
    serve_seq: int = algorithm.NEVER_SERVED
    #: Leased calls: task id -> key.
    leases: Dict[str, Key] = attrs.field(factory=dict)

    def add(self, key: Key, task_id: str, *, head: bool = False) -> None:
        """A call of ``key`` waits: at the tail (pushed, retried) or the head (put back)."""
        state = self.keys.setdefault(key, _SelectionKey())
        self.groups.setdefault(group_of(key), _SelectionGroup())
        if head:
            state.tasks.insert(0, task_id)
        else:
            state.tasks.append(task_id)

    def _settle(self, now: float) -> None:
        for key, state in self.keys.items():
            ready = bool(state.tasks) and (not is_pair(key) or self.controls.allows(key, now))
            if ready and not state.ready:
                state.pass_ = algorithm.activation_pass(state.pass_, self.groups[group_of(key)].virtual_time)
            state.ready = ready
        for name, group in self.groups.items():
            ready_members = any(s.ready for k, s in self.keys.items() if group_of(k) == name)
            eligible = ready_members and self.controls.allows(name, now)
            if eligible and not group.eligible:
                group.pass_ = algorithm.activation_pass(group.pass_, self.virtual_time)
            group.eligible = eligible

    def pop(self, now: float) -> Optional[str]:
        """The task id a pop at ``now`` serves (leased), ``None`` if no call may start."""
        self._settle(now)
        groups = [
            (algorithm.selection_order(g.pass_, g.seq, name), name)
            for name, g in self.groups.items()
            if g.eligible
        ]
        if not groups:
            return None
        name = min(groups)[1]
        group = self.groups[name]
        members = [
            (algorithm.selection_order(s.pass_, s.seq, member_of(k)), key_order(k), k)
            for k, s in self.keys.items()
            if group_of(k) == name and s.ready
        ]
        key = min(members)[2]
        state = self.keys[key]
        task_id = state.tasks.pop(0)
        self.virtual_time, group.virtual_time = group.pass_, state.pass_
        group.pass_ = algorithm.charged_pass(group.pass_, algorithm.DEFAULT_WEIGHT)
        state.pass_ = algorithm.charged_pass(state.pass_, algorithm.DEFAULT_WEIGHT)
        self.serve_seq += 1
        state.seq = group.seq = self.serve_seq
        self.controls.start(key, now)
        self.leases[task_id] = key
        return task_id

    def end(self, task_id: str) -> Key:
        """The lease of ``task_id`` ends (ack, release, retry): freed at both levels; its key."""
        key = self.leases.pop(task_id)
        self.controls.end(key)
        return key
