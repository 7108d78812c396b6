"""The in-memory storage's per-key control steps, and how keys and groups are parked.

Controls hold at two levels (README, "Two-level keys"): a pair's are its
member's, a string key's its whole group's (:attr:`GroupState.controls
<ranch_core.backends.records.GroupState>`; the group's own member has none
of its own), and a call starts only if both allow it.

A key with waiting calls is *ready* (in its group's heap) or *parked* out
of it: paused (until :meth:`KeyControlSteps.set_control` resumes it), at its
concurrency cap (until one of its leases ends: ack, retry, release, a lease
put back), or its rate bucket empty (in the
:class:`~ranch_core.backends.controls.ParkingLot` until the time it refills;
each pop and sweep first moves due keys back, a bounded batch). A group with
a ready member is *queued* (in the storage's heap) or parked the same way by
its own controls (its members stay in its heap; a group parked by its rate
waits in a parking lot of groups). Selection therefore never looks at an
ineligible key or group twice, and stays O(log K) per level. A key or group
that comes back joins at ``max(own pass, virtual time)``, as any that turns
active: parking earns no credit.

:meth:`KeyControlSteps._settle` is the one place that decides, with
:meth:`KeyControlSteps._settle_group` for the group it calls: it is called
whenever something that bears on a key changes (a call added or taken, a
lease started or ended, a control set, a due time passed) and moves the key
and its group in or out of their heaps, and keeps the storage's count of
runnable calls, which is what wake-up tokens are minted for: per group,
``min(the group's room, its ready members' runnable calls)``.
"""

from __future__ import annotations

import heapq
import threading
from typing import TYPE_CHECKING, Any, Deque, Dict, List, Optional

from ranch_core import algorithm
from ranch_core.backends import controls
from ranch_core.backends.delayed import DelayedCalls
from ranch_core.backends.records import GroupState, HeapEntry, KeyState, Record
from ranch_core.backends.tokens import TokenBook
from ranch_core.keys import Key, group_of, is_pair, key_order, one_level
from ranch_core.models import LRUKeyMetadata, ScheduledTask, WakeupPolicy
from ranch_core.protocols import FANOUT

if TYPE_CHECKING:
    from ranch_core.backends.waiters import Wake


class KeyControlSteps:
    """Per-key controls of :class:`~ranch_core.backends.memory.InMemoryStorage` (a mixin)."""

    # Provided by InMemoryStorage.
    _lock: threading.RLock
    _keys: Dict[Key, KeyState]
    _groups: Dict[str, GroupState]
    _heap: List[HeapEntry]
    _virtual_time: float
    _runnable: int
    _clock: float
    _defaults: controls.Defaults
    _parking: controls.ParkingLot
    _group_parking: controls.ParkingLot
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
        """Put ``key`` where its own controls say at ``now`` (its group's heap,
        or parked), recount its runnable calls, then settle its group; returns
        how many runnable calls the storage gained."""
        c = state.controls
        # The own member has no controls of its own: its string key's are the group's.
        defaults = self._defaults if state.member else controls.NO_DEFAULTS
        plain = c.plain and defaults.plain
        reason, eligible_at = controls.OPEN if plain else controls.blocked(c, defaults, now)
        group = state.group
        if state.active and reason is None:
            if not state.ready:
                # It turns active or comes back: it joins the current round of its group, no earlier.
                c.scheduled = False
                state.ready = True
                state.pass_ = algorithm.activation_pass(state.pass_, group.virtual_time)
                state.version += 1
                entry = (*algorithm.selection_order(state.pass_, state.seq, state.member), state.version)
                heapq.heappush(group.heap, entry)
                group.ready += 1
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
            count = controls.room(c, defaults, len(state.tasks), now)
        group.members_count += count - c.counted
        c.counted = count
        return self._settle_group(group, now)

    def _settle_group(self, group: GroupState, now: float) -> int:
        """Put ``group`` where its controls say at ``now``: the storage's heap
        while it has a ready member and may start a call, else out of it (by
        its rate: in the group parking lot); recount its runnable calls
        (``min(its room, its ready members' counts)``); returns how many the
        storage gained."""
        c = group.controls
        plain = c.plain and self._defaults.plain
        reason, eligible_at = controls.OPEN if plain else controls.blocked(c, self._defaults, now)
        if group.ready and reason is None:
            if not group.queued:
                # It turns active or comes back: it joins the current round of groups.
                c.scheduled = False
                group.queued = True
                group.pass_ = algorithm.activation_pass(group.pass_, self._virtual_time)
                group.version += 1
                entry = (*algorithm.selection_order(group.pass_, group.seq, group.name), group.version)
                heapq.heappush(self._heap, entry)
        elif group.ready and reason == controls.RATE:
            assert eligible_at is not None
            if group.queued or not c.scheduled or c.eligible_at != eligible_at:
                earliest = self._retry_at()
                self._invalidate_group(group)
                c.scheduled = True
                self._group_parking.park(eligible_at, group.name, group.version)
                if (self._sleepers or self._wakes) and (earliest is None or eligible_at < earliest):
                    self._signal(None)  # waiters shorten their sleep to this time
        elif group.queued or c.scheduled:
            self._invalidate_group(group)
        c.parked, c.eligible_at = reason, eligible_at
        if not group.queued:
            count = 0
        elif plain:
            count = group.members_count
        else:
            count = controls.room(c, self._defaults, group.members_count, now)
        gained = count - c.counted
        c.counted = count
        self._runnable += gained
        if gained > 0 and (self._sleepers or self._wakes):
            self._signal(gained)
        return max(gained, 0)

    @staticmethod
    def _invalidate(state: KeyState) -> None:
        """Out of its group's heap and the parking lot: their entries become tombstones."""
        if state.ready:
            KeyControlSteps._unready(state)
        state.version += 1
        state.controls.scheduled = False

    @staticmethod
    def _invalidate_group(group: GroupState) -> None:
        """Out of the storage's heap and the group parking lot: their entries become tombstones."""
        group.queued = False
        group.version += 1
        group.controls.scheduled = False

    @staticmethod
    def _unready(state: KeyState) -> None:
        """The key leaves its group's heap (the caller then settles the group:
        with its last ready member it leaves the storage's heap)."""
        state.ready = False
        state.version += 1
        state.group.ready -= 1

    def _leave_heap(self, key: Key, state: KeyState, now: float) -> None:
        """The key's entry was just popped off its group's heap: park or idle it."""
        self._unready(state)
        self._settle(key, state, now)

    def _live(self, key: Key, version: int) -> bool:
        state = self._keys[key]
        return state.controls.scheduled and state.version == version

    def _live_group(self, name: Key, version: int) -> bool:
        group = self._groups[group_of(name)]
        return group.controls.scheduled and group.version == version

    def _retry_at(self) -> Optional[float]:
        """The earliest time a key or group parked by its rate becomes eligible or a delayed call is due."""
        times = []
        if len(self._parking):
            times.append(self._parking.earliest(self._live))
        if len(self._group_parking):
            times.append(self._group_parking.earliest(self._live_group))
        if len(self._delayed):
            times.append(self._delayed.earliest())
        known = [t for t in times if t is not None]
        return min(known) if known else None

    def _unpark_due(self, now: float, limit: int) -> int:
        """Move up to ``limit`` keys and groups whose bucket refilled by ``now``
        back (keys first); the runnable calls gained."""
        gained = 0
        keys = self._parking.due(now, limit, self._live) if len(self._parking) else []
        for key in keys:
            state = self._keys[key]
            state.controls.scheduled = False
            gained += self._settle(key, state, now)
        if len(self._group_parking) and len(keys) < limit:
            for name in self._group_parking.due(now, limit - len(keys), self._live_group):
                group = self._groups[group_of(name)]
                group.controls.scheduled = False
                gained += self._settle_group(group, now)
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
            if is_pair(key):
                state.controls.set(name, value)
                gained = self._settle(key, state, now)
            else:  # a string key's controls are its whole group's
                state.group.controls.set(name, value)
                gained = self._settle_group(state.group, now)
            if wakeups is None or not gained:
                return []
            return self._tokens.mint(now, wakeups, FANOUT, self._runnable)

    def purge_key(self, key: Key, limit: int) -> List[ScheduledTask]:
        """See :meth:`ranch_core.protocols.Controls.purge_key`: a string key
        purges its whole group (its own calls first, then the members in key
        order), a pair that member only."""
        with self._lock:
            purged: List[Record] = []
            if is_pair(key):
                state = self._keys.get(key)
                members = [] if state is None else [state]
            else:
                group = self._groups.get(one_level(key))
                held = [] if group is None else [s for s in group.members.values() if s.tasks or s.delayed]
                members = sorted(held, key=lambda s: key_order(s.key))
            for state in members:
                if len(purged) >= limit:
                    break
                self._purge_member(state, limit, purged)
            return [self._decode(record) for record in purged]

    def _purge_member(self, state: KeyState, limit: int, purged: List[Record]) -> None:
        """Purge ``state``'s waiting, then delayed, calls into ``purged``, up to ``limit`` in all."""
        key = state.key
        count = len(purged)
        while state.tasks and len(purged) < limit:
            record = state.tasks.popleft()
            self._unindex(record, state)
            purged.append(record)
        if len(purged) > count:
            if state.tasks:
                self._settle(key, state, self._clock)
            else:
                self._deactivate(key, state)
        if state.delayed and len(purged) < limit:
            # Then its delayed calls, earliest due first.
            for _, record in self._delayed.of_key(state.delayed, limit - len(purged)):
                self._take_delayed(record.task_id)
                purged.append(record)

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
