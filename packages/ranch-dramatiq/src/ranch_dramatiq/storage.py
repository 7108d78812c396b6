"""Which storage a backlog uses when ``lru_actor`` is given none."""

from __future__ import annotations

from typing import Any, Optional, cast

from dramatiq.broker import Broker
from dramatiq.brokers.stub import StubBroker
from ranch_core.backends.memory import InMemoryStorage
from ranch_core.backlogs import redis_storage_class
from ranch_core.protocols import Storage

from ranch_dramatiq.encoding import EncoderSerializer

#: What ``pip install`` adds ranch-redis for a RedisBroker.
REDIS_EXTRA = "ranch-dramatiq[redis]"


def namespace_for(broker: Any, backlog: str) -> str:
    """The ranch-redis namespace of ``backlog`` on a Redis broker: the
    broker's own namespace (default ``dramatiq``) and the backlog name."""
    return f"{getattr(broker, 'namespace', 'dramatiq')}:{backlog}"


def resolve_storage(broker: Broker, backlog: str, storage: Optional[Any]) -> Storage:
    """An explicit ``storage`` (a :class:`~ranch_core.protocols.Storage`);
    else, for a Redis broker, a ``RedisStorage`` on the broker's own Redis
    client (namespace :func:`namespace_for`); else, for a ``StubBroker``, an
    in-memory storage (one process); else a ``ValueError`` saying what to
    pass. Never a silent fallback.

    The storages made here encode calls with Dramatiq's encoder
    (:class:`~ranch_dramatiq.encoding.EncoderSerializer`). A RedisBroker
    without ranch-redis installed raises
    :class:`~ranch_core.errors.MissingExtra` (an ``ImportError``).
    """
    if storage is not None:
        return cast(Storage, storage)  # its type was checked by Ranch.check_backlog
    if _is_redis_broker(broker):
        redis_storage = redis_storage_class(REDIS_EXTRA)
        client = broker.client  # type: ignore[attr-defined]
        made = redis_storage(client, namespace=namespace_for(broker, backlog), serializer=EncoderSerializer())
        return cast(Storage, made)
    if isinstance(broker, StubBroker):
        return InMemoryStorage(serializer=EncoderSerializer())
    raise ValueError(
        f"ranch-dramatiq cannot derive a storage from a {type(broker).__name__}: pass storage= "
        f"(e.g. ranch_redis.RedisStorage.from_url(url, namespace={backlog!r}, "
        f"serializer=ranch_dramatiq.EncoderSerializer()))"
    )


def _is_redis_broker(broker: Broker) -> bool:
    try:
        from dramatiq.brokers.redis import RedisBroker
    except ImportError:  # dramatiq without its [redis] extra: no RedisBroker exists
        return False
    return isinstance(broker, RedisBroker)
