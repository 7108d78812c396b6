"""One fairness domain on one broker: its dispatcher and what its wake-ups do."""

from __future__ import annotations

import logging
from typing import Any, Dict, Mapping, Optional

from dramatiq.broker import Broker, MessageProxy
from dramatiq.errors import ActorNotFound
from ranch_core.calls import Call, Claimed
from ranch_core.dispatcher import FairDispatcher
from ranch_core.models import ScheduledTask
from ranch_core.protocols import Storage
from ranch_core.scheduler import FairScheduler, WeightFunction

from ranch_dramatiq import execution
from ranch_dramatiq.errors import CallExpired

logger = logging.getLogger("ranch_dramatiq")

#: Keyword argument of a prioritizer message that carries a call coming back
#: from a delayed retry.
RESUBMIT = "resubmit"


class ActorBacklog:
    """The backlog ``name`` of ``broker``: calls of the ``lru_actor``\\ s that
    name it, all on queue ``queue_name``.

    ``prioritizer`` is the queue's prioritizer actor: every stored call has
    one wake-up message for it (``prioritizer.send(name)``).
    """

    def __init__(
        self,
        broker: Broker,
        name: str,
        queue_name: str,
        storage: Storage,
        prioritizer: Any,
        *,
        weight_function: Optional[WeightFunction] = None,
        lease_seconds: float,
    ) -> None:
        self.broker = broker
        self.name = name
        self.queue_name = queue_name
        self.storage = storage
        self.weight_function = weight_function
        self.prioritizer = prioritizer
        scheduler = FairScheduler(storage, weight_function=weight_function, lease_seconds=lease_seconds)
        self.dispatcher = FairDispatcher(scheduler, self.wake, on_expired=self.on_expired)

    # -- messages ----------------------------------------------------------

    def wake(self) -> None:
        """Publish one wake-up message for this backlog on its queue."""
        self.broker.enqueue(self.prioritizer.message(self.name))

    def defer(self, claimed: Claimed, call: Call, delay_ms: int) -> None:
        """Publish a delayed message that puts ``call`` back into its key's
        backlog when ``delay_ms`` has passed (a retry with backoff)."""
        body = self.dispatcher.deferred(claimed, call)
        message = self.prioritizer.message_with_options(args=(self.name,), kwargs={RESUBMIT: body})
        self.broker.enqueue(message, delay=delay_ms)

    # -- worker side -------------------------------------------------------

    def handle(self, resubmit: Optional[Mapping[str, Any]] = None) -> None:
        """What one prioritizer message does: run the fair choice now, or
        put a retried call back into its key's backlog."""
        if resubmit is not None:
            self.resubmit(resubmit)
            return
        claimed = self.dispatcher.take()
        if claimed is not None:
            self.run(claimed)

    def run(self, claimed: Claimed) -> None:
        """Run a claimed call as its own message (see :mod:`ranch_dramatiq.execution`)."""
        try:
            message = MessageProxy(execution.message_for(claimed.task_id, claimed.call))
        except TypeError as exc:
            logger.error("ranch: dropping malformed call %s of key %r: %s", claimed.task_id, claimed.key, exc)
            self.dispatcher.finish(claimed)
            return
        if not execution.has_actor(self.broker, message.actor_name):
            logger.error(
                "ranch: call %s names actor %r, which this worker does not declare; failing it",
                claimed.task_id,
                message.actor_name,
            )
            missing = ActorNotFound(message.actor_name)  # type: ignore[no-untyped-call]
            execution.fail_unrunnable(self.broker, message, missing)
            self.dispatcher.finish(claimed)
            return
        with self.dispatcher.running(claimed):
            try:
                view = execution.process(self.broker, message)
                if view.retry_delay is not None:
                    call, delay_ms = execution.split_retry(view, claimed.call)
                    self.retry(claimed, call, delay_ms)
                else:
                    execution.settle(self.broker, message)
                    self.dispatcher.finish(claimed)
            finally:
                message.clear_exception()

    def retry(self, claimed: Claimed, call: Call, delay_ms: int) -> None:
        """Send a failed call back into its key's backlog, after ``delay_ms``."""
        if delay_ms <= 0:
            self.dispatcher.requeue(Claimed(claimed.task, call), retries=call.retries)
            return
        try:
            self.defer(claimed, call, delay_ms)
        except (TypeError, ValueError):
            # The broker's encoder cannot carry the call (e.g. a pickle storage
            # holding arguments JSON cannot encode): retry without the delay.
            logger.warning(
                "ranch: the retry of call %s cannot wait in the broker; retrying now", claimed.task_id
            )
            self.dispatcher.requeue(Claimed(claimed.task, call), retries=call.retries)
            return
        except Exception:
            logger.exception(
                "ranch: could not schedule the retry of call %s; it is put back when its lease runs out",
                claimed.task_id,
            )
            return
        self.dispatcher.finish(claimed)

    def resubmit(self, payload: Mapping[str, Any]) -> None:
        """Store a call coming back from a delayed retry (and wake a worker)."""
        self.dispatcher.resubmit(payload)

    def on_expired(self, task: ScheduledTask) -> None:
        """An expired call never runs; its result becomes a :class:`CallExpired` failure."""
        try:
            message = MessageProxy(execution.message_for(task.task_id, Call.from_payload(task.payload)))
        except (TypeError, ValueError) as exc:
            logger.error("ranch: expired call %s is malformed: %s", task.task_id, exc)
            return
        error = CallExpired(f"call {task.task_id} of key {task.key!r} expired before a worker could run it")
        execution.fail_unrunnable(self.broker, message, error)

    def describe(self) -> Dict[str, Any]:
        """Name, queue and storage, for logs and errors."""
        return {"backlog": self.name, "queue_name": self.queue_name, "storage": type(self.storage).__name__}
