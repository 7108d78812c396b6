"""In-memory storage: one process, thread-safe, O(log K) selection.

The reference implementation of :class:`~ranch_core.protocols.Storage`. Groups
with a ready member sit in a binary heap ordered by
:func:`~ranch_core.algorithm.selection_order`, and each group's ready members
in a heap of the group's (:class:`~ranch_core.backends.records.GroupState`;
a string key is its group's one member); each key's tasks in a deque.
Waiting tasks that expire are also in an :class:`~ranch_core.backends.expiry.ExpiryIndex`
of the storage and one of their key, so that counts leave out due tasks and
:meth:`InMemoryStorage.expire` finds them without a scan.

Keys that may not run now (paused, at their concurrency cap, their rate
bucket empty) are parked out of the heap: :mod:`ranch_core.backends.parking`
holds those steps, :mod:`ranch_core.backends.controls` the rules. Delayed
calls wait for their time out of their key (:mod:`ranch_core.backends.delayed`).
Waiters sleep on a condition of the storage's lock (:mod:`ranch_core.backends.waiters`).
"""

from __future__ import annotations

import heapq
import json
import threading
from collections import deque
from typing import Any, Deque, Dict, List, Mapping, Optional, Sequence, Tuple

import attrs

from ranch_core import algorithm
from ranch_core.backends import controls
from ranch_core.backends.delayed import DelayedCalls, delayed_until
from ranch_core.backends.expiry import ExpiryIndex
from ranch_core.backends.parking import KeyControlSteps
from ranch_core.backends.records import GroupState, HeapEntry, KeyState, Record
from ranch_core.backends.tokens import TokenBook
from ranch_core.backends.waiters import Waiters, Wake
from ranch_core.errors import BacklogFull, DuplicateTask
from ranch_core.keys import Key, group_of, is_pair, key_order, member_of
from ranch_core.models import (
    Finished,
    LRUKeyMetadata,
    PopResult,
    RuntimeCost,
    ScheduledTask,
    SystemStatus,
    WakeupPolicy,
    WakeupStatus,
)
from ranch_core.protocols import EXPIRED_BATCH, FANOUT, MAX_BATCH, RECLAIM_BATCH, UNPARK_BATCH
from ranch_core.serializers import Serializer, SerializerSpec, get_serializer


class InMemoryStorage(KeyControlSteps, Waiters):
    """Storage held in this process's memory.

    ``serializer`` (default ``"json"``) is applied on push and reversed on pop,
    so a payload behaves exactly as it would in Redis; pass ``None`` to keep
    payloads as Python objects (no copy, anything goes).
    """

    def __init__(self, *, serializer: Optional[SerializerSpec] = "json") -> None:
        self._serializer: Optional[Serializer] = None if serializer is None else get_serializer(serializer)
        self._lock = threading.RLock()
        self._ready = threading.Condition(self._lock)
        self._sleepers = 0
        self._wakes: Deque[Wake] = deque()
        self._keys: Dict[Key, KeyState] = {}
        self._groups: Dict[str, GroupState] = {}
        #: The groups with a ready member, by the group's pass.
        self._heap: List[HeapEntry] = []
        self._virtual_time = 0.0
        self._serve_seq = algorithm.NEVER_SERVED
        self._leases: Dict[str, Tuple[float, Record]] = {}
        self._lease_heap: List[Tuple[float, str]] = []
        self._waiting_ids: Dict[str, Key] = {}
        self._tag_index: Dict[str, Dict[Key, str]] = {}
        self._expiring = ExpiryIndex()
        self._waiting = 0
        self._active = 0
        self._expired_total = 0
        self._served_total = 0
        self._tokens = TokenBook()
        self._defaults = controls.Defaults()
        self._parking = controls.ParkingLot()
        #: Groups parked by their own rate (a string key's).
        self._group_parking = controls.ParkingLot()
        self._delayed = DelayedCalls()
        #: Waiting calls that could start now (calls of parked keys left out):
        #: what wake-up tokens are minted for.
        self._runnable = 0
        #: The latest time a step was given, for steps that take none (ack).
        self._clock = 0.0
        #: ``cost="runtime"``: lease task id -> (started, estimate charged,
        #: group weight and key weight charged at), and the moving average of
        #: every measured run.
        self._charges: Dict[str, Tuple[float, float, float, float]] = {}
        self._run_average: Optional[float] = None

    # -- helpers -----------------------------------------------------------

    def _state(self, key: Key) -> KeyState:
        state = self._keys.get(key)
        if state is None:
            name = group_of(key)
            group = self._groups.get(name)
            if group is None:
                group = self._groups[name] = GroupState(name)
            state = self._keys[key] = group.members[member_of(key)] = KeyState(key, group)
        return state

    def _enqueue_heap(self, key: Key, state: KeyState) -> None:
        """The ready key's pass changed: re-place it in its group, and the group."""
        state.version += 1
        group = state.group
        heapq.heappush(
            group.heap, (*algorithm.selection_order(state.pass_, state.seq, state.member), state.version)
        )
        if group.queued:
            self._enqueue_group(group)

    def _deactivate(self, key: Key, state: KeyState) -> None:
        """The key's last waiting call left: out of the heap and the parking lot."""
        state.active = False
        self._active -= 1
        self._settle(key, state, self._clock)

    def _enqueue_group(self, group: GroupState) -> None:
        """The ready group's pass changed: re-place it."""
        group.version += 1
        heapq.heappush(
            self._heap, (*algorithm.selection_order(group.pass_, group.seq, group.name), group.version)
        )

    def _top(self) -> Optional[KeyState]:
        """The fair choice: the first member of the first group (tombstones dropped)."""
        heap = self._heap
        while heap:
            *_, name, version = heap[0]
            group = self._groups[name]
            if group.queued and group.version == version:
                members = group.heap
                while True:
                    *_, member, member_version = members[0]
                    state = group.members[member]
                    if state.ready and state.version == member_version:
                        return state
                    heapq.heappop(members)
            heapq.heappop(heap)
        return None

    def _decode(self, record: Record) -> ScheduledTask:
        payload = record.data if self._serializer is None else self._serializer.loads(record.data)
        return ScheduledTask(
            task_id=record.task_id,
            key=record.key,
            payload=payload,
            enqueued_at=record.enqueued_at,
            expires_at=record.expires_at,
        )

    def _wait(self, record: Record, now: float, *, head: bool) -> int:
        """Make ``record`` wait in its key, at the head or the tail; the
        runnable calls gained (0 if its key is parked)."""
        state = self._state(record.key)
        if head:
            state.tasks.appendleft(record)
        else:
            state.tasks.append(record)
        self._waiting_ids[record.task_id] = record.key
        self._waiting += 1
        state.group.pending += 1
        if record.expires_at is not None:
            self._expiring.add(record.expires_at, record.task_id)
            state.expiring.add(record.expires_at, record.task_id)
            state.group.expiring.add(record.expires_at, record.task_id)
        if not state.active:
            state.active = True
            self._active += 1
        return self._settle(record.key, state, now)

    def _unindex(self, record: Record, state: KeyState) -> None:
        """Forget a record that stops waiting (served, dropped or removed)."""
        del self._waiting_ids[record.task_id]
        self._waiting -= 1
        state.group.pending -= 1
        if record.expires_at is not None:
            self._expiring.discard(record.expires_at, record.task_id)
            state.expiring.discard(record.expires_at, record.task_id)
            state.group.expiring.discard(record.expires_at, record.task_id)

    def _put_back(self, record: Record, now: float) -> int:
        """A lease ended without finishing its call: back to the head of its key."""
        self._end_lease(record)
        return self._wait(record, now, head=True)

    def _end_lease(self, record: Record) -> None:
        """A lease ends: one call less running, in its key and in its group."""
        state = self._state(record.key)
        state.controls.running -= 1
        state.group.controls.running -= 1

    def _reclaim(self, now: float, limit: Optional[int]) -> List[ScheduledTask]:
        due: List[Record] = []
        while self._lease_heap and self._lease_heap[0][0] <= now:
            if limit is not None and len(due) >= limit:
                break
            deadline, task_id = heapq.heappop(self._lease_heap)
            lease = self._leases.get(task_id)
            if lease is not None and lease[0] == deadline:
                del self._leases[task_id]
                if self._charges:
                    self._settle_charge(lease[1], deadline, None, learn=False)  # killed: its lease time
                due.append(lease[1])
        # Re-insert latest first so the earliest lease ends at the head.
        for record in reversed(due):
            self._put_back(record, now)
        return [self._decode(record) for record in due]

    # -- Backlog -----------------------------------------------------------

    def push(
        self,
        task: ScheduledTask,
        *,
        weight: Optional[float] = None,
        tags: Optional[Mapping[str, str]] = None,
        wakeups: Optional[WakeupPolicy] = None,
    ) -> List[str]:
        return self.push_many([task], weight=weight, tags=tags, wakeups=wakeups)

    def push_many(
        self,
        tasks: Sequence[ScheduledTask],
        *,
        weight: Optional[float] = None,
        tags: Optional[Mapping[str, str]] = None,
        wakeups: Optional[WakeupPolicy] = None,
    ) -> List[str]:
        tasks = list(tasks)
        if not tasks:
            return []
        if len(tasks) > MAX_BATCH:
            raise ValueError(f"push_many takes at most {MAX_BATCH} tasks, not {len(tasks)}")
        key = tasks[0].key
        if any(task.key != key for task in tasks):
            raise ValueError("push_many takes tasks of one key")
        due = delayed_until(tasks)
        ids = [task.task_id for task in tasks]
        if len(set(ids)) != len(ids):
            raise DuplicateTask("push_many names one task_id twice")
        serializer = self._serializer
        data = [task.payload if serializer is None else serializer.dumps(task.payload) for task in tasks]
        with self._lock:
            for task_id in ids:
                if task_id in self._waiting_ids or task_id in self._leases or task_id in self._delayed:
                    raise DuplicateTask(f"task_id {task_id!r} is already waiting or leased")
            self._check_backlog(key, len(tasks))
            state = self._state(key)
            if weight is not None:
                self._weigh(state, weight)
            for name, value in (tags or {}).items():
                self._tag(key, state, name, value)
            if due is not None:
                return self._delay(state, tasks, data, due, wakeups)
            for task, encoded in zip(tasks, data):
                record = Record(task.task_id, key, encoded, task.enqueued_at, task.expires_at)
                self._wait(record, task.enqueued_at, head=False)
            if wakeups is None:
                return []
            return self._tokens.mint(tasks[-1].enqueued_at, wakeups, 1, self._runnable)

    def _check_backlog(self, key: Key, adding: int) -> None:
        """Raise :class:`BacklogFull` if ``adding`` calls of ``key`` do not fit
        under a pair's own ``max_backlog`` or its group's (lock held)."""
        limits: List[Tuple[Key, Optional[int], int]] = []
        known = self._keys.get(key)
        if known is not None and is_pair(key):
            limits.append((key, known.controls.max_backlog, len(known.tasks) + len(known.delayed)))
        group = self._groups.get(group_of(key))
        if group is not None:
            limits.append((group.name, group.controls.max_backlog, group.pending + group.delayed))
        for target, limit, held in limits:
            if limit is not None and held + adding > limit:
                raise BacklogFull(
                    f"key {target!r} holds {held} waiting calls, its max_backlog is {limit}: "
                    f"{adding} more refused",
                    key=target,
                    limit=limit,
                )

    def _delay(
        self,
        state: KeyState,
        tasks: Sequence[ScheduledTask],
        data: Sequence[Any],
        due: float,
        wakeups: Optional[WakeupPolicy],
    ) -> List[str]:
        """Keep delayed calls until ``due`` (lock held); a token deferred to
        ``due`` if the caller can publish it later and none is due sooner."""
        earliest = self._retry_at()
        for task, encoded in zip(tasks, data):
            self._delayed.add(due, Record(task.task_id, task.key, encoded, task.enqueued_at, task.expires_at))
            state.delayed[task.task_id] = due
        state.group.delayed += len(tasks)
        if (self._sleepers or self._wakes) and (earliest is None or due < earliest):
            self._signal(None)  # waiters shorten their sleep to this time
        if wakeups is None or not wakeups.defer:
            return []
        return self._tokens.defer_new(due, wakeups)

    def _promote_due(self, now: float, limit: int) -> int:
        """Move up to ``limit`` delayed calls due at ``now`` to the tail of
        their keys, as a push at ``now``; the runnable calls gained."""
        gained = 0
        for record in self._delayed.due(now, limit):
            state = self._keys[record.key]
            del state.delayed[record.task_id]
            state.group.delayed -= 1
            gained += self._wait(record, now, head=False)
        return gained

    def _take_delayed(self, task_id: str) -> Optional[Record]:
        """Remove a delayed call (lock held); ``None`` if it is not delayed."""
        entry = self._delayed.take(task_id)
        if entry is None:
            return None
        state = self._keys[entry[1].key]
        del state.delayed[task_id]
        state.group.delayed -= 1
        return entry[1]

    def pop(
        self,
        now: float,
        lease_seconds: float,
        *,
        token: Optional[str] = None,
        wakeups: Optional[WakeupPolicy] = None,
        runtime: Optional[RuntimeCost] = None,
    ) -> PopResult:
        if token is not None and wakeups is None:
            raise ValueError("pop with a token needs wakeups (a WakeupPolicy)")
        with self._lock:
            if token is None or wakeups is None:
                return self._pop(now, lease_seconds, runtime)
            tokens = self._tokens
            tokens.delivered(token, now)
            if not tokens.usable(token, wakeups):
                return PopResult(None)
            result = self._pop(now, lease_seconds, runtime)
            task = result.task
            if task is not None:
                tokens.hold(token, task.task_id, now + lease_seconds)
                return attrs.evolve(result, minted=tuple(tokens.mint(now, wakeups, FANOUT, self._runnable)))
            if not result.expired:
                # Nothing runnable: kept for the time a rate-limited call can
                # start (if its worker can publish it later), else retired.
                if result.retry_at is not None and wakeups.defer and tokens.defer(token, result.retry_at):
                    return attrs.evolve(result, deferred=True)
                tokens.retire(token)
            return result

    def _pop(self, now: float, lease_seconds: float, runtime: Optional[RuntimeCost] = None) -> PopResult:
        """The pop of :meth:`pop` (lock held)."""
        self._clock = now
        lease_heap = self._lease_heap
        reclaimed = self._reclaim(now, RECLAIM_BATCH) if lease_heap and lease_heap[0][0] <= now else []
        if len(self._parking) or len(self._group_parking):
            self._unpark_due(now, UNPARK_BATCH)
        if len(self._delayed):
            self._promote_due(now, UNPARK_BATCH)
        expired: List[ScheduledTask] = []
        while True:
            state = self._top()
            if state is None:
                return PopResult(None, tuple(expired), tuple(reclaimed), retry_at=self._retry_at())
            key, group = state.key, state.group
            defaults = self._defaults if state.member else controls.NO_DEFAULTS
            plain = state.controls.plain and defaults.plain
            group_plain = group.controls.plain and self._defaults.plain
            if not group_plain and controls.blocked(group.controls, self._defaults, now)[0] is not None:
                # A default changed since the group was placed: park it now, once.
                self._settle_group(group, now)
                continue
            if not plain and controls.blocked(state.controls, defaults, now)[0] is not None:
                # The same for the key.
                heapq.heappop(group.heap)
                self._leave_heap(key, state, now)
                continue
            record = state.tasks.popleft()
            self._unindex(record, state)
            if record.expires_at is not None and now >= record.expires_at:
                self._expired_total += 1
                expired.append(self._decode(record))
                if not state.tasks:
                    heapq.heappop(group.heap)
                    self._deactivate(key, state)
                else:
                    self._settle(key, state, now)
                if len(expired) >= EXPIRED_BATCH:
                    return PopResult(None, tuple(expired), tuple(reclaimed))
                continue
            # Serve the group among the groups, then the key among its group's members.
            self._virtual_time = group.pass_
            group.virtual_time = state.pass_
            cost = 1.0
            if runtime is not None:
                cost = self._estimate(state, runtime)
                self._charges[record.task_id] = (now, cost, group.weight, state.weight)
            group.pass_ = algorithm.charged_pass(group.pass_, cost * group.weight)
            state.pass_ = algorithm.charged_pass(state.pass_, cost * state.weight)
            self._serve_seq += 1
            state.seq = group.seq = self._serve_seq
            state.last_served = group.last_served = now
            state.served_total += 1
            group.served_total += 1
            self._served_total += 1
            # The call counts, and takes from the buckets, at both levels.
            if plain:
                state.controls.running += 1
            else:
                controls.start(state.controls, defaults, now)
            if group_plain:
                group.controls.running += 1
            else:
                controls.start(group.controls, self._defaults, now)
            deadline = now + lease_seconds
            self._new_deadline(deadline)
            self._leases[record.task_id] = (deadline, record)
            heapq.heappush(self._lease_heap, (deadline, record.task_id))
            if state.tasks and (plain or controls.blocked(state.controls, defaults, now)[0] is None):
                # The served key is its group's top: re-sift it in one step.
                state.version += 1
                entry = (*algorithm.selection_order(state.pass_, state.seq, state.member), state.version)
                heapq.heapreplace(group.heap, entry)
                self._settle(key, state, now)
            else:
                heapq.heappop(group.heap)
                if not state.tasks:
                    state.active = False
                    self._active -= 1
                self._leave_heap(key, state, now)  # parked at its cap or by its rate, or idle
            # The served group is the heap's top: re-sift it, or drop it (settled
            # out above: with its last ready member, or parked by its controls).
            if group.queued:
                group.version += 1
                entry = (*algorithm.selection_order(group.pass_, group.seq, group.name), group.version)
                heapq.heapreplace(self._heap, entry)
            else:
                heapq.heappop(self._heap)
            return PopResult(self._decode(record), tuple(expired), tuple(reclaimed))

    def _estimate(self, state: KeyState, runtime: RuntimeCost) -> float:
        """What a dispatch of the key is charged per unit of weight."""
        if state.run_estimate is not None:
            return state.run_estimate
        return runtime.first_estimate if self._run_average is None else self._run_average

    def _settle_charge(self, record: Record, now: float, cost: Optional[float], *, learn: bool) -> None:
        """A lease charged by run time ends (lock held): correct the key's
        pass to the run time (``cost``, else ``now`` minus the start) and,
        with ``learn``, fold it into the averages."""
        charge = self._charges.pop(record.task_id, None)
        if charge is None:
            return
        started, estimate, group_weight, weight = charge
        seconds = algorithm.runtime(now - started if cost is None else cost)
        state = self._keys[record.key]
        group = state.group
        group.pass_ = algorithm.corrected_pass(group.pass_, estimate, seconds, group_weight)
        state.pass_ = algorithm.corrected_pass(state.pass_, estimate, seconds, weight)
        if state.ready:
            self._enqueue_heap(record.key, state)
        elif group.queued:
            self._enqueue_group(group)
        if learn:
            state.run_estimate = algorithm.smoothed(state.run_estimate, seconds)
            self._run_average = algorithm.smoothed(self._run_average, seconds)

    def run_estimate(self, key: Key) -> Optional[float]:
        with self._lock:
            state = self._keys.get(key)
            return None if state is None else state.run_estimate

    def ack(self, task_id: str) -> bool:
        with self._lock:
            self._charges.pop(task_id, None)  # no time given: the estimate stands
            return self._ack(task_id, self._clock)[0]

    def _ack(self, task_id: str, now: float, cost: Optional[float] = None) -> Tuple[bool, int]:
        """Finish a lease; whether it was held, and the runnable calls its key gained."""
        lease = self._leases.pop(task_id, None)
        if lease is None:
            return False, 0
        if self._charges:
            self._settle_charge(lease[1], now, cost, learn=True)
        if len(self._lease_heap) > 2 * len(self._leases) + 1024:
            # Drop the tombstones of finished leases so the heap stays small.
            self._lease_heap = [(d, t) for t, (d, _) in self._leases.items()]
            heapq.heapify(self._lease_heap)
        record = lease[1]
        self._end_lease(record)
        return True, self._settle(record.key, self._keys[record.key], now)

    def finish(
        self,
        task_id: str,
        now: float,
        *,
        requeue: Optional[ScheduledTask] = None,
        token: Optional[str] = None,
        wakeups: Optional[WakeupPolicy] = None,
        keep_token: bool = False,
        failed: bool = False,
        cost: Optional[float] = None,
    ) -> Finished:
        if requeue is not None and requeue.task_id != task_id:
            raise ValueError("finish: requeue.task_id must be task_id")
        data = None if requeue is None else self._encode(requeue.payload)
        with self._lock:
            self._clock = now
            if requeue is not None:
                done, gained = self._requeue(requeue, data, now, cost)
            else:
                done, gained = self._ack(task_id, now, cost)
            if wakeups is None:
                return Finished(done)
            if token is None:
                # A retry, or a call whose end let its key run again (its cap freed).
                wanted = (requeue is not None and done) or gained > 0
                minted = self._tokens.mint(now, wakeups, 1, self._runnable) if wanted else []
                return Finished(done, tuple(minted))
            finished = self._tokens.hand_back(token, now, wakeups, keep_token, self._runnable, self._retry_at)
            return attrs.evolve(finished, done=done)

    def release_token(self, token: str, now: float, wakeups: WakeupPolicy) -> List[str]:
        with self._lock:
            return list(self._tokens.hand_back(token, now, wakeups, False, self._runnable).publish)

    def sweep_wakeups(self, now: float, wakeups: WakeupPolicy) -> List[str]:
        with self._lock:
            self._clock = now
            self._unpark_due(now, UNPARK_BATCH)  # keys whose bucket refilled run again
            self._promote_due(now, UNPARK_BATCH)  # delayed calls that are due join their keys
            self._tokens.sweep(now, wakeups.ttl)
            return self._tokens.mint(now, wakeups, wakeups.max_wakeups, self._runnable)

    def wakeup_status(self) -> WakeupStatus:
        with self._lock:
            return self._tokens.status()

    def register_slots(self, worker: str, slots: int, now: float, ttl: float) -> int:
        with self._lock:
            return self._tokens.register_slots(worker, slots, now, ttl)

    def live_slots(self, now: float) -> int:
        with self._lock:
            return self._tokens.live_slots(now)

    def release(self, task_id: str) -> bool:
        with self._lock:
            lease = self._leases.pop(task_id, None)
            if lease is None:
                return False
            self._charges.pop(task_id, None)  # a released call keeps the estimate it was charged
            self._put_back(lease[1], self._clock)
            return True

    def _encode(self, payload: Any) -> Any:
        return payload if self._serializer is None else self._serializer.dumps(payload)

    def requeue(self, task: ScheduledTask) -> bool:
        data = self._encode(task.payload)
        with self._lock:
            self._charges.pop(task.task_id, None)  # no time given: the estimate stands
            return self._requeue(task, data, self._clock)[0]

    def _requeue(
        self, task: ScheduledTask, data: Any, now: float, cost: Optional[float] = None
    ) -> Tuple[bool, int]:
        """End the lease and append the retry (``max_backlog`` does not apply:
        the call was let in already); whether the lease was held, and the
        runnable calls gained."""
        lease = self._leases.pop(task.task_id, None)
        if lease is None:
            return False, 0
        if self._charges:
            self._settle_charge(lease[1], now, cost, learn=True)
        self._end_lease(lease[1])
        gained = self._settle(lease[1].key, self._keys[lease[1].key], now)
        record = Record(task.task_id, task.key, data, task.enqueued_at, task.expires_at)
        return True, gained + self._wait(record, now, head=False)

    def extend(self, task_id: str, deadline: float) -> bool:
        with self._lock:
            lease = self._leases.get(task_id)
            if lease is None:
                return False
            self._new_deadline(deadline)
            self._leases[task_id] = (deadline, lease[1])
            heapq.heappush(self._lease_heap, (deadline, task_id))
            self._tokens.extend(task_id, deadline)
            return True

    def reclaim(self, now: float) -> List[ScheduledTask]:
        with self._lock:
            return self._reclaim(now, None)

    def remove(self, key: Key, task_id: str) -> bool:
        with self._lock:
            entry = self._delayed.records.get(task_id)
            if entry is not None and entry[1].key == key:
                self._take_delayed(task_id)
                return True
            if self._waiting_ids.get(task_id) != key:
                return False
            self._take_out(key, task_id)
            return True

    def _take_out(self, key: Key, task_id: str) -> Record:
        """Delete a waiting record of ``key`` (lock held; it is there)."""
        state = self._keys[key]
        # Scan from the tail: a failed publish removes the task it just pushed.
        for index in range(len(state.tasks) - 1, -1, -1):
            if state.tasks[index].task_id == task_id:
                record = state.tasks[index]
                self._unindex(record, state)
                del state.tasks[index]
                break
        if state.tasks:
            self._settle(key, state, self._clock)
        else:
            self._deactivate(key, state)
        return record

    def expire(self, now: float, limit: int) -> List[ScheduledTask]:
        with self._lock:
            dropped: List[ScheduledTask] = []
            for _, task_id in self._expiring.due(now, limit):
                key = self._waiting_ids[task_id]
                state = self._keys[key]
                # Scan from the head: the oldest tasks are the ones that expire.
                index = next(i for i, r in enumerate(state.tasks) if r.task_id == task_id)
                record = state.tasks[index]
                self._unindex(record, state)
                del state.tasks[index]
                if state.tasks:
                    self._settle(key, state, now)
                else:
                    self._deactivate(key, state)
                self._expired_total += 1
                dropped.append(self._decode(record))
            return dropped

    def charge(self, key: Key, extra: float) -> None:
        with self._lock:
            state = self._state(key)
            if is_pair(key):
                state.pass_ += extra
                if state.ready:
                    self._enqueue_heap(key, state)
            else:  # a string key's pass is its group's
                group = state.group
                group.pass_ += extra
                if group.queued:
                    self._enqueue_group(group)

    def waiting(self, now: Optional[float] = None) -> int:
        with self._lock:
            return self._waiting - (0 if now is None else self._expiring.count_due(now))

    # -- Tracker -----------------------------------------------------------

    def set_weight(self, key: Key, weight: float) -> None:
        with self._lock:
            self._weigh(self._state(key), weight)

    @staticmethod
    def _weigh(state: KeyState, weight: float) -> None:
        """Weight a pair within its group, a string key's group among the groups."""
        if is_pair(state.key):
            state.weight = weight
        else:
            state.group.weight = weight

    def set_custom_data(self, key: Key, name: str, value: Any) -> None:
        # Same rule as a shared storage: custom data must survive JSON.
        try:
            value = json.loads(json.dumps(value, allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"custom data {name!r} cannot be encoded as JSON: {exc}") from None
        with self._lock:
            self._state(key).custom_data[name] = value

    def _tag(self, key: Key, state: KeyState, name: str, value: str) -> None:
        state.tags[name] = value
        self._tag_index.setdefault(name, {})[key] = value

    def add_tag(self, key: Key, name: str, value: str) -> None:
        with self._lock:
            self._tag(key, self._state(key), name, value)

    def keys_with_tag(self, name: str, value: Optional[str] = None) -> List[Key]:
        with self._lock:
            tagged = self._tag_index.get(name, {})
            return sorted((k for k, v in tagged.items() if value is None or v == value), key=key_order)

    def metadata(self, key: Key, now: Optional[float] = None) -> LRUKeyMetadata:
        with self._lock:
            state = self._keys.get(key)
            if is_pair(key):
                if state is None:
                    return self._unseen(key)
                due = 0 if now is None else state.expiring.count_due(now)
                return attrs.evolve(
                    self._own(key, state, state.controls, self._defaults),
                    weight=state.weight,
                    last_served=state.last_served,
                    pending_tasks=len(state.tasks) - due,
                    served_total=state.served_total,
                    running=state.controls.running,
                    delayed_tasks=len(state.delayed),
                )
            group = self._groups.get(group_of(key))
            if group is None:
                return self._unseen(key)
            # A string key's counts, served, weight and controls are its whole
            # group's (also when only pairs were pushed to the group): kept
            # as sums, so this is O(1) however many members the group has.
            due = 0 if now is None else group.expiring.count_due(now)
            return attrs.evolve(
                self._own(key, state, group.controls, self._defaults),
                weight=group.weight,
                last_served=group.last_served,
                pending_tasks=group.pending - due,
                served_total=group.served_total,
                running=group.controls.running,
                delayed_tasks=group.delayed,
            )

    @staticmethod
    def _own(
        key: Key, state: Optional[KeyState], own: controls.KeyControls, defaults: controls.Defaults
    ) -> LRUKeyMetadata:
        """The key's own tracker data, and the controls ``own`` in force."""
        rate = controls.rate_of(own, defaults)
        return LRUKeyMetadata(
            key=key,
            tags={} if state is None else dict(state.tags),
            custom_data={} if state is None else dict(state.custom_data),
            concurrency_limit=controls.limit_of(own, defaults),
            rate_limit=None if rate is None else rate.text,
            paused=own.paused,
            max_backlog=own.max_backlog,
            run_estimate=None if state is None else state.run_estimate,
        )

    def status(self, now: Optional[float] = None) -> SystemStatus:
        with self._lock:
            return SystemStatus(
                backlog_size=self.waiting(now),
                active_keys=self._active,
                leased=len(self._leases),
                expired_total=self._expired_total,
                served_total=self._served_total,
                delayed=len(self._delayed),
            )
