"""The one retry rule of both adapters, and delayed retries through the queue.

A call that asks to be retried (Celery's ``self.retry()``, Dramatiq's
Retries middleware) goes back into its key's backlog, never around it:
:meth:`RetryRule.retry` requeues it now, in one storage step with its lease
and its token, or hands it to the queue's own delayed message
(:meth:`RetryRule.deferred`) and stores it again when that comes back
(:meth:`RetryRule.resubmit`). :class:`~ranch_core.dispatcher.FairDispatcher`
inherits it.
"""

from __future__ import annotations

import enum
import logging
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, Mapping, Optional

import attrs

from ranch_core.calls import Call, Claimed
from ranch_core.errors import DuplicateTask
from ranch_core.keys import Key
from ranch_core.models import Finished, WakeupPolicy

if TYPE_CHECKING:
    from ranch_core.scheduler import FairScheduler

logger = logging.getLogger("ranch_core.dispatch")

#: Publishes the body of a delayed retry (:meth:`RetryRule.deferred`) to come back
#: after the given number of seconds (Celery ``countdown``, Dramatiq ``delay``).
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


class RetryRule:
    """Retries of the calls of one backlog (a mixin of :class:`~ranch_core.dispatcher.FairDispatcher`)."""

    # Provided by FairDispatcher.
    scheduler: FairScheduler
    wakeups: WakeupPolicy

    if TYPE_CHECKING:

        def finish(
            self, claimed: Claimed, *, keep_token: bool = False, run_time: Optional[float] = None
        ) -> Finished: ...

        def charged(self, run_time: Optional[float]) -> Optional[float]: ...

        def submit(
            self,
            key: Key,
            call: Call,
            *,
            priority_weight: Optional[float] = None,
            expiry: Optional[float] = None,
            tags: Optional[Mapping[str, str]] = None,
            task_id: Optional[str] = None,
        ) -> str: ...

        def publish(self, tokens: Iterable[str], what: str = "") -> int: ...

        def _wake_later(self, token: str, seconds: float) -> None: ...

    def _settle(self, claimed: Claimed, finished: Finished) -> Finished:
        self.publish(finished.publish, f"after call {claimed.task_id}")
        if finished.deferred and finished.retry_at is not None and claimed.token is not None:
            # Only rate-limited calls wait: the token comes back when the first may start.
            self._wake_later(claimed.token, finished.retry_at - self.scheduler.clock())
        return finished

    def retry(
        self,
        claimed: Claimed,
        call: Call,
        *,
        delay: float = 0.0,
        defer: Optional[Defer] = None,
        keep_token: bool = False,
        run_time: Optional[float] = None,
    ) -> RetryOutcome:
        """The one retry rule of both adapters: ``call`` (the retried form of
        ``claimed``) goes back into its key's backlog, never around it.

        With ``delay > 0`` and a ``defer`` publisher, the call waits in the
        broker (:meth:`deferred`) and its lease is finished (the token passed
        on or retired); if that publish fails, the call is retried now
        instead. A retry now is :meth:`requeue`. If the storage cannot take
        the retry, the lease is kept: it runs out and the call comes back
        then, so it is never lost.

        ``run_time``: how long the run that asked for the retry took in the
        call's function (seconds), charged as :meth:`finish` charges it (the
        run that ended is settled in the same step as the retry).
        """
        if delay > 0 and defer is not None:
            try:
                defer(self.deferred(claimed, call), delay)
            except Exception:
                logger.exception(
                    "ranch: could not publish the delayed retry of %s; retrying it now", claimed.task_id
                )
            else:
                self.finish(claimed, keep_token=keep_token, run_time=run_time)
                return RetryOutcome.DEFERRED
        try:
            finished = self._requeue(claimed, call, keep_token, run_time)
        except Exception:
            logger.exception(
                "ranch: could not put call %s back for its retry; it comes back when its lease runs out",
                claimed.task_id,
            )
            return RetryOutcome.LEFT_TO_LEASE
        if not finished.done:
            logger.warning(
                "ranch: lease of call %s ran out before its retry; it went back already", claimed.task_id
            )
            return RetryOutcome.LEASE_LOST
        return RetryOutcome.REQUEUED

    def _requeue(
        self, claimed: Claimed, call: Call, keep_token: bool, run_time: Optional[float] = None
    ) -> Finished:
        retried = self.scheduler.retried(claimed.task, call.to_payload())
        finished = self.scheduler.finish(
            claimed.task_id,
            requeue=retried,
            token=claimed.token,
            wakeups=self.wakeups,
            keep_token=keep_token,
            cost=self.charged(run_time),
        )
        return self._settle(claimed, finished)

    def requeue(
        self,
        claimed: Claimed,
        *,
        retries: Optional[int] = None,
        keep_token: bool = False,
        run_time: Optional[float] = None,
    ) -> bool:
        """Retry a call now: back to the tail of its key, and its token passed
        on (or, without a token, a token minted if there is room).

        Finishing the lease, storing the retry and the token's fate are one
        atomic storage step, so a crash cannot lose the call. The call keeps
        its task id, so results land under the id its producer holds.
        ``False`` if the lease had already run out (the call went back on its
        own). A wake-up that cannot be published is logged; the sweep
        replaces it. ``run_time`` as :meth:`retry`.
        """
        call = attrs.evolve(claimed.call, retries=claimed.call.retries + 1 if retries is None else retries)
        finished = self._requeue(claimed, call, keep_token, run_time)
        if not finished.done:
            logger.warning(
                "ranch: lease of call %s ran out before its retry; it went back already", claimed.task_id
            )
        return finished.done

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
        """Store a call coming back from :meth:`deferred` (a token is minted
        and published if there is room).

        ``None`` if the body is malformed (reported) or the call is stored
        already (its worker died after deferring it and the lease put it
        back; or an earlier delivery of this body stored it): the sweep's
        tokens cover it.
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
            logger.warning("ranch: not storing delayed retry of call %s again: %s", task_id, exc)
            return None
        except ValueError as exc:
            logger.error("ranch: dropping a delayed retry of call %s: %s", task_id, exc)
            return None
