"""Which storage a backlog uses: explicit, configured, the broker's Redis, or memory.

The rule, first match wins (never a silent fallback):

1. the ``storage=`` given to :func:`~ranch_celery.lru_task`;
2. ``app.conf.ranch_storage_url`` (``redis://``, ``rediss://``, ``unix://``
   or ``memory://``);
3. the broker's URL when the broker is Redis (``redis://``, ``rediss://``):
   the same server, in the backlog's own namespace ``celery:<backlog>``;
4. an in-memory storage when the broker is ``memory://`` (one process: the
   demo, tests, a first try);
5. otherwise :class:`ValueError` at decoration time.
"""

from __future__ import annotations

from typing import Any, Optional

from ranch_core import InMemoryStorage, Storage

#: URL schemes served by ranch-redis.
REDIS_SCHEMES = ("redis", "rediss", "unix")


def scheme_of(url: str) -> str:
    """The lowercase scheme of ``url`` (``""`` if it has none)."""
    head, sep, _ = url.partition("://")
    return head.lower() if sep else ""


def namespace_for(backlog: str) -> str:
    """The Redis namespace of a backlog: ``celery:<backlog>``."""
    return f"celery:{backlog}"


def storage_from_url(url: str, backlog: str) -> Storage:
    """A storage for ``backlog`` at ``url``; ``ValueError`` for an unknown scheme."""
    scheme = scheme_of(url)
    if scheme == "memory":
        return InMemoryStorage()
    if scheme in REDIS_SCHEMES:
        try:
            from ranch_redis import RedisStorage
        except ImportError:  # pragma: no cover - depends on what is installed
            raise ImportError(
                f"storage URL {scheme}://... needs ranch-redis: pip install 'ranch-celery[redis]'"
            ) from None
        storage: Storage = RedisStorage.from_url(url, namespace=namespace_for(backlog))
        return storage
    raise ValueError(
        f"unsupported ranch storage URL scheme {scheme!r}: use redis://, rediss://, unix:// or memory://"
    )


def first_broker_url(app: Any) -> Optional[str]:
    """The app's (write) broker URL, first of a failover list; ``None`` if unset."""
    conf = app.conf
    url = conf.get("broker_write_url") or conf.get("broker_url")
    if isinstance(url, (list, tuple)):
        url = url[0] if url else None
    if not url:
        return None
    text = str(url)
    return text.split(";", 1)[0].strip()


def is_storage(value: Any) -> bool:
    """Whether ``value`` provides every method of :class:`ranch_core.Storage`."""
    return isinstance(value, Storage)


def resolve_storage(app: Any, backlog: str, explicit: Optional[Storage]) -> Storage:
    """Apply the rule in the module docstring for one backlog of ``app``."""
    if explicit is not None:
        if not is_storage(explicit):
            raise TypeError(
                "storage must implement ranch_core.Storage (e.g. RedisStorage), "
                f"not {type(explicit).__name__}"
            )
        return explicit
    configured = app.conf.get("ranch_storage_url")
    if configured:
        if not isinstance(configured, str):
            raise TypeError("app.conf.ranch_storage_url must be a URL string")
        return storage_from_url(configured, backlog)
    broker = first_broker_url(app)
    scheme = scheme_of(broker) if broker else ""
    if broker and scheme in ("redis", "rediss"):
        return storage_from_url(broker, backlog)
    if scheme == "memory":
        return InMemoryStorage()
    raise ValueError(
        f"ranch: no storage for backlog {backlog!r}: the broker ({scheme or 'default amqp'}) is "
        "neither Redis nor memory://. Pass storage=RedisStorage.from_url(...) to lru_task "
        "or set app.conf.ranch_storage_url."
    )
