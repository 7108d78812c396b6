"""``FairDispatcher``: one backlog as the Celery and Dramatiq adapters drive it.

A *wake-up* is a broker message carrying a *token id* (the adapter's
``wake(token)`` publishes one). At most ``max_wakeups`` tokens of a backlog
are outstanding (in flight in the broker, or held by a worker running a
call), however many calls wait; the storage decides every mint, pass-on and
retirement in the same atomic step as the push, pop or finish it rides on.

Producer side, :meth:`FairDispatcher.submit` / :meth:`~FairDispatcher.submit_many`
write the calls first and publish a wake-up only for a token the storage
minted (at most one per storage step). Worker side, the worker that
receives a wake-up calls :meth:`FairDispatcher.take` with its token: the
fair choice at that moment (its fan-out tokens are published first), run
right there inside :meth:`FairDispatcher.running`, ended with
:meth:`~FairDispatcher.finish`, :meth:`~FairDispatcher.retry` or
:meth:`~FairDispatcher.requeue` (the retry rule, :mod:`ranch_core.retries`),
which pass the token on (publish it again)
while calls wait, or retire it. :class:`~ranch_core.leases.LeaseKeeper`
calls :meth:`FairDispatcher.sweep` from a thread of every worker process:
it renews leases, puts back dead workers' calls, retires lost tokens and
publishes replacements, so a waiting call always gets a wake-up within
``token_ttl`` plus one sweep interval.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator, List, Mapping, Optional, Sequence, Set

import attrs

from ranch_core import validation
from ranch_core.calls import Call, Claimed
from ranch_core.errors import BacklogFull
from ranch_core.keys import Key
from ranch_core.models import Finished, ScheduledTask, WakeupPolicy
from ranch_core.protocols import MAX_BATCH
from ranch_core.retries import Defer, RetryOutcome, RetryRule
from ranch_core.runtimes import RunTimer
from ranch_core.scheduler import FairScheduler, RevokedCallback

logger = logging.getLogger("ranch_core.dispatch")

#: Publishes one wake-up message carrying the given token id.
Wake = Callable[[str], None]
#: Publishes one wake-up message carrying the given token id, to be delivered
#: after the given number of seconds (Celery ``countdown``, Dramatiq ``delay``).
WakeLater = Callable[[str, float], None]
#: Default bound on a backlog's outstanding wake-ups.
MAX_WAKEUPS = 64
TaskCallback = Callable[[ScheduledTask], None]


class FairDispatcher(RetryRule):
    """One backlog as an adapter drives it (see the module docstring).

    ``wake(token)`` publishes one wake-up message carrying ``token``; it is
    called only for tokens the storage minted or passed on. ``max_wakeups``
    bounds the backlog's outstanding wake-ups (every dispatcher of one
    backlog should use the same value); ``token_ttl`` is how long a token
    may travel in the broker before a sweep retires it as lost and publishes
    a replacement (default: a third of the lease, the adapters' default
    sweep interval; adapters pass their sweep interval). ``on_expired`` is
    called for every call dropped as expired (adapters mark its result
    ``REVOKED``/failed so nobody waits forever), ``on_revoked(task, reason)``
    for every waiting call purged (``"purged"``) or revoked (``"revoked"``).

    ``wake_later(token, seconds)``, if given, publishes a wake-up delivered
    after a delay: a wake-up that finds only calls of rate-limited keys then
    keeps its token and comes back when the first of them may start (see
    :meth:`take`). Without it, such a token is retired and the sweep mints
    one once the time has passed.
    """

    def __init__(
        self,
        scheduler: FairScheduler,
        wake: Wake,
        *,
        on_expired: Optional[TaskCallback] = None,
        max_wakeups: int = MAX_WAKEUPS,
        token_ttl: Optional[float] = None,
        wake_later: Optional[WakeLater] = None,
        on_revoked: Optional[RevokedCallback] = None,
    ) -> None:
        if isinstance(max_wakeups, bool) or not isinstance(max_wakeups, int) or max_wakeups < 1:
            raise ValueError(f"max_wakeups must be a positive int, not {max_wakeups!r}")
        ttl = scheduler.lease_seconds / 3 if token_ttl is None else validation.check_lease(token_ttl)
        self.scheduler = scheduler
        self.wake = wake
        self.on_expired = on_expired
        self.on_revoked = on_revoked
        self.wake_later = wake_later
        #: The policy of the worker side (take, finish, sweep): its
        #: ``max_wakeups`` is sized to the fleet (:func:`fleet_max_wakeups`).
        self.wakeups = WakeupPolicy(max_wakeups, ttl, defer=wake_later is not None)
        #: The policy of the producer side (submit).
        self.producer_wakeups = self.wakeups
        self.max_wakeups = max_wakeups
        #: This worker's concurrency (calls it runs at once). A worker adapter
        #: sets it; the dispatcher then registers it with the storage and
        #: sizes the tokens to the fleet (:meth:`register_slots`).
        self.slots = 0
        #: The live workers' slots last read from the storage, and when (scheduler clock).
        self.fleet = 0
        self._fleet_read = float("-inf")
        self._registered_pid = -1
        scheduler.on_expired = self._expired
        scheduler.on_revoked = self._revoked
        self._running: Set[str] = set()
        self._running_lock = threading.Lock()

    # -- publishing --------------------------------------------------------

    def publish(self, tokens: Iterable[str], what: str = "") -> int:
        """Publish one wake-up per token; a failed publish is logged, never
        raised (the token stays outstanding until its deadline, then the
        sweep replaces it). Returns the number published."""
        published = 0
        for token in tokens:
            try:
                self.wake(token)
            except Exception as exc:  # noqa: BLE001 - the sweep repairs any lost wake-up
                logger.warning(
                    "ranch: could not publish wake-up %s%s (%r); a sweep replaces it within %.1f s",
                    token,
                    f" ({what})" if what else "",
                    exc,
                    self.wakeups.ttl,
                )
            else:
                published += 1
        return published

    # -- producer side -----------------------------------------------------

    def submit(
        self,
        key: Key,
        call: Call,
        *,
        priority_weight: Optional[float] = None,
        expiry: Optional[float] = None,
        tags: Optional[Mapping[str, str]] = None,
        task_id: Optional[str] = None,
        delay: Optional[float] = None,
    ) -> str:
        """Validate and store one call, then publish a wake-up if the
        storage minted a token; return the call's task id.

        Every argument is checked before anything is written; the call, its
        weight and its tags are stored in one storage step. A publish that
        fails is logged and the call stays stored: the sweep publishes a
        replacement (DESIGN.md "Wake-ups"), so the call runs. With ``delay``
        (seconds) the call is a delayed call (README, "Delayed calls"): a
        token the storage minted for its due time is published with that
        delay (``wake_later``).
        """
        key = validation.check_any_key(key, "lru_key")
        delay = validation.check_delay(delay)
        self._size_to_fleet()
        task_id, minted = self.scheduler.store_one(
            key,
            call.to_payload(),
            weight=validation.check_optional_weight(priority_weight, "priority_weight"),
            expiry=expiry,
            tags=tags,
            task_id=task_id,
            wakeups=self.producer_wakeups,
            delay=delay,
        )
        if minted:
            self._publish_stored(minted, delay, f"call {task_id} of key {key!r}")
        return task_id

    def _publish_stored(self, tokens: Sequence[str], delay: Optional[float], what: str) -> None:
        """Publish the tokens a store minted: now, or, for delayed calls, when they are due."""
        if delay is None:
            self.publish(tokens, what)
        else:
            for token in tokens:
                self._wake_later(token, delay)

    def submit_many(
        self,
        key: Key,
        calls: Iterable[Call],
        *,
        priority_weight: Optional[float] = None,
        expiry: Optional[float] = None,
        tags: Optional[Mapping[str, str]] = None,
        task_ids: Optional[Sequence[str]] = None,
        delay: Optional[float] = None,
    ) -> List[str]:
        """Store ``calls`` under ``key`` in order; return their task ids.

        One storage step per batch of up to :data:`~ranch_core.protocols.MAX_BATCH`
        calls (all stored or none; a longer iterable goes in such batches, so
        a failure in a later batch leaves the earlier ones stored) and at
        most one wake-up published per batch: the worker that takes it fans
        out. Arguments as :meth:`submit`; ``task_ids`` gives one id per call.
        """
        key = validation.check_any_key(key, "lru_key")
        priority_weight = validation.check_optional_weight(priority_weight, "priority_weight")
        expiry = validation.check_expiry(expiry)
        delay = validation.check_delay(delay)
        checked_tags = validation.check_tags(tags)
        payloads = [call.to_payload() for call in calls]
        if task_ids is not None:
            task_ids = list(task_ids)
        ids: List[str] = []
        self._size_to_fleet()
        for start in range(0, max(len(payloads), 1), MAX_BATCH):
            stored = self.scheduler.store(
                key,
                payloads[start : start + MAX_BATCH],
                weight=priority_weight,
                expiry=expiry,
                tags=checked_tags,
                task_ids=None if task_ids is None else task_ids[start : start + MAX_BATCH],
                wakeups=self.producer_wakeups,
                delay=delay,
            )
            ids += stored.task_ids
            self._publish_stored(stored.wakeups, delay, f"calls of key {key!r}")
        return ids

    # -- worker side -------------------------------------------------------

    def take(self, token: Optional[str] = None) -> Optional[Claimed]:
        """The fair choice now for the wake-up carrying ``token``, or ``None``
        (a no-op: nothing waits, or the token is stale and ``max_wakeups``
        are outstanding, or it is held already).

        Tokens minted by fan-out are published before returning. A wake-up
        without a token (from Ranch 0.1, or an adapter's own nudge) counts as
        a stale token: it is adopted if fewer than ``max_wakeups`` are
        outstanding. The returned :class:`Claimed` carries the token the
        worker now holds: end the call with :meth:`finish`, :meth:`retry` or
        :meth:`requeue`, which pass it on or retire it.

        A stored call that cannot be decoded is reported, acknowledged (so it
        does not come back) and skipped, under the same token.
        """
        if token is None:
            token = "stale-" + os.urandom(8).hex()
        if self.slots > 0 and self._registered_pid != os.getpid():
            self.register_slots()
        else:
            self._size_to_fleet()
        while True:
            taken = self.scheduler.take(token, self.wakeups)
            self.publish(taken.wakeups, "fan-out")
            task = taken.task
            if task is None:
                if taken.deferred and taken.retry_at is not None:
                    self._wake_later(token, taken.retry_at - self.scheduler.clock())
                return None
            try:
                return Claimed(task, Call.from_payload(task.payload), token)
            except (TypeError, ValueError) as exc:
                logger.error("ranch: dropping corrupt call %s of key %r: %s", task.task_id, task.key, exc)
                if not self.scheduler.finish(
                    task.task_id, token=token, wakeups=self.wakeups, keep_token=True
                ).kept:
                    return None

    @contextmanager
    def running(self, claimed: Claimed) -> Iterator[Claimed]:
        """Mark a call as running here so the lease keeper renews its lease (and its token's)."""
        with self._running_lock:
            self._running.add(claimed.task_id)
        try:
            yield claimed
        finally:
            with self._running_lock:
                self._running.discard(claimed.task_id)

    def finish(
        self,
        claimed: Claimed,
        *,
        keep_token: bool = False,
        failed: bool = False,
        run_time: Optional[float] = None,
    ) -> Finished:
        """The call ended (success, or final failure: ``failed``, for the
        metrics): ack its lease and pass its token on (published) while calls
        wait, or retire it; one storage step.

        With ``keep_token=True`` (a run budget) the token stays held while
        calls wait (``Finished.kept``): call :meth:`take` with
        ``claimed.token`` for the next call, and :meth:`release_token` when
        the budget is spent. ``run_time``: how long the call's function ran
        (seconds, a :class:`~ranch_core.runtimes.RunTimer`'s), charged
        when the backlog charges by run time (:attr:`measures_runtime`) and
        ignored otherwise; ``None``: the storage charges the lease. Returns
        what the storage did.
        """
        finished = self.scheduler.finish(
            claimed.task_id,
            token=claimed.token,
            wakeups=self.wakeups,
            keep_token=keep_token,
            failed=failed,
            cost=self.charged(run_time),
        )
        if not finished.done:
            logger.warning(
                "ranch: call %s finished after its lease ran out; it may have run twice", claimed.task_id
            )
        return self._settle(claimed, finished)

    @property
    def measures_runtime(self) -> bool:
        """Whether calls are charged by run time (``cost="runtime"``): only
        then do the adapters time the call's function (:mod:`ranch_core.runtimes`)."""
        return self.scheduler.runtime is not None

    def timer(self) -> Optional[RunTimer]:
        """A :class:`~ranch_core.runtimes.RunTimer` for the next call's
        function if the backlog charges by run time, else ``None`` (no timing)."""
        return RunTimer() if self.measures_runtime else None

    def charged(self, run_time: Optional[float]) -> Optional[float]:
        """The ``cost`` a finish passes to the storage for a call whose
        function ran ``run_time`` seconds: that time when the backlog charges
        by run time, else ``None`` (a backlog charged by calls takes none)."""
        return run_time if self.measures_runtime else None

    def release_token(self, token: str) -> bool:
        """Hand back a token kept by ``finish(..., keep_token=True)``: it is
        published again if calls wait, else retired. ``True`` if published."""
        return self.publish(self.scheduler.release_token(token, self.wakeups), "released") > 0

    def running_ids(self) -> List[str]:
        """Task ids of calls running in this process."""
        with self._running_lock:
            return list(self._running)

    def sweep(self) -> int:
        """What a worker's lease keeper does every sweep interval: renew this
        process's leases (and their tokens), put back dead workers' calls,
        drop expired calls (reported through ``on_expired``, so their results
        end without any worker popping them), let a shared storage repair a
        batch of its keys, then retire lost tokens and publish the
        replacements the storage mints (:meth:`FairScheduler.sweep_wakeups`).

        Returns the number of calls put back.
        """
        for task_id in self.running_ids():
            self.scheduler.extend(task_id)
        reclaimed = len(self.scheduler.reclaim())
        self.scheduler.expire()
        self.scheduler.repair()
        if self.slots > 0:
            self.register_slots()
        minted = self.scheduler.sweep_wakeups(self.wakeups)
        if minted:
            logger.info(
                "ranch: the sweep publishes %d wake-ups: calls wait and too few tokens are in flight",
                len(minted),
            )
            self.publish(minted, "sweep")
        return reclaimed

    def register_slots(self) -> int:
        """Register this worker's :attr:`slots` with the storage (for three
        token ttls, renewed by every sweep) and size the tokens to the fleet
        (:func:`fleet_max_wakeups`). Returns the worker side's ``max_wakeups``."""
        total = self.scheduler.register_slots(self._worker_id(), self.slots, 3 * self.wakeups.ttl)
        self._registered_pid = os.getpid()
        self._fleet_read = self.scheduler.clock()
        self._resize(total)
        return self.wakeups.max_wakeups

    def _size_to_fleet(self) -> None:
        """Read the live workers' slots again once a token ttl has passed
        (a process that registers none: a producer, a pool child)."""
        now = self.scheduler.clock()
        if now - self._fleet_read < self.wakeups.ttl:
            return
        self._fleet_read = now
        try:
            total = self.scheduler.live_slots()
        except Exception as exc:  # noqa: BLE001 - sizing is advisory; the step that follows reports
            logger.debug("ranch: could not read the fleet's slots (%r); the sizing stays", exc)
            return
        self._resize(total)

    def _resize(self, fleet: int) -> None:
        self.fleet = fleet
        worker = fleet_max_wakeups(self.max_wakeups, fleet, worker=True)
        producer = fleet_max_wakeups(self.max_wakeups, fleet, worker=False)
        if worker != self.wakeups.max_wakeups:
            self.wakeups = attrs.evolve(self.wakeups, max_wakeups=worker)
        if producer != self.producer_wakeups.max_wakeups:
            self.producer_wakeups = attrs.evolve(self.producer_wakeups, max_wakeups=producer)

    def _worker_id(self) -> str:
        """This process's name in the storage's slot registry (unique per dispatcher)."""
        return f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"

    def _wake_later(self, token: str, seconds: float) -> None:
        """Publish ``token`` to come back in ``seconds`` (a failure is logged:
        the sweep puts the token in flight when it is due and replaces it if lost)."""
        assert self.wake_later is not None
        try:
            self.wake_later(token, max(0.0, seconds))
        except Exception as exc:  # noqa: BLE001 - the sweep repairs any lost wake-up
            logger.warning("ranch: delayed wake-up %s not published (%r); the sweep repairs it", token, exc)

    # -- per-key controls (published: the tokens a change mints, as a producer) --

    def set_concurrency_limit(self, key: Key, limit: Optional[int]) -> None:
        """As :meth:`FairScheduler.set_concurrency_limit`; publishes the wake-ups it mints."""
        self._size_to_fleet()
        self.publish(self.scheduler.set_concurrency_limit(key, limit, wakeups=self.producer_wakeups), "limit")

    def set_rate_limit(self, key: Key, rate: Optional[str], *, burst: int = 1) -> None:
        """As :meth:`FairScheduler.set_rate_limit`; publishes the wake-ups it mints."""
        self._size_to_fleet()
        minted = self.scheduler.set_rate_limit(key, rate, burst=burst, wakeups=self.producer_wakeups)
        self.publish(minted, "rate")

    def pause_key(self, key: Key) -> None:
        """As :meth:`FairScheduler.pause_key`."""
        self.scheduler.pause_key(key)

    def resume_key(self, key: Key) -> None:
        """As :meth:`FairScheduler.resume_key`; publishes the wake-ups it mints."""
        self._size_to_fleet()
        self.publish(self.scheduler.resume_key(key, wakeups=self.producer_wakeups), "resume")

    def check_room(self, key: Key, count: int) -> None:
        """Raise :class:`~ranch_core.errors.BacklogFull` if ``count`` more calls
        do not fit under ``key``'s ``max_backlog``, before the first of several
        storage steps is written (each step is refused whole by the storage
        itself; this read covers them together, and a push racing it may still
        fill the key in between)."""
        meta = self.scheduler.metadata(validation.check_any_key(key, "lru_key"))
        limit = meta.max_backlog
        if limit is not None and meta.pending_tasks + count > limit:
            raise BacklogFull(
                f"key {key!r} holds {meta.pending_tasks} waiting calls, its max_backlog is {limit}: "
                f"{count} more refused",
                key=key,
                limit=limit,
            )

    def set_max_backlog(self, key: Key, limit: Optional[int]) -> None:
        """As :meth:`FairScheduler.set_max_backlog`."""
        self.scheduler.set_max_backlog(key, limit)

    def purge_key(self, key: Key) -> int:
        """As :meth:`FairScheduler.purge_key` (each call reported through ``on_revoked``)."""
        return self.scheduler.purge_key(key)

    def revoke_call(self, task_id: str) -> bool:
        """As :meth:`FairScheduler.revoke_call` (reported through ``on_revoked``)."""
        return self.scheduler.revoke_call(task_id)

    def _revoked(self, task: ScheduledTask, reason: str) -> None:
        if self.on_revoked is not None:
            try:
                self.on_revoked(task, reason)
            except Exception:
                logger.exception("ranch: on_revoked failed for call %s", task.task_id)

    def _expired(self, task: ScheduledTask) -> None:
        if self.on_expired is not None:
            try:
                self.on_expired(task)
            except Exception:
                logger.exception("ranch: on_expired failed for call %s", task.task_id)


def fleet_max_wakeups(configured: int, fleet: int, *, worker: bool) -> int:
    """The ``max_wakeups`` a step uses, given the configured bound and the
    live workers' slots (``fleet``; 0: none registered, the bound is used).

    Twice the fleet's slots keep every slot busy (one token held per running
    call, one queued for the slot that frees next) without filling a queue
    shared with plain tasks: producers use ``min(configured, 2 x fleet)``;
    workers may also grow past the bound to the fleet's slots, so tokens never
    keep a free slot idle: ``max(fleet, min(configured, 2 x fleet))``.
    """
    if fleet <= 0:
        return configured
    sized = min(configured, 2 * fleet)
    return max(fleet, sized) if worker else sized


__all__ = ["MAX_WAKEUPS", "Defer", "FairDispatcher", "RetryOutcome", "Wake", "WakeLater", "fleet_max_wakeups"]
