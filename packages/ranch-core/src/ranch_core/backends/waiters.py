"""How the in-memory storage's waiters sleep and wake (a mixin of
:class:`~ranch_core.backends.memory.InMemoryStorage`).

Waiters (:meth:`Waiters.wait` for threads, :meth:`Waiters.subscribe` for
event loops) sleep on a condition of the storage's lock: every step that
makes calls runnable signals it (one waiter per call gained), and a waiter's
sleep ends by itself at the earliest lease deadline or the earliest time a
key parked by its rate becomes eligible, when a call becomes runnable with
no step at all.
"""

from __future__ import annotations

import heapq
import threading
from typing import Callable, Deque, Dict, List, Optional, Tuple

from ranch_core.backends.records import Record

#: A callback :meth:`Waiters.subscribe` calls (once, lock held) when a call may be runnable.
Wake = Callable[[], None]


class Waiters:
    """Blocking waits on the storage's lock (see the module docstring)."""

    # Provided by InMemoryStorage.
    _lock: threading.RLock
    _ready: threading.Condition
    _sleepers: int
    _wakes: Deque[Wake]
    _runnable: int
    _leases: Dict[str, Tuple[float, Record]]
    _lease_heap: List[Tuple[float, str]]

    def _retry_at(self) -> Optional[float]:
        raise NotImplementedError

    def _signal(self, n: Optional[int]) -> None:
        """Wake ``n`` waiters of each kind (``None``: all); lock held."""
        if self._sleepers:
            if n is None:
                self._ready.notify_all()
            else:
                self._ready.notify(n)
        wakes = self._wakes
        for _ in range(len(wakes) if n is None else min(n, len(wakes))):
            wakes.popleft()()

    def _new_deadline(self, deadline: float) -> None:
        """A lease now ends at ``deadline``: waiters sleeping past it recompute their sleep."""
        if (self._sleepers or self._wakes) and (not self._lease_heap or deadline < self._lease_heap[0][0]):
            self._signal(None)

    def _may_run(self, now: float) -> Tuple[bool, Optional[float]]:
        """Whether a call may be runnable at ``now``; else the seconds until
        the earliest lease deadline or the earliest time a key parked by its
        rate becomes eligible (``None``: neither). Lock held."""
        if self._runnable:
            return True, None
        heap = self._lease_heap
        while heap:  # drop the tombstones of finished or moved leases
            lease = self._leases.get(heap[0][1])
            if lease is not None and lease[0] == heap[0][0]:
                break
            heapq.heappop(heap)
        times = [heap[0][0]] if heap else []
        eligible_at = self._retry_at()
        if eligible_at is not None:
            times.append(eligible_at)
        if not times:
            return False, None
        until = min(times) - now
        return until <= 0, until

    def wait(self, now: float, timeout: Optional[float]) -> bool:
        """Block this thread until a call may be runnable or ``timeout`` passes
        (see :meth:`ranch_core.protocols.Backlog.wait`)."""
        with self._ready:
            ready, until = self._may_run(now)
            if ready:
                return True
            if until is not None and (timeout is None or until < timeout):
                timeout, capped = until, True
            else:
                capped = False
            if timeout is not None and timeout <= 0:
                return False
            self._sleepers += 1
            try:
                return self._ready.wait(timeout) or capped
            finally:
                self._sleepers -= 1

    def subscribe(self, now: float, wake: Wake) -> Tuple[bool, Optional[float]]:
        """Wait without a thread (an event loop's waiter, see
        :class:`~ranch_core.backends.async_memory.AsyncInMemoryStorage`).

        ``(True, None)`` if a call may be runnable at ``now``. Otherwise
        ``wake`` is registered and ``(False, seconds until the earliest lease
        deadline or None)`` returned; ``wake`` is called at most once, with
        the storage's lock held, by the thread whose step makes a call
        runnable: it must only schedule work (``loop.call_soon_threadsafe``).
        """
        with self._lock:
            ready, until = self._may_run(now)
            if not ready:
                self._wakes.append(wake)
            return ready, until

    def unsubscribe(self, wake: Wake) -> bool:
        """Forget a registered ``wake``; ``False`` if it was already called."""
        with self._lock:
            try:
                self._wakes.remove(wake)
            except ValueError:
                return False
            return True

    def signal(self) -> None:
        """Wake one waiter of each kind: a waiter that was woken but will
        not pop (cancelled) passes its wake-up on."""
        with self._lock:
            self._signal(1)
