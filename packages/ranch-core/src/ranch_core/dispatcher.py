"""``FairDispatcher``: one backlog as the Celery and Dramatiq adapters drive it.

Producer side, :meth:`FairDispatcher.submit` writes the call first and then
publishes a *wake-up* through the queue (the adapter's ``wake`` callable).
Worker side, the worker that receives a wake-up calls
:meth:`FairDispatcher.take`, which makes the fair choice at that moment,
runs the chosen call right there inside :meth:`FairDispatcher.running`, and
ends it with :meth:`FairDispatcher.finish` or :meth:`FairDispatcher.retry`.
Reclaimed leases get a new wake-up; an expired call leaves a wake-up that
finds nothing (a no-op). :class:`~ranch_core.leases.LeaseKeeper` calls
:meth:`FairDispatcher.sweep` from a thread of every worker process.
"""

from __future__ import annotations

import enum
import logging
import threading
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Set

import attrs

from ranch_core import validation
from ranch_core.calls import Call, Claimed
from ranch_core.errors import DuplicateTask, PublishFailed
from ranch_core.models import ScheduledTask
from ranch_core.scheduler import FairScheduler

logger = logging.getLogger("ranch_core.dispatch")

Wake = Callable[[], None]
TaskCallback = Callable[[ScheduledTask], None]
#: Publishes the body of a delayed retry (:meth:`FairDispatcher.deferred`) to come
#: back after the given number of seconds (Celery ``countdown``, Dramatiq ``delay``).
Defer = Callable[[Dict[str, Any], float], None]


class RetryOutcome(enum.Enum):
    """What :meth:`FairDispatcher.retry` did with a call that asked to be retried."""

    #: Back at the tail of its key now, with a wake-up.
    REQUEUED = "requeued"
    #: Waiting in the broker for its delay; it re-enters its backlog when due.
    DEFERRED = "deferred"
    #: Its lease had run out: the call went back on its own and runs again.
    LEASE_LOST = "lease lost"
    #: The retry could not be stored: the lease is kept and runs out, and the
    #: call comes back then (it is never lost).
    LEFT_TO_LEASE = "left to lease"


class FairDispatcher:
    """One backlog as an adapter drives it (see the module docstring).

    ``on_expired`` is called for every call dropped as expired (adapters mark
    its result ``REVOKED``/failed so nobody waits forever).
    """

    def __init__(
        self,
        scheduler: FairScheduler,
        wake: Wake,
        *,
        on_expired: Optional[TaskCallback] = None,
    ) -> None:
        self.scheduler = scheduler
        self.wake = wake
        self.on_expired = on_expired
        scheduler.on_reclaimed = self._reclaimed
        scheduler.on_expired = self._expired
        self._running: Set[str] = set()
        self._running_lock = threading.Lock()

    # -- producer side -----------------------------------------------------

    def submit(
        self,
        key: str,
        call: Call,
        *,
        priority_weight: Optional[float] = None,
        expiry: Optional[float] = None,
        tags: Optional[Mapping[str, str]] = None,
        task_id: Optional[str] = None,
    ) -> str:
        """Validate, store, then publish one wake-up; return the call's task id.

        Every argument is checked before anything is written; the call, its
        weight and its tags are stored in one storage step. If the wake-up
        cannot be published, the stored call is removed again and the publish
        error re-raised: no call is left without a message. If removing fails
        too, :class:`~ranch_core.errors.PublishFailed` says the call is still
        stored (and how to remove it), with the publish error as its cause.
        """
        validation.check_key(key, "lru_key")
        priority_weight = validation.check_optional_weight(priority_weight, "priority_weight")
        expiry = validation.check_expiry(expiry)
        checked_tags = validation.check_tags(tags)
        task_id = self.scheduler.push(
            key, call.to_payload(), weight=priority_weight, expiry=expiry, task_id=task_id, tags=checked_tags
        )
        self._announce(key, task_id)
        return task_id

    def _announce(self, key: str, task_id: str) -> None:
        """Publish the wake-up of a call just stored; undo the store if that fails."""
        try:
            self.wake()
        except BaseException as publish_error:
            try:
                self.scheduler.remove(key, task_id)
            except Exception as remove_error:  # noqa: BLE001 - any failure leaves the call stored
                raise PublishFailed(
                    f"call {task_id} of key {key!r} is still stored: publishing its wake-up failed "
                    f"({publish_error!r}) and removing it failed too ({remove_error}). It runs when a "
                    f"worker's sweep or a later wake-up reaches its backlog; to cancel it, call "
                    f"remove({key!r}, {task_id!r}) once the storage answers.",
                    task_id=task_id,
                    key=key,
                ) from publish_error
            raise

    # -- worker side -------------------------------------------------------

    def take(self) -> Optional[Claimed]:
        """The fair choice now (leased), or ``None``: this wake-up is a no-op.

        A stored call that cannot be decoded is reported, acknowledged (so it
        does not come back) and skipped.
        """
        while True:
            task = self.scheduler.pop()
            if task is None:
                return None
            try:
                return Claimed(task, Call.from_payload(task.payload))
            except (TypeError, ValueError) as exc:
                logger.error("ranch: dropping corrupt call %s of key %r: %s", task.task_id, task.key, exc)
                self.scheduler.ack(task.task_id)

    @contextmanager
    def running(self, claimed: Claimed) -> Iterator[Claimed]:
        """Mark a call as running here so the lease keeper renews its lease."""
        with self._running_lock:
            self._running.add(claimed.task_id)
        try:
            yield claimed
        finally:
            with self._running_lock:
                self._running.discard(claimed.task_id)

    def finish(self, claimed: Claimed) -> None:
        """The call ended (success or final failure): drop its lease."""
        if not self.scheduler.ack(claimed.task_id):
            logger.warning(
                "ranch: call %s finished after its lease ran out; it may have run twice", claimed.task_id
            )

    def retry(
        self, claimed: Claimed, call: Call, *, delay: float = 0.0, defer: Optional[Defer] = None
    ) -> RetryOutcome:
        """The one retry rule of both adapters: ``call`` (the retried form of
        ``claimed``) goes back into its key's backlog, never around it.

        With ``delay > 0`` and a ``defer`` publisher, the call waits in the
        broker (:meth:`deferred`) and its lease is finished; if that publish
        fails, the call is retried now instead. A retry now is
        :meth:`requeue`. If the storage cannot take the retry, the lease is
        kept: it runs out and the call comes back then, so it is never lost.
        If the retry is stored but its wake-up cannot be published, the
        publish error is raised (see :meth:`requeue`).
        """
        if delay > 0 and defer is not None:
            try:
                defer(self.deferred(claimed, call), delay)
            except Exception:
                logger.exception(
                    "ranch: could not publish the delayed retry of %s; retrying it now", claimed.task_id
                )
            else:
                self.finish(claimed)
                return RetryOutcome.DEFERRED
        retried = call.to_payload()
        try:
            requeued = self.scheduler.requeue(claimed.task, retried)
        except Exception:
            logger.exception(
                "ranch: could not put call %s back for its retry; it comes back when its lease runs out",
                claimed.task_id,
            )
            return RetryOutcome.LEFT_TO_LEASE
        if not requeued:
            logger.warning(
                "ranch: lease of call %s ran out before its retry; it went back already", claimed.task_id
            )
            return RetryOutcome.LEASE_LOST
        self.wake()
        return RetryOutcome.REQUEUED

    def requeue(self, claimed: Claimed, *, retries: Optional[int] = None) -> bool:
        """Retry a call now: back to the tail of its key, then one wake-up.

        Finishing the lease and storing the retry are one atomic storage step
        (:meth:`FairScheduler.requeue`), so a crash cannot lose the call. The
        call keeps its task id, so results land under the id its producer
        holds. ``False`` if the lease had already run out (the call went back
        on its own and has its wake-up). If the wake-up cannot be published,
        the call stays stored and the publish error is raised: the adapter
        then lets the wake-up message it is handling be delivered again
        (not acknowledged), and that message finds the retried call.
        """
        call = attrs.evolve(claimed.call, retries=claimed.call.retries + 1 if retries is None else retries)
        if not self.scheduler.requeue(claimed.task, call.to_payload()):
            logger.warning(
                "ranch: lease of call %s ran out before its retry; it went back already", claimed.task_id
            )
            return False
        self.wake()
        return True

    def deferred(self, claimed: Claimed, call: Call) -> Dict[str, Any]:
        """The body of a delayed retry: the adapter publishes it with its
        queue's delay and hands it to :meth:`resubmit` when it is due."""
        return {
            "key": claimed.key,
            "task_id": claimed.task_id,
            "call": call.to_payload(),
            "expires_at": claimed.task.expires_at,
        }

    def resubmit(self, body: Mapping[str, Any]) -> Optional[str]:
        """Store a call coming back from :meth:`deferred` (and publish its wake-up).

        ``None`` if the body is malformed (reported) or the call is stored
        already (its worker died after deferring it and the lease put it back;
        or an earlier delivery of this body stored it): then a wake-up is
        published anyway, so a stored call never waits without one. If the
        wake-up cannot be published the error is raised, and the adapter lets
        the message be delivered again.
        """
        try:
            key, task_id = body["key"], body["task_id"]
            call = Call.from_payload(body["call"])
            expires_at = body.get("expires_at")
            if expires_at is not None and (
                isinstance(expires_at, bool) or not isinstance(expires_at, (int, float))
            ):
                raise TypeError("expires_at is not a number")
        except (KeyError, TypeError, ValueError) as exc:
            logger.error("ranch: dropping a malformed delayed retry: %s", exc)
            return None
        expiry = None if expires_at is None else max(0.0, float(expires_at) - self.scheduler.clock())
        try:
            return self.submit(key, call, expiry=expiry, task_id=task_id)
        except DuplicateTask as exc:
            # Stored already: this message may be a redelivery whose first
            # attempt stored the call but could not publish its wake-up.
            logger.warning("ranch: not storing delayed retry of call %s again: %s", task_id, exc)
            self.wake()
            return None
        except ValueError as exc:
            logger.error("ranch: dropping a delayed retry of call %s: %s", task_id, exc)
            return None

    def running_ids(self) -> List[str]:
        """Task ids of calls running in this process."""
        with self._running_lock:
            return list(self._running)

    def sweep(self) -> int:
        """What a worker's lease keeper does every sweep interval: renew this
        process's leases, put back dead workers' calls (each gets a wake-up),
        drop expired calls (reported through ``on_expired``, so their results
        end without any worker popping them) and let a shared storage repair
        a batch of its keys.

        Returns the number of calls put back.
        """
        for task_id in self.running_ids():
            self.scheduler.extend(task_id)
        reclaimed = len(self.scheduler.reclaim())
        self.scheduler.expire()
        self.scheduler.repair()
        return reclaimed

    def _reclaimed(self, task: ScheduledTask) -> None:
        try:
            self.wake()
        except Exception:
            logger.exception("ranch: could not publish a wake-up for reclaimed call %s", task.task_id)

    def _expired(self, task: ScheduledTask) -> None:
        if self.on_expired is not None:
            try:
                self.on_expired(task)
            except Exception:
                logger.exception("ranch: on_expired failed for call %s", task.task_id)
