"""A Hypothesis state machine for the wake-up token protocol: a storage, a
simulated broker and simulated workers, checked against the model.

Any interleaving of push, push_many, take (with a token from the broker, a
stale token, or none), finish or requeue (passing the token on, keeping it
for a run budget, or retiring it), a worker killed (its held token and lease
just vanish until their deadline), a purged broker (every wake-up lost), a
failed publish (a minted id never reaches the broker), the clock advancing
and sweeps. Checked throughout: the storage mints, passes on and retires
exactly as :class:`~ranch_core.testing.model.ReferenceModel` says; never
more than ``max_wakeups`` tokens outstanding; a call never runs in two live
workers at once. Checked at the end of every run (and by the ``drain`` rule):
after a sweep past every deadline, waiting calls have a wake-up in the
broker, and taking wake-ups until the broker is empty runs every call:
each pushed call is acknowledged exactly once or reported expired.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable, Dict, List, Optional, Set, Tuple, Type

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from ranch_core.models import ScheduledTask, WakeupPolicy
from ranch_core.protocols import FANOUT, MAX_BACKOFF, Storage
from ranch_core.scheduler import FairScheduler
from ranch_core.testing.model import ReferenceModel

KEYS = ["a", "b", "c"]
LEASE_SECONDS = 5.0
#: Small on purpose: the cap is reached often.
POLICY = WakeupPolicy(max_wakeups=3, ttl=2.0)
#: Steps of a drain before it is declared stuck.
DRAIN_LIMIT = 5000


def build_token_machine(make_storage: Callable[[], Storage]) -> Type[RuleBasedStateMachine]:
    """A state machine class testing the token protocol of storages made by ``make_storage``."""

    class TokenMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.now = 1_000_000.0
            self.model = ReferenceModel()
            self.scheduler = FairScheduler(
                make_storage(),
                lease_seconds=LEASE_SECONDS,
                clock=lambda: self.now,
                on_expired=self._on_expired,
            )
            self.broker: List[str] = []
            self.workers: Dict[int, Tuple[ScheduledTask, str]] = {}
            self.pushed: Set[str] = set()
            self.acked: Set[str] = set()
            self.expired: Set[str] = set()
            self.ids = itertools.count()

        def _on_expired(self, task: ScheduledTask) -> None:
            assert task.task_id not in self.expired, f"{task.task_id} reported expired twice"
            assert task.task_id not in self.acked, f"{task.task_id} reported expired after it ran"
            self.expired.add(task.task_id)

        def _publish(self, tokens: Any, fail: bool = False) -> None:
            if not fail:
                self.broker.extend(tokens)

        # -- producers -----------------------------------------------------

        @rule(
            key=st.sampled_from(KEYS),
            count=st.integers(1, 5),
            expiry=st.one_of(st.none(), st.sampled_from([1.0, 4.0])),
            fail=st.booleans(),
        )
        def push(self, key: str, count: int, expiry: Optional[float], fail: bool) -> None:
            ids = [f"t{next(self.ids)}" for _ in range(count)]
            stored = self.scheduler.store(key, ids, expiry=expiry, task_ids=ids, wakeups=POLICY)
            assert stored.task_ids == ids
            expires_at = None if expiry is None else self.now + expiry
            for task_id in ids:
                self.model.push(ScheduledTask(task_id, key, task_id, self.now, expires_at), None)
            self.model.token_mint(stored.wakeups, self.now + POLICY.ttl, 1, POLICY.max_wakeups)
            self.pushed.update(ids)
            self._publish(stored.wakeups, fail)

        # -- workers -------------------------------------------------------

        def _take(self, token: str, fail: bool = False) -> None:
            self.model.token_delivered(token, self.now)
            usable = self.model.token_usable(token, POLICY.max_wakeups)
            taken = self.scheduler.take(token, POLICY)
            expected: Optional[ScheduledTask] = None
            if usable:
                expected, _, _ = self.model.pop(self.now, LEASE_SECONDS)
                self.model.token_take(token, expected, self.now + LEASE_SECONDS)
                if expected is not None:
                    self.model.token_mint(taken.wakeups, self.now + POLICY.ttl, FANOUT, POLICY.max_wakeups)
            assert taken.task == expected, f"took {taken.task}, the model says {expected}"
            if taken.task is None:
                assert taken.wakeups == ()
                return
            running = {task.task_id for task, _ in self.workers.values()}
            assert taken.task.task_id not in running, "a call runs twice at once"
            assert taken.task.task_id not in self.acked, "a finished call ran again"
            self.workers[next(self.ids)] = (taken.task, token)
            self._publish(taken.wakeups, fail)

        @precondition(lambda self: bool(self.broker))
        @rule(data=st.data(), fail=st.booleans())
        def take_from_broker(self, data: st.DataObject, fail: bool) -> None:
            index = data.draw(st.integers(0, len(self.broker) - 1))
            self._take(self.broker.pop(index), fail)

        @rule(stale=st.sampled_from(["stale", "fresh"]))
        def take_stale(self, stale: str) -> None:
            # "stale": a token retired long ago; "fresh": a message that carried none.
            self._take(f"{stale}-{next(self.ids)}")

        @precondition(lambda self: bool(self.workers))
        @rule(data=st.data(), requeue=st.booleans(), keep=st.booleans(), fail=st.booleans())
        def finish(self, data: st.DataObject, requeue: bool, keep: bool, fail: bool) -> None:
            worker = data.draw(st.sampled_from(sorted(self.workers)))
            task, token = self.workers.pop(worker)
            self._finish(task, token, requeue=requeue, keep=keep, fail=fail)

        def _finish(
            self,
            task: ScheduledTask,
            token: str,
            *,
            requeue: bool = False,
            keep: bool = False,
            fail: bool = False,
        ) -> None:
            retried = self.scheduler.retried(task, task.payload) if requeue else None
            finished = self.scheduler.finish(
                task.task_id, requeue=retried, token=token, wakeups=POLICY, keep_token=keep
            )
            done = self.model.requeue(retried) if retried is not None else self.model.ack(task.task_id)
            assert finished.done is done
            if done and retried is None:
                assert task.task_id not in self.acked, f"{task.task_id} acknowledged twice"
                self.acked.add(task.task_id)
            fate = self.model.token_hand_back(token, self.now + POLICY.ttl, POLICY.max_wakeups, keep)
            assert finished.kept is (fate == "kept")
            assert finished.publish == ((token,) if fate == "passed" else ())
            self._publish(finished.publish, fail)
            if finished.kept:  # a run budget: the next call under the same token
                self._take(token)

        @precondition(lambda self: bool(self.workers))
        @rule(data=st.data())
        def kill_worker(self, data: st.DataObject) -> None:
            del self.workers[data.draw(st.sampled_from(sorted(self.workers)))]

        # -- the broker and the clock ----------------------------------------

        @rule()
        def purge_broker(self) -> None:
            self.broker.clear()

        @precondition(lambda self: bool(self.broker))
        @rule(data=st.data())
        def lose_a_message(self, data: st.DataObject) -> None:
            self.broker.pop(data.draw(st.integers(0, len(self.broker) - 1)))

        @rule(seconds=st.sampled_from([0.5, 1.0, 3.0]))
        def advance_clock(self, seconds: float) -> None:
            self.now += seconds
            # Live workers' lease keepers renew their leases (and tokens) in time.
            for task, _ in self.workers.values():
                assert self.scheduler.extend(task.task_id)
                self.model.extend(task.task_id, self.now + LEASE_SECONDS)
                self.model.token_extend(task.task_id, self.now + LEASE_SECONDS)

        @rule()
        def sweep(self) -> None:
            got = [t.task_id for t in self.scheduler.reclaim()]
            assert got == [t.task_id for t in self.model.reclaim(self.now)]
            got = [t.task_id for t in self.scheduler.expire(100)]
            assert got == [t.task_id for t in self.model.expire(self.now, 100)]
            minted = self.scheduler.sweep_wakeups(POLICY)
            self.model.token_sweep(self.now, POLICY.ttl)
            self.model.token_mint(minted, self.now + POLICY.ttl, POLICY.max_wakeups, POLICY.max_wakeups)
            self._publish(minted)

        # -- invariants ------------------------------------------------------

        @invariant()
        def tokens_match_the_model_and_stay_bounded(self) -> None:
            status = self.scheduler.storage.wakeup_status()
            assert (status.in_flight, status.held) == (len(self.model.flight), len(self.model.held))
            assert status.outstanding <= POLICY.max_wakeups

        @rule()
        def drain(self) -> None:
            """Liveness: every live worker finishes; after a sweep past every
            deadline a waiting call has a wake-up in the broker; taking
            wake-ups until none is left runs every call."""
            for task, token in list(self.workers.values()):
                self._finish(task, token)
            self.workers.clear()
            # Past every deadline, and past the longest wait between two
            # retirements of lost tokens while no wake-up is taken.
            self.now += LEASE_SECONDS + POLICY.ttl * 2**MAX_BACKOFF + 1
            self.sweep()
            if self.model.waiting() > 0:
                assert set(self.broker) & set(self.model.flight), "calls wait with no wake-up in the broker"
            for _ in range(DRAIN_LIMIT):
                if not self.broker:
                    break
                self._take(self.broker.pop(0))
                for task, token in list(self.workers.values()):
                    self._finish(task, token)
                self.workers.clear()
            else:
                raise AssertionError("the broker never emptied")
            assert self.model.waiting() == 0, "calls wait after the broker was drained"
            assert self.acked | self.expired == self.pushed
            assert not self.acked & self.expired

        def teardown(self) -> None:
            self.drain()

    return TokenMachine
