"""``AsyncFairScheduler``: :class:`~ranch_core.FairScheduler` for asyncio.

The same fair choice, leases, expiry, reports and weight function (the
checks and reports are :class:`~ranch_core.scheduler.SchedulerBase`'s,
shared with :class:`~ranch_core.FairScheduler`), with every method a
coroutine over an :class:`~ranch_core.async_protocols.AsyncStorage`.
:meth:`AsyncFairScheduler.pop` with a timeout awaits the storage
(:meth:`~ranch_core.protocols.Backlog.wait`): N consumer coroutines waiting
for work cost no CPU and no thread each.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable, Iterable, List, Mapping, Optional, Sequence

from ranch_core import validation
from ranch_core.async_protocols import AsyncControls, AsyncRuntimeCosts, AsyncStorage
from ranch_core.backends import controls
from ranch_core.backends.async_memory import AsyncInMemoryStorage
from ranch_core.errors import CorruptTask
from ranch_core.keys import Key, group_of
from ranch_core.models import LRUKeyMetadata, ScheduledTask, SystemStatus
from ranch_core.protocols import EXPIRE_ON_READ, EXPIRED_BATCH, MAX_BATCH, PURGE_BATCH, REPAIR_BATCH
from ranch_core.scheduler import RevokedCallback, SchedulerBase, TaskCallback, WeightFunction


class AsyncFairScheduler(SchedulerBase):
    """:class:`~ranch_core.FairScheduler` with coroutines; arguments as there.

    ``storage=None`` is a new :class:`~ranch_core.backends.async_memory.AsyncInMemoryStorage`;
    ``ranch_redis.AsyncRedisStorage`` shares a backlog between processes.
    The wake-up token steps of the Celery and Dramatiq adapters
    (``store``/``take``/``finish`` with tokens) are not here: they are
    blocking adapter internals. The per-key controls are here
    (:meth:`set_concurrency_limit` ... :meth:`revoke_call`); defaults for
    keys without a setting are set through a :class:`~ranch_core.FairScheduler`
    on the same storage (``AsyncInMemoryStorage.sync``). ``cost="runtime"``
    charges by run time as there (the storage needs
    :class:`~ranch_core.async_protocols.AsyncRuntimeCosts`).
    """

    def __init__(
        self,
        storage: Optional[AsyncStorage] = None,
        *,
        weight_function: Optional[WeightFunction] = None,
        lease_seconds: float = 300.0,
        clock: Callable[[], float] = time.time,
        on_expired: Optional[TaskCallback] = None,
        on_reclaimed: Optional[TaskCallback] = None,
        on_revoked: Optional[RevokedCallback] = None,
        cost: Any = "calls",
    ) -> None:
        super().__init__(
            weight_function=weight_function,
            lease_seconds=lease_seconds,
            clock=clock,
            on_expired=on_expired,
            on_reclaimed=on_reclaimed,
            on_revoked=on_revoked,
            cost=cost,
        )
        self.storage: AsyncStorage = AsyncInMemoryStorage() if storage is None else storage
        if self.runtime is not None:
            self._costs()

    def _costs(self) -> AsyncRuntimeCosts:
        if not isinstance(self.storage, AsyncRuntimeCosts):
            raise TypeError(
                f"{type(self.storage).__name__} cannot charge by run time "
                "(ranch_core.async_protocols.AsyncRuntimeCosts)"
            )
        return self.storage

    # -- producing ---------------------------------------------------------

    async def push(
        self,
        key: Key,
        payload: Any,
        *,
        weight: Optional[float] = None,
        expiry: Optional[float] = None,
        task_id: Optional[str] = None,
        tags: Optional[Mapping[str, str]] = None,
        delay: Optional[float] = None,
    ) -> str:
        """As :meth:`ranch_core.FairScheduler.push`."""
        task_ids = None if task_id is None else [task_id]
        ids = await self.push_many(
            key, [payload], weight=weight, expiry=expiry, tags=tags, task_ids=task_ids, delay=delay
        )
        return ids[0]

    async def push_many(
        self,
        key: Key,
        payloads: Iterable[Any],
        *,
        weight: Optional[float] = None,
        expiry: Optional[float] = None,
        tags: Optional[Mapping[str, str]] = None,
        task_ids: Optional[Sequence[str]] = None,
        delay: Optional[float] = None,
    ) -> List[str]:
        """As :meth:`ranch_core.FairScheduler.push_many` (one storage step per
        :data:`~ranch_core.protocols.MAX_BATCH` payloads)."""
        tasks, weight, checked_tags = self._tasks(key, payloads, weight, expiry, tags, task_ids, delay)
        for start in range(0, len(tasks), MAX_BATCH):
            await self.storage.push_many(tasks[start : start + MAX_BATCH], weight=weight, tags=checked_tags)
        return [task.task_id for task in tasks]

    async def remove(self, key: Key, task_id: str) -> bool:
        """As :meth:`ranch_core.FairScheduler.remove`."""
        return await self.storage.remove(
            validation.check_any_key(key), validation.check_name(task_id, "task_id")
        )

    # -- consuming ---------------------------------------------------------

    async def pop(self, timeout: Optional[float] = 0) -> Optional[ScheduledTask]:
        """The fair choice, leased; ``None`` if nothing is waiting.

        ``timeout`` as :meth:`ranch_core.FairScheduler.pop`: ``0`` answers at
        once, ``None`` waits as long as it takes; while waiting, the
        coroutine awaits the storage (a future in memory, ``BLPOP`` on
        Redis), never a sleep loop. Cancelling it is safe: a wake-up it
        received is passed on.
        """
        timeout = validation.check_timeout(timeout)
        task = await self._take()
        if task is not None or timeout == 0:
            return task
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return None
            await self.storage.wait(self.clock(), remaining)
            task = await self._take()
            if task is not None:
                return task

    async def _take(self) -> Optional[ScheduledTask]:
        now = self.clock()
        while True:
            if self.runtime is None:
                result = await self.storage.pop(now, self.lease_seconds)
            else:
                result = await self._costs().pop(now, self.lease_seconds, runtime=self.runtime)
            self._report(result.expired, result.reclaimed)
            if result.task is not None or not result.expired:
                break
        task = result.task
        if task is not None and self.weight_function is not None:
            group = group_of(task.key)
            extra = self._correction(group, await self.storage.metadata(group))
            if extra is not None:
                await self.storage.charge(group, extra)
        return task

    async def ack(self, task_id: str, *, cost: Optional[float] = None) -> bool:
        """As :meth:`ranch_core.FairScheduler.ack` (``cost``: the run time, ``cost="runtime"`` only)."""
        checked = self._checked_cost(cost)
        if self.runtime is not None:
            return (await self._costs().finish(task_id, self.clock(), cost=checked)).done
        return await self.storage.ack(task_id)

    async def run_estimate(self, key: Key) -> Optional[float]:
        """As :meth:`ranch_core.FairScheduler.run_estimate`."""
        return await self._costs().run_estimate(validation.check_any_key(key))

    async def release(self, task_id: str) -> bool:
        """As :meth:`ranch_core.FairScheduler.release`."""
        return await self.storage.release(task_id)

    async def requeue(self, task: ScheduledTask, payload: Any) -> bool:
        """As :meth:`ranch_core.FairScheduler.requeue`."""
        if self.runtime is not None:
            retried = self.retried(task, payload)
            return (await self._costs().finish(task.task_id, self.clock(), requeue=retried)).done
        return await self.storage.requeue(self.retried(task, payload))

    async def extend(self, task_id: str) -> bool:
        """As :meth:`ranch_core.FairScheduler.extend`."""
        return await self.storage.extend(task_id, self.clock() + self.lease_seconds)

    async def reclaim(self) -> List[ScheduledTask]:
        """As :meth:`ranch_core.FairScheduler.reclaim`."""
        reclaimed = await self.storage.reclaim(self.clock())
        self._report((), reclaimed)
        return reclaimed

    async def expire(self, limit: int = EXPIRED_BATCH) -> List[ScheduledTask]:
        """As :meth:`ranch_core.FairScheduler.expire`."""
        return await self._expire(self.clock(), validation.check_limit(limit))

    async def _expire(self, now: float, limit: int) -> List[ScheduledTask]:
        expired = await self.storage.expire(now, limit)
        self._report(expired, ())
        return expired

    async def repair(self, limit: int = REPAIR_BATCH) -> List[CorruptTask]:
        """As :meth:`ranch_core.FairScheduler.repair`: ``[]`` for a storage
        without a ``repair`` coroutine (the in-memory one)."""
        validation.check_limit(limit)
        repair = getattr(self.storage, "repair", None)
        if repair is None:
            return []
        found: List[CorruptTask] = await repair(limit)
        return found

    # -- per-key controls --------------------------------------------------

    def _controls(self) -> AsyncControls:
        if not isinstance(self.storage, AsyncControls):
            raise TypeError(
                f"{type(self.storage).__name__} has no per-key controls "
                "(ranch_core.async_protocols.AsyncControls)"
            )
        return self.storage

    async def _control(self, key: Key, name: str, value: Any) -> None:
        await self._controls().set_control(key, name, value, self.clock())

    async def set_concurrency_limit(self, key: Key, limit: Optional[int]) -> None:
        """As :meth:`ranch_core.FairScheduler.set_concurrency_limit`."""
        checked = validation.check_concurrency_limit(limit)
        await self._control(validation.check_any_key(key), controls.CONCURRENCY_LIMIT, checked)

    async def set_rate_limit(self, key: Key, rate: Optional[str], *, burst: int = 1) -> None:
        """As :meth:`ranch_core.FairScheduler.set_rate_limit`."""
        checked = validation.check_rate_limit(rate, burst)
        await self._control(validation.check_any_key(key), controls.RATE_LIMIT, checked)

    async def pause_key(self, key: Key) -> None:
        """As :meth:`ranch_core.FairScheduler.pause_key`."""
        await self._control(validation.check_any_key(key), controls.PAUSE, True)

    async def resume_key(self, key: Key) -> None:
        """As :meth:`ranch_core.FairScheduler.resume_key`."""
        await self._control(validation.check_any_key(key), controls.PAUSE, False)

    async def set_max_backlog(self, key: Key, limit: Optional[int]) -> None:
        """As :meth:`ranch_core.FairScheduler.set_max_backlog`."""
        checked = validation.check_max_backlog(limit)
        await self._control(validation.check_any_key(key), controls.MAX_BACKLOG, checked)

    async def purge_key(self, key: Key) -> int:
        """As :meth:`ranch_core.FairScheduler.purge_key`."""
        storage = self._controls()
        key = validation.check_any_key(key)
        total = 0
        while True:
            purged = await storage.purge_key(key, PURGE_BATCH)
            total += len(purged)
            self._revoked(purged, "purged")
            if len(purged) < PURGE_BATCH:
                return total

    async def revoke_call(self, task_id: str) -> bool:
        """As :meth:`ranch_core.FairScheduler.revoke_call`."""
        task = await self._controls().revoke(validation.check_name(task_id, "task_id"))
        if task is None:
            return False
        self._revoked([task], "revoked")
        return True

    # -- tracking ----------------------------------------------------------

    async def set_weight(self, key: Key, weight: float) -> None:
        """As :meth:`ranch_core.FairScheduler.set_weight`."""
        await self.storage.set_weight(validation.check_any_key(key), validation.check_weight(weight))

    async def set_custom_data(self, key: Key, name: str, value: Any) -> None:
        """As :meth:`ranch_core.FairScheduler.set_custom_data`."""
        await self.storage.set_custom_data(
            validation.check_any_key(key), validation.check_name(name, "name"), value
        )

    async def add_tag(self, key: Key, name: str, value: str) -> None:
        """As :meth:`ranch_core.FairScheduler.add_tag`."""
        await self.storage.add_tag(
            validation.check_any_key(key),
            validation.check_name(name, "tag name"),
            validation.check_tag_value(value),
        )

    async def keys_with_tag(self, name: str, value: Optional[str] = None) -> List[Key]:
        """As :meth:`ranch_core.FairScheduler.keys_with_tag`."""
        validation.check_name(name, "tag name")
        if value is not None:
            validation.check_tag_value(value)
        return await self.storage.keys_with_tag(name, value)

    async def metadata(self, key: Key) -> LRUKeyMetadata:
        """As :meth:`ranch_core.FairScheduler.metadata`."""
        key = validation.check_any_key(key)
        now = self.clock()
        await self._expire(now, EXPIRE_ON_READ)
        return await self.storage.metadata(key, now=now)

    async def status(self) -> SystemStatus:
        """As :meth:`ranch_core.FairScheduler.status`."""
        now = self.clock()
        await self._expire(now, EXPIRE_ON_READ)
        return await self.storage.status(now=now)

    async def size(self) -> int:
        """``len()`` of :class:`~ranch_core.FairScheduler`: tasks waiting, expired ones left out."""
        now = self.clock()
        await self._expire(now, EXPIRE_ON_READ)
        return await self.storage.waiting(now=now)
