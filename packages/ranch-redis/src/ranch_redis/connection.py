"""Building redis-py clients from URLs, and retrying calls that lose the connection."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Awaitable, Callable, Dict, Optional, TypeVar
from urllib.parse import urlsplit

import redis
from ranch_core.errors import StorageUnavailable
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, ClusterDownError
from redis.retry import Retry

logger = logging.getLogger("ranch_redis")

T = TypeVar("T")

#: Errors after which a call is tried again (the server may come back).
RETRYABLE = (redis.ConnectionError, redis.TimeoutError, ClusterDownError)

#: What a caller should know, per operation, when a write fails for good after
#: the script may have reached the server (see :meth:`Retrier.__call__`).
MAY_HAVE_RUN = "if the connection dropped after the script was sent, Redis may have run it"
AMBIGUOUS: Dict[str, str] = {
    "push": MAY_HAVE_RUN + ": push again with the same task_id "
    "(ValueError 'already waiting or leased' means it was stored)",
    "pop": MAY_HAVE_RUN + ": a task leased then comes back when its lease runs out",
    "push_many": MAY_HAVE_RUN + ": push again with the same task_ids "
    "(ValueError 'already waiting or leased' means they were stored)",
    "push_delayed": MAY_HAVE_RUN + ": push again with the same task_ids "
    "(ValueError 'already waiting or leased' means they were stored)",
    "finish": MAY_HAVE_RUN + ": a wake-up token it passed on is replaced by the next sweep",
    "sweep_wakeups": MAY_HAVE_RUN + ": tokens it minted are replaced by the next sweep",
    "ack": MAY_HAVE_RUN,
    "release": MAY_HAVE_RUN,
    "remove": MAY_HAVE_RUN,
    "requeue": MAY_HAVE_RUN + ": the retried call then waits in its key and runs again",
    "expire": MAY_HAVE_RUN + ": tasks it dropped are counted in expired_total but not reported",
    "charge": MAY_HAVE_RUN + " (do not charge again)",
    "set_control": MAY_HAVE_RUN + ": setting it again is harmless; its tokens are replaced by the sweep",
    "purge_key": MAY_HAVE_RUN + ": calls it deleted are gone but not reported",
    "revoke": MAY_HAVE_RUN + ": a call it deleted is gone but not reported",
}

#: Defaults applied by :func:`make_client` unless the caller sets them.
DEFAULT_OPTIONS: Dict[str, Any] = {
    "socket_connect_timeout": 5.0,
    "socket_timeout": 30.0,
    "health_check_interval": 30,
}


def describe_url(url: str) -> str:
    """``scheme://host:port/db`` of ``url``: what an error message may show (no password)."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    try:
        port = parts.port
    except ValueError:
        port = None
    where = f"{parts.scheme}://{host}"
    if port is not None:
        where += f":{port}"
    return where + (parts.path if parts.path not in ("", "/") else "")


def describe_client(client: Any) -> str:
    """Host and port a client talks to, without credentials."""
    nodes = getattr(client, "startup_nodes", None)
    if isinstance(nodes, dict) and nodes:
        return "cluster " + ",".join(sorted(str(name) for name in nodes))
    pool = getattr(client, "connection_pool", None)
    kwargs: Dict[str, Any] = getattr(pool, "connection_kwargs", {}) or {}
    if "path" in kwargs:
        return f"unix://{kwargs['path']}"
    return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"


def _options(options: Dict[str, Any], retry: Any) -> Dict[str, Any]:
    if options.get("decode_responses"):
        raise ValueError("decode_responses=True is not supported: payloads are bytes")
    merged = {**DEFAULT_OPTIONS, **options, "decode_responses": False}
    merged.setdefault("retry", retry)
    return merged


def make_client(url: str, *, cluster: bool, options: Dict[str, Any]) -> Any:
    """A redis-py client for ``url``: ``Redis`` or, with ``cluster=True``, ``RedisCluster``.

    redis-py's own retries are turned off (``Retry(NoBackoff(), 0)``) unless
    ``retry`` is given, so that :class:`Retrier` alone sets the retry budget.
    Responses stay bytes: payloads may be binary (pickle).
    """
    merged = _options(options, Retry(NoBackoff(), 0))
    if cluster:
        from redis.cluster import RedisCluster

        merged.pop("health_check_interval", None)
        return RedisCluster.from_url(url, **merged)
    return redis.Redis.from_url(url, **merged)


def make_async_client(url: str, *, cluster: bool, options: Dict[str, Any]) -> Any:
    """:func:`make_client` with redis-py's asyncio clients (``redis.asyncio``)."""
    import redis.asyncio
    from redis.asyncio.retry import Retry as AsyncRetry

    merged = _options(options, AsyncRetry(NoBackoff(), 0))
    if cluster:
        merged.pop("health_check_interval", None)
        return redis.asyncio.RedisCluster.from_url(url, **merged)
    return redis.asyncio.Redis.from_url(url, **merged)


def block_limit(client: Any) -> Optional[float]:
    """The longest blocking command (seconds) that fits the client's socket
    timeout, with a second (or half of it) to spare; ``None`` for no timeout."""
    kwargs: Dict[str, Any] = {}
    pool = getattr(client, "connection_pool", None)
    if pool is not None:
        kwargs = getattr(pool, "connection_kwargs", {}) or {}
    else:
        manager = getattr(client, "nodes_manager", None)
        kwargs = getattr(manager, "connection_kwargs", {}) or {}
    timeout = kwargs.get("socket_timeout")
    if timeout is None:
        return None
    return float(max(timeout - 1.0, timeout / 2))


class Retrier:
    """Runs a call, retrying connection errors with exponential backoff.

    ``retries`` extra attempts after the first, sleeping ``backoff``,
    ``2 * backoff``, ... (each at most ``max_backoff``) in between. When the
    last attempt fails, :class:`~ranch_core.errors.StorageUnavailable` is
    raised naming ``where``. The call receives ``True`` on a retry so it can
    recognise its own earlier write.
    """

    def __init__(
        self, where: str, *, retries: int = 3, backoff: float = 0.1, max_backoff: float = 2.0
    ) -> None:
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be an int >= 0, got {retries!r}")
        for name, value in (("backoff", backoff), ("max_backoff", max_backoff)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        self.where = where
        self.retries = retries
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)

    def budget(self) -> float:
        """Total seconds slept between attempts when every attempt fails."""
        return sum(self.delay(attempt) for attempt in range(self.retries))

    def delay(self, attempt: int) -> float:
        """Seconds to sleep after failed attempt number ``attempt`` (0-based)."""
        return float(min(self.backoff * (2**attempt), self.max_backoff))

    def __call__(self, call: Callable[[bool], T], *, operation: str = "call", note: str = "") -> T:
        """Run ``call(retry)``; ``operation`` and ``note`` go into the final error message.

        ``note`` (what a caller should know if the command may have run) is
        given only when some attempt failed after the command could have
        reached the server; when every attempt failed to connect, the
        message says that nothing was sent.
        """
        failures = _Failures()
        for attempt in range(self.retries + 1):
            try:
                return call(attempt > 0)
            except AuthenticationError as exc:
                raise self._refused(exc) from exc
            except RETRYABLE as exc:
                pause = self._failed(failures, exc, attempt)
                if pause is not None:
                    time.sleep(pause)
        raise self._give_up(failures, operation, note) from failures.last

    async def run_async(
        self, call: Callable[[bool], Awaitable[T]], *, operation: str = "call", note: str = ""
    ) -> T:
        """:meth:`__call__` for a coroutine function: the same attempts, pauses and errors."""
        failures = _Failures()
        for attempt in range(self.retries + 1):
            try:
                return await call(attempt > 0)
            except AuthenticationError as exc:
                raise self._refused(exc) from exc
            except RETRYABLE as exc:
                pause = self._failed(failures, exc, attempt)
                if pause is not None:
                    await asyncio.sleep(pause)
        raise self._give_up(failures, operation, note) from failures.last

    def _refused(self, exc: BaseException) -> StorageUnavailable:
        return StorageUnavailable(f"Redis at {self.where} refused the credentials: {exc}")

    def _failed(self, failures: _Failures, exc: BaseException, attempt: int) -> Optional[float]:
        """Record a failed attempt; the pause before the next one (``None``: none left)."""
        failures.last = exc
        failures.sent = failures.sent or not_connected(exc) is None
        if attempt >= self.retries:
            return None
        pause = self.delay(attempt)
        logger.warning(
            "ranch: Redis at %s failed (%s); retry %d/%d in %.2fs",
            self.where,
            exc,
            attempt + 1,
            self.retries,
            pause,
        )
        return pause

    def _give_up(self, failures: _Failures, operation: str, note: str) -> StorageUnavailable:
        last = failures.last
        attempts = f"{self.retries + 1} attempt{'s' if self.retries else ''}"
        if not failures.sent:
            return StorageUnavailable(
                f"the Redis server at {self.where} is not reachable ({not_connected(last)}); "
                f"nothing was stored or changed ({operation}, {attempts}): {last}"
            )
        return StorageUnavailable(
            f"Redis at {self.where} unavailable after {attempts} ({operation}): {last}"
            + (f"; {note}" if note else "")
        )


class _Failures:
    """What the attempts of one call saw: the last error, and whether any
    attempt may have reached the server."""

    def __init__(self) -> None:
        self.last: BaseException = RuntimeError("no attempt")
        self.sent = False


def not_connected(exc: BaseException) -> Optional[str]:
    """Why ``exc`` happened before any command was sent (the connection could not
    be opened), e.g. ``"connection refused"``; ``None`` if a command may have
    been sent (the connection dropped or timed out while writing or reading).

    redis-py raises the connect failure while handling the ``OSError`` (or
    ``socket.timeout``) of ``connect()``, with a message "... connecting to ...".
    """
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, ConnectionRefusedError):
        return "connection refused"
    text = str(exc)
    if "Timeout connecting" in text:
        return "connect timed out"
    if "connecting to" in text:
        return "the connection could not be opened"
    return None
