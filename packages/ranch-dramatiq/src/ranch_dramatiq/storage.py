"""Which storage a backlog uses when ``lru_actor`` is given none."""

from __future__ import annotations

from typing import Any, Optional

from dramatiq.broker import Broker
from dramatiq.brokers.stub import StubBroker
from ranch_core.backends.memory import InMemoryStorage
from ranch_core.protocols import Storage


def namespace_for(broker: Any, backlog: str) -> str:
    """The ranch-redis namespace of ``backlog`` on a Redis broker: the
    broker's own namespace (default ``dramatiq``) and the backlog name."""
    return f"{getattr(broker, 'namespace', 'dramatiq')}:{backlog}"


def resolve_storage(broker: Broker, backlog: str, storage: Optional[Any]) -> Storage:
    """An explicit ``storage``; else, for a Redis broker, a ``RedisStorage``
    on the broker's own Redis client (namespace :func:`namespace_for`); else,
    for a ``StubBroker``, an in-memory storage (one process); else a
    ``ValueError`` saying what to pass. Never a silent fallback."""
    if storage is not None:
        if not isinstance(storage, Storage):
            raise TypeError(
                f"storage must implement ranch_core.protocols.Storage (e.g. ranch_redis.RedisStorage), "
                f"not {type(storage).__name__}"
            )
        return storage
    if _is_redis_broker(broker):
        try:
            from ranch_redis import RedisStorage
        except ImportError:
            raise ValueError(
                "a RedisBroker needs ranch-redis for its Ranch storage: pip install 'ranch-dramatiq[redis]' "
                "(or pass storage=)"
            ) from None
        return RedisStorage(broker.client, namespace=namespace_for(broker, backlog))  # type: ignore[attr-defined]
    if isinstance(broker, StubBroker):
        return InMemoryStorage()
    raise ValueError(
        f"ranch-dramatiq cannot derive a storage from a {type(broker).__name__}: pass storage= "
        f"(e.g. ranch_redis.RedisStorage.from_url(url, namespace={backlog!r}))"
    )


def _is_redis_broker(broker: Broker) -> bool:
    try:
        from dramatiq.brokers.redis import RedisBroker
    except ImportError:  # dramatiq without its [redis] extra: no RedisBroker exists
        return False
    return isinstance(broker, RedisBroker)
