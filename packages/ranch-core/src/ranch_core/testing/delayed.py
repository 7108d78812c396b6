"""Delayed calls as properties: stored now, runnable at their time, then fair.

A call pushed with ``delay`` (Celery's ``countdown``/``eta``, Dramatiq's
``delay``) is stored at once but joins its key's backlog only when due: it is
never handed out earlier, it then takes its turn in the fair order (no FIFO
by due time across keys), it is counted apart (``SystemStatus.delayed``,
``LRUKeyMetadata.delayed_tasks``), and the wake-up rules cover it: a push
may return one token deferred to its due time, a circulating token is
deferred to it, and a sweep promotes and mints once it is due.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ranch_core.errors import BacklogFull
from ranch_core.keys import one_level
from ranch_core.models import ScheduledTask, WakeupPolicy
from ranch_core.protocols import UNPARK_BATCH, Controls
from ranch_core.scheduler import FairScheduler
from ranch_core.testing.base import Clock, ConformanceBase

#: A policy whose workers can publish delayed wake-ups.
DEFERRING = WakeupPolicy(max_wakeups=4, ttl=2.0, defer=True)


class DelayedProperties(ConformanceBase):
    """Delayed calls, checked against every storage."""

    def test_a_delayed_call_waits_for_its_time_then_takes_its_fair_turn(self) -> None:
        scheduler, clock = self.scheduler()
        late = scheduler.push("a", "late", delay=5.0)
        scheduler.push_many("b", ["b1", "b2", "b3"])
        status = scheduler.status()
        assert (status.backlog_size, status.delayed, status.active_keys) == (3, 1, 1)
        assert scheduler.metadata("a").delayed_tasks == 1 and scheduler.metadata("a").pending_tasks == 0
        popped = scheduler.pop()
        assert popped is not None and popped.payload == "b1"
        clock.now += 4.999
        popped = scheduler.pop()
        assert popped is not None and popped.payload == "b2"
        clock.now += 0.001  # due now: it joins "a", which is served before "b" serves again
        popped = scheduler.pop()
        assert popped is not None and (popped.task_id, popped.payload) == (late, "late")
        # Popped, it is due: no not_before, and enqueued_at is when it became due (its wait starts).
        assert popped.not_before is None and popped.enqueued_at == clock.now
        popped = scheduler.pop()
        assert popped is not None and popped.payload == "b3"
        assert scheduler.pop() is None
        assert scheduler.status().delayed == 0 and scheduler.metadata("a").delayed_tasks == 0

    def test_due_calls_join_their_key_in_due_then_id_order(self) -> None:
        scheduler, clock = self.scheduler()
        scheduler.push("k", "now")
        scheduler.push_many("k", ["x2", "x1"], delay=2.0, task_ids=["id2", "id1"])
        scheduler.push("k", "first", delay=1.0, task_id="id9")
        clock.now += 3.0
        order = []
        while (task := scheduler.pop()) is not None:
            order.append(task.payload)
        assert order == ["now", "first", "x1", "x2"]

    def test_delayed_calls_expire_as_waiting_ones_do(self) -> None:
        """A call whose expiry passes before it is due is dropped and reported when due, never run."""
        expired: List[str] = []
        clock = Clock()
        scheduler = FairScheduler(
            self.make_storage(), clock=clock, on_expired=lambda t: expired.append(t.task_id)
        )
        # Calls due at one time join in task id order.
        doomed = scheduler.push("a", 1, delay=5.0, expiry=2.0, task_id="t1")
        kept = scheduler.push("a", 2, delay=5.0, expiry=10.0, task_id="t2")
        clock.now += 5.0
        popped = scheduler.pop()
        assert popped is not None and popped.task_id == kept
        assert expired == [doomed]
        assert scheduler.status().expired_total == 1

    def test_a_delayed_push_returns_one_token_deferred_to_its_time(self) -> None:
        scheduler, clock = self.scheduler()
        storage = scheduler.storage
        _, tokens = scheduler.store_one("a", 1, delay=5.0, wakeups=DEFERRING)
        assert len(tokens) == 1
        assert storage.wakeup_status().deferred == 1 and storage.wakeup_status().in_flight == 0
        # One due later is covered by it: no second token.
        assert scheduler.store_one("a", 2, delay=9.0, wakeups=DEFERRING)[1] == []
        # One due sooner gets its own.
        sooner = scheduler.store_one("b", 3, delay=1.0, wakeups=DEFERRING)[1]
        assert len(sooner) == 1 and storage.wakeup_status().deferred == 2
        # A policy that cannot publish later gets none; nor does one without room.
        assert scheduler.store_one("c", 4, delay=0.5, wakeups=WakeupPolicy(max_wakeups=4, ttl=2.0))[1] == []
        crowded = WakeupPolicy(max_wakeups=2, ttl=2.0, defer=True)
        assert scheduler.store_one("c", 5, delay=0.25, wakeups=crowded)[1] == []
        # Delivered early (before anything is due), the token is deferred again to the earliest time.
        clock.now += 0.1
        early = scheduler.take(sooner[0], DEFERRING)
        assert early.task is None and early.deferred and early.retry_at == pytest.approx(clock.now + 0.15)
        # When due, it runs the call, and the fan-out covers the rest.
        clock.now += 0.9
        taken = scheduler.take(sooner[0], DEFERRING)
        assert taken.task is not None and taken.task.payload in (3, 4, 5)

    def test_the_sweep_promotes_due_calls_and_mints_for_them(self) -> None:
        """With no token deferred (a policy without ``defer``), the sweep is
        what brings a due call to a worker: it promotes, then mints."""
        scheduler, clock = self.scheduler()
        policy = WakeupPolicy(max_wakeups=4, ttl=2.0)
        assert scheduler.store("a", [1, 2], delay=3.0, wakeups=policy, task_ids=["t1", "t2"]).wakeups == ()
        assert scheduler.sweep_wakeups(policy) == []
        clock.now += 3.0
        minted = scheduler.sweep_wakeups(policy)
        assert len(minted) == 2
        assert scheduler.status().backlog_size == 2 and scheduler.status().delayed == 0
        taken = scheduler.take(minted[0], policy)
        assert taken.task is not None and taken.task.payload == 1

    def test_a_due_deferred_token_goes_in_flight_at_the_sweep(self) -> None:
        scheduler, clock = self.scheduler()
        tokens = scheduler.store_one("a", 1, delay=2.0, wakeups=DEFERRING)[1]
        assert len(tokens) == 1
        clock.now += 2.0
        scheduler.sweep_wakeups(DEFERRING)
        status = scheduler.storage.wakeup_status()
        assert status.deferred == 0 and status.in_flight >= 1
        taken = scheduler.take(tokens[0], DEFERRING)
        assert taken.task is not None and taken.task.payload == 1

    def test_a_pop_promotes_a_bounded_batch(self) -> None:
        scheduler, clock = self.scheduler()
        for start in range(0, UNPARK_BATCH + 5, 50):
            count = min(50, UNPARK_BATCH + 5 - start)
            scheduler.push_many(f"k{start}", range(count), delay=1.0)
        clock.now += 1.0
        first = scheduler.pop()
        assert first is not None
        status = scheduler.status()
        assert status.delayed == 5 and status.backlog_size == UNPARK_BATCH - 1
        served = 1
        while scheduler.pop() is not None:
            served += 1
        assert served == UNPARK_BATCH + 5 and scheduler.status().delayed == 0

    def test_blocked_waiters_wake_when_a_delayed_call_is_due(self) -> None:
        scheduler, clock = self.scheduler()
        scheduler.push("a", 1, delay=0.05)
        # The storage's wait ends by itself at the due time (here: at once,
        # the clock is past it), so a blocked pop does not sleep through it.
        clock.now += 0.05
        assert scheduler.storage.wait(clock.now, 5.0) is True
        popped = scheduler.pop(timeout=5.0)
        assert popped is not None and popped.payload == 1

    def test_remove_reaches_delayed_calls(self) -> None:
        scheduler, _ = self.scheduler()
        task_id = scheduler.push("a", 1, delay=5.0)
        assert scheduler.remove("b", task_id) is False
        assert scheduler.remove("a", task_id) is True
        assert scheduler.remove("a", task_id) is False
        assert scheduler.status().delayed == 0

    def test_a_task_id_delayed_is_taken(self) -> None:
        scheduler, _ = self.scheduler()
        task_id = scheduler.push("a", 1, delay=5.0)
        with pytest.raises(ValueError, match="already"):
            scheduler.push("b", 2, task_id=task_id)
        with pytest.raises(ValueError, match="already"):
            scheduler.push("a", 2, task_id=task_id, delay=1.0)
        assert scheduler.status().backlog_size == 0 and scheduler.status().delayed == 1

    def test_push_many_takes_one_due_time(self) -> None:
        storage = self.make_storage()
        tasks = [ScheduledTask("t1", "a", 1, 10.0, None, 20.0), ScheduledTask("t2", "a", 2, 10.0, None, 21.0)]
        with pytest.raises(ValueError, match="not_before"):
            storage.push_many(tasks)
        assert storage.status().delayed == 0

    def test_controls_reach_delayed_calls(self) -> None:
        storage = self.make_storage()
        if not isinstance(storage, Controls):
            pytest.fail(f"{type(storage).__name__} has no per-key controls", pytrace=False)
        clock = Clock()
        scheduler = FairScheduler(storage, clock=clock)
        scheduler.set_max_backlog("a", 3)
        scheduler.push("a", 1)
        scheduler.push_many("a", [2, 3], delay=5.0)
        with pytest.raises(BacklogFull):
            scheduler.push("a", 4, delay=1.0)
        with pytest.raises(BacklogFull):
            scheduler.push("a", 4)
        assert scheduler.status().delayed == 2
        revoked = scheduler.push("b", "r", delay=2.0)
        assert scheduler.revoke_call(revoked) is True and scheduler.revoke_call(revoked) is False
        assert scheduler.purge_key("a") == 3
        assert scheduler.status().delayed == 0 and scheduler.status().backlog_size == 0
        # Paused when it is due: it joins the key and waits for the resume.
        scheduler.pause_key("c")
        scheduler.push("c", "p", delay=1.0)
        clock.now += 1.0
        assert scheduler.pop() is None
        assert scheduler.metadata("c").pending_tasks == 1
        scheduler.resume_key("c")
        popped = scheduler.pop()
        assert popped is not None and popped.payload == "p"

    def test_every_delayed_call_runs_once_never_early_fifo_by_due(self) -> None:
        """Any mix of delayed and plain pushes, popped while the clock moves:
        every call runs exactly once, none before its time, and within a key
        in the order it became runnable (due time, then task id; plain calls
        at their push)."""

        @self.property_settings
        @given(
            pushes=st.lists(
                st.tuples(
                    st.sampled_from(["a", "b", "c"]),
                    st.one_of(st.none(), st.sampled_from([0.5, 1.0, 2.5, 4.0])),
                    st.integers(1, 3),
                ),
                min_size=1,
                max_size=12,
            ),
            steps=st.lists(st.sampled_from([0.0, 0.25, 0.5, 1.0, 3.0]), min_size=1, max_size=20),
        )
        def check(pushes: List[Tuple[str, Optional[float], int]], steps: List[float]) -> None:
            scheduler, clock = self.scheduler()
            due: Dict[str, float] = {}
            for n, (key, delay, count) in enumerate(pushes):
                ids = [f"{n:03d}-{i}" for i in range(count)]
                scheduler.push_many(key, ids, task_ids=ids, delay=delay)
                for task_id in ids:
                    due[task_id] = clock.now + (delay or 0.0)
            seen: Dict[str, List[str]] = {}
            for step in [*steps, 10.0]:
                clock.now += step
                while (task := scheduler.pop()) is not None:
                    assert clock.now >= due[task.task_id], "handed out before its time"
                    seen.setdefault(one_level(task.key), []).append(task.task_id)
                    scheduler.ack(task.task_id)
            ran = [task_id for ids in seen.values() for task_id in ids]
            assert sorted(ran) == sorted(due), "a call was lost or ran twice"
            for ids in seen.values():
                assert ids == sorted(ids, key=lambda t: (due[t], t))
            assert scheduler.status().delayed == 0

        check()
