"""Waiting for work as properties: a blocked pop is woken by a push from another
thread, wakes by itself at a lease deadline, keeps its timeout, and loses no
wake-up when a push races the wait (:meth:`ranch_core.protocols.Backlog.wait`).

These tests use the real clock: a storage blocks for real. Each bound on
elapsed time is at least five times what it should take.
"""

from __future__ import annotations

import threading
import time
from typing import List, Optional

from hypothesis import given, settings
from hypothesis import strategies as st

from ranch_core.models import ScheduledTask
from ranch_core.scheduler import FairScheduler
from ranch_core.testing.base import ConformanceBase

#: A pop that is woken returns long before this; one that is not, at this.
LONG = 10.0


class WaitingProperties(ConformanceBase):
    """``pop(timeout=)`` on any storage: blocking, never polling, no lost wake-up."""

    def test_wait_is_woken_by_a_push_from_another_thread(self) -> None:
        """A pop blocked on an empty storage returns the call another thread pushes."""
        consumer = FairScheduler(self.make_storage())
        producer = FairScheduler(consumer.storage)
        pushed = threading.Event()

        def produce() -> None:
            time.sleep(0.05)  # let the consumer block first (if it did not, the test still holds)
            producer.push("k", "hello")
            pushed.set()

        thread = threading.Thread(target=produce)
        started = time.monotonic()
        thread.start()
        task = consumer.pop(timeout=LONG)
        elapsed = time.monotonic() - started
        thread.join()
        assert task is not None and task.payload == "hello"
        assert pushed.is_set() and elapsed < LONG / 2

    def test_wait_wakes_at_a_lease_deadline(self) -> None:
        """A lease that runs out makes its call runnable with no producer: a
        blocked pop wakes by itself and gets the call back."""
        scheduler = FairScheduler(self.make_storage(), lease_seconds=0.2)
        scheduler.push("k", "again")
        first = scheduler.pop()
        assert first is not None
        started = time.monotonic()
        task = scheduler.pop(timeout=LONG)
        elapsed = time.monotonic() - started
        assert task is not None and task.task_id == first.task_id
        assert 0.15 <= elapsed < LONG / 2

    def test_wait_respects_its_timeout(self) -> None:
        """``pop(timeout=t)`` on an empty storage returns ``None`` after about
        ``t``; ``0`` answers at once; ``wait`` answers ``True`` at once when a call waits."""
        scheduler = FairScheduler(self.make_storage())
        assert scheduler.pop(timeout=0) is None
        started = time.monotonic()
        assert scheduler.pop(timeout=0.3) is None
        elapsed = time.monotonic() - started
        assert 0.29 <= elapsed < 1.5
        assert scheduler.storage.wait(scheduler.clock(), 0) is False
        scheduler.push("k", 1)
        started = time.monotonic()
        assert scheduler.storage.wait(scheduler.clock(), LONG) is True
        assert time.monotonic() - started < LONG / 2

    def test_no_lost_wakeup_when_a_push_races_the_wait(self) -> None:
        """Consumers block while a producer pushes one call each, with random
        gaps from nothing to a few milliseconds, so that pushes land before,
        during and after each consumer's check: every consumer gets a call,
        none waits for its timeout."""

        budget = settings(self.property_settings, max_examples=max(1, settings().max_examples // 3))

        @budget
        @given(st.lists(st.floats(0, 0.004), min_size=1, max_size=6))
        def check(gaps: List[float]) -> None:
            storage = self.make_storage()
            producer = FairScheduler(storage)
            got: List[Optional[ScheduledTask]] = []
            lock = threading.Lock()

            def consume() -> None:
                task = FairScheduler(storage).pop(timeout=LONG)
                with lock:
                    got.append(task)

            consumers = [threading.Thread(target=consume) for _ in gaps]
            started = time.monotonic()
            for thread in consumers:
                thread.start()
            for n, gap in enumerate(gaps):
                if gap:
                    time.sleep(gap)
                producer.push(f"k{n % 3}", n)
            for thread in consumers:
                thread.join()
            assert time.monotonic() - started < LONG / 2, "a consumer missed its wake-up"
            assert sorted(task.payload for task in got if task is not None) == list(range(len(gaps)))

        check()
