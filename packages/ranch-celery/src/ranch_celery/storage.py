"""Which storage a backlog uses, decided at its first use from the app's final configuration.

The rule, first match wins (never a silent fallback):

1. the ``storage=`` given to :func:`~ranch_celery.lru_task`;
2. the ``storage_url`` setting (``app.conf.ranch_storage_url`` or
   ``config={"storage_url": ...}``): ``redis://``, ``rediss://``,
   ``unix://`` or ``memory://``;
3. the broker's URL when the broker is Redis (``redis://``, ``rediss://``),
   however it was given: ``Celery(broker=...)``, ``app.conf.broker_url``,
   ``config_from_object``, ``celery worker -b ...`` or
   ``CELERY_BROKER_URL``; the backlog lives in namespace
   ``<redis_prefix><backlog>`` (default ``celery:<backlog>``);
4. an in-memory storage when the broker is ``memory://`` (one process: the
   demo, tests, a first try);
5. otherwise :class:`~ranch_celery.errors.StorageNotConfigured` (a
   ``ValueError``) naming the three ways to configure one.

Because nothing is read before first use, an app defined without a broker
and configured later (command line, environment, config module) works.
Calls are encoded with the ``serializer`` setting: kombu's JSON by default
(:mod:`ranch_celery.codec`).
"""

from __future__ import annotations

from typing import Any, Optional, cast

from ranch_core import InMemoryStorage, Storage
from ranch_core.backlogs import redis_storage_class

from ranch_celery.codec import serializer_named
from ranch_celery.config import Settings
from ranch_celery.errors import StorageNotConfigured

#: URL schemes served by ranch-redis.
REDIS_SCHEMES = ("redis", "rediss", "unix")
#: What ``pip install`` adds ranch-redis.
REDIS_EXTRA = "ranch-celery[redis]"


def scheme_of(url: str) -> str:
    """The lowercase scheme of ``url`` (``""`` if it has none)."""
    head, sep, _ = url.partition("://")
    return head.lower() if sep else ""


def storage_from_url(url: str, backlog: str, settings: Settings) -> Storage:
    """A storage for ``backlog`` at ``url``; ``ValueError`` for an unknown scheme."""
    scheme = scheme_of(url)
    serializer = serializer_named(settings.serializer)
    if scheme == "memory":
        return InMemoryStorage(serializer=serializer)
    if scheme in REDIS_SCHEMES:
        storage_class = redis_storage_class(REDIS_EXTRA)
        if settings.redis_use_ssl and scheme == "redis":
            url = "rediss" + url[len("redis") :]
        storage: Storage = storage_class.from_url(
            url,
            namespace=settings.namespace(backlog),
            serializer=serializer,
            retries=settings.redis_max_retries,
            **settings.redis_options,
        )
        return storage
    raise ValueError(
        f"unsupported ranch storage URL scheme {scheme!r}: use redis://, rediss://, unix:// or memory://"
    )


def broker_url(app: Any) -> Optional[str]:
    """The app's (write) broker URL as Celery resolves it (first of a failover list)."""
    url = app.conf.broker_write_url
    if isinstance(url, (list, tuple)):
        url = url[0] if url else None
    if not url:
        return None
    return str(url).split(";", 1)[0].strip()


def is_storage(value: Any) -> bool:
    """Whether ``value`` provides every method of :class:`ranch_core.Storage`."""
    return isinstance(value, Storage)


def check_explicit(storage: Any) -> Optional[Storage]:
    """``storage=`` of ``lru_task``: ``None`` or a :class:`ranch_core.Storage` (``TypeError``)."""
    if storage is not None and not is_storage(storage):
        raise TypeError(
            f"storage must implement ranch_core.Storage (e.g. RedisStorage), not {type(storage).__name__}"
        )
    return cast(Optional[Storage], storage)


def resolve_storage(app: Any, backlog: str, explicit: Optional[Storage], settings: Settings) -> Storage:
    """Apply the rule in the module docstring for one backlog of ``app``."""
    if explicit is not None:
        return explicit
    if settings.storage_url:
        return storage_from_url(settings.storage_url, backlog, settings)
    broker = broker_url(app)
    scheme = scheme_of(broker) if broker else ""
    if broker and scheme in ("redis", "rediss"):
        return storage_from_url(broker, backlog, settings)
    if scheme == "memory":
        return InMemoryStorage(serializer=serializer_named(settings.serializer))
    raise StorageNotConfigured(
        f"ranch: no storage for backlog {backlog!r}: the broker ({scheme or 'default amqp'}) is neither "
        "Redis nor memory://. Configure one of: lru_task(app, storage=RedisStorage.from_url(...)); "
        "app.conf.ranch_storage_url = 'redis://...' (or lru_task(app, config={'storage_url': ...})); "
        "or a Redis broker (Celery(broker='redis://...'), celery worker -b redis://..., CELERY_BROKER_URL)."
    )
