"""What a storage must do, split in two: the task backlog and the key tracker.

A storage implements both (:class:`Storage`). Each method of
:class:`Backlog` is one atomic step: in a shared storage such as Redis, two
workers can never pop the same task and a producer racing a worker never
loses one. :mod:`ranch_core.testing` checks an implementation against the
reference model; :class:`ranch_core.backends.memory.InMemoryStorage` is the
implementation to read first.
"""

from __future__ import annotations

from typing import Any, List, Mapping, Optional, Protocol, Sequence, runtime_checkable

from ranch_core.errors import CorruptTask
from ranch_core.keys import Key
from ranch_core.models import (
    Finished,
    LRUKeyMetadata,
    PopResult,
    RuntimeCost,
    ScheduledTask,
    SystemStatus,
    WakeupPolicy,
    WakeupStatus,
)

#: At most this many expired leases are put back by one :meth:`Backlog.pop`.
RECLAIM_BATCH = 100
#: At most this many expired tasks are dropped by one :meth:`Backlog.pop`
#: before it returns early (task ``None``) so that no single step runs long.
EXPIRED_BATCH = 100
#: :class:`~ranch_core.FairScheduler` drops at most this many expired tasks
#: (one :meth:`Backlog.expire` step) before it counts.
EXPIRE_ON_READ = 100
#: At most this many keys are checked by one :meth:`Repairable.repair` step.
REPAIR_BATCH = 100
#: At most this many tasks are stored by one :meth:`Backlog.push_many` step.
MAX_BATCH = 1000
#: At most this many tokens are minted by one :meth:`Backlog.pop` (fan-out).
FANOUT = 8
#: At most this many keys parked by their rate, and this many delayed calls
#: that are due, are moved back by one :meth:`Backlog.pop` or
#: :meth:`Backlog.sweep_wakeups` (those due first).
UNPARK_BATCH = 100
#: At most this many calls are deleted by one :meth:`Controls.purge_key` step.
PURGE_BATCH = 1000
#: While wake-ups are being taken, a token in flight is presumed lost only
#: this many ttls after its deadline (it may be queued behind other messages).
LOST_AFTER = 4
#: While no wake-up is taken, each replacement of lost tokens waits twice as
#: long as the one before, up to ``2 ** MAX_BACKOFF`` ttls.
MAX_BACKOFF = 6


@runtime_checkable
class Backlog(Protocol):
    """Per-key FIFO backlogs, fair selection across keys, and leases."""

    def push(
        self,
        task: ScheduledTask,
        *,
        weight: Optional[float] = None,
        tags: Optional[Mapping[str, str]] = None,
        wakeups: Optional[WakeupPolicy] = None,
    ) -> List[str]:
        """Append ``task`` to the tail of its key; set the key's weight and
        tags (``name -> value``, as :meth:`Tracker.add_tag`) if given, all in
        the same step.

        Raises ``TypeError`` (payload not encodable) or ``ValueError``
        (``task_id`` already waiting or leased) before writing anything: a
        refused push sets no weight and no tag. A key that turns active
        starts at ``max(own pass, virtual time)``.

        With ``wakeups``, the same step mints at most one wake-up token
        (deadline ``task.enqueued_at + wakeups.ttl``) if fewer tokens are in
        flight than calls wait and fewer than ``max_wakeups`` are
        outstanding; returns the minted ids (``[]`` without ``wakeups``).

        A *delayed* task (``not_before > enqueued_at``) is stored but does
        not wait in its key: it is not counted waiting or runnable, and each
        :meth:`pop` and :meth:`sweep_wakeups` first moves up to
        :data:`UNPARK_BATCH` calls due at ``now`` (by ``(not_before,
        task_id)``) to the tail of their keys, as a push at ``now`` would.
        Its push mints no token to publish now; with ``wakeups.defer`` it
        returns at most one token *deferred* to ``not_before`` (publish it
        with that delay), unless a deferred token is due at that time or
        sooner or ``max_wakeups`` are outstanding. ``max_backlog`` counts a
        key's delayed calls; :meth:`Controls.purge_key`,
        :meth:`Controls.revoke` and :meth:`remove` reach them.
        """

    def push_many(
        self,
        tasks: Sequence[ScheduledTask],
        *,
        weight: Optional[float] = None,
        tags: Optional[Mapping[str, str]] = None,
        wakeups: Optional[WakeupPolicy] = None,
    ) -> List[str]:
        """Append up to :data:`MAX_BATCH` tasks of one key, in the order
        given, with the key's weight and tags: all stored in one step, or
        none. Mints at most one token (as :meth:`push`; workers fan out).

        ``ValueError`` (more than :data:`MAX_BATCH` tasks, tasks of several
        keys or of several ``not_before``, a ``task_id`` twice or already
        waiting, delayed or leased) or
        ``TypeError`` (a payload not encodable), before anything is written.
        """

    def pop(
        self,
        now: float,
        lease_seconds: float,
        *,
        token: Optional[str] = None,
        wakeups: Optional[WakeupPolicy] = None,
    ) -> PopResult:
        """Make the fair choice at ``now`` and lease it until ``now + lease_seconds``.

        In order: put back up to :data:`RECLAIM_BATCH` leases whose deadline
        is ``<= now`` (ordered by deadline then task id, re-inserted so the
        earliest ends at the head of its key); then take the head of the
        active key first in :func:`~ranch_core.algorithm.selection_order`,
        dropping it as expired if ``now >= expires_at`` (no charge to the key;
        after :data:`EXPIRED_BATCH` drops return early with task ``None``);
        serve it: virtual time = the key's pass, pass += weight, the key's
        serve sequence and ``last_served`` = ``now``.

        With ``token`` (the id a wake-up carried; ``wakeups`` required), the
        same step: a token in flight, or held and kept (see :meth:`finish`),
        is used; an unknown (stale) token is adopted only if fewer than
        ``max_wakeups`` are outstanding, else nothing at all is done; a token
        held for a running call (a duplicate delivery) does nothing. A used
        token becomes held, bound to the served call (its deadline is the
        lease's) or, if nothing is waiting, is retired; an early return
        leaves it as it was. After serving, up to :data:`FANOUT` tokens are
        minted (fan-out) while fewer are in flight than calls wait and fewer
        than ``max_wakeups`` are outstanding: :attr:`PopResult.minted`.
        """

    def ack(self, task_id: str) -> bool:
        """Finish a leased task. ``False`` if it holds no lease (any more)."""

    def finish(
        self,
        task_id: str,
        now: float,
        *,
        requeue: Optional[ScheduledTask] = None,
        token: Optional[str] = None,
        wakeups: Optional[WakeupPolicy] = None,
        keep_token: bool = False,
        failed: bool = False,
    ) -> Finished:
        """Finish a call and decide its token's fate, in one step.

        Without ``requeue``, the lease is acknowledged (as :meth:`ack`); with
        it, the call is retried (as :meth:`requeue`; ``requeue.task_id`` must
        be ``task_id``). With ``token`` (held by the caller): with
        ``keep_token`` and calls waiting, it stays held (:attr:`Finished.kept`,
        unbound, deadline ``now + ttl``); else, if more calls wait than
        tokens are in flight, it is passed on (in flight again, deadline
        ``now + ttl``, in :attr:`Finished.publish`); otherwise it is retired. A token that is no longer
        held (the sweep retired it) is taken back only if fewer than
        ``max_wakeups`` are outstanding. A requeue without ``token`` mints at
        most one token, as :meth:`push`. ``failed`` says the call ended in
        failure: a storage that keeps metrics counts it (and the call's run
        time, ``now`` minus when the pop leased it); one that keeps none
        ignores it.
        """

    def release_token(self, token: str, now: float, wakeups: WakeupPolicy) -> List[str]:
        """Hand back a held token (e.g. one kept by :meth:`finish`): passed
        on if more calls wait than tokens are in flight (returned: publish
        it), else retired."""

    def sweep_wakeups(self, now: float, wakeups: WakeupPolicy) -> List[str]:
        """Retire held tokens whose deadline is ``<= now`` (dead workers) and
        lost tokens in flight, then mint
        ``min(max_wakeups - outstanding, waiting - in flight)`` tokens and
        return their ids. Afterwards: calls wait => a token is in flight or
        ``max_wakeups`` are outstanding.

        A token in flight is lost when its deadline is ``<= now`` and no
        wake-up was taken (a pop with a token in flight or unknown) for one
        ``ttl``: the broker queue does not move. While it moves, a token is
        lost only :data:`LOST_AFTER` ttls after its deadline (it is queued
        behind other messages, not lost). Without movement, each further
        retirement of lost tokens waits twice as long as the one before (up
        to ``2 ** MAX_BACKOFF`` ttls), so a consumer that cannot take
        messages does not pile up wake-ups. No token in flight is retired
        while every registered worker slot holds a token (a busy fleet)."""

    def wakeup_status(self) -> WakeupStatus:
        """How many tokens are in flight and held."""

    def register_slots(self, worker: str, slots: int, now: float, ttl: float) -> int:
        """Record that ``worker`` (any unique name) runs ``slots`` calls at once
        until ``now + ttl``; forget workers whose registration ran out; return
        the total slots of the live workers. Workers call it from their sweep so
        that wake-up tokens grow to the fleet's concurrency."""

    def live_slots(self, now: float) -> int:
        """The total slots of the workers whose registration has not run out
        at ``now`` (read only; 0 if none registered)."""

    def release(self, task_id: str) -> bool:
        """Put a leased task back at the head of its key. ``False`` if not leased."""

    def requeue(self, task: ScheduledTask) -> bool:
        """Finish ``task.task_id``'s lease and append ``task`` (same id, new
        payload and times) to the tail of its key, in one step: a retry.

        ``False``, with nothing written, if that id holds no lease (it ran out
        and the task went back already). ``TypeError`` if the payload cannot
        be encoded, before anything is written.
        """

    def extend(self, task_id: str, deadline: float) -> bool:
        """Move a lease's deadline to ``deadline`` (and that of the token held
        for the call, if any). ``False`` if not leased."""

    def reclaim(self, now: float) -> List[ScheduledTask]:
        """Put back every lease whose deadline is ``<= now``; return them."""

    def remove(self, key: Key, task_id: str) -> bool:
        """Delete a waiting task (a producer whose publish failed). ``False`` if absent."""

    def charge(self, key: Key, extra: float) -> None:
        """Add ``extra`` to the key's pass (a weight function's correction)."""

    def expire(self, now: float, limit: int) -> List[ScheduledTask]:
        """Drop up to ``limit`` waiting tasks whose expiry is ``<= now``; return them.

        Earliest ``(expires_at, task_id)`` first. Each is removed from its
        key (a key left empty turns inactive, uncharged) and counted in
        ``expired_total``. Leased tasks are not touched: they run. Costs
        O(limit * log N) plus the position of each task in its key.
        """

    def waiting(self, now: Optional[float] = None) -> int:
        """Number of tasks waiting (not leased).

        With ``now``, tasks whose expiry is ``<= now`` are not counted (they
        will never run), in O(log N); without it, they are until dropped.
        """

    def wait(self, now: float, timeout: Optional[float]) -> bool:
        """Block until a call may be runnable, or ``timeout`` seconds pass
        (``None``: no limit); never by polling.

        Returns ``True`` at once if a call waits (some key is active) or a
        lease's deadline is ``<= now``. Otherwise blocks until a step makes a
        call runnable (a push, a release, a requeue, a lease put back) or the
        earliest lease deadline passes (its call then comes back with no
        producer at all), and returns ``True``; ``False`` when the time ran
        out. ``True`` means "pop now", not "a pop will succeed": another
        worker may be faster. No wake-up is lost: a step that makes a call
        runnable after the check wakes the waiter. A storage may return
        ``False`` early (e.g. to stay under a socket timeout); callers loop
        until their own deadline (:meth:`ranch_core.FairScheduler.pop`).
        """


@runtime_checkable
class Tracker(Protocol):
    """Per-key weights, tags, custom data and counters."""

    def set_weight(self, key: Key, weight: float) -> None:
        """Set the key's weight; its pass is left alone."""

    def set_custom_data(self, key: Key, name: str, value: Any) -> None:
        """Store one JSON-encodable value under ``name`` for the key."""

    def add_tag(self, key: Key, name: str, value: str) -> None:
        """Tag the key ``name=value`` (replacing an earlier value of ``name``)."""

    def keys_with_tag(self, name: str, value: Optional[str] = None) -> List[Key]:
        """Keys tagged ``name`` (with ``value``, if given), sorted."""

    def metadata(self, key: Key, now: Optional[float] = None) -> LRUKeyMetadata:
        """What is known of ``key``; defaults for a key never seen.

        With ``now``, ``pending_tasks`` leaves out the key's tasks whose
        expiry is ``<= now``.
        """

    def status(self, now: Optional[float] = None) -> SystemStatus:
        """Counters of the whole storage, in O(1) (O(log N) with ``now``).

        With ``now``, ``backlog_size`` leaves out tasks whose expiry is
        ``<= now``. ``active_keys`` counts keys holding waiting tasks,
        including a key whose every task is due but not yet dropped.
        """


@runtime_checkable
class Controls(Protocol):
    """Per-key controls (README, "Per-key controls"): concurrency caps, rate
    limits, pause, backlog limits, purge and revoke.

    A storage that has them checks them in its pop step, atomically: a key
    is served only while it is not paused, fewer of its calls than its
    concurrency limit are leased and its rate bucket holds a call; an
    ineligible key is parked out of the selection order (with the time its
    bucket refills), so selection stays O(log K), and a pop returns no task
    only if no eligible key has a waiting call (work-conserving). A push
    beyond ``max_backlog`` raises :class:`~ranch_core.errors.BacklogFull`
    and stores nothing. Wake-up tokens are minted for runnable calls only
    (calls of parked keys left out); a step that makes calls runnable
    (:meth:`set_control`, a finish that frees a cap, a sweep past the time a
    bucket refills) mints for them. :meth:`Backlog.pop` reports
    :attr:`~ranch_core.models.PopResult.retry_at` when it finds nothing
    runnable but a parked key's bucket refills later.
    """

    def set_control(
        self,
        key: Optional[Key],
        name: str,
        value: Any,
        now: float,
        *,
        wakeups: Optional[WakeupPolicy] = None,
    ) -> List[str]:
        """Set ``key``'s own control ``name`` to ``value`` (checked by the caller;
        a string key's controls are its whole group's, a pair's its member's,
        and a call starts only if both levels allow it):
        ``"concurrency_limit"`` (``int >= 1``), ``"rate_limit"``
        (:class:`~ranch_core.models.RateLimit`), ``"paused"`` (``bool``) or
        ``"max_backlog"`` (``int >= 0``); ``None`` removes the key's own
        setting. ``key=None`` sets the default of the first two for keys
        without a setting of their own (each key follows at its next step).
        A changed rate keeps the calls already charged to the bucket.

        With ``wakeups``, mints up to :data:`FANOUT` tokens if the change
        made calls runnable (while fewer are in flight than runnable calls
        wait and fewer than ``max_wakeups`` are outstanding); returns them.
        """

    def purge_key(self, key: Key, limit: int) -> List[ScheduledTask]:
        """Delete up to ``limit`` waiting calls of ``key``, from its head, then
        its delayed calls; return them. A string key purges its whole group:
        its own calls first, then the members in key order. Leased calls are
        not touched (they run)."""

    def revoke(self, task_id: str) -> Optional[ScheduledTask]:
        """Delete the waiting call ``task_id`` and return it; ``None`` if no
        call of that id waits (a leased call is not touched)."""


@runtime_checkable
class RuntimeCosts(Protocol):
    """Optional: a storage that charges a dispatch by run time (README,
    "Fair by time"; ``FairScheduler(cost="runtime")`` needs it).

    With ``runtime``, :meth:`pop` charges the served key ``estimate *
    weight`` instead of ``weight`` (``estimate``: the key's moving average
    of run times, else the storage-wide one, else
    ``runtime.first_estimate``) and remembers ``(now, estimate, weight)``
    with the lease. Whichever step ends that lease settles the charge in
    the same step: :meth:`finish` (ack or retry) moves the key's pass by
    ``(c - estimate) * weight`` with ``c =``
    :func:`~ranch_core.algorithm.runtime` of ``cost`` (``None``: ``now``
    minus the start) and folds ``c`` into the key's and the storage-wide
    averages; a lease put back after its deadline (a killed worker) is
    charged ``deadline - start`` and feeds no average; a released call,
    and one ended by the steps that take no time (:meth:`Backlog.ack`,
    :meth:`Backlog.requeue`), keeps its estimate. A key in the selection order is re-placed.
    Without ``runtime`` (and for leases taken without it) every step is
    the plain one.
    """

    def pop(
        self,
        now: float,
        lease_seconds: float,
        *,
        token: Optional[str] = None,
        wakeups: Optional[WakeupPolicy] = None,
        runtime: Optional[RuntimeCost] = None,
    ) -> PopResult:
        """:meth:`Backlog.pop`, charging the estimate with ``runtime``."""

    def finish(
        self,
        task_id: str,
        now: float,
        *,
        requeue: Optional[ScheduledTask] = None,
        token: Optional[str] = None,
        wakeups: Optional[WakeupPolicy] = None,
        keep_token: bool = False,
        failed: bool = False,
        cost: Optional[float] = None,
    ) -> Finished:
        """:meth:`Backlog.finish`, settling a runtime charge with ``cost``
        (seconds, checked by the caller; ``None``: measured by the storage)."""

    def run_estimate(self, key: Key) -> Optional[float]:
        """The key's moving average of run times; ``None`` if none was measured."""


@runtime_checkable
class Repairable(Protocol):
    """Optional: a shared storage that other programs can damage checks itself.

    :class:`~ranch_core.backends.memory.InMemoryStorage` has nothing to
    repair (nothing outside its lock can write to it) and does not
    implement it; :meth:`ranch_core.FairScheduler.repair` returns ``[]``
    for such a storage.
    """

    def repair(self, limit: int) -> List[CorruptTask]:
        """Check up to ``limit`` keys holding tasks (continuing where the last
        call stopped, wrapping around) and the storage's counters; fix what is
        damaged (a key holding tasks but not selectable, a field that is not
        a number) and return one report per fix, reported as the storage
        reports corrupt records."""


@runtime_checkable
class Storage(Backlog, Tracker, Protocol):
    """A complete storage: what :class:`~ranch_core.FairScheduler` needs."""
