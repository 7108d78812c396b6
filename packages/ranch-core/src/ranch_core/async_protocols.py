"""``AsyncStorage``: :class:`~ranch_core.protocols.Storage` with coroutines.

What :class:`~ranch_core.AsyncFairScheduler` needs: every step of
:class:`~ranch_core.protocols.Backlog` and :class:`~ranch_core.protocols.Tracker`,
with the same arguments, results and guarantees, as a coroutine. Shipped:
:class:`~ranch_core.backends.async_memory.AsyncInMemoryStorage` and
``ranch_redis.AsyncRedisStorage``. The conformance suite checks an async
storage through :class:`~ranch_core.testing.BlockingFacade`.
"""

from __future__ import annotations

from typing import Any, List, Mapping, Optional, Protocol, Sequence, runtime_checkable

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
from ranch_core.protocols import Storage

__all__ = ["AsyncControls", "AsyncRuntimeCosts", "AsyncStorage", "Storage"]


@runtime_checkable
class AsyncStorage(Protocol):
    """A storage whose every step is a coroutine (see :class:`~ranch_core.protocols.Storage`)."""

    async def push(
        self,
        task: ScheduledTask,
        *,
        weight: Optional[float] = None,
        tags: Optional[Mapping[str, str]] = None,
        wakeups: Optional[WakeupPolicy] = None,
    ) -> List[str]:
        """As :meth:`Storage.push`."""

    async def push_many(
        self,
        tasks: Sequence[ScheduledTask],
        *,
        weight: Optional[float] = None,
        tags: Optional[Mapping[str, str]] = None,
        wakeups: Optional[WakeupPolicy] = None,
    ) -> List[str]:
        """As :meth:`Storage.push_many`."""

    async def pop(
        self,
        now: float,
        lease_seconds: float,
        *,
        token: Optional[str] = None,
        wakeups: Optional[WakeupPolicy] = None,
    ) -> PopResult:
        """As :meth:`Storage.pop`."""

    async def ack(self, task_id: str) -> bool:
        """As :meth:`Storage.ack`."""

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
    ) -> Finished:
        """As :meth:`Storage.finish`."""

    async def release_token(self, token: str, now: float, wakeups: WakeupPolicy) -> List[str]:
        """As :meth:`Storage.release_token`."""

    async def sweep_wakeups(self, now: float, wakeups: WakeupPolicy) -> List[str]:
        """As :meth:`Storage.sweep_wakeups`."""

    async def wakeup_status(self) -> WakeupStatus:
        """As :meth:`Storage.wakeup_status`."""

    async def register_slots(self, worker: str, slots: int, now: float, ttl: float) -> int:
        """As :meth:`Storage.register_slots`."""

    async def live_slots(self, now: float) -> int:
        """As :meth:`Storage.live_slots`."""

    async def release(self, task_id: str) -> bool:
        """As :meth:`Storage.release`."""

    async def requeue(self, task: ScheduledTask) -> bool:
        """As :meth:`Storage.requeue`."""

    async def extend(self, task_id: str, deadline: float) -> bool:
        """As :meth:`Storage.extend`."""

    async def reclaim(self, now: float) -> List[ScheduledTask]:
        """As :meth:`Storage.reclaim`."""

    async def remove(self, key: Key, task_id: str) -> bool:
        """As :meth:`Storage.remove`."""

    async def charge(self, key: Key, extra: float) -> None:
        """As :meth:`Storage.charge`."""

    async def expire(self, now: float, limit: int) -> List[ScheduledTask]:
        """As :meth:`Storage.expire`."""

    async def waiting(self, now: Optional[float] = None) -> int:
        """As :meth:`Storage.waiting`."""

    async def wait(self, now: float, timeout: Optional[float]) -> bool:
        """As :meth:`Storage.wait`."""

    async def set_weight(self, key: Key, weight: float) -> None:
        """As :meth:`Storage.set_weight`."""

    async def set_custom_data(self, key: Key, name: str, value: Any) -> None:
        """As :meth:`Storage.set_custom_data`."""

    async def add_tag(self, key: Key, name: str, value: str) -> None:
        """As :meth:`Storage.add_tag`."""

    async def keys_with_tag(self, name: str, value: Optional[str] = None) -> List[Key]:
        """As :meth:`Storage.keys_with_tag`."""

    async def metadata(self, key: Key, now: Optional[float] = None) -> LRUKeyMetadata:
        """As :meth:`Storage.metadata`."""

    async def status(self, now: Optional[float] = None) -> SystemStatus:
        """As :meth:`Storage.status`."""


@runtime_checkable
class AsyncControls(Protocol):
    """:class:`~ranch_core.protocols.Controls` with coroutines."""

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

    async def purge_key(self, key: Key, limit: int) -> List[ScheduledTask]:
        """As :meth:`ranch_core.protocols.Controls.purge_key`."""

    async def revoke(self, task_id: str) -> Optional[ScheduledTask]:
        """As :meth:`ranch_core.protocols.Controls.revoke`."""


@runtime_checkable
class AsyncRuntimeCosts(Protocol):
    """:class:`~ranch_core.protocols.RuntimeCosts` with coroutines.

    What ``AsyncFairScheduler(cost="runtime")`` needs of its storage.
    """

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

    async def run_estimate(self, key: Key) -> Optional[float]:
        """As :meth:`ranch_core.protocols.RuntimeCosts.run_estimate`."""
