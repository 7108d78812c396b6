"""``DramatiqBacklog``: one fairness domain on one broker, and what its wake-ups do."""

from __future__ import annotations

import logging
import math
from typing import Any, Dict, Mapping, Optional

from dramatiq.broker import Broker, MessageProxy
from dramatiq.errors import ActorNotFound
from ranch_core.backlogs import BacklogSettings
from ranch_core.calls import Call, Claimed
from ranch_core.dispatcher import MAX_WAKEUPS, FairDispatcher
from ranch_core.models import Finished, RateLimit, ScheduledTask
from ranch_core.protocols import Storage
from ranch_core.scheduler import FairScheduler, WeightFunction

from ranch_dramatiq import execution
from ranch_dramatiq.errors import CallExpired, CallRevoked

logger = logging.getLogger("ranch_dramatiq")

#: Keyword argument of a wake-up message that carries a call coming back
#: from a delayed retry.
RESUBMIT = "resubmit"


class DramatiqBacklog:
    """The backlog ``name`` of ``broker``: calls of the ``lru_actor``\\ s that
    name it (by default every ``lru_actor`` of queue ``queue_name``).

    ``wake_up`` is the queue's wake-up actor: a wake-up message
    (``wake_up.send(name, token)``) carries one of the backlog's tokens (see
    ranch-core's "Wake-ups"); at most ``max_wakeups`` are outstanding. A
    wake-up that finds only rate-limited calls comes back as a delayed
    message (:meth:`wake_later`). ``default_concurrency_limit`` and
    ``default_rate_limit`` (checked by the caller) are the limits of every
    key without a setting of its own, written to the storage now.
    """

    def __init__(
        self,
        broker: Broker,
        name: str,
        queue_name: str,
        storage: Storage,
        wake_up: Any,
        *,
        weight_function: Optional[WeightFunction] = None,
        lease_seconds: float,
        token_ttl: Optional[float] = None,
        max_wakeups: int = MAX_WAKEUPS,
        budget: int = 1,
        default_concurrency_limit: Optional[int] = None,
        default_rate_limit: Optional[RateLimit] = None,
        cost: str = "calls",
    ) -> None:
        self.broker = broker
        self.name = name
        self.queue_name = queue_name
        self.storage = storage
        self.weight_function = weight_function
        self.wake_up = wake_up
        self.budget = budget
        self.default_concurrency_limit = default_concurrency_limit
        self.default_rate_limit = default_rate_limit
        #: What a dispatch costs its key: ``"calls"`` or ``"runtime"``.
        self.cost = cost
        scheduler = FairScheduler(
            storage,
            weight_function=weight_function,
            lease_seconds=lease_seconds,
            default_concurrency_limit=default_concurrency_limit,
            default_rate_limit=None if default_rate_limit is None else default_rate_limit.text,
            cost=cost,
        )
        self.dispatcher = FairDispatcher(
            scheduler,
            self.wake,
            on_expired=self.on_expired,
            token_ttl=token_ttl,
            max_wakeups=max_wakeups,
            wake_later=self.wake_later,
            on_revoked=self.on_revoked,
        )

    @property
    def max_wakeups(self) -> int:
        """The configured bound on outstanding wake-ups (before the fleet's slots raise it)."""
        return self.dispatcher.wakeups.max_wakeups

    def set_slots(self, slots: int) -> None:
        """This worker process's concurrency (:attr:`FairDispatcher.slots`),
        registered with the storage at the first take and every sweep, so the
        effective ``max_wakeups`` becomes at least the fleet's live slots."""
        self.dispatcher.slots = slots

    @property
    def settings(self) -> BacklogSettings:
        """What the actors joining this backlog must agree with (:func:`ranch_core.backlogs.check_join`)."""
        return BacklogSettings(self.name, self.queue_name, self.storage, self.weight_function)

    # -- messages ----------------------------------------------------------

    def wake(self, token: Optional[str] = None) -> None:
        """Publish one wake-up message for this backlog on its queue, carrying
        ``token`` (``None``: a tokenless nudge, taken as a stale token)."""
        args = (self.name,) if token is None else (self.name, token)
        self.broker.enqueue(self.wake_up.message(*args))

    def wake_later(self, token: str, seconds: float) -> None:
        """Publish a wake-up carrying ``token`` that the broker delivers after
        ``seconds`` (Dramatiq's ``delay``, in whole milliseconds, rounded up
        so it does not arrive before the rate-limited key's bucket refills)."""
        delay = max(1, math.ceil(seconds * 1000))
        self.broker.enqueue(self.wake_up.message(self.name, token), delay=delay)

    def defer(self, body: Dict[str, Any], delay: float) -> None:
        """Publish ``body`` (:meth:`FairDispatcher.deferred`) as a wake-up that
        comes back after ``delay`` seconds and puts the call back into its
        key's backlog (a retry with backoff)."""
        message = self.wake_up.message_with_options(args=(self.name,), kwargs={RESUBMIT: body})
        self.broker.enqueue(message, delay=max(1, round(delay * 1000)))

    # -- worker side -------------------------------------------------------

    def handle(self, resubmit: Optional[Mapping[str, Any]] = None, token: Any = None) -> None:
        """What one wake-up message does: run the fair choice now with its
        ``token`` (anything but a string: a stale token), then up to
        ``budget - 1`` more calls under the same token, each a fresh fair
        choice, before the token is passed on through the broker (or
        retired); or put a retried call back into its key's backlog.

        A finish that leaves only rate-limited calls waiting defers the
        token (the core's finish step), and :meth:`wake_later` brings it
        back when the first of them may start."""
        if resubmit is not None:
            self.dispatcher.resubmit(resubmit)
            return
        claimed = self.dispatcher.take(token if isinstance(token, str) else None)
        runs = 0
        while claimed is not None:
            runs += 1
            # the budget's last call finishes without keeping the token: that
            # finishing step passes it on (published) or retires it, which is
            # release_token folded into the same storage step
            finished = self.run(claimed, keep_token=runs < self.budget)
            if finished is None or claimed.token in finished.publish:
                return  # retried or passed on: the token is in the broker again
            if not finished.kept:
                return  # deferred for a rate-limited key (published with a delay) or retired
            # a failure here raises: the wake-up message is retried (Retries)
            # and the kept token runs out and is replaced by the sweep
            claimed = self.dispatcher.take(claimed.token)
        # take() found nothing runnable: the storage retired or deferred the token

    def run(self, claimed: Claimed, *, keep_token: bool = False) -> Optional[Finished]:
        """Run a claimed call as its own message (see :mod:`ranch_dramatiq.execution`).

        Returns what finishing it did (with ``keep_token``, the token stays
        held while calls wait: ``kept``), or ``None`` if the call was retried
        (the retry rule passed the token on or retired it).
        """
        try:
            message = MessageProxy(execution.message_for(claimed.task_id, claimed.call))
        except TypeError as exc:
            logger.error("ranch: dropping malformed call %s of key %r: %s", claimed.task_id, claimed.key, exc)
            return self.dispatcher.finish(claimed, keep_token=keep_token)
        if not execution.has_actor(self.broker, message.actor_name):
            logger.error(
                "ranch: call %s of key %r names actor %r, which this worker does not declare; "
                "storing ActorNotFound as its result",
                claimed.task_id,
                claimed.key,
                message.actor_name,
            )
            missing = ActorNotFound(message.actor_name)  # type: ignore[no-untyped-call]
            execution.fail_unrunnable(self.broker, message, claimed.call, missing)
            return self.dispatcher.finish(claimed, keep_token=keep_token)
        timer = self.dispatcher.timer()  # cost="runtime": the actor's function is charged, not the lease
        with self.dispatcher.running(claimed):
            try:
                with execution.running_key(claimed.key):
                    view = execution.process(self.broker, message, timer)
                run_time = None if timer is None else timer.seconds
                if view.retry_delay is not None:
                    call, delay_ms = execution.split_retry(view, claimed.call)
                    # a retry passes the token on: the retried call must not run again at once here
                    self.dispatcher.retry(
                        claimed, call, delay=delay_ms / 1000, defer=self.defer, run_time=run_time
                    )
                    return None
                execution.settle(self.broker, message)
                return self.dispatcher.finish(
                    claimed, keep_token=keep_token, failed=message.failed, run_time=run_time
                )
            finally:
                message.clear_exception()

    def on_expired(self, task: ScheduledTask) -> None:
        """An expired call never runs; its result becomes a :class:`CallExpired` failure."""
        error = CallExpired(f"call {task.task_id} of key {task.key!r} expired before a worker could run it")
        self.fail_waiting(task, error, "expired")

    def on_revoked(self, task: ScheduledTask, reason: str) -> None:
        """A call deleted while it waited (``reason``: ``"purged"`` or
        ``"revoked"``) never runs; its result becomes a :class:`CallRevoked` failure."""
        error = CallRevoked(f"call {task.task_id} of key {task.key!r} was {reason} before it ran", reason)
        self.fail_waiting(task, error, reason)

    def fail_waiting(self, task: ScheduledTask, error: BaseException, what: str) -> None:
        """Settle a call that left the backlog without running as failed with
        ``error`` (:func:`execution.fail_unrunnable`: Results stores it; it
        never ran, so no ``on_failure``); a malformed call is only logged."""
        try:
            call = Call.from_payload(task.payload)
            message = MessageProxy(execution.message_for(task.task_id, call))
        except (TypeError, ValueError) as exc:
            logger.error("ranch: %s call %s is malformed: %s", what, task.task_id, exc)
            return
        execution.fail_unrunnable(self.broker, message, call, error)
