"""``AsyncRedisStorage``: :class:`~ranch_redis.RedisStorage` on redis-py's asyncio client.

The same Lua scripts, the same arguments and the same reading of their
replies (the steps of :mod:`ranch_redis.operations`), driven with
``await``: every method of :class:`ranch_core.protocols.Storage` is a
coroutine here, for :class:`ranch_core.AsyncFairScheduler`.
"""

from __future__ import annotations

from typing import Any, List, Mapping, Optional, Sequence, TypeVar

from ranch_core import validation
from ranch_core.errors import CorruptTask, StorageUnavailable
from ranch_core.keys import Key
from ranch_core.models import (
    Finished,
    LRUKeyMetadata,
    PopResult,
    RuntimeCost,
    ScheduledTask,
    SystemStatus,
    WakeupPolicy,
    WakeupStatus,
)
from ranch_core.serializers import SerializerSpec, get_serializer
from redis.exceptions import ResponseError

from ranch_redis import layout
from ranch_redis.connection import RETRYABLE, describe_url, make_async_client
from ranch_redis.metrics import BacklogMetrics
from ranch_redis.operations import RedisOperations
from ranch_redis.reports import CorruptCallback
from ranch_redis.steps import Step, Steps
from ranch_redis.views import CallPlace, KeysPage

T = TypeVar("T")


class AsyncRedisStorage(RedisOperations):
    """A :class:`ranch_core.AsyncStorage` kept in Redis: :class:`~ranch_redis.RedisStorage`
    with coroutines, on a ``redis.asyncio.Redis`` (or ``RedisCluster``)
    ``client`` created with ``decode_responses=False``. The arguments, the
    data layout and every guarantee are those of :class:`~ranch_redis.RedisStorage`;
    both kinds of storage can share one namespace. Use it from the event
    loop its client belongs to.
    """

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        namespace: str = "ranch",
        serializer: SerializerSpec = "json",
        cluster: bool = False,
        retries: int = 3,
        backoff: float = 0.1,
        max_backoff: float = 2.0,
        on_corrupt: Optional[CorruptCallback] = None,
        **redis_options: Any,
    ) -> AsyncRedisStorage:
        """Connect to ``url`` (``redis://``, ``rediss://``, ``unix://``).

        ``redis_options`` go to redis-py: ``username``/``password`` (ACL),
        ``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile``, ``ssl_cert_reqs``,
        ``socket_timeout``, ... With ``cluster=True`` the URL names one node of
        a Redis Cluster and a ``redis.asyncio.RedisCluster`` client is used.
        """
        if not isinstance(url, str):
            raise TypeError(f"url must be a str, not {type(url).__name__}")
        layout.check_namespace(namespace)
        get_serializer(serializer)
        client = make_async_client(url, cluster=cluster, options=redis_options)
        storage = cls(
            client,
            namespace=namespace,
            serializer=serializer,
            retries=retries,
            backoff=backoff,
            max_backoff=max_backoff,
            on_corrupt=on_corrupt,
            where=("cluster " if cluster else "") + describe_url(url),
        )
        storage._owns_client = True
        return storage

    async def aclose(self) -> None:
        """Close the client if :meth:`from_url` created it."""
        if self._owns_client:
            await self.client.aclose()

    async def __aenter__(self) -> AsyncRedisStorage:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- running steps -----------------------------------------------------

    async def _execute(self, step: Step, retry: bool) -> Any:
        if step.command:
            return await self.client.execute_command(*step.args(retry))
        return await self._scripts[step.name](keys=[self._stats], args=step.args(retry))

    async def _drive(self, steps: Steps[T]) -> T:
        """Run an operation's steps, each with the retry policy; return its result."""
        reply: Any = None
        try:
            while True:
                step = steps.send(reply)

                async def attempt(retry: bool, step: Step = step) -> Any:
                    return await self._execute(step, retry)

                reply = await self._retry.run_async(
                    attempt, operation=step.operation or step.name, note=step.note
                )
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    # -- Backlog -----------------------------------------------------------

    async def push(
        self,
        task: ScheduledTask,
        *,
        weight: Optional[float] = None,
        tags: Optional[Mapping[str, str]] = None,
        wakeups: Optional[WakeupPolicy] = None,
    ) -> List[str]:
        """Append ``task`` to its key, with the key's weight and tags, in one
        step (see :meth:`ranch_core.protocols.Backlog.push`): :meth:`push_many`
        of one task.

        Everything is checked and encoded before anything is sent. If the
        connection drops after the script ran, the retry recognises the
        identical task already stored and succeeds without storing it twice.
        """
        minted = await self._drive(self._push_many([task], weight, tags, wakeups))
        if self._registration_due():
            await self._write_registry()
        return minted

    async def push_many(
        self,
        tasks: Sequence[ScheduledTask],
        *,
        weight: Optional[float] = None,
        tags: Optional[Mapping[str, str]] = None,
        wakeups: Optional[WakeupPolicy] = None,
    ) -> List[str]:
        """Append up to :data:`~ranch_core.protocols.MAX_BATCH` tasks of one
        key in one script (``push_many.lua``), all or none; returns the token
        ids minted (see :meth:`ranch_core.protocols.Backlog.push_many`).

        A retry after a lost reply recognises its own write by the first
        task's identical body.
        """
        minted = await self._drive(self._push_many(tasks, weight, tags, wakeups))
        if self._registration_due():
            await self._write_registry()
        return minted

    async def _write_registry(self) -> None:
        """List the namespace in the registry (see :meth:`RedisStorage._write_registry`)."""
        try:
            await self._drive(self._register())
        except (StorageUnavailable, ResponseError) as exc:
            self._registration_failed(exc)

    async def pop(
        self,
        now: float,
        lease_seconds: float,
        *,
        token: Optional[str] = None,
        wakeups: Optional[WakeupPolicy] = None,
        runtime: Optional[RuntimeCost] = None,
    ) -> PopResult:
        """The fair choice at ``now``, leased, with the wake-up ``token`` if
        given (see :meth:`ranch_core.protocols.Backlog.pop`); with ``runtime``
        the key is charged its run-time estimate (:class:`ranch_core.protocols.RuntimeCosts`)."""
        return await self._drive(self._pop(now, lease_seconds, token, wakeups, runtime))

    async def finish(
        self,
        task_id: str,
        now: float,
        *,
        requeue: Optional[ScheduledTask] = None,
        token: Optional[str] = None,
        wakeups: Optional[WakeupPolicy] = None,
        keep_token: bool = False,
        failed: bool = False,
        cost: Optional[float] = None,
    ) -> Finished:
        """Ack (or requeue) a lease and decide its token's fate in one script
        (``finish.lua``; see :meth:`ranch_core.protocols.Backlog.finish`);
        the call's run time, and ``failed``, go into the metrics; a call
        charged by run time is settled with ``cost`` (:class:`ranch_core.protocols.RuntimeCosts`)."""
        return await self._drive(
            self._finish(task_id, now, requeue, token, wakeups, keep_token, failed, cost)
        )

    async def run_estimate(self, key: Key) -> Optional[float]:
        """The key's moving average of run times (:class:`ranch_core.protocols.RuntimeCosts`)."""
        return await self._drive(self._run_estimate(validation.check_any_key(key)))

    async def ack(self, task_id: str) -> bool:
        """Finish a leased task; ``False`` if it holds no lease (a retried ack whose
        first attempt went through also answers ``False``)."""
        return await self._drive(self._ack(task_id))

    async def release(self, task_id: str) -> bool:
        """Put a leased task back at the head of its key; ``False`` if not leased."""
        return await self._drive(self._release(task_id))

    async def requeue(self, task: ScheduledTask) -> bool:
        """Finish a lease and append ``task`` to the tail of its key in one step
        (see :meth:`ranch_core.protocols.Backlog.requeue`); ``False`` if not leased.
        A retry after a lost reply recognises its own write."""
        return await self._drive(self._requeue(task))

    async def extend(self, task_id: str, deadline: float) -> bool:
        """Move a lease's deadline to ``deadline``; ``False`` if not leased."""
        return await self._drive(self._extend(task_id, deadline))

    async def reclaim(self, now: float) -> List[ScheduledTask]:
        """Put back every lease whose deadline is ``<= now``; return those tasks."""
        return await self._drive(self._reclaim(now))

    async def remove(self, key: Key, task_id: str) -> bool:
        """Delete a waiting task of ``key``; ``False`` if it is not waiting there."""
        return await self._drive(self._remove(validation.check_any_key(key), task_id))

    async def charge(self, key: Key, extra: float) -> None:
        """Add ``extra`` to the key's pass. A retry after a lost reply may charge twice."""
        await self._drive(self._charge(validation.check_any_key(key), extra))

    async def expire(self, now: float, limit: int) -> List[ScheduledTask]:
        """Drop up to ``limit`` waiting tasks whose expiry is ``<= now``; return them
        (see :meth:`ranch_core.protocols.Backlog.expire`)."""
        return await self._drive(self._expire(now, limit))

    async def waiting(self, now: Optional[float] = None) -> int:
        """Tasks waiting (not leased); with ``now``, expired ones left out."""
        return await self._drive(self._waiting(now))

    async def wait(self, now: float, timeout: Optional[float]) -> bool:
        """As :meth:`ranch_redis.RedisStorage.wait`: ``wait.lua``, then a
        ``BLPOP`` on the asyncio client (one pooled connection per waiting
        coroutine, released when it returns)."""
        limit, capped = await self._drive(self._wait_limit(now, timeout))
        if limit is not None and limit <= 0:
            return capped
        try:
            got = await self.client.blpop([self._wake], timeout=0 if limit is None else max(limit, 0.001))
        except RETRYABLE:
            return True
        return got is not None or capped

    async def repair(self, limit: int) -> List[CorruptTask]:
        """Check the counters and up to ``limit`` keys holding tasks; fix what
        is damaged and report each fix (see
        :class:`ranch_core.protocols.Repairable` and ``scripts/repair.lua``).

        Call it from a sweep: successive calls walk every key holding tasks,
        ``limit`` at a time, without scanning the keyspace.
        """
        return await self._drive(self._repair(limit))

    # -- wake-up tokens ----------------------------------------------------

    async def release_token(self, token: str, now: float, wakeups: WakeupPolicy) -> List[str]:
        """Hand back a held token (``release_token.lua``): returned if passed on."""
        return await self._drive(self._release_token(token, now, wakeups))

    async def sweep_wakeups(self, now: float, wakeups: WakeupPolicy) -> List[str]:
        """Retire lost tokens and mint replacements (``sweep_wakeups.lua``)."""
        return await self._drive(self._sweep_wakeups(now, wakeups))

    async def register_slots(self, worker: str, slots: int, now: float, ttl: float) -> int:
        """Record ``worker``'s slots until ``now + ttl``; return the live total
        (``register_slots.lua``)."""
        return await self._drive(self._register_slots(worker, slots, now, ttl))

    async def live_slots(self, now: float) -> int:
        """The live workers' registered slots (``live_slots.lua``)."""
        return await self._drive(self._live_slots(now))

    async def wakeup_status(self) -> WakeupStatus:
        """Tokens in flight, held and deferred."""
        return await self._drive(self._wakeup_status())

    # -- per-key controls --------------------------------------------------

    async def set_control(
        self,
        key: Optional[Key],
        name: str,
        value: Any,
        now: float,
        *,
        wakeups: Optional[WakeupPolicy] = None,
    ) -> List[str]:
        """Set ``key``'s own control ``name`` (or, with ``key=None``, a default)
        and settle the key, in one script (``set_control.lua``); returns the
        tokens minted if calls became runnable (see
        :meth:`ranch_core.protocols.Controls.set_control`)."""
        return await self._drive(
            self._set_control(
                None if key is None else validation.check_any_key(key), name, value, now, wakeups
            )
        )

    async def purge_key(self, key: Key, limit: int) -> List[ScheduledTask]:
        """Delete up to ``limit`` waiting calls of ``key`` from its head in one
        script (``purge_key.lua``); return them. Leased calls run on."""
        return await self._drive(self._purge_key(validation.check_any_key(key), limit))

    async def revoke(self, task_id: str) -> Optional[ScheduledTask]:
        """Delete the waiting call ``task_id`` (``revoke.lua``) and return it;
        ``None`` if no call of that id waits."""
        return await self._drive(self._revoke(task_id))

    # -- Tracker -----------------------------------------------------------

    async def set_weight(self, key: Key, weight: float) -> None:
        """Set the key's weight; its pass is left alone."""
        await self._drive(self._set_weight(validation.check_any_key(key), weight))

    async def set_custom_data(self, key: Key, name: str, value: Any) -> None:
        """Store a JSON-encodable ``value`` under ``name``; ``TypeError`` otherwise."""
        await self._drive(self._set_custom_data(validation.check_any_key(key), name, value))

    async def add_tag(self, key: Key, name: str, value: str) -> None:
        """Tag ``key`` with ``name=value`` (replacing an earlier value)."""
        await self._drive(self._add_tag(validation.check_any_key(key), name, value))

    async def keys_with_tag(self, name: str, value: Optional[str] = None) -> List[Key]:
        """Keys tagged ``name`` (with ``value``, if given), sorted."""
        return await self._drive(self._keys_with_tag(name, value))

    async def metadata(self, key: Key, now: Optional[float] = None) -> LRUKeyMetadata:
        """What is known of ``key``; defaults for a key never seen. With
        ``now``, ``pending_tasks`` leaves out tasks whose expiry is ``<= now``.

        A stored field that cannot be read (a weight that is not a number in
        range, a custom value that is not JSON, text that is not UTF-8) is
        reported through ``on_corrupt`` and read as its default (skipped,
        for tags and custom data), as the scripts do.
        """
        return await self._drive(self._metadata(validation.check_any_key(key), now))

    # -- operators' views (see RedisStorage) ---------------------------------

    async def backlogs(self) -> List[str]:
        """Every namespace in the registry, sorted (:meth:`RedisStorage.backlogs`)."""
        return await self._drive(self._backlogs())

    async def keys_page(self, order: str = "waiting", limit: int = 20, offset: int = 0) -> KeysPage:
        """A page of keys (:meth:`RedisStorage.keys_page`)."""
        return await self._drive(self._keys_page(order, limit, offset))

    async def why(self, task_id: str, now: float) -> CallPlace:
        """Where a call stands (:meth:`RedisStorage.why`)."""
        return await self._drive(self._why(task_id, now))

    async def metrics(self, limit: int = 20, now: Optional[float] = None) -> BacklogMetrics:
        """The backlog's metrics and its top keys' (:meth:`RedisStorage.metrics`)."""
        return await self._drive(self._metrics(limit, now))

    async def status(self, now: Optional[float] = None) -> SystemStatus:
        """Counters of the namespace, read in O(1) (O(log N) with ``now``:
        ``backlog_size`` then leaves out tasks whose expiry is ``<= now``)."""
        return await self._drive(self._status(now))
