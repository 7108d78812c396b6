"""``lru_actor``: a Dramatiq actor with a fair backlog in front of it."""

from __future__ import annotations

from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Mapping,
    Optional,
    Sequence,
    TypeVar,
    cast,
    overload,
)

import dramatiq
from dramatiq import Actor, Message
from dramatiq.broker import Broker
from ranch_core.dispatcher import FairDispatcher
from ranch_core.management import KeyManagement
from ranch_core.scheduler import WeightFunction

from ranch_dramatiq import execution
from ranch_dramatiq.backlog import ActorBacklog
from ranch_dramatiq.middleware import Ranch

R = TypeVar("R")

if TYPE_CHECKING:
    _ActorBase = Actor[..., Any]
else:
    _ActorBase = Actor


class LRUActor(_ActorBase, KeyManagement):
    """A plain Dramatiq actor (callable, ``.send()``-able) plus the fair path.

    ``lru_send`` stores the call in the actor's backlog under ``lru_key``
    and publishes one wake-up message on the actor's queue; the worker that
    takes that message runs the fairest call of the backlog at that moment.
    The management methods act on the whole backlog.
    """

    _ranch_backlog: ActorBacklog

    @property
    def backlog(self) -> str:
        """Name of the fairness domain (default: the actor's name)."""
        return self._ranch_backlog.name

    @property
    def dispatcher(self) -> FairDispatcher:
        """The :class:`ranch_core.dispatcher.FairDispatcher` of the backlog."""
        return self._ranch_backlog.dispatcher

    # -- sending -----------------------------------------------------------

    def lru_send(
        self,
        lru_key: str,
        *args: Any,
        priority_weight: Optional[float] = None,
        expiry: Optional[float] = None,
        tags: Optional[Mapping[str, str]] = None,
        **kwargs: Any,
    ) -> Message[Any]:
        """Queue ``actor(*args, **kwargs)`` fairly under ``lru_key``.

        ``priority_weight`` sets the key's weight (0.5 = served twice as
        often as 1.0); ``expiry`` is seconds after which the call is dropped
        instead of run; ``tags`` tag the key. Returns the call's message:
        ``message.get_result(block=True)`` works with the Results middleware.
        Bad input raises ``TypeError``/``ValueError`` with nothing stored or sent.
        """
        return self.lru_send_with_options(
            lru_key, args=args, kwargs=kwargs, priority_weight=priority_weight, expiry=expiry, tags=tags
        )

    def lru_send_with_options(
        self,
        lru_key: str,
        args: Sequence[Any] = (),
        kwargs: Optional[Dict[str, Any]] = None,
        *,
        priority_weight: Optional[float] = None,
        expiry: Optional[float] = None,
        tags: Optional[Mapping[str, str]] = None,
        **options: Any,
    ) -> Message[Any]:
        """:meth:`lru_send` with Dramatiq message ``options`` (``max_retries``,
        ``time_limit``, ``store_results``, ``on_success``, ...), like
        ``Actor.send_with_options``. ``delay`` is not supported."""
        if "delay" in options:
            raise TypeError("lru_send_with_options does not support delay=; send it later instead")
        if not isinstance(args, (tuple, list)):
            raise TypeError(f"args must be a tuple or list, not {type(args).__name__}")
        if kwargs is None:
            kwargs = {}
        if not isinstance(kwargs, dict) or not all(isinstance(name, str) for name in kwargs):
            raise TypeError("kwargs must be a dict with str keys")
        message: Message[Any] = self.message_with_options(args=tuple(args), kwargs=kwargs, **options)
        self.dispatcher.submit(
            lru_key,
            execution.call_for(message),
            priority_weight=priority_weight,
            expiry=expiry,
            tags=tags,
            task_id=message.message_id,
        )
        return message

    # -- management (the seed's names, from ranch_core.management.KeyManagement) --

    def _fair_dispatcher(self) -> FairDispatcher:
        return self.dispatcher

    def _fair_backlog(self) -> str:
        return self.backlog


Decorator = Callable[[Callable[..., Any]], LRUActor]


@overload
def lru_actor(fn: Callable[..., Any]) -> LRUActor: ...


@overload
def lru_actor(
    fn: None = None,
    *,
    broker: Optional[Broker] = None,
    storage: Optional[Any] = None,
    weight_function: Optional[WeightFunction] = None,
    backlog: Optional[str] = None,
    **actor_options: Any,
) -> Decorator: ...


def lru_actor(
    fn: Optional[Callable[..., Any]] = None,
    *,
    broker: Optional[Broker] = None,
    storage: Optional[Any] = None,
    weight_function: Optional[WeightFunction] = None,
    backlog: Optional[str] = None,
    **actor_options: Any,
) -> Any:
    """Declare a Dramatiq actor with fair scheduling, like ``dramatiq.actor``.

    Usable bare (``@lru_actor``) or with arguments. ``actor_options``
    (``actor_name``, ``queue_name``, ``priority``, ``max_retries``,
    ``time_limit``, ``store_results``, ...) go to ``dramatiq.actor``; the
    wake-up messages use the actor's queue, so existing workers need no
    change. ``backlog`` names the fairness domain (default: the actor's
    name); actors naming the same backlog share its keys and must share a
    queue. ``weight_function(key, LRUKeyMetadata) -> float`` is evaluated
    for the served key after each dispatch.

    Storage: ``storage`` if given; else a ``RedisBroker``'s own Redis
    (namespace ``<broker namespace>:<backlog>``, needs ranch-redis); else,
    for a ``StubBroker``, in-memory (one process); else ``ValueError``.
    """

    def decorator(function: Callable[..., Any]) -> LRUActor:
        if not callable(function):
            raise TypeError("lru_actor decorates a function")
        the_broker = broker if broker is not None else dramatiq.get_broker()
        ranch = Ranch.of(the_broker)
        actor_name = actor_options.get("actor_name") or function.__name__
        queue_name = actor_options.get("queue_name", "default")
        name = actor_name if backlog is None else backlog
        new_storage = ranch.check_backlog(the_broker, name, queue_name, storage, weight_function)
        declare = dramatiq.actor(broker=the_broker, actor_class=LRUActor, **actor_options)
        actor = cast(LRUActor, declare(function))
        actor._ranch_backlog = ranch.add_backlog(
            the_broker, name, queue_name, new_storage, weight_function, priority=actor.priority
        )
        return actor

    if fn is not None:
        return decorator(fn)
    return decorator
