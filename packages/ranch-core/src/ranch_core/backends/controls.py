"""Per-key controls of the in-memory storage: what a key may run, and when.

Each key carries a :class:`KeyControls`: its own concurrency limit, rate
limit, pause flag and backlog limit (``None``: no setting of its own, the
storage's :class:`Defaults` apply), the number of its calls leased now, its
rate bucket, and where it is *parked*. :func:`blocked` says why a key may
not be served at ``now``: paused, at its cap, or its bucket empty (with the
time it refills). The storage keeps ready keys in its selection heap and
parks the others out of it, so choosing stays O(log K); keys parked by
their rate wait in a :class:`ParkingLot` ordered by the time they become
eligible again, and come back when it passes.

The rate bucket is kept as one number, the *theoretical arrival time*
(``tat``) of the generic cell rate algorithm: a bucket of ``burst`` calls
refilled at ``per_second`` is the rule "a call may start at ``now`` iff
``now >= tat - (burst - 1) * interval``", and each call moves ``tat`` to
``max(tat, now) + interval``. One float per key (one hash field in Redis),
and the time a parked key becomes eligible is the very expression the
check compares with, so "when" and "whether" never disagree by a rounding.
Over any window of ``T`` seconds a key starts at most ``burst + rate * T``
calls.
"""

from __future__ import annotations

import heapq
import math
from typing import Callable, List, Optional, Tuple

from ranch_core.keys import Key, key_order
from ranch_core.models import RateLimit

#: Why a key is parked (``None``: it is not).
PAUSED = "paused"
CAPPED = "capped"
RATE = "rate"
#: What :func:`blocked` says of a key that may start a call.
OPEN: Tuple[Optional[str], Optional[float]] = (None, None)

#: The names :meth:`~ranch_core.protocols.Controls.set_control` takes.
CONCURRENCY_LIMIT = "concurrency_limit"
RATE_LIMIT = "rate_limit"
PAUSE = "paused"
MAX_BACKLOG = "max_backlog"
#: Controls that have a storage-wide default for keys without their own setting.
DEFAULTABLE = frozenset({CONCURRENCY_LIMIT, RATE_LIMIT})
NAMES = frozenset({CONCURRENCY_LIMIT, RATE_LIMIT, PAUSE, MAX_BACKLOG})


class Defaults:
    """The controls of a key that has no setting of its own."""

    __slots__ = ("limit", "plain", "rate")

    def __init__(self) -> None:
        self.limit: Optional[int] = None
        self.rate: Optional[RateLimit] = None
        #: No default at all (the fast path of every check).
        self.plain = True

    def set(self, name: str, value: object) -> None:
        """Set the default of ``name`` (:data:`CONCURRENCY_LIMIT` or :data:`RATE_LIMIT`)."""
        if name == CONCURRENCY_LIMIT:
            self.limit = value  # type: ignore[assignment]
        elif name == RATE_LIMIT:
            self.rate = value  # type: ignore[assignment]
        else:
            raise ValueError(f"{name} has no default")
        self.plain = self.limit is None and self.rate is None


#: The controls a group's own member follows besides its group's: none (a
#: string key's controls, and the defaults, apply to its group).
NO_DEFAULTS = Defaults()


class KeyControls:
    """One key's (or group's) controls, running calls, rate bucket and parking state."""

    __slots__ = (
        "bucket_rate",
        "counted",
        "eligible_at",
        "limit",
        "max_backlog",
        "parked",
        "paused",
        "plain",
        "rate",
        "running",
        "scheduled",
        "tat",
    )

    def __init__(self) -> None:
        self.limit: Optional[int] = None
        self.rate: Optional[RateLimit] = None
        self.paused = False
        self.max_backlog: Optional[int] = None
        #: Calls of the key leased now.
        self.running = 0
        #: Theoretical arrival time of the bucket, and the rate it was kept under.
        self.tat: Optional[float] = None
        self.bucket_rate: Optional[RateLimit] = None
        #: Why the key was last found ineligible (``None``: eligible), and when it refills.
        self.parked: Optional[str] = None
        self.eligible_at: Optional[float] = None
        #: The key has a live entry in the storage's :class:`ParkingLot`.
        self.scheduled = False
        #: What the key adds to its group's count of runnable calls (a group:
        #: to the storage's).
        self.counted = 0
        #: No control of its own and no bucket: with no default either, every
        #: check is skipped (the common case stays as fast as without controls).
        self.plain = True

    def replain(self) -> None:
        """Recompute :attr:`plain` after a change."""
        self.plain = not self.paused and self.limit is None and self.rate is None and self.bucket_rate is None

    def set(self, name: str, value: object) -> None:
        """Set the key's own control ``name`` (already checked by the caller)."""
        if name == CONCURRENCY_LIMIT:
            self.limit = value  # type: ignore[assignment]
        elif name == RATE_LIMIT:
            self.rate = value  # type: ignore[assignment]
        elif name == PAUSE:
            self.paused = bool(value)
        elif name == MAX_BACKLOG:
            self.max_backlog = value  # type: ignore[assignment]
        else:
            raise ValueError(f"unknown control {name!r}")
        self.replain()


def limit_of(controls: KeyControls, defaults: Defaults) -> Optional[int]:
    """The concurrency limit in force: the key's own, else the default."""
    return defaults.limit if controls.limit is None else controls.limit


def rate_of(controls: KeyControls, defaults: Defaults) -> Optional[RateLimit]:
    """The rate limit in force: the key's own, else the default."""
    return defaults.rate if controls.rate is None else controls.rate


def _bucket(controls: KeyControls, rate: Optional[RateLimit], now: float) -> None:
    """Keep the bucket under ``rate``: a changed rate keeps the calls already
    charged to the bucket (at most the new burst), a removed one resets it (full)."""
    if controls.bucket_rate == rate:
        return
    old, controls.bucket_rate = controls.bucket_rate, rate
    if rate is None or old is None or controls.tat is None:
        controls.tat = None
    else:
        used = min(max(0.0, controls.tat - now) / old.interval, float(rate.burst))
        controls.tat = now + used * rate.interval if used > 0 else None
    controls.replain()


def _opens_at(controls: KeyControls, rate: RateLimit) -> float:
    assert controls.tat is not None
    return controls.tat - (rate.burst - 1) * rate.interval


def blocked(controls: KeyControls, defaults: Defaults, now: float) -> Tuple[Optional[str], Optional[float]]:
    """Why the key may not start a call at ``now`` (``None``: it may), and
    for :data:`RATE` the time its bucket lets the next call start."""
    if controls.plain and defaults.plain:
        return OPEN
    rate = rate_of(controls, defaults)
    # First: a rate changed or removed while the key is paused or capped
    # applies now (a removed rate resets the bucket), not when it resumes.
    _bucket(controls, rate, now)
    if controls.paused:
        return PAUSED, None
    limit = limit_of(controls, defaults)
    if limit is not None and controls.running >= limit:
        return CAPPED, None
    if rate is not None and controls.tat is not None:
        opens = _opens_at(controls, rate)
        if now < opens:
            return RATE, opens
    return OPEN


def start(controls: KeyControls, defaults: Defaults, now: float) -> None:
    """A call of the key starts at ``now``: one more running, one less in the bucket."""
    controls.running += 1
    if controls.plain and defaults.plain:
        return
    rate = rate_of(controls, defaults)
    _bucket(controls, rate, now)
    if rate is not None:
        tat = now if controls.tat is None else max(controls.tat, now)
        controls.tat = tat + rate.interval


def room(controls: KeyControls, defaults: Defaults, waiting: int, now: float) -> int:
    """How many of ``waiting`` calls of an eligible key could start at ``now``
    (at least 1): bounded by the room under its cap and in its bucket."""
    if controls.plain and defaults.plain:
        return max(waiting, 1)
    count = waiting
    limit = limit_of(controls, defaults)
    if limit is not None:
        count = min(count, limit - controls.running)
    rate = rate_of(controls, defaults)
    if rate is not None:
        # A bucket never charged (tat None) is full: it still holds only `burst` calls.
        tokens = float(rate.burst)
        if controls.tat is not None:
            tokens -= max(0.0, controls.tat - now) / rate.interval
        count = min(count, math.floor(tokens + 1e-9))
    return max(count, 1)


class ParkingLot:
    """Keys parked by their rate, earliest eligible first (then by key, as in
    Redis): ``(eligible_at, key order, version, key)`` in a heap. An entry
    whose key has moved on (its version changed) is a tombstone, dropped
    when it reaches the top."""

    __slots__ = ("_heap",)

    def __init__(self) -> None:
        self._heap: List[Tuple[float, Tuple[str, str], int, Key]] = []

    def __len__(self) -> int:
        return len(self._heap)

    def park(self, eligible_at: float, key: Key, version: int) -> None:
        """``key`` (at ``version``) becomes eligible at ``eligible_at``."""
        heapq.heappush(self._heap, (eligible_at, key_order(key), version, key))

    def earliest(self, live: Callable[[Key, int], bool]) -> Optional[float]:
        """The earliest time a live entry becomes eligible (tombstones on top are dropped)."""
        heap = self._heap
        while heap and not live(heap[0][3], heap[0][2]):
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def due(self, now: float, limit: int, live: Callable[[Key, int], bool]) -> List[Key]:
        """Take up to ``limit`` live keys whose time is ``<= now``, earliest first."""
        keys: List[Key] = []
        heap = self._heap
        while heap and heap[0][0] <= now and len(keys) < limit:
            _, _, version, key = heapq.heappop(heap)
            if live(key, version):
                keys.append(key)
        return keys
