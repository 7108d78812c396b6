"""``lru_actor``: a Dramatiq actor with a fair backlog in front of it."""

from __future__ import annotations

from typing import (
    TYPE_CHECKING,
    Any,
    Awaitable,
    Callable,
    Iterable,
    List,
    Mapping,
    Optional,
    Protocol,
    Sequence,
    Tuple,
    TypeVar,
    Union,
    cast,
    overload,
)

import dramatiq
from dramatiq import Actor, Message
from dramatiq.broker import Broker
from ranch_core.calls import Call, check_arguments
from ranch_core.dispatcher import FairDispatcher
from ranch_core.keys import Key
from ranch_core.management import KeyManagement
from ranch_core.protocols import MAX_BATCH
from ranch_core.scheduler import WeightFunction

from ranch_dramatiq import enqueue, execution
from ranch_dramatiq import options as options_module
from ranch_dramatiq.backlog import DramatiqBacklog
from ranch_dramatiq.encoding import EncoderSerializer
from ranch_dramatiq.middleware import Ranch
from ranch_dramatiq.options import check_options
from ranch_dramatiq.pending import Pending

if TYPE_CHECKING:
    # Defaults (PEP 696): a bare ``LRUActor`` annotation means ``LRUActor[..., Any]``.
    from typing_extensions import ParamSpec
    from typing_extensions import TypeVar as TypeVarWithDefault

    P = ParamSpec("P", default=...)
    R = TypeVarWithDefault("R", default=Any)
    FP = ParamSpec("FP")
else:  # Dramatiq does the same: a TypeVar stands in at run time (Python 3.9 has no ParamSpec)
    P = TypeVar("P")
    R = TypeVar("R")
    FP = TypeVar("FP")
#: The decorated function's return type.
FR = TypeVar("FR")


class LRUActor(Actor[P, R], KeyManagement):
    """A plain Dramatiq actor (callable, ``.send()``-able) plus the fair path.

    ``lru_send`` stores the call in the actor's backlog under ``lru_key``
    and publishes a wake-up message on the actor's queue only when the
    backlog has fewer than ``max_wakeups`` outstanding; the worker that
    takes a wake-up runs the fairest call of the backlog at that moment.
    ``lru_send_many`` stores many calls of one key in one round trip.
    The management methods act on the whole backlog (by default every
    ``lru_actor`` of the actor's queue), the per-key controls included:
    ``set_concurrency_limit``, ``set_rate_limit``, ``pause_key``,
    ``resume_key``, ``set_max_backlog``, ``purge_key`` and ``revoke_call``
    (:class:`~ranch_core.management.KeyManagement`). A limited call waits in
    its key's backlog: it never raises and never spends a retry; a purged or
    revoked call's result is a :class:`~ranch_dramatiq.errors.CallRevoked`
    failure.
    """

    _ranch_backlog: DramatiqBacklog

    @property
    def backlog(self) -> str:
        """Name of the fairness domain (default: the actor's ``queue_name``)."""
        return self._ranch_backlog.name

    @property
    def dispatcher(self) -> FairDispatcher:
        """The :class:`ranch_core.dispatcher.FairDispatcher` of the backlog."""
        return self._ranch_backlog.dispatcher

    # -- sending -----------------------------------------------------------

    def lru_send(
        self,
        lru_key: Key,
        *args: Any,
        priority_weight: Optional[float] = None,
        expiry: Optional[float] = None,
        tags: Optional[Mapping[str, str]] = None,
        **kwargs: Any,
    ) -> Message[R]:
        """Queue ``actor(*args, **kwargs)`` fairly under ``lru_key``.

        ``lru_key`` is a string or a ``(group, member)`` pair (README,
        "Two-level keys"); the running call reads it with
        :func:`ranch_dramatiq.current_key`, a pair as a tuple.

        ``priority_weight`` sets the key's weight (0.5 = served twice as
        often as 1.0); ``expiry`` is seconds after which the call is dropped
        instead of run; ``tags`` tag the key. Returns the call's message:
        ``message.get_result(block=True)`` works with the Results middleware.
        Bad input raises ``TypeError``/``ValueError`` with nothing stored or sent.
        """
        # ``args`` is a tuple and ``kwargs`` a new dict with str keys: the
        # argument rule (check_arguments) holds, and nothing needs copying
        message: Message[R] = self.message_with_options(args=args, kwargs=kwargs)
        self._ranch_backlog.dispatcher.submit(
            lru_key,
            execution.call_for(message, self.options),
            priority_weight=priority_weight,
            expiry=expiry,
            tags=tags,
            task_id=message.message_id,
        )
        return message

    def lru_send_with_options(
        self,
        lru_key: Key,
        args: Sequence[Any] = (),
        kwargs: Optional[Mapping[str, Any]] = None,
        *,
        priority_weight: Optional[float] = None,
        expiry: Optional[float] = None,
        tags: Optional[Mapping[str, str]] = None,
        delay: Optional[float] = None,
        **options: Any,
    ) -> Message[R]:
        """:meth:`lru_send` with Dramatiq message ``options``, like
        ``Actor.send_with_options``: ``max_retries``, ``min_backoff``,
        ``max_backoff``, ``throws``, ``on_retry_exhausted``, ``time_limit``,
        ``max_age``, ``notify_shutdown``, ``store_results``, ``result_ttl``,
        ``on_success``, ``on_failure``, ``pipe_target``, ``pipe_ignore`` and
        any option a middleware of the broker declares
        (:mod:`ranch_dramatiq.options`). They act on the call when it runs,
        with Dramatiq's meaning. ``args`` is a list or tuple, ``kwargs`` any
        mapping with ``str`` keys (:func:`ranch_core.calls.check_arguments`).
        ``delay`` (milliseconds, as Dramatiq's) makes a delayed call: stored
        now, it joins the key's backlog at its time (README, "Delayed
        calls"). An option that cannot apply to a stored call raises
        ``TypeError`` naming it: nothing is stored."""
        settings = options_module.settings(lru_key, priority_weight, expiry, tags)
        seconds = options_module.delay_seconds(delay)
        message = self._checked_message(args, kwargs, options, "lru_send_with_options")
        call = execution.call_for(message, self.options)
        Pending(self._ranch_backlog, settings, call, message.message_id, seconds).store()
        return message

    def lru_message(
        self,
        lru_key: Key,
        *args: Any,
        priority_weight: Optional[float] = None,
        expiry: Optional[float] = None,
        tags: Optional[Mapping[str, str]] = None,
        **kwargs: Any,
    ) -> Message[R]:
        """A Ranch message: ``actor.message(*args, **kwargs)`` that enters the
        fair backlog under ``lru_key`` wherever it is enqueued.

        ``dramatiq.pipeline([...]).run()``, ``dramatiq.group([...]).run()``
        (one bulk submit per key), a pipeline's later step (enqueued by the
        worker that ran the previous one), a group's completion callback and
        ``broker.enqueue(message)`` store it in the backlog instead of
        publishing it; results (``get_result``, ``pipeline.get_result()``,
        ``group.get_results()``) and callbacks work as for a plain message.
        The key and settings travel in the message's options (``lru_key``,
        ...). ``expiry`` counts from when the message is enqueued. Checked
        now: bad input raises ``TypeError``/``ValueError``.
        """
        return self.lru_message_with_options(
            lru_key, args, kwargs, priority_weight=priority_weight, expiry=expiry, tags=tags
        )

    def lru_message_with_options(
        self,
        lru_key: Key,
        args: Sequence[Any] = (),
        kwargs: Optional[Mapping[str, Any]] = None,
        *,
        priority_weight: Optional[float] = None,
        expiry: Optional[float] = None,
        tags: Optional[Mapping[str, str]] = None,
        **options: Any,
    ) -> Message[R]:
        """:meth:`lru_message` with Dramatiq message ``options``, checked as
        in :meth:`lru_send_with_options` (like ``Actor.message_with_options``)."""
        settings = options_module.settings(lru_key, priority_weight, expiry, tags)
        return self._checked_message(args, kwargs, options, "lru_message_with_options", settings)

    def _checked_message(
        self,
        args: Sequence[Any],
        kwargs: Optional[Mapping[str, Any]],
        options: Mapping[str, Any],
        who: str,
        settings: Optional[options_module.RanchSettings] = None,
    ) -> Message[R]:
        """The message of checked arguments and options (errors name ``who``),
        carrying ``settings`` in its options if given (a Ranch message)."""
        checked_args, checked_kwargs = check_arguments(args, kwargs)
        checked = check_options(options, self.broker.actor_options, who=who)
        if settings is not None:
            checked.update(settings.as_options())
        return self.message_with_options(args=tuple(checked_args), kwargs=checked_kwargs, **checked)

    def lru_send_many(
        self,
        lru_key: Key,
        calls: Iterable[Tuple[Sequence[Any], Optional[Mapping[str, Any]]]],
        *,
        priority_weight: Optional[float] = None,
        expiry: Optional[float] = None,
        tags: Optional[Mapping[str, str]] = None,
    ) -> List[Message[R]]:
        """Queue many calls of this actor fairly under ``lru_key``, in order.

        ``calls`` is an iterable of ``(args, kwargs)`` pairs (``args`` a list
        or tuple, ``kwargs`` a mapping with ``str`` keys or ``None``).
        Returns one message per call, in order (``get_result`` works as for
        :meth:`lru_send`). One storage round trip per batch of up to 1,000
        calls and at most one wake-up published per batch (the worker that
        takes it fans out). All calls are stored or none: a bad pair, or an
        argument the encoder cannot encode, raises ``TypeError``/``ValueError``
        naming its index (``calls[3]``) before anything is stored.
        """
        if isinstance(calls, (str, bytes, Mapping)):
            raise TypeError(f"calls must be an iterable of (args, kwargs) pairs, not {type(calls).__name__}")
        try:
            pairs = list(calls)
        except TypeError:
            raise TypeError(
                f"calls must be an iterable of (args, kwargs) pairs, not {type(calls).__name__}"
            ) from None
        messages: List[Message[R]] = []
        stored: List[Call] = []
        for index, pair in enumerate(pairs):
            if isinstance(pair, (str, bytes)) or not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise TypeError(f"calls[{index}] must be an (args, kwargs) pair, not {pair!r:.80}")
            try:
                args, kwargs = check_arguments(pair[0], pair[1])
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"calls[{index}]: {exc}") from None
            message: Message[R] = self.message_with_options(args=tuple(args), kwargs=kwargs)
            messages.append(message)
            stored.append(execution.call_for(message, self.options))
        if len(stored) > MAX_BATCH:
            self._check_encodable(stored)  # later batches must not fail after earlier ones are stored
        try:
            self.dispatcher.submit_many(
                lru_key,
                stored,
                priority_weight=priority_weight,
                expiry=expiry,
                tags=tags,
                task_ids=[message.message_id for message in messages],
            )
        except TypeError:
            self._check_encodable(stored)  # names the call that cannot be encoded
            raise
        return messages

    def _check_encodable(self, calls: Sequence[Call]) -> None:
        """``TypeError`` naming ``calls[i]`` for the first call the storage cannot encode."""
        serializer = getattr(self._ranch_backlog.storage, "serializer", None) or EncoderSerializer()
        for index, call in enumerate(calls):
            try:
                serializer.dumps(call.to_payload())
            except (TypeError, ValueError) as exc:
                raise TypeError(f"calls[{index}]: {exc}") from None

    # -- management (the seed's names, from ranch_core.management.KeyManagement) --

    def _fair_dispatcher(self) -> FairDispatcher:
        return self.dispatcher

    def _fair_backlog(self) -> str:
        return self.backlog


class LRUActorDecorator(Protocol):
    """What ``lru_actor(...)`` with options returns: a decorator keeping the function's types."""

    @overload
    def __call__(self, fn: Callable[FP, Awaitable[FR]]) -> LRUActor[FP, FR]: ...

    @overload
    def __call__(self, fn: Callable[FP, FR]) -> LRUActor[FP, FR]: ...

    def __call__(self, fn: Union[Callable[FP, Awaitable[FR]], Callable[FP, FR]]) -> LRUActor[FP, FR]:
        """Declare ``fn`` as an ``lru_actor``."""


@overload
def lru_actor(fn: Callable[FP, Awaitable[FR]]) -> LRUActor[FP, FR]: ...


@overload
def lru_actor(fn: Callable[FP, FR]) -> LRUActor[FP, FR]: ...


@overload
def lru_actor(
    fn: None = None,
    *,
    broker: Optional[Broker] = None,
    storage: Optional[Any] = None,
    weight_function: Optional[WeightFunction] = None,
    backlog: Optional[str] = None,
    max_wakeups: Optional[int] = None,
    default_concurrency_limit: Optional[int] = None,
    default_rate_limit: Optional[str] = None,
    cost: Optional[str] = None,
    queue_name: str = "default",
    actor_name: Optional[str] = None,
    priority: int = 0,
    **actor_options: Any,
) -> LRUActorDecorator: ...


def lru_actor(
    fn: Optional[Callable[..., Any]] = None,
    *,
    broker: Optional[Broker] = None,
    storage: Optional[Any] = None,
    weight_function: Optional[WeightFunction] = None,
    backlog: Optional[str] = None,
    max_wakeups: Optional[int] = None,
    default_concurrency_limit: Optional[int] = None,
    default_rate_limit: Optional[str] = None,
    cost: Optional[str] = None,
    **actor_options: Any,
) -> Any:
    """Declare a Dramatiq actor with fair scheduling, like ``dramatiq.actor``.

    Usable bare (``@lru_actor``) or with arguments. ``actor_options``
    (``actor_name``, ``queue_name``, ``priority``, ``max_retries``,
    ``time_limit``, ``store_results``, ...) go to ``dramatiq.actor``; the
    wake-up messages use the actor's queue, so existing workers need no
    change. ``backlog`` names the fairness domain; by default it is the
    actor's ``queue_name``, so every ``lru_actor`` of one queue shares one
    fair order across keys. Actors naming one backlog must share its queue,
    storage and weight function (:func:`ranch_core.backlogs.check_join`).
    ``weight_function(key, LRUKeyMetadata) -> float`` is evaluated for the
    served key after each dispatch. ``max_wakeups`` bounds the backlog's
    outstanding wake-up messages (default: the ``Ranch`` middleware's, 64);
    actors of one backlog that both pass it must agree
    (:class:`~ranch_core.errors.BacklogConflict`).

    ``default_concurrency_limit`` (an ``int`` >= 1) and
    ``default_rate_limit`` (Celery's syntax, ``"10/s"``, burst 1) limit
    every key of the backlog that has no setting of its own (the per-key
    controls: :meth:`LRUActor.set_concurrency_limit`, ...); they are
    written to the storage when the backlog is declared. Actors of one
    backlog that both pass one must agree (``BacklogConflict``); a bad
    value raises ``TypeError``/``ValueError`` naming the argument, and a
    storage without per-key controls ``TypeError``, before anything is
    declared.

    ``cost="runtime"`` makes a call cost its key its run time (the actor
    function's, timed by the worker) times its weight (ranch-core README,
    "Fair by time"; default ``"calls"``): it
    belongs to the backlog (``BacklogConflict`` if two actors differ), takes
    no ``weight_function`` and needs a storage with
    :class:`~ranch_core.protocols.RuntimeCosts` (``TypeError``).

    Storage: ``storage`` if given; else a ``RedisBroker``'s own Redis
    (namespace ``<broker namespace>:<backlog>``, needs ranch-redis:
    :class:`~ranch_core.errors.MissingExtra` otherwise); else, for a
    ``StubBroker``, in-memory (one process); else ``ValueError``. Calls are
    encoded with Dramatiq's encoder (:mod:`ranch_dramatiq.encoding`).
    """

    def decorator(function: Callable[..., Any]) -> LRUActor[Any, Any]:
        if not callable(function):
            raise TypeError("lru_actor decorates a function")
        the_broker = broker if broker is not None else dramatiq.get_broker()
        ranch = Ranch.of(the_broker)
        enqueue.install(the_broker)
        actor_name = actor_options.get("actor_name") or function.__name__
        queue_name = actor_options.get("queue_name", "default")
        name = queue_name if backlog is None else backlog
        who = f"lru_actor {actor_name!r}"
        new_storage = ranch.check_backlog(
            the_broker,
            name,
            queue_name,
            storage,
            weight_function,
            who=who,
            max_wakeups=max_wakeups,
            default_concurrency_limit=default_concurrency_limit,
            default_rate_limit=default_rate_limit,
            cost=cost,
        )
        declare = dramatiq.actor(broker=the_broker, actor_class=LRUActor, **actor_options)
        actor = cast("LRUActor[Any, Any]", declare(function))
        actor._ranch_backlog = ranch.add_backlog(
            the_broker,
            name,
            queue_name,
            new_storage,
            weight_function,
            priority=actor.priority,
            actor_name=actor.actor_name,
            max_wakeups=max_wakeups,
            default_concurrency_limit=default_concurrency_limit,
            default_rate_limit=default_rate_limit,
            cost=cost,
        )
        return actor

    if fn is not None:
        return decorator(fn)
    return decorator
