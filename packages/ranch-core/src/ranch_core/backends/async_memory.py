"""``AsyncInMemoryStorage``: the in-memory storage for an event loop.

Every step is the :class:`~ranch_core.backends.memory.InMemoryStorage` step
it wraps (each holds the storage's lock for microseconds, so it runs on the
loop directly); :meth:`AsyncInMemoryStorage.wait` waits on an asyncio
future that the storage resolves, through ``loop.call_soon_threadsafe``,
when a step in any thread makes a call runnable. No thread is blocked per
waiter.
"""

from __future__ import annotations

import asyncio
from typing import Any, List, Mapping, Optional, Sequence

from ranch_core.backends.memory import InMemoryStorage
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
from ranch_core.serializers import SerializerSpec


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class AsyncInMemoryStorage:
    """An :class:`~ranch_core.async_protocols.AsyncStorage` over an
    :class:`~ranch_core.backends.memory.InMemoryStorage` (``storage``, or a
    new one with ``serializer``), which stays usable from threads: a
    thread that pushes through :attr:`sync` wakes the coroutines waiting
    here, and the other way round."""

    def __init__(
        self, storage: Optional[InMemoryStorage] = None, *, serializer: Optional[SerializerSpec] = "json"
    ) -> None:
        self.sync = InMemoryStorage(serializer=serializer) if storage is None else storage

    def __repr__(self) -> str:
        return f"AsyncInMemoryStorage({self.sync!r})"

    async def wait(self, now: float, timeout: Optional[float]) -> bool:
        """As :meth:`ranch_core.protocols.Backlog.wait`, awaiting a future:
        ``True`` when a call may be runnable (a step made one wait, or the
        earliest lease deadline passed), ``False`` when ``timeout`` ran out.
        A waiter cancelled after it was woken passes the wake-up on."""
        loop = asyncio.get_running_loop()
        woken: asyncio.Future[None] = loop.create_future()

        def wake() -> None:  # any thread, the storage's lock held: only schedule
            loop.call_soon_threadsafe(_resolve, woken)

        ready, until = self.sync.subscribe(now, wake)
        if ready:
            return True
        limit, capped = timeout, False
        if until is not None and (limit is None or until < limit):
            limit, capped = until, True
        try:
            if limit is None or limit > 0:
                await asyncio.wait({woken}, timeout=limit)
        except asyncio.CancelledError:
            if not self.sync.unsubscribe(wake):
                self.sync.signal()
            raise
        return not self.sync.unsubscribe(wake) or capped

    # -- Backlog -----------------------------------------------------------

    async def push(
        self,
        task: ScheduledTask,
        *,
        weight: Optional[float] = None,
        tags: Optional[Mapping[str, str]] = None,
        wakeups: Optional[WakeupPolicy] = None,
    ) -> List[str]:
        """As :meth:`ranch_core.protocols.Backlog.push`."""
        return self.sync.push(task, weight=weight, tags=tags, wakeups=wakeups)

    async def push_many(
        self,
        tasks: Sequence[ScheduledTask],
        *,
        weight: Optional[float] = None,
        tags: Optional[Mapping[str, str]] = None,
        wakeups: Optional[WakeupPolicy] = None,
    ) -> List[str]:
        """As :meth:`ranch_core.protocols.Backlog.push_many`."""
        return self.sync.push_many(tasks, weight=weight, tags=tags, wakeups=wakeups)

    async def pop(
        self,
        now: float,
        lease_seconds: float,
        *,
        token: Optional[str] = None,
        wakeups: Optional[WakeupPolicy] = None,
        runtime: Optional[RuntimeCost] = None,
    ) -> PopResult:
        """As :meth:`ranch_core.protocols.RuntimeCosts.pop`."""
        return self.sync.pop(now, lease_seconds, token=token, wakeups=wakeups, runtime=runtime)

    async def ack(self, task_id: str) -> bool:
        """As :meth:`ranch_core.protocols.Backlog.ack`."""
        return self.sync.ack(task_id)

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
        """As :meth:`ranch_core.protocols.RuntimeCosts.finish`."""
        return self.sync.finish(
            task_id,
            now,
            requeue=requeue,
            token=token,
            wakeups=wakeups,
            keep_token=keep_token,
            failed=failed,
            cost=cost,
        )

    async def run_estimate(self, key: Key) -> Optional[float]:
        """As :meth:`ranch_core.protocols.RuntimeCosts.run_estimate`."""
        return self.sync.run_estimate(key)

    async def release_token(self, token: str, now: float, wakeups: WakeupPolicy) -> List[str]:
        """As :meth:`ranch_core.protocols.Backlog.release_token`."""
        return self.sync.release_token(token, now, wakeups)

    async def sweep_wakeups(self, now: float, wakeups: WakeupPolicy) -> List[str]:
        """As :meth:`ranch_core.protocols.Backlog.sweep_wakeups`."""
        return self.sync.sweep_wakeups(now, wakeups)

    async def wakeup_status(self) -> WakeupStatus:
        """As :meth:`ranch_core.protocols.Backlog.wakeup_status`."""
        return self.sync.wakeup_status()

    async def register_slots(self, worker: str, slots: int, now: float, ttl: float) -> int:
        """As :meth:`ranch_core.protocols.Backlog.register_slots`."""
        return self.sync.register_slots(worker, slots, now, ttl)

    async def live_slots(self, now: float) -> int:
        """As :meth:`ranch_core.protocols.Backlog.live_slots`."""
        return self.sync.live_slots(now)

    async def release(self, task_id: str) -> bool:
        """As :meth:`ranch_core.protocols.Backlog.release`."""
        return self.sync.release(task_id)

    async def requeue(self, task: ScheduledTask) -> bool:
        """As :meth:`ranch_core.protocols.Backlog.requeue`."""
        return self.sync.requeue(task)

    async def extend(self, task_id: str, deadline: float) -> bool:
        """As :meth:`ranch_core.protocols.Backlog.extend`."""
        return self.sync.extend(task_id, deadline)

    async def reclaim(self, now: float) -> List[ScheduledTask]:
        """As :meth:`ranch_core.protocols.Backlog.reclaim`."""
        return self.sync.reclaim(now)

    async def remove(self, key: Key, task_id: str) -> bool:
        """As :meth:`ranch_core.protocols.Backlog.remove`."""
        return self.sync.remove(key, task_id)

    async def charge(self, key: Key, extra: float) -> None:
        """As :meth:`ranch_core.protocols.Backlog.charge`."""
        self.sync.charge(key, extra)

    async def expire(self, now: float, limit: int) -> List[ScheduledTask]:
        """As :meth:`ranch_core.protocols.Backlog.expire`."""
        return self.sync.expire(now, limit)

    async def waiting(self, now: Optional[float] = None) -> int:
        """As :meth:`ranch_core.protocols.Backlog.waiting`."""
        return self.sync.waiting(now)

    # -- Controls ----------------------------------------------------------

    async def set_control(
        self,
        key: Optional[Key],
        name: str,
        value: Any,
        now: float,
        *,
        wakeups: Optional[WakeupPolicy] = None,
    ) -> List[str]:
        """As :meth:`ranch_core.protocols.Controls.set_control`."""
        return self.sync.set_control(key, name, value, now, wakeups=wakeups)

    async def purge_key(self, key: Key, limit: int) -> List[ScheduledTask]:
        """As :meth:`ranch_core.protocols.Controls.purge_key`."""
        return self.sync.purge_key(key, limit)

    async def revoke(self, task_id: str) -> Optional[ScheduledTask]:
        """As :meth:`ranch_core.protocols.Controls.revoke`."""
        return self.sync.revoke(task_id)

    # -- Tracker -----------------------------------------------------------

    async def set_weight(self, key: Key, weight: float) -> None:
        """As :meth:`ranch_core.protocols.Tracker.set_weight`."""
        self.sync.set_weight(key, weight)

    async def set_custom_data(self, key: Key, name: str, value: Any) -> None:
        """As :meth:`ranch_core.protocols.Tracker.set_custom_data`."""
        self.sync.set_custom_data(key, name, value)

    async def add_tag(self, key: Key, name: str, value: str) -> None:
        """As :meth:`ranch_core.protocols.Tracker.add_tag`."""
        self.sync.add_tag(key, name, value)

    async def keys_with_tag(self, name: str, value: Optional[str] = None) -> List[Key]:
        """As :meth:`ranch_core.protocols.Tracker.keys_with_tag`."""
        return self.sync.keys_with_tag(name, value)

    async def metadata(self, key: Key, now: Optional[float] = None) -> LRUKeyMetadata:
        """As :meth:`ranch_core.protocols.Tracker.metadata`."""
        return self.sync.metadata(key, now)

    async def status(self, now: Optional[float] = None) -> SystemStatus:
        """As :meth:`ranch_core.protocols.Tracker.status`."""
        return self.sync.status(now)
