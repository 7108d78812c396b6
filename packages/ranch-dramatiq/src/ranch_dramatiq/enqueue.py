"""Ranch messages at ``broker.enqueue``: where pipelines, groups and callbacks enter the backlog.

Dramatiq enqueues every message through ``broker.enqueue``: ``pipeline.run``
the first step, ``group.run`` each child, the Pipelines middleware the next
step (in the worker that ran the previous one), GroupCallbacks a group's
completion callbacks, ``Actor.send_with_options`` a single message. A
middleware cannot take a message out of that path (``before_enqueue`` can
only raise, which fails the caller), so :func:`install` wraps the broker's
``enqueue`` (the instance attribute, once per broker, when its first
``lru_actor`` is declared). A *Ranch message*, one whose options carry
``lru_key`` (:func:`ranch_dramatiq.options.ranch_settings`), is stored in its
actor's backlog under that key instead of being published; a wake-up runs
it as its own message, with its own id, so results, pipelines and group
callbacks attach to it as to a plain message. Every other message goes to
the broker's own ``enqueue`` unchanged.

While a ``group`` runs (:mod:`ranch_dramatiq.batching`), Ranch messages are
collected and stored together instead of one at a time.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from typing import Any, Callable, Optional

from dramatiq import Message
from dramatiq.broker import Broker
from dramatiq.errors import ActorNotFound

from ranch_dramatiq import execution
from ranch_dramatiq.backlog import DramatiqBacklog
from ranch_dramatiq.batching import current_batch, install_group_batching
from ranch_dramatiq.options import RanchSettings, check_options, delay_seconds, ranch_settings, without_ranch
from ranch_dramatiq.pending import Pending

logger = logging.getLogger("ranch_dramatiq")

_install_lock = threading.Lock()


def prepare(
    backlog: DramatiqBacklog,
    actor_options: Any,
    message: Message[Any],
    settings: RanchSettings,
    declared: Any,
    who: str,
    delay: Optional[float] = None,
) -> Pending:
    """Check ``message``'s options (``TypeError`` naming a bad one) and build its stored call
    (``delay``: seconds until it may run)."""
    options = check_options(without_ranch(message.options), declared, who=who)
    stored = dataclasses.replace(message, options=options)
    call = execution.call_for(stored, actor_options)
    return Pending(backlog, settings, call, message.message_id, delay)


class RanchEnqueue:
    """The broker's ``enqueue`` with Ranch messages diverted into their backlogs."""

    def __init__(self, broker: Broker, original: Callable[..., Any]) -> None:
        self.broker = broker
        self.original = original

    def __call__(self, message: Any, *, delay: Optional[int] = None) -> Any:
        options = getattr(message, "options", None)
        if not options or options.get("lru_key") is None:
            return self.original(message, delay=delay)
        pending = self.pending(message, delay)
        if pending is None:
            return self.original(message, delay=delay)
        batch = current_batch()
        if batch is not None:
            batch.add(pending)
        else:
            pending.store()
        return message

    def pending(self, message: Message[Any], delay: Optional[int]) -> Optional[Pending]:
        """The checked Ranch message; ``None`` if its actor is no ``lru_actor`` in this process."""
        settings = ranch_settings(message.options)
        assert settings is not None
        seconds = delay_seconds(delay)
        try:
            actor = self.broker.get_actor(message.actor_name)
        except ActorNotFound:
            actor = None
        backlog = getattr(actor, "_ranch_backlog", None)
        if actor is None or backlog is None:
            logger.warning(
                "ranch: message %s carries lru_key %r but %r is not an lru_actor in this process: "
                "enqueued as a plain message (declare the lru_actor in every process that enqueues it)",
                message.message_id,
                settings.key,
                message.actor_name,
            )
            return None
        declared = self.broker.actor_options
        return prepare(backlog, actor.options, message, settings, declared, "a Ranch message", seconds)


def install(broker: Broker) -> None:
    """Divert Ranch messages enqueued on ``broker`` into their backlogs (once per broker),
    and store a ``group``'s Ranch messages in bulk (once per process)."""
    install_group_batching()
    with _install_lock:
        if isinstance(broker.__dict__.get("enqueue"), RanchEnqueue):
            return
        broker.enqueue = RanchEnqueue(broker, broker.enqueue)  # type: ignore[method-assign]
