"""Running a stored call as its own Dramatiq message, inside a wake-up.

The wake-up message is what the broker delivered; the call it picks
from the backlog is presented to every middleware as a message of its own
(the user's actor, arguments, options, message id and timestamp), with the
same hooks a :class:`dramatiq.worker.WorkerThread` emits:
``before/after_process_message`` (or ``after_skip_message``), then
``before/after_ack`` or ``before/after_nack``. Results, Retries, TimeLimit,
AgeLimit, CurrentMessage, Callbacks and Pipelines therefore act on the
user's call.

Middleware receive a thin view of the broker whose ``enqueue`` of *this
call's* message id is captured instead of published: that is how the
Retries middleware (or any middleware that re-enqueues a failed message)
sends the call back into its key's backlog rather than onto the FIFO queue.

While the call runs, :func:`current_key` gives its key as the producer
passed it (a ``(group, member)`` pair as a tuple): the twin of Celery's
``self.request.lru_key``.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

from dramatiq import Message
from dramatiq.broker import Broker, MessageProxy
from dramatiq.errors import ActorNotFound, Retry
from dramatiq.middleware import MiddlewareError, SkipMessage
from dramatiq.results import Results
from ranch_core.calls import Call
from ranch_core.keys import Key
from ranch_core.runtimes import RunTimer

logger = logging.getLogger("ranch_dramatiq")

#: Keys of :attr:`ranch_core.calls.Call.options` written by ``lru_send``.
ACTOR_NAME = "actor_name"
QUEUE_NAME = "queue_name"
TIMESTAMP = "message_timestamp"
MESSAGE_OPTIONS = "message_options"
#: The actor's own ``store_results``/``result_ttl``, so that a worker which
#: does not declare the actor can still store the call's failure.
RESULT_OPTIONS = "result_options"
RESULT_OPTION_NAMES = ("store_results", "result_ttl")

_local = threading.local()


def current_key() -> Optional[Key]:
    """The key of the Ranch call this thread is running (a ``str``, or a
    ``(group, member)`` tuple); ``None`` outside a Ranch call."""
    keys: List[Key] = getattr(_local, "keys", [])
    return keys[-1] if keys else None


@contextmanager
def running_key(key: Key) -> Iterator[None]:
    """Make ``key`` the :func:`current_key` of this thread while the call runs."""
    keys: Optional[List[Key]] = getattr(_local, "keys", None)
    if keys is None:
        keys = _local.keys = []
    keys.append(key)
    try:
        yield
    finally:
        keys.pop()


def call_for(message: Message[Any], actor_options: Optional[Mapping[str, Any]] = None) -> Call:
    """The stored form of a message built by ``Actor.message_with_options``
    (``actor_options``: the options of the actor that built it)."""
    options = dict(message.options)
    stored: Dict[str, Any] = {
        ACTOR_NAME: message.actor_name,
        QUEUE_NAME: message.queue_name,
        TIMESTAMP: message.message_timestamp,
        MESSAGE_OPTIONS: options,
    }
    if actor_options and ("store_results" in actor_options or "result_ttl" in actor_options):
        stored[RESULT_OPTIONS] = {
            name: actor_options[name] for name in RESULT_OPTION_NAMES if name in actor_options
        }
    retries = options.get("retries", 0) if options else 0
    if not isinstance(retries, int) or retries < 0:
        retries = 0
    # Call copies args and kwargs (its converters)
    return Call(args=message.args, kwargs=message.kwargs, options=stored, retries=retries)


def message_for(task_id: str, call: Call) -> Message[Any]:
    """The Dramatiq message a stored call stands for (``TypeError`` if malformed)."""
    options = call.options
    actor_name, queue_name = options.get(ACTOR_NAME), options.get(QUEUE_NAME)
    timestamp, message_options = options.get(TIMESTAMP), options.get(MESSAGE_OPTIONS, {})
    if not isinstance(actor_name, str) or not isinstance(queue_name, str):
        raise TypeError("stored call names no actor or queue")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise TypeError("stored call has no message timestamp")
    if not isinstance(message_options, dict):
        raise TypeError("stored call has malformed message options")
    message_options = dict(message_options)
    if call.retries:
        message_options["retries"] = call.retries
    return Message(
        queue_name=queue_name,
        actor_name=actor_name,
        args=tuple(call.args),
        kwargs=dict(call.kwargs),
        options=message_options,
        message_id=task_id,
        message_timestamp=timestamp,
    )


class CallBroker:
    """The broker as middleware see it while one call is processed.

    Everything is the real broker's, except that ``enqueue`` of the call's
    own message id (a retry) is recorded in :attr:`retry_delay` and
    :attr:`retry_options` instead of being published.
    """

    def __init__(self, broker: Broker, message_id: str) -> None:
        self._broker = broker
        self._message_id = message_id
        self.retry_delay: Optional[int] = None
        self.retry_options: Dict[str, Any] = {}

    def enqueue(self, message: Any, *, delay: Optional[int] = None) -> Any:
        if getattr(message, "message_id", None) != self._message_id:
            return self._broker.enqueue(message, delay=delay)
        self.retry_delay = max(0, int(delay or 0))
        self.retry_options = dict(message.options)
        return message

    def __getattr__(self, name: str) -> Any:
        return getattr(self._broker, name)


def emit_before(broker: Broker, view: Any, signal: str, *args: Any) -> None:
    """``Broker.emit_before`` with ``view`` handed to the middleware."""
    for middleware in broker.middleware:
        try:
            getattr(middleware, "before_" + signal)(view, *args)
        except MiddlewareError:
            raise
        except Exception:
            logger.critical("Unexpected failure in before_%s of %r.", signal, middleware, exc_info=True)


def emit_after(broker: Broker, view: Any, signal: str, *args: Any, **kwargs: Any) -> None:
    """``Broker.emit_after`` with ``view`` handed to the middleware."""
    for middleware in reversed(broker.middleware):
        try:
            getattr(middleware, "after_" + signal)(view, *args, **kwargs)
        except Exception:
            logger.critical("Unexpected failure in after_%s of %r.", signal, middleware, exc_info=True)


def process(broker: Broker, message: MessageProxy, timer: Optional[RunTimer] = None) -> CallBroker:
    """Run ``message``'s actor through the middleware, as a worker thread would.

    Returns the broker view, which tells whether a middleware asked for a
    retry. Afterwards ``message.failed`` tells a final failure from a
    success. Never raises what the actor raised. With a ``timer``
    (``cost="runtime"``), the actor's call alone runs through it: its
    ``seconds`` is then the run time of the user's function, the
    middleware hooks left out.
    """
    view = CallBroker(broker, message.message_id)
    actor = None
    try:
        emit_before(broker, view, "process_message", message)
        result = None
        if not message.failed:
            actor = broker.get_actor(message.actor_name)
            if timer is None:
                result = actor(*message.args, **message.kwargs)
            else:
                result = timer(actor, *message.args, **message.kwargs)
        emit_after(broker, view, "process_message", message, result=result)
    except SkipMessage as exc:
        if message.failed:
            message.stuff_exception(exc)
        logger.warning("Message %s was skipped.", message)
        emit_after(broker, view, "skip_message", message)
    except BaseException as exc:
        message.stuff_exception(exc)
        throws = message.options.get("throws") or (actor is not None and actor.options.get("throws"))
        if throws and isinstance(exc, throws):
            logger.info(
                "Failed to process message %s with expected exception %s.", message, type(exc).__name__
            )
        elif not isinstance(exc, Retry):
            logger.error("Failed to process message %s with unhandled exception.", message, exc_info=True)
        emit_after(broker, view, "process_message", message, exception=exc)
    return view


def settle(broker: Broker, message: MessageProxy) -> None:
    """Emit the ack or nack hooks for a call that is done (Results stores
    failures in ``after_nack``; Callbacks has already sent ``on_failure`` in
    ``after_process_message``)."""
    signal = "nack" if message.failed else "ack"
    emit_before(broker, broker, signal, message)
    emit_after(broker, broker, signal, message)


def fail_unrunnable(broker: Broker, message: MessageProxy, call: Call, exc: BaseException) -> None:
    """Settle a call that cannot run (expired, unknown actor) as failed with ``exc``.

    If this worker declares the call's actor, the nack hooks run as for any
    final failure (Results stores ``exc``). No ``process_message`` hook runs,
    as for a message AgeLimit skips: the call never ran, so Callbacks sends no
    ``on_failure``. If not,
    every middleware would look the actor up and fail, so ``exc`` is stored
    directly with each Results middleware, by the options the actor had
    when the call was sent.
    """
    message.fail()
    message.stuff_exception(exc)
    try:
        if has_actor(broker, message.actor_name):
            settle(broker, message)
        else:
            store_failure(broker, message, call, exc)
    finally:
        message.clear_exception()


def store_failure(broker: Broker, message: MessageProxy, call: Call, exc: BaseException) -> None:
    """Store ``exc`` as the result of a call whose actor this worker does not declare."""
    recorded = call.options.get(RESULT_OPTIONS)
    if not isinstance(recorded, dict):
        recorded = {}
    for middleware in broker.middleware:
        if not isinstance(middleware, Results):
            continue
        store = message.options.get("store_results", recorded.get("store_results", middleware.store_results))
        ttl = message.options.get("result_ttl", recorded.get("result_ttl", middleware.result_ttl))
        if not store:
            continue
        try:
            middleware.backend.store_exception(message, exc, ttl)
        except Exception:
            logger.exception("ranch: could not store the failure of call %s", message.message_id)


def has_actor(broker: Broker, actor_name: str) -> bool:
    """Whether ``actor_name`` is declared on ``broker``."""
    try:
        broker.get_actor(actor_name)
    except ActorNotFound:
        return False
    return True


def split_retry(view: CallBroker, call: Call) -> Tuple[Call, int]:
    """The call as it goes back to its backlog after a retry, and the delay in ms."""
    options = dict(view.retry_options)
    retries = options.pop("retries", call.retries + 1)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        retries = call.retries + 1
    new_options = dict(call.options)
    new_options[MESSAGE_OPTIONS] = options
    retried = Call(args=call.args, kwargs=call.kwargs, options=new_options, retries=retries)
    return retried, view.retry_delay or 0
