"""Ranch settings of a Celery app: celery-ranch's keys and Ranch's own.

Each setting ``<key>`` is read, first match wins, from

1. ``lru_task(app, config={"<key>": ...})`` (the seed's ``config=``; it
   applies to the whole app, as it did in celery-ranch);
2. ``app.conf.ranch_<key>`` (``CELERY_RANCH_<KEY>`` with a namespace, or a
   ``ranch_<key>`` line in a config module);
3. ``app.conf.ranch["<key>"]`` (the dict celery-ranch kept its settings in).

They are read at first use, from the app's final configuration. An unknown
key warns once (``UserWarning``), and so does a celery-ranch key Ranch
accepts but has no use for (:data:`NO_EFFECT`).
"""

from __future__ import annotations

import enum
import threading
import warnings
from typing import Any, Dict, Mapping, Optional, Set

import attrs
from ranch_core import validation
from ranch_core.backlogs import check_backlog_name


class SerializerType(str, enum.Enum):
    """How calls are stored (celery-ranch's ``SerializerType``).

    ``JSON`` (the default) is kombu's JSON, what Celery's ``json`` serializer
    sends; ``PICKLE`` only when asked for by name (anyone who can write to the
    storage can run code in the workers through it).
    """

    PICKLE = "pickle"
    JSON = "json"


#: Default lease of a running call, seconds.
DEFAULT_LEASE_SECONDS = 300.0
#: Default Redis namespace prefix: a backlog ``b`` lives in namespace ``celery:b``.
DEFAULT_PREFIX = "celery:"
#: Default bound on a backlog's outstanding wake-ups (grown to the fleet's live worker slots).
DEFAULT_MAX_WAKEUPS = 64
#: Default run budget: calls a worker runs back to back under one wake-up (measured, see the README).
DEFAULT_WAKEUP_BUDGET = 8
#: Default wall-time cap of one run budget, seconds: no new call starts under a wake-up after this.
DEFAULT_WAKEUP_BUDGET_SECONDS = 0.05

#: Keys Ranch reads, and what they mean.
KNOWN: Dict[str, str] = {
    "storage_url": "URL of the backlog storage (redis://, rediss://, unix://, memory://)",
    "lease_seconds": "lease of a running call (default 300)",
    "sweep_interval": "seconds between two lease sweeps (default a third of the lease, at most 60)",
    "max_wakeups": "bound on a backlog's outstanding wake-ups (default 64, grown to the live worker slots)",
    "wakeup_budget": "calls a worker runs back to back under one wake-up (default 8)",
    "wakeup_budget_seconds": "wall time after which no new call starts under one wake-up (default 0.05)",
    "redis_prefix": "Redis namespace prefix (celery-ranch); backlog b lives in namespace <prefix>b",
    "serializer": "json (kombu's JSON, default) or pickle",
    "redis_serializer": "celery-ranch's name of serializer",
    "redis_max_retries": "retries of a Redis command on connection errors (default 3)",
    "redis_socket_timeout": "socket timeout of the storage's Redis connection, seconds",
    "redis_socket_connect_timeout": "connect timeout of the storage's Redis connection, seconds",
    "redis_use_ssl": "connect to the storage with TLS (redis:// becomes rediss://)",
    "default_concurrency_limit": "concurrency limit of every key without its own (default none)",
    "default_rate_limit": "rate limit ('10/s') of every key without its own (default none)",
}
#: celery-ranch keys that Ranch accepts and ignores, with the reason.
NO_EFFECT: Dict[str, str] = {
    "redis_key_ttl": "Ranch never expires the Redis keys that hold calls (use expiry= per call)",
    "metrics_enabled": "Ranch keeps its counters always (get_system_status)",
}

_warned: Set[str] = set()
_warned_lock = threading.Lock()


def warn_once(key: str, message: str) -> None:
    """``warnings.warn(message)`` the first time ``key`` is seen in this process."""
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    warnings.warn(message, UserWarning, stacklevel=4)


def _check_key(key: str, where: str) -> bool:
    if key in KNOWN:
        return True
    if key in NO_EFFECT:
        warn_once(key, f"ranch setting {key!r} ({where}) has no effect: {NO_EFFECT[key]}")
        return False
    known = ", ".join(sorted(KNOWN))
    warn_once(key, f"unknown ranch setting {key!r} ({where}) is ignored; known settings: {known}")
    return False


def check_config(config: Any) -> Dict[str, Any]:
    """Check ``lru_task(config=...)``: a mapping of known keys to valid values.

    Unknown keys warn once and are dropped; a bad value raises
    ``TypeError``/``ValueError`` naming the key.
    """
    if config is None:
        return {}
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a mapping of setting names to values, not {type(config).__name__}")
    checked: Dict[str, Any] = {}
    for key, value in config.items():
        if not isinstance(key, str):
            raise TypeError(f"config keys must be str, not {type(key).__name__}")
        if _check_key(key, "config="):
            checked[key] = check_value(key, value)
    return checked


def check_value(key: str, value: Any) -> Any:
    """The checked value of setting ``key`` (``TypeError``/``ValueError`` naming it)."""
    name = f"ranch setting {key}"
    if key == "storage_url":
        if not isinstance(value, str) or not value:
            raise TypeError(f"{name} must be a URL string, not {value!r}")
        return value
    if key in ("lease_seconds", "sweep_interval", "wakeup_budget_seconds"):
        return validation.check_lease(value)
    if key in ("max_wakeups", "wakeup_budget"):
        return check_positive_int(value, name)
    if key == "redis_prefix":
        return check_backlog_name(value, name)
    if key in ("serializer", "redis_serializer"):
        try:
            return SerializerType(value).value
        except ValueError:
            raise ValueError(f"{name} must be 'json' or 'pickle' (SerializerType), not {value!r}") from None
    if key == "redis_max_retries":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be an int >= 0, not {value!r}")
        return value
    if key in ("redis_socket_timeout", "redis_socket_connect_timeout"):
        return validation.check_lease(value)
    if key == "redis_use_ssl":
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be True or False, not {value!r}")
        return value
    if key == "default_concurrency_limit":
        return validation.check_concurrency_limit(value, name)
    if key == "default_rate_limit":
        validation.check_rate_limit(value, name=name)
        return value
    raise AssertionError(key)  # pragma: no cover - every KNOWN key is handled above


def check_positive_int(value: Any, name: str) -> int:
    """``value`` if it is an ``int`` >= 1 (``TypeError``/``ValueError`` naming ``name``)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= 1, not {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be an int >= 1, not {value!r}")
    return value


@attrs.frozen
class Settings:
    """The Ranch settings of one app, read from its final configuration."""

    storage_url: Optional[str] = None
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    sweep_interval: Optional[float] = None
    redis_prefix: str = DEFAULT_PREFIX
    serializer: str = SerializerType.JSON.value
    redis_max_retries: int = 3
    redis_options: Dict[str, Any] = attrs.field(factory=dict)
    redis_use_ssl: bool = False
    max_wakeups: int = DEFAULT_MAX_WAKEUPS
    wakeup_budget: int = DEFAULT_WAKEUP_BUDGET
    wakeup_budget_seconds: float = DEFAULT_WAKEUP_BUDGET_SECONDS
    default_concurrency_limit: Optional[int] = None
    default_rate_limit: Optional[str] = None

    def namespace(self, backlog: str) -> str:
        """The Redis namespace of ``backlog``: ``<redis_prefix><backlog>``."""
        return f"{self.redis_prefix}{backlog}"


def read_settings(app: Any, given: Mapping[str, Any]) -> Settings:
    """Merge ``given`` (``config=``), ``app.conf.ranch_<key>`` and ``app.conf.ranch``."""
    conf = app.conf
    legacy = conf.get("ranch") or {}
    if not isinstance(legacy, Mapping):
        raise TypeError(
            f"app.conf.ranch must be a mapping (celery-ranch settings), not {type(legacy).__name__}"
        )
    for key in list(conf.keys()):
        if isinstance(key, str) and key.lower().startswith("ranch_"):
            _check_key(key.lower()[len("ranch_") :], f"app.conf.{key}")
    for key in legacy:
        if isinstance(key, str):
            _check_key(key, "app.conf.ranch")
    values: Dict[str, Any] = {}
    for key in KNOWN:
        if key in given:
            values[key] = given[key]
            continue
        value = conf.get(f"ranch_{key}")
        if value is None:
            value = legacy.get(key)
        if value is not None:
            values[key] = check_value(key, value)
    serializer = values.get("serializer", values.get("redis_serializer", SerializerType.JSON.value))
    redis_options: Dict[str, Any] = {}
    if "redis_socket_timeout" in values:
        redis_options["socket_timeout"] = values["redis_socket_timeout"]
    if "redis_socket_connect_timeout" in values:
        redis_options["socket_connect_timeout"] = values["redis_socket_connect_timeout"]
    return Settings(
        storage_url=values.get("storage_url"),
        lease_seconds=values.get("lease_seconds", DEFAULT_LEASE_SECONDS),
        sweep_interval=values.get("sweep_interval"),
        redis_prefix=values.get("redis_prefix", DEFAULT_PREFIX),
        serializer=serializer,
        redis_max_retries=values.get("redis_max_retries", 3),
        redis_options=redis_options,
        redis_use_ssl=values.get("redis_use_ssl", False),
        max_wakeups=values.get("max_wakeups", DEFAULT_MAX_WAKEUPS),
        wakeup_budget=values.get("wakeup_budget", DEFAULT_WAKEUP_BUDGET),
        wakeup_budget_seconds=values.get("wakeup_budget_seconds", DEFAULT_WAKEUP_BUDGET_SECONDS),
        default_concurrency_limit=values.get("default_concurrency_limit"),
        default_rate_limit=values.get("default_rate_limit"),
    )
