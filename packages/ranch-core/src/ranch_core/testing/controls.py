"""Per-key controls as properties: caps, rate limits, pause, backlog limits,
purge, revoke, scheduler defaults, and the wake-ups that bring parked keys back.

Every storage must have them (:class:`~ranch_core.protocols.Controls`): the
in-memory storages and the Redis ones do; for a storage without them each
of these tests fails, naming the protocol it lacks.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test

from ranch_core.errors import BacklogFull
from ranch_core.keys import one_level
from ranch_core.models import Finished, ScheduledTask, WakeupPolicy
from ranch_core.protocols import Controls, Storage
from ranch_core.scheduler import FairScheduler
from ranch_core.testing.base import Clock, ConformanceBase
from ranch_core.testing.controls_machine import BAD_CONTROLS, build_controls_machine

#: A policy whose workers can publish delayed wake-ups (``wake_later``).
DEFERRING = WakeupPolicy(max_wakeups=4, ttl=2.0, defer=True)


class ControlProperties(ConformanceBase):
    """Per-key controls, checked in the storage step that pops."""

    def controlled(self) -> Storage:
        """A new storage; the test fails if it has no per-key controls."""
        storage = self.make_storage()
        if not isinstance(storage, Controls):
            pytest.fail(
                f"{type(storage).__name__} has no per-key controls: a storage must implement "
                "ranch_core.protocols.Controls (set_control, purge_key, revoke) to pass the "
                "conformance suite",
                pytrace=False,
            )
        return storage

    def test_controls_hold_under_any_interleaving(self) -> None:
        """Caps, rate windows, pause, work conservation, exact counts, purge,
        revoke, backlog limits and bad input, against a naive shadow (see
        :mod:`ranch_core.testing.controls_machine`)."""
        self.controlled()
        machine = build_controls_machine(self.make_storage)
        run_state_machine_as_test(machine, settings=self.controls_settings)

    def test_rate_bucket_refills_exactly_and_keeps_its_debt_across_a_change(self) -> None:
        """A bucket of ``burst`` calls refilled at the rate, to the tick: full
        at first, one call per interval after, never more than ``burst`` saved
        up; a new rate keeps the calls already charged (at most the new
        burst); a removed rate resets the bucket."""
        clock = Clock()
        scheduler = FairScheduler(self.controlled(), clock=clock)
        scheduler.set_rate_limit("k", "4/s", burst=2)
        scheduler.push_many("k", range(20))

        def burst(step: float = 0.0) -> int:
            clock.now += step
            count = 0
            while (task := scheduler.pop()) is not None:
                scheduler.ack(task.task_id)
                count += 1
            return count

        start = clock.now
        assert burst() == 2  # full at first
        assert scheduler.take().retry_at == start + 0.25
        assert [burst(0.125), burst(0.125), burst(0.25)] == [0, 1, 1]
        assert burst(10.0) == 2  # never more than the burst saved up
        scheduler.set_rate_limit("k", "2/s", burst=3)  # 2 calls charged: 1 of 3 left
        assert burst() == 1 and scheduler.take().retry_at == clock.now + 0.5
        scheduler.set_rate_limit("k", None)
        scheduler.set_rate_limit("k", "1/h", burst=2)  # removed, then set: full again
        assert burst() == 2 and burst(1.0) == 0
        assert scheduler.metadata("k").pending_tasks == 20 - 9

    def test_a_rate_removed_while_paused_or_capped_resets_the_bucket(self) -> None:
        """Removing a rate resets the bucket even while the key may not run
        (paused, at its cap): set again, it starts full."""
        clock = Clock()
        scheduler = FairScheduler(self.controlled(), clock=clock)
        scheduler.set_rate_limit("k", "4/s")
        scheduler.push_many("k", range(4))
        first = scheduler.pop()
        assert first is not None and scheduler.pop() is None  # bucket empty for 0.25 s
        scheduler.pause_key("k")
        scheduler.set_rate_limit("k", None)
        scheduler.set_rate_limit("k", "30/m")
        scheduler.resume_key("k")
        assert scheduler.pop() is not None  # full again, at once
        scheduler.set_concurrency_limit("k", 1)  # two running now: capped
        scheduler.set_rate_limit("k", None)
        scheduler.set_rate_limit("k", "30/m")
        scheduler.ack(first.task_id)
        scheduler.set_concurrency_limit("k", None)
        assert scheduler.pop() is not None

    def test_a_capped_key_comes_back_when_a_call_ends(self) -> None:
        """Tokens are minted for runnable calls only: a key at its cap gets no
        wake-ups for its backlog; the finish that frees the cap passes the
        token on, and so does a lease put back."""
        storage = self.controlled()
        clock = Clock()
        scheduler = FairScheduler(storage, clock=clock, lease_seconds=5.0)
        scheduler.set_concurrency_limit("k", 1)
        stored = scheduler.store("k", range(5), wakeups=DEFERRING)
        (token,) = stored.wakeups
        taken = scheduler.take(token, DEFERRING)
        assert taken.task is not None and taken.wakeups == ()  # nothing else may run: no fan-out
        assert storage.wakeup_status().in_flight == 0
        assert scheduler.take("stale", DEFERRING).task is None  # adopted, finds nothing runnable
        finished = scheduler.finish(taken.task.task_id, token=token, wakeups=DEFERRING)
        assert finished.publish == (token,)
        second = scheduler.take(token, DEFERRING).task
        assert second is not None and scheduler.metadata("k").running == 1
        clock.now += 6.0  # its worker died: the lease runs out, the sweep puts it back
        assert scheduler.reclaim() == [second]
        assert scheduler.metadata("k").running == 0
        (minted,) = scheduler.sweep_wakeups(DEFERRING)  # one call may run: one token
        third = scheduler.take(minted, DEFERRING).task
        assert third is not None
        # A finish without its token (its worker lost it) still mints for the freed cap.
        assert len(scheduler.finish(third.task_id, wakeups=DEFERRING).publish) == 1

    def test_pushes_to_a_limited_key_mint_no_more_tokens_than_may_start(self) -> None:
        """One push at a time: a fresh bucket of ``burst`` calls gets ``burst``
        wake-ups, a key capped at ``n`` gets ``n``, whatever the backlog."""
        storage = self.controlled()
        scheduler = FairScheduler(storage, clock=Clock())
        scheduler.set_rate_limit("rated", "1/s", burst=2)
        scheduler.set_concurrency_limit("capped", 3)
        rated = [scheduler.store_one("rated", n, wakeups=DEFERRING)[1] for n in range(5)]
        assert sum(len(minted) for minted in rated) == 2
        capped = [scheduler.store_one("capped", n, wakeups=WakeupPolicy(64, 2.0))[1] for n in range(6)]
        assert sum(len(minted) for minted in capped) == 3
        assert storage.wakeup_status().in_flight == 5

    def test_a_rate_limited_key_keeps_one_token_for_when_its_bucket_refills(self) -> None:
        """A wake-up that finds only rate-limited calls is kept (deferred) for
        the time the first may start, by the finish that leaves only them
        and by a pop that finds only them; one token at most; the sweep mints
        once that time has passed; a pop then serves it."""
        storage = self.controlled()
        clock = Clock()
        scheduler = FairScheduler(storage, clock=clock)
        scheduler.set_rate_limit("k", "2/s")
        stored = scheduler.store("k", range(3), wakeups=DEFERRING)
        (token,) = stored.wakeups
        first = scheduler.take(token, DEFERRING)
        assert first.task is not None
        finished = scheduler.finish(first.task.task_id, token=token, wakeups=DEFERRING)
        assert finished.publish == () and finished.deferred and finished.retry_at == clock.now + 0.5
        assert storage.wakeup_status().deferred == 1
        assert not scheduler.take("third", DEFERRING).deferred  # one deferred token is enough
        again = scheduler.take(token, DEFERRING)  # delivered early: deferred again
        assert again.task is None and again.deferred and again.retry_at == clock.now + 0.5
        assert storage.wakeup_status().deferred == 1
        # Without delayed wake-ups (no ``defer``) a finish retires the token instead.
        plain = WakeupPolicy(max_wakeups=4, ttl=2.0)
        scheduler.set_rate_limit("j", "2/s")
        (other,) = scheduler.store("j", range(2), wakeups=plain).wakeups
        taken = scheduler.take(other, plain).task
        assert taken is not None
        assert scheduler.finish(taken.task_id, token=other, wakeups=plain) == Finished(True)
        assert storage.wakeup_status().deferred == 1
        assert scheduler.sweep_wakeups(DEFERRING) == []  # not due: nothing to mint
        clock.now += 0.5
        scheduler.sweep_wakeups(DEFERRING)
        status = storage.wakeup_status()
        assert status.deferred == 0 and status.in_flight >= 1  # due: in flight like any token
        assert scheduler.take("other", DEFERRING).task is not None

    def test_without_delayed_wakeups_the_sweep_mints_when_a_bucket_refills(self) -> None:
        """With a policy that cannot delay (no ``defer``), a token that finds
        only rate-limited calls is retired; ``wait`` and the sweep know the
        time the bucket refills, and the sweep mints one token then."""
        storage = self.controlled()
        clock = Clock()
        policy = WakeupPolicy(max_wakeups=4, ttl=2.0)
        scheduler = FairScheduler(storage, clock=clock)
        scheduler.set_rate_limit("k", "2/s")
        (token,) = scheduler.store("k", range(2), wakeups=policy).wakeups
        first = scheduler.take(token, policy).task
        assert first is not None
        assert scheduler.finish(first.task_id, token=token, wakeups=policy).publish == ()
        again = scheduler.take("other", policy)
        assert (again.task, again.retry_at, again.deferred) == (None, clock.now + 0.5, False)
        assert storage.wakeup_status().outstanding == 0
        assert storage.wait(clock.now, 0) is False
        assert scheduler.sweep_wakeups(policy) == []
        clock.now += 0.5
        assert storage.wait(clock.now, 0) is True
        (minted,) = scheduler.sweep_wakeups(policy)
        assert scheduler.take(minted, policy).task is not None

    def test_a_paused_key_gets_no_wakeups_until_it_is_resumed(self) -> None:
        """Pushes to a paused key mint nothing; resume mints for its calls; a
        resumed key joins the current round (no credit for the pause)."""
        storage = self.controlled()
        scheduler = FairScheduler(storage, clock=Clock())
        scheduler.pause_key("p")
        assert scheduler.store("p", range(3), wakeups=DEFERRING).wakeups == ()
        assert scheduler.pop() is None and storage.wait(0.0, 0) is False
        scheduler.push_many("q", range(4))
        served = [scheduler.pop() for _ in range(2)]
        assert [t.key for t in served if t is not None] == ["q", "q"]
        assert len(scheduler.resume_key("p", wakeups=DEFERRING)) >= 1
        order = []
        while (task := scheduler.pop()) is not None:
            order.append(task.key)
        assert order == ["p", "q", "p", "q", "p"]

    def test_backlog_limit_refuses_whole_batches_and_stores_nothing(self) -> None:
        """``BacklogFull`` for a push past ``max_backlog``: nothing stored, no
        weight or tag set, no token minted; retries and put-back calls still fit."""
        scheduler = FairScheduler(self.controlled(), clock=Clock())
        scheduler.set_max_backlog("k", 3)
        scheduler.push_many("k", [1, 2])
        before = scheduler.metadata("k"), scheduler.status()
        with pytest.raises(BacklogFull) as caught:
            scheduler.push_many("k", [3, 4], weight=0.5, tags={"plan": "pro"})
        assert caught.value.key == "k" and caught.value.limit == 3 and "max_backlog" in str(caught.value)
        with pytest.raises(BacklogFull):
            scheduler.store("k", [3, 4], wakeups=DEFERRING)
        assert (scheduler.metadata("k"), scheduler.status()) == before
        scheduler.push("k", 3)
        with pytest.raises(BacklogFull):
            scheduler.push("k", 4)
        task = scheduler.pop()
        assert task is not None
        scheduler.push("k", 4)  # room again
        assert scheduler.requeue(task, "retry")  # a retry is never refused
        assert scheduler.metadata("k").pending_tasks == 4
        scheduler.set_max_backlog("k", None)
        scheduler.push("k", 5)

    def test_defaults_apply_to_keys_without_their_own_setting(self) -> None:
        """``default_concurrency_limit``/``default_rate_limit`` cap every key
        that has no setting of its own; a key's own setting wins; ``None``
        falls back to the default."""
        clock = Clock()
        scheduler = FairScheduler(
            self.controlled(), clock=clock, default_concurrency_limit=2, default_rate_limit="2/s"
        )
        for key in ("a", "b", "c"):
            scheduler.push_many(key, range(5))
        scheduler.set_concurrency_limit("b", 3)
        scheduler.set_rate_limit("b", "100/s")
        scheduler.set_rate_limit("c", "100/s")
        meta = scheduler.metadata("a")
        assert (meta.concurrency_limit, meta.rate_limit) == (2, "2/s")
        served: Dict[str, int] = {"a": 0, "b": 0, "c": 0}
        for _ in range(10):
            clock.now += 0.01
            for _ in range(3):
                task = scheduler.pop()
                if task is not None:
                    served[one_level(task.key)] += 1
        # a: the default rate (one call in 0.1 s); b: its own limit; c: the default limit.
        assert served == {"a": 1, "b": 3, "c": 2}
        scheduler.set_concurrency_limit("b", None)
        scheduler.set_rate_limit("b", None)
        assert (scheduler.metadata("b").concurrency_limit, scheduler.metadata("b").rate_limit) == (2, "2/s")
        only_rate = FairScheduler(self.controlled(), clock=clock, default_rate_limit="1/s")
        only_rate.push_many("x", range(3))
        assert only_rate.pop() is not None and only_rate.pop() is None

    def test_bad_control_input_raises_and_changes_nothing(self) -> None:
        """Bad input for every argument of every control raises ``TypeError``
        or ``ValueError`` naming the argument; nothing changes."""
        clock = Clock()
        scheduler = FairScheduler(self.controlled(), clock=clock)
        scheduler.push_many("a", range(3))
        scheduler.set_concurrency_limit("a", 2)
        scheduler.set_rate_limit("a", "1/s", burst=2)
        scheduler.set_max_backlog("a", 5)
        assert scheduler.pop() is not None
        before = scheduler.metadata("a"), scheduler.status()
        for method, args, kwargs, argument in BAD_CONTROLS:
            with pytest.raises((TypeError, ValueError)) as caught:
                getattr(scheduler, method)(*args, **kwargs)
            assert argument in str(caught.value), f"{caught.value!r} does not name {argument}"
            assert (scheduler.metadata("a"), scheduler.status()) == before, (method, args, kwargs)

    def test_bad_defaults_are_refused(self) -> None:
        """Bad defaults raise naming the argument, before anything is written."""
        cases: List[Tuple[Dict[str, Any], str]] = [
            ({"default_concurrency_limit": 0}, "default_concurrency_limit"),
            ({"default_concurrency_limit": "2"}, "default_concurrency_limit"),
            ({"default_rate_limit": "fast"}, "default_rate_limit"),
            ({"default_rate_limit": 5}, "default_rate_limit"),
        ]
        for options, argument in cases:
            storage = self.controlled()
            with pytest.raises((TypeError, ValueError), match=argument):
                FairScheduler(storage, **options)
            assert FairScheduler(storage).metadata("k").concurrency_limit is None

    def test_every_call_runs_under_any_controls(self) -> None:
        """Liveness: with caps, rates and pauses (later lifted), workers that
        only take wake-ups, publish what the storage hands back (delayed ones
        when due) and sweep run every call, never past a cap."""

        limits = st.sampled_from([None, 1, 2])
        config = st.tuples(limits, st.sampled_from([None, "4/s", "1/s"]), st.booleans())

        @self.property_settings
        @given(st.dictionaries(st.sampled_from(["a", "b", "c"]), config, min_size=1), st.integers(1, 12))
        def check(keys: Dict[str, Tuple[Optional[int], Optional[str], bool]], calls: int) -> None:
            clock = Clock()
            scheduler = FairScheduler(self.controlled(), clock=clock, lease_seconds=5.0)
            broker: List[Tuple[float, str]] = []
            for key, (limit, rate, paused) in keys.items():
                scheduler.set_concurrency_limit(key, limit)
                scheduler.set_rate_limit(key, rate)
                if paused:
                    scheduler.pause_key(key)
                stored = scheduler.store(key, range(calls), wakeups=DEFERRING)
                broker += [(clock.now, t) for t in stored.wakeups]
            running: List[Tuple[ScheduledTask, str]] = []
            done = 0
            for step in range(5000):
                if step == 50:
                    for key in keys:
                        broker += [(clock.now, t) for t in scheduler.resume_key(key, wakeups=DEFERRING)]
                if done == calls * len(keys):
                    break
                due = [entry for entry in broker if entry[0] <= clock.now]
                if due and step % 3 != 2:
                    broker.remove(due[0])
                    taken = scheduler.take(due[0][1], DEFERRING)
                    broker += [(clock.now, t) for t in taken.wakeups]
                    if taken.deferred and taken.retry_at is not None:
                        broker.append((taken.retry_at, due[0][1]))
                    if taken.task is not None:
                        limit = keys[one_level(taken.task.key)][0]
                        now_running = sum(1 for t, _ in running if t.key == taken.task.key) + 1
                        assert limit is None or now_running <= limit
                        running.append((taken.task, due[0][1]))
                elif running:
                    task, token = running.pop(0)
                    finished = scheduler.finish(task.task_id, token=token, wakeups=DEFERRING)
                    assert finished.done
                    done += 1
                    broker += [(clock.now, t) for t in finished.publish]
                else:
                    clock.now += 0.25
                    broker += [(clock.now, t) for t in scheduler.sweep_wakeups(DEFERRING)]
            else:
                raise AssertionError("the calls never all ran")
            assert len(scheduler) == 0

        check()
