"""The in-memory storage's per-key control steps, and how keys are parked.

A key with waiting calls is *ready* (in the selection heap) or *parked* out
of it: paused (until :meth:`KeyControlSteps.set_control` resumes it), at its
concurrency cap (until one of its leases ends: ack, retry, release, a lease
put back), or its rate bucket empty (in the
:class:`~ranch_core.backends.controls.ParkingLot` until the time it refills;
each pop and sweep first moves due keys back, a bounded batch). Selection
therefore never looks at an ineligible key twice, and stays O(log K). A key
that comes back joins at ``max(own pass, virtual time)``, as any key that
turns active: parking earns no credit.

:meth:`KeyControlSteps._settle` is the one place that decides: it is called
whenever something that bears on a key changes (a call added or taken, a
lease started or ended, a control set, a due time passed) and moves the key
in or out of the heap, and keeps the storage's count of runnable calls,
which is what wake-up tokens are minted for.
"""

from __future__ import annotations

import heapq
import threading
from typing import TYPE_CHECKING, Any, Deque, Dict, List, Optional

from ranch_core import algorithm
from ranch_core.backends import controls
from ranch_core.backends.delayed import DelayedCalls
from ranch_core.backends.records import HeapEntry, KeyState, Record
from ranch_core.backends.tokens import TokenBook
from ranch_core.keys import Key
from ranch_core.models import LRUKeyMetadata, ScheduledTask, WakeupPolicy
from ranch_core.protocols import FANOUT

if TYPE_CHECKING:
    from ranch_core.backends.waiters import Wake


class KeyControlSteps:
    """Per-key controls of :class:`~ranch_core.backends.memory.InMemoryStorage` (a mixin)."""

    # Provided by InMemoryStorage.
    _lock: threading.RLock
    _keys: Dict[Key, KeyState]
    _heap: List[HeapEntry]
    _virtual_time: float
    _runnable: int
    _clock: float
    _defaults: controls.Defaults
    _parking: controls.ParkingLot
    _delayed: DelayedCalls
    _tokens: TokenBook
    _sleepers: int
    _wakes: Deque[Wake]
    _waiting_ids: Dict[str, Key]

    if TYPE_CHECKING:

        def _state(self, key: Key) -> KeyState: ...

        def _signal(self, n: Optional[int]) -> None: ...

        def _decode(self, record: Record) -> ScheduledTask: ...

        def _take_out(self, key: Key, task_id: str) -> Record: ...

        def _deactivate(self, key: Key, state: KeyState) -> None: ...

        def _unindex(self, record: Record, state: KeyState) -> None: ...

        def _take_delayed(self, task_id: str) -> Optional[Record]: ...

    # -- placing a key -----------------------------------------------------

    def _settle(self, key: Key, state: KeyState, now: float) -> int:
        """Put ``key`` where its controls say at ``now`` (the heap, or parked)
        and recount its runnable calls; returns how many it gained."""
        c = state.controls
        plain = c.plain and self._defaults.plain
        reason, eligible_at = controls.OPEN if plain else controls.blocked(c, self._defaults, now)
        if state.active and reason is None:
            if not state.ready:
                # It turns active or comes back: it joins the current round of
                # its group, no earlier, and the group the current round of groups.
                c.scheduled = False
                state.ready = True
                group = state.group
                state.pass_ = algorithm.activation_pass(state.pass_, group.virtual_time)
                state.version += 1
                entry = (*algorithm.selection_order(state.pass_, state.seq, state.member), state.version)
                heapq.heappush(group.heap, entry)
                group.ready += 1
                if group.ready == 1:
                    group.pass_ = algorithm.activation_pass(group.pass_, self._virtual_time)
                    group.version += 1
                    entry = (*algorithm.selection_order(group.pass_, group.seq, group.name), group.version)
                    heapq.heappush(self._heap, entry)
        elif state.active and reason == controls.RATE:
            assert eligible_at is not None
            if state.ready or not c.scheduled or c.eligible_at != eligible_at:
                earliest = self._retry_at()
                self._invalidate(state)
                c.scheduled = True
                self._parking.park(eligible_at, key, state.version)
                if (self._sleepers or self._wakes) and (earliest is None or eligible_at < earliest):
                    self._signal(None)  # waiters shorten their sleep to this time
        elif state.ready or c.scheduled:
            self._invalidate(state)
        c.parked, c.eligible_at = reason, eligible_at
        if not state.ready:
            count = 0
        elif plain:
            count = len(state.tasks)
        else:
            count = controls.room(c, self._defaults, len(state.tasks), now)
        gained = count - c.counted
        c.counted = count
        self._runnable += gained
        if gained > 0 and (self._sleepers or self._wakes):
            self._signal(gained)
        return max(gained, 0)

    @staticmethod
    def _invalidate(state: KeyState) -> None:
        """Out of the heaps and the parking lot: their entries become tombstones."""
        if state.ready:
            KeyControlSteps._unready(state)
        state.version += 1
        state.controls.scheduled = False

    @staticmethod
    def _unready(state: KeyState) -> None:
        """The key leaves its group's heap, and the group the storage's with its last ready member."""
        state.ready = False
        state.version += 1
        group = state.group
        group.ready -= 1
        if not group.ready:
            group.version += 1

    def _leave_heap(self, key: Key, state: KeyState, now: float) -> None:
        """The key's entry was just popped off its group's heap: park or idle it."""
        self._unready(state)
        self._settle(key, state, now)

    def _live(self, key: Key, version: int) -> bool:
        state = self._keys[key]
        return state.controls.scheduled and state.version == version

    def _retry_at(self) -> Optional[float]:
        """The earliest time a key parked by its rate becomes eligible or a delayed call is due."""
        parked = self._parking.earliest(self._live) if len(self._parking) else None
        due = self._delayed.earliest() if len(self._delayed) else None
        if parked is None or (due is not None and due < parked):
            return due
        return parked

    def _unpark_due(self, now: float, limit: int) -> int:
        """Move up to ``limit`` keys whose bucket refilled by ``now`` back; the runnable calls gained."""
        gained = 0
        for key in self._parking.due(now, limit, self._live):
            state = self._keys[key]
            state.controls.scheduled = False
            gained += self._settle(key, state, now)
        return gained

    # -- the Controls steps ------------------------------------------------

    def set_control(
        self,
        key: Optional[Key],
        name: str,
        value: Any,
        now: float,
        *,
        wakeups: Optional[WakeupPolicy] = None,
    ) -> List[str]:
        """See :meth:`ranch_core.protocols.Controls.set_control`."""
        if name not in controls.NAMES:
            raise ValueError(f"unknown control {name!r}")
        if key is None and name not in controls.DEFAULTABLE:
            raise ValueError(f"{name} has no default")
        with self._lock:
            self._clock = now
            if key is None:
                # Keys without a setting of their own follow at their next step.
                self._defaults.set(name, value)
                return []
            state = self._state(key)
            state.controls.set(name, value)
            gained = self._settle(key, state, now)
            if wakeups is None or not gained:
                return []
            return self._tokens.mint(now, wakeups, FANOUT, self._runnable)

    def purge_key(self, key: Key, limit: int) -> List[ScheduledTask]:
        """See :meth:`ranch_core.protocols.Controls.purge_key`."""
        with self._lock:
            state = self._keys.get(key)
            purged: List[Record] = []
            while state is not None and state.tasks and len(purged) < limit:
                record = state.tasks.popleft()
                self._unindex(record, state)
                purged.append(record)
            if state is not None and purged:
                if state.tasks:
                    self._settle(key, state, self._clock)
                else:
                    self._deactivate(key, state)
            if state is not None and state.delayed and len(purged) < limit:
                # Then its delayed calls, earliest due first.
                for _, record in self._delayed.of_key(state.delayed, limit - len(purged)):
                    self._take_delayed(record.task_id)
                    purged.append(record)
            return [self._decode(record) for record in purged]

    def revoke(self, task_id: str) -> Optional[ScheduledTask]:
        """See :meth:`ranch_core.protocols.Controls.revoke`."""
        with self._lock:
            record = self._take_delayed(task_id)
            if record is not None:
                return self._decode(record)
            key = self._waiting_ids.get(task_id)
            if key is None:
                return None
            return self._decode(self._take_out(key, task_id))

    def _unseen(self, key: Key) -> LRUKeyMetadata:
        """Metadata of a key never seen: the defaults in force."""
        rate = self._defaults.rate
        return LRUKeyMetadata(
            key=key, concurrency_limit=self._defaults.limit, rate_limit=None if rate is None else rate.text
        )
