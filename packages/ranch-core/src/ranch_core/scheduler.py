"""``FairScheduler``: the facade a queue (Celery, Dramatiq or your own) calls."""

from __future__ import annotations

import functools
import logging
import math
import os
import threading
import time
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import attrs

from ranch_core import validation
from ranch_core.backends import controls
from ranch_core.backends.memory import InMemoryStorage
from ranch_core.errors import CorruptTask
from ranch_core.keys import Key, group_of
from ranch_core.models import Finished, LRUKeyMetadata, RuntimeCost, ScheduledTask, SystemStatus, WakeupPolicy
from ranch_core.protocols import (
    EXPIRE_ON_READ,
    EXPIRED_BATCH,
    MAX_BATCH,
    PURGE_BATCH,
    REPAIR_BATCH,
    Controls,
    Repairable,
    RuntimeCosts,
    Storage,
)

logger = logging.getLogger("ranch_core")

WeightFunction = Callable[[str, LRUKeyMetadata], float]
TaskCallback = Callable[[ScheduledTask], None]
#: Called with each waiting call deleted on purpose and why: ``"purged"``
#: (:meth:`FairScheduler.purge_key`) or ``"revoked"`` (:meth:`FairScheduler.revoke_call`).
RevokedCallback = Callable[[ScheduledTask, str], None]

#: Seconds between two warnings about a failing weight function.
WARNING_INTERVAL = 60.0


def new_task_id() -> str:
    """A random UUID4 as 32 hex digits (as ``uuid.uuid4().hex``, at a third of the cost)."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return raw.hex()


@attrs.frozen
class Stored:
    """What :meth:`FairScheduler.store` did: the task ids, in order, and the
    wake-up token ids minted (publish one wake-up each)."""

    task_ids: List[str]
    wakeups: Tuple[str, ...] = ()


@attrs.frozen
class Taken:
    """What :meth:`FairScheduler.take` did: the leased task (or ``None``) and
    the token ids minted by fan-out (publish one wake-up each). With no task,
    ``retry_at`` is the earliest time a rate-limited call becomes runnable,
    and ``deferred`` says the storage kept the token for that time: publish
    it again with a delay of ``retry_at - now``."""

    task: Optional[ScheduledTask]
    wakeups: Tuple[str, ...] = ()
    retry_at: Optional[float] = None
    deferred: bool = False


class SchedulerBase:
    """What :class:`FairScheduler` and :class:`~ranch_core.AsyncFairScheduler`
    share and that does no storage I/O: settings, argument checks, reports
    and the weight function's correction."""

    def __init__(
        self,
        *,
        weight_function: Optional[WeightFunction] = None,
        lease_seconds: float = 300.0,
        clock: Callable[[], float] = time.time,
        on_expired: Optional[TaskCallback] = None,
        on_reclaimed: Optional[TaskCallback] = None,
        on_revoked: Optional[RevokedCallback] = None,
        cost: Any = "calls",
    ) -> None:
        if weight_function is not None and not callable(weight_function):
            raise TypeError("weight_function must be callable")
        runtime = validation.check_cost_mode(cost)
        if runtime is not None and weight_function is not None:
            raise ValueError("cost='runtime' takes no weight_function (not supported yet)")
        #: ``None`` for ``cost="calls"``.
        self.runtime: Optional[RuntimeCost] = runtime
        self.weight_function = weight_function
        self.lease_seconds = validation.check_lease(lease_seconds)
        self.clock = clock
        self.on_expired = on_expired
        self.on_reclaimed = on_reclaimed
        self.on_revoked = on_revoked
        self._warn_lock = threading.Lock()
        self._last_warning = -math.inf
        self._suppressed = 0

    def _tasks(
        self,
        key: Key,
        payloads: Iterable[Any],
        weight: Optional[float],
        expiry: Optional[float],
        tags: Optional[Mapping[str, str]],
        task_ids: Optional[Sequence[str]],
        delay: Optional[float] = None,
    ) -> Tuple[List[ScheduledTask], Optional[float], Optional[Dict[str, str]]]:
        """Check a push's arguments; the tasks to store, the weight and the tags."""
        key = validation.check_any_key(key)
        weight = validation.check_optional_weight(weight)
        expiry = validation.check_expiry(expiry)
        delay = validation.check_delay(delay)
        checked_tags = validation.check_tags(tags) or None
        payloads = list(payloads)
        if task_ids is None:
            ids = [new_task_id() for _ in payloads]
        else:
            ids = [validation.check_name(task_id, "task_id") for task_id in task_ids]
            if len(ids) != len(payloads):
                raise ValueError(f"task_ids has {len(ids)} ids for {len(payloads)} payloads")
        now = self.clock()
        expires_at = None if expiry is None else now + expiry
        due = None if delay is None else now + delay
        tasks = [
            ScheduledTask(tid, key, payload, now, expires_at, due) for tid, payload in zip(ids, payloads)
        ]
        return tasks, weight, checked_tags

    def _task(
        self,
        key: Key,
        payload: Any,
        weight: Optional[float],
        expiry: Optional[float],
        tags: Optional[Mapping[str, str]],
        task_id: Optional[str],
        delay: Optional[float] = None,
    ) -> Tuple[ScheduledTask, Optional[float], Optional[Dict[str, str]]]:
        """:meth:`_tasks` of one payload (every ``push``, ``lru_delay`` and
        ``lru_send`` runs it: no lists, the same checks)."""
        key = validation.check_any_key(key)
        weight = validation.check_optional_weight(weight)
        expiry = validation.check_expiry(expiry)
        checked_tags = validation.check_tags(tags) or None
        task_id = new_task_id() if task_id is None else validation.check_name(task_id, "task_id")
        delay = None if delay is None else validation.check_delay(delay)
        now = self.clock()
        return (
            ScheduledTask(
                task_id,
                key,
                payload,
                now,
                None if expiry is None else now + expiry,
                None if delay is None else now + delay,
            ),
            weight,
            checked_tags,
        )

    def retried(self, task: ScheduledTask, payload: Any) -> ScheduledTask:
        """``task`` as a retry stores it: same id, key and expiry, new payload, enqueued now."""
        return ScheduledTask(task.task_id, task.key, payload, self.clock(), task.expires_at)

    def _report(self, expired: Any, reclaimed: Any) -> None:
        for task in expired:
            logger.info("ranch: dropped expired task %s of key %r", task.task_id, task.key)
            if self.on_expired is not None:
                self.on_expired(task)
        for task in reclaimed:
            logger.warning("ranch: lease of task %s (key %r) ran out; put back", task.task_id, task.key)
            if self.on_reclaimed is not None:
                self.on_reclaimed(task)

    def _revoked(self, tasks: Iterable[ScheduledTask], reason: str) -> None:
        for task in tasks:
            logger.debug("ranch: %s waiting call %s of key %r", reason, task.task_id, task.key)
            if self.on_revoked is not None:
                self.on_revoked(task, reason)

    def _checked_cost(self, cost: Any) -> Optional[float]:
        """A run time given to an ack or a finish, checked (``cost="runtime"`` only)."""
        checked = validation.check_cost(cost)
        if checked is not None and self.runtime is None:
            raise ValueError("cost (a run time) needs cost='runtime'")
        return checked

    def _correction(self, key: str, meta: LRUKeyMetadata) -> Optional[float]:
        """What to charge ``key`` beyond its stored weight after a dispatch
        (the weight function's result minus the weight); ``None``: nothing."""
        assert self.weight_function is not None
        try:
            weight = validation.check_weight(self.weight_function(key, meta), "weight_function result")
        except Exception as exc:  # noqa: BLE001 - a user callback must not stop the worker
            self._warn(f"weight_function failed for key {key!r}: {exc!r}; using the stored weight")
            return None
        return weight - meta.weight if weight != meta.weight else None

    def _warn(self, message: str) -> None:
        with self._warn_lock:
            now = time.monotonic()
            if now - self._last_warning < WARNING_INTERVAL:
                self._suppressed += 1
                return
            suppressed, self._suppressed = self._suppressed, 0
            self._last_warning = now
        if suppressed:
            message += f" ({suppressed} similar warnings suppressed)"
        logger.warning("ranch: %s", message)


class FairScheduler(SchedulerBase):
    """Fair scheduling across keys on top of any :class:`~ranch_core.protocols.Storage`.

    Producers :meth:`push` tasks under a key; whenever a worker slot is free,
    :meth:`pop` hands out the task of the key served least recently
    (corrected by weights), leased for ``lease_seconds``. A worker finishes a
    task with :meth:`ack` or gives it back with :meth:`release`; a lease that
    runs out (the worker died) is put back by a later :meth:`pop` or
    :meth:`reclaim`.

    ``weight_function(key, metadata) -> float``, if given, is called for the
    served key only, after each dispatch; its result is what that dispatch
    costs the key. It weighs groups: for a two-level key ``(group, member)``
    it is called with the group's name and metadata, and charges the group.
    If it raises or returns a weight that is not finite and positive, the
    stored weight is used and a (rate-limited) warning logged.

    ``on_expired`` and ``on_reclaimed`` are called with each task dropped as
    expired and each lease put back, whichever call did it; ``on_revoked(task,
    reason)`` with each waiting call deleted by :meth:`purge_key` (reason
    ``"purged"``) or :meth:`revoke_call` (``"revoked"``). Counts
    (:meth:`status`, :meth:`metadata`, ``len()``) never include a task whose
    expiry has passed: each first drops up to :data:`~ranch_core.protocols.EXPIRE_ON_READ`
    due tasks (reported through ``on_expired``) and leaves out the rest.

    Per-key controls (concurrency caps, rate limits, pause, backlog limits,
    purge, revoke: the README's "Per-key controls") need a storage that has
    them (:class:`~ranch_core.protocols.Controls`; the in-memory one does).
    ``default_concurrency_limit`` and ``default_rate_limit`` (``"10/s"``,
    burst 1) apply to every key without a setting of its own; given here,
    they are written to the storage, shared by every scheduler of it.

    ``cost`` is what a dispatch costs its key: ``"calls"`` (the default) its
    weight; ``"runtime"`` (or a :class:`~ranch_core.models.RuntimeCost`)
    its run time times its weight, charged as an estimate at :meth:`pop`
    and corrected when the call ends (:meth:`ack` and :meth:`finish` take
    the measured ``cost`` in seconds, else the storage measures it; README,
    "Fair by time"). It needs a storage with
    :class:`~ranch_core.protocols.RuntimeCosts` (the in-memory ones) and
    takes no ``weight_function`` yet.
    """

    def __init__(
        self,
        storage: Optional[Storage] = None,
        *,
        weight_function: Optional[WeightFunction] = None,
        lease_seconds: float = 300.0,
        clock: Callable[[], float] = time.time,
        on_expired: Optional[TaskCallback] = None,
        on_reclaimed: Optional[TaskCallback] = None,
        on_revoked: Optional[RevokedCallback] = None,
        default_concurrency_limit: Optional[int] = None,
        default_rate_limit: Optional[str] = None,
        cost: Any = "calls",
    ) -> None:
        super().__init__(
            weight_function=weight_function,
            lease_seconds=lease_seconds,
            clock=clock,
            on_expired=on_expired,
            on_reclaimed=on_reclaimed,
            on_revoked=on_revoked,
            cost=cost,
        )
        limit = validation.check_concurrency_limit(default_concurrency_limit, "default_concurrency_limit")
        rate = validation.check_rate_limit(default_rate_limit, name="default_rate_limit")
        self.storage: Storage = InMemoryStorage() if storage is None else storage
        if self.runtime is not None:
            self._costs()
        if limit is not None:
            self._controls().set_control(None, controls.CONCURRENCY_LIMIT, limit, self.clock())
        if rate is not None:
            self._controls().set_control(None, controls.RATE_LIMIT, rate, self.clock())

    # -- producing ---------------------------------------------------------

    def push(
        self,
        key: Key,
        payload: Any,
        *,
        weight: Optional[float] = None,
        expiry: Optional[float] = None,
        task_id: Optional[str] = None,
        tags: Optional[Mapping[str, str]] = None,
        delay: Optional[float] = None,
    ) -> str:
        """Store ``payload`` at the tail of ``key``'s backlog; return its task id.

        ``weight`` (if given) becomes the key's weight and ``tags``
        (``name -> value``) tag the key, in the same atomic step as the
        store. ``expiry`` is seconds from now after which the task is
        dropped instead of run; ``None`` never expires. ``delay`` (seconds)
        stores a delayed call: it joins the tail of its key's backlog only
        ``delay`` seconds from now (README, "Delayed calls"). Bad arguments
        raise ``TypeError``/``ValueError`` and store nothing (no weight, no tag).
        """
        return self.store_one(
            key, payload, weight=weight, expiry=expiry, task_id=task_id, tags=tags, delay=delay
        )[0]

    def push_many(
        self,
        key: Key,
        payloads: Iterable[Any],
        *,
        weight: Optional[float] = None,
        expiry: Optional[float] = None,
        tags: Optional[Mapping[str, str]] = None,
        task_ids: Optional[Sequence[str]] = None,
        delay: Optional[float] = None,
    ) -> List[str]:
        """Store ``payloads`` at the tail of ``key``'s backlog, in order; return their task ids.

        Up to :data:`~ranch_core.protocols.MAX_BATCH` payloads are stored in
        one storage step, all or none; a longer iterable goes in batches of
        that size (each all or none). Arguments as :meth:`push`;
        ``task_ids`` (one per payload) replaces the random ids.
        """
        return self.store(
            key, payloads, weight=weight, expiry=expiry, tags=tags, task_ids=task_ids, delay=delay
        ).task_ids

    def store(
        self,
        key: Key,
        payloads: Iterable[Any],
        *,
        weight: Optional[float] = None,
        expiry: Optional[float] = None,
        tags: Optional[Mapping[str, str]] = None,
        task_ids: Optional[Sequence[str]] = None,
        wakeups: Optional[WakeupPolicy] = None,
        delay: Optional[float] = None,
    ) -> Stored:
        """:meth:`push_many` that also mints wake-up tokens (``wakeups``): at
        most one per storage step, see :meth:`ranch_core.protocols.Backlog.push_many`.
        With ``delay``, a token is one deferred to the calls' due time: publish
        it with that delay."""
        tasks, weight, checked_tags = self._tasks(key, payloads, weight, expiry, tags, task_ids, delay)
        minted: List[str] = []
        for start in range(0, len(tasks), MAX_BATCH):
            minted += self.storage.push_many(
                tasks[start : start + MAX_BATCH], weight=weight, tags=checked_tags, wakeups=wakeups
            )
        return Stored([task.task_id for task in tasks], tuple(minted))

    def store_one(
        self,
        key: Key,
        payload: Any,
        *,
        weight: Optional[float] = None,
        expiry: Optional[float] = None,
        tags: Optional[Mapping[str, str]] = None,
        task_id: Optional[str] = None,
        wakeups: Optional[WakeupPolicy] = None,
        delay: Optional[float] = None,
    ) -> Tuple[str, List[str]]:
        """:meth:`store` of one payload, in the storage's one-task step
        (:meth:`ranch_core.protocols.Backlog.push`): the task id and the
        wake-up token ids minted (at most one; with ``delay``, deferred to
        the call's due time)."""
        task, weight, checked_tags = self._task(key, payload, weight, expiry, tags, task_id, delay)
        return task.task_id, self.storage.push(task, weight=weight, tags=checked_tags, wakeups=wakeups)

    def remove(self, key: Key, task_id: str) -> bool:
        """Delete a waiting task, e.g. when publishing its wake-up message failed."""
        return self.storage.remove(validation.check_any_key(key), validation.check_name(task_id, "task_id"))

    # -- consuming ---------------------------------------------------------

    def pop(self, timeout: Optional[float] = 0) -> Optional[ScheduledTask]:
        """The fair choice, leased; ``None`` if nothing is waiting.

        ``timeout`` (seconds) lets the call wait for a call to become
        runnable: ``0`` (default) answers at once, ``None`` waits as long as
        it takes. While it waits the storage blocks (a condition in memory,
        a blocking command on Redis: :meth:`ranch_core.protocols.Backlog.wait`),
        so an idle worker costs no CPU, and a push from any thread or
        process, a release, a retry or a lease that runs out wakes it.
        """
        timeout = validation.check_timeout(timeout)
        task = self.take().task
        if task is not None or timeout == 0:
            return task
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return None
            self.storage.wait(self.clock(), remaining)
            task = self.take().task
            if task is not None:
                return task

    def take(self, token: Optional[str] = None, wakeups: Optional[WakeupPolicy] = None) -> Taken:
        """:meth:`pop` with a wake-up ``token`` (see :meth:`ranch_core.protocols.Backlog.pop`):
        the task leased (``None``: nothing waits, or the token may not pop)
        and the tokens minted by fan-out."""
        now = self.clock()
        minted: List[str] = []
        while True:
            if self.runtime is None:
                result = self.storage.pop(now, self.lease_seconds, token=token, wakeups=wakeups)
            else:
                result = self._costs().pop(
                    now, self.lease_seconds, token=token, wakeups=wakeups, runtime=self.runtime
                )
            minted += result.minted
            self._report(result.expired, result.reclaimed)
            if result.task is not None or not result.expired:
                break
        task = result.task
        if task is not None and self.weight_function is not None:
            self._apply_weight_function(group_of(task.key))
        return Taken(task, tuple(minted), result.retry_at, result.deferred)

    def finish(
        self,
        task_id: str,
        *,
        requeue: Optional[ScheduledTask] = None,
        token: Optional[str] = None,
        wakeups: Optional[WakeupPolicy] = None,
        keep_token: bool = False,
        failed: bool = False,
        cost: Optional[float] = None,
    ) -> Finished:
        """Ack (or, with ``requeue``, retry) a leased task and decide its
        token's fate in one step (:meth:`ranch_core.protocols.Backlog.finish`);
        ``failed``: the call ended in failure (counted by storages that keep metrics);
        ``cost``: with ``cost="runtime"``, the call's measured run time in
        seconds (``None``: the storage measures it from its pop)."""
        checked = self._checked_cost(cost)
        finish: Callable[..., Finished] = self.storage.finish
        if self.runtime is not None:
            finish = functools.partial(self._costs().finish, cost=checked)
        return finish(
            task_id,
            self.clock(),
            requeue=requeue,
            token=token,
            wakeups=wakeups,
            keep_token=keep_token,
            failed=failed,
        )

    def release_token(self, token: str, wakeups: WakeupPolicy) -> List[str]:
        """Hand back a kept token; returns it if it was passed on (publish it)."""
        return self.storage.release_token(token, self.clock(), wakeups)

    def sweep_wakeups(self, wakeups: WakeupPolicy) -> List[str]:
        """Retire lost tokens and mint replacements (:meth:`ranch_core.protocols.Backlog.sweep_wakeups`)."""
        return self.storage.sweep_wakeups(self.clock(), wakeups)

    def register_slots(self, worker: str, slots: int, ttl: float) -> int:
        """Register ``worker``'s ``slots`` for ``ttl`` seconds; the live total
        (:meth:`ranch_core.protocols.Backlog.register_slots`)."""
        validation.check_name(worker, "worker")
        if isinstance(slots, bool) or not isinstance(slots, int) or slots < 0:
            raise ValueError(f"slots must be an int >= 0, not {slots!r}")
        return self.storage.register_slots(worker, slots, self.clock(), validation.check_lease(ttl))

    def live_slots(self) -> int:
        """The live workers' registered slots (:meth:`ranch_core.protocols.Backlog.live_slots`)."""
        return self.storage.live_slots(self.clock())

    def ack(self, task_id: str, *, cost: Optional[float] = None) -> bool:
        """Finish a leased task. ``False`` if its lease was already gone.

        ``cost`` (``cost="runtime"`` only): the call's run time in seconds,
        when the caller measured it; ``None``: the storage measures it."""
        checked = self._checked_cost(cost)
        if self.runtime is not None:
            return self.finish(task_id, cost=checked).done
        return self.storage.ack(task_id)

    def _costs(self) -> RuntimeCosts:
        if not isinstance(self.storage, RuntimeCosts):
            raise TypeError(
                f"{type(self.storage).__name__} cannot charge by run time (ranch_core.protocols.RuntimeCosts)"
            )
        return self.storage

    def run_estimate(self, key: Key) -> Optional[float]:
        """``key``'s moving average of run times (``cost="runtime"``); ``None``
        if none was measured yet."""
        return self._costs().run_estimate(validation.check_any_key(key))

    def release(self, task_id: str) -> bool:
        """Give a leased task back: it goes to the head of its key."""
        return self.storage.release(task_id)

    def requeue(self, task: ScheduledTask, payload: Any) -> bool:
        """Retry a leased task: finish its lease and append it, with ``payload``,
        to the tail of its key in one step (same id, same expiry).

        ``False`` (nothing written) if the lease was already gone: the task
        went back on its own and will run again anyway. With
        ``cost="runtime"`` the run that ends is charged as :meth:`ack` does.
        """
        if self.runtime is not None:
            return self.finish(task.task_id, requeue=self.retried(task, payload)).done
        return self.storage.requeue(self.retried(task, payload))

    def extend(self, task_id: str) -> bool:
        """Renew a lease for another ``lease_seconds`` (long-running tasks)."""
        return self.storage.extend(task_id, self.clock() + self.lease_seconds)

    def reclaim(self) -> List[ScheduledTask]:
        """Put back every lease that ran out; return those tasks."""
        reclaimed = self.storage.reclaim(self.clock())
        self._report((), reclaimed)
        return reclaimed

    def expire(self, limit: int = EXPIRED_BATCH) -> List[ScheduledTask]:
        """Drop up to ``limit`` waiting tasks whose expiry has passed; report
        each through ``on_expired`` and return them. A sweep calls this so
        that expired calls end without any worker popping."""
        return self._expire(self.clock(), validation.check_limit(limit))

    def _expire(self, now: float, limit: int) -> List[ScheduledTask]:
        expired = self.storage.expire(now, limit)
        self._report(expired, ())
        return expired

    def repair(self, limit: int = REPAIR_BATCH) -> List[CorruptTask]:
        """Let the storage check and fix up to ``limit`` of its keys (see
        :class:`~ranch_core.protocols.Repairable`); ``[]`` for a storage
        that cannot be damaged from outside, such as the in-memory one.
        The storage reports each fix itself (``RedisStorage``'s ``on_corrupt``)."""
        validation.check_limit(limit)
        if isinstance(self.storage, Repairable):
            return self.storage.repair(limit)
        return []

    def _apply_weight_function(self, key: str) -> None:
        extra = self._correction(key, self.storage.metadata(key))
        if extra is not None:
            self.storage.charge(key, extra)

    # -- per-key controls --------------------------------------------------
    #
    # Each control set on a string key holds for its whole group (every
    # member and the group's own calls); on a pair, for that member alone. A
    # call starts only if its member and its group allow it (README,
    # "Two-level keys").

    def _controls(self) -> Controls:
        if not isinstance(self.storage, Controls):
            raise TypeError(
                f"{type(self.storage).__name__} has no per-key controls (ranch_core.protocols.Controls)"
            )
        return self.storage

    def _control(self, key: Key, name: str, value: Any, wakeups: Optional[WakeupPolicy]) -> List[str]:
        return self._controls().set_control(key, name, value, self.clock(), wakeups=wakeups)

    def set_concurrency_limit(
        self, key: Key, limit: Optional[int], *, wakeups: Optional[WakeupPolicy] = None
    ) -> List[str]:
        """At most ``limit`` calls of ``key`` leased at once, across every
        worker of the storage (a string key: of its whole group, every member
        together); ``None`` removes the key's own limit (the default
        applies). A key at its limit waits, parked, until one of its calls
        ends. Returns the wake-up token ids minted if the change made
        calls runnable (``wakeups`` given; publish one wake-up each)."""
        checked = validation.check_concurrency_limit(limit)
        return self._control(validation.check_any_key(key), controls.CONCURRENCY_LIMIT, checked, wakeups)

    def set_rate_limit(
        self, key: Key, rate: Optional[str], *, burst: int = 1, wakeups: Optional[WakeupPolicy] = None
    ) -> List[str]:
        """At most ``burst + r * T`` calls of ``key`` start in any ``T``
        seconds, where ``rate`` is Celery's syntax (``"10/s"``, ``"100/m"``,
        ``"0.5/s"``, ``"1000/h"``): a token bucket of ``burst`` calls shared
        by every worker (a string key's by its whole group). ``None``
        removes the key's own limit (the default applies). Returns the token
        ids minted, as :meth:`set_concurrency_limit`."""
        checked = validation.check_rate_limit(rate, burst)
        return self._control(validation.check_any_key(key), controls.RATE_LIMIT, checked, wakeups)

    def pause_key(self, key: Key) -> List[str]:
        """Hold every call of ``key`` (a string key: of its whole group, every
        member's; they wait and keep their place); other keys are
        unaffected. Returns ``[]`` (pausing makes nothing runnable)."""
        return self._control(validation.check_any_key(key), controls.PAUSE, True, None)

    def resume_key(self, key: Key, *, wakeups: Optional[WakeupPolicy] = None) -> List[str]:
        """Let a paused key's calls run again; it rejoins the current round
        (no credit for the pause). Returns the token ids minted."""
        return self._control(validation.check_any_key(key), controls.PAUSE, False, wakeups)

    def set_max_backlog(self, key: Key, limit: Optional[int]) -> List[str]:
        """At most ``limit`` calls of ``key`` wait (a string key: of its whole
        group, delayed calls included): a push beyond it raises
        :class:`~ranch_core.errors.BacklogFull` and stores nothing (a batch
        is refused whole). ``None``: no limit. Retries and calls put back
        are not refused. Returns ``[]``."""
        checked = validation.check_max_backlog(limit)
        return self._control(validation.check_any_key(key), controls.MAX_BACKLOG, checked, None)

    def purge_key(self, key: Key) -> int:
        """Delete every waiting call of ``key`` (a string key: of every member of
        its group; running ones finish); report
        each through ``on_revoked(task, "purged")``; return how many."""
        storage = self._controls()
        key = validation.check_any_key(key)
        total = 0
        while True:
            purged = storage.purge_key(key, PURGE_BATCH)
            total += len(purged)
            self._revoked(purged, "purged")
            if len(purged) < PURGE_BATCH:
                logger.info("ranch: purged %d waiting calls of key %r", total, key)
                return total

    def revoke_call(self, task_id: str) -> bool:
        """Delete one waiting call; report it through ``on_revoked(task,
        "revoked")``. ``False`` if no call of that id waits (it runs, ran, or
        never was)."""
        task = self._controls().revoke(validation.check_name(task_id, "task_id"))
        if task is None:
            return False
        logger.info("ranch: revoked waiting call %s of key %r", task.task_id, task.key)
        self._revoked([task], "revoked")
        return True

    # -- tracking ----------------------------------------------------------

    def set_weight(self, key: Key, weight: float) -> None:
        """Set ``key``'s weight (lower = served more often)."""
        self.storage.set_weight(validation.check_any_key(key), validation.check_weight(weight))

    def set_custom_data(self, key: Key, name: str, value: Any) -> None:
        """Attach a JSON-encodable value to ``key`` (readable by weight functions)."""
        self.storage.set_custom_data(
            validation.check_any_key(key), validation.check_name(name, "name"), value
        )

    def add_tag(self, key: Key, name: str, value: str) -> None:
        """Tag ``key`` with ``name=value``."""
        self.storage.add_tag(
            validation.check_any_key(key),
            validation.check_name(name, "tag name"),
            validation.check_tag_value(value),
        )

    def keys_with_tag(self, name: str, value: Optional[str] = None) -> List[Key]:
        """Keys carrying tag ``name`` (equal to ``value`` if given), sorted."""
        validation.check_name(name, "tag name")
        if value is not None:
            validation.check_tag_value(value)
        return self.storage.keys_with_tag(name, value)

    def metadata(self, key: Key) -> LRUKeyMetadata:
        """What is known of ``key``; ``pending_tasks`` leaves out expired tasks."""
        key = validation.check_any_key(key)
        now = self.clock()
        self._expire(now, EXPIRE_ON_READ)
        return self.storage.metadata(key, now=now)

    def status(self) -> SystemStatus:
        """Counters of the whole storage; ``backlog_size`` leaves out expired tasks."""
        now = self.clock()
        self._expire(now, EXPIRE_ON_READ)
        return self.storage.status(now=now)

    def __len__(self) -> int:
        """Tasks waiting (not leased), expired ones left out."""
        now = self.clock()
        self._expire(now, EXPIRE_ON_READ)
        return self.storage.waiting(now=now)
