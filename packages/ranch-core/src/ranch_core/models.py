"""The values Ranch hands out: tasks, per-key metadata and system status."""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import attrs


@attrs.frozen
class ScheduledTask:
    """One stored call, as pushed and as popped.

    ``payload`` is whatever the producer pushed (after a round trip through
    the storage's serializer). ``expires_at`` is an absolute time on the
    scheduler's clock, or ``None`` for a task that never expires.
    """

    task_id: str
    key: str
    payload: Any
    enqueued_at: float
    expires_at: Optional[float] = None

    def expired(self, now: float) -> bool:
        """Whether the task must be dropped instead of run at time ``now``."""
        return self.expires_at is not None and now >= self.expires_at


@attrs.frozen
class PopResult:
    """What one storage pop did.

    ``task`` is the leased fair choice or ``None``. ``expired`` are tasks
    dropped because their expiry passed; ``reclaimed`` are leases that ran out
    and were put back at the head of their key. A ``None`` task with expired
    tasks means the storage stopped early and the caller should pop again.
    """

    task: Optional[ScheduledTask]
    expired: Tuple[ScheduledTask, ...] = ()
    reclaimed: Tuple[ScheduledTask, ...] = ()


@attrs.frozen
class LRUKeyMetadata:
    """What Ranch knows about one key; passed to custom weight functions.

    ``last_served`` is the scheduler-clock time of the key's last dispatch,
    ``None`` if it was never served.
    """

    key: str
    weight: float = 1.0
    last_served: Optional[float] = None
    pending_tasks: int = 0
    served_total: int = 0
    tags: Dict[str, str] = attrs.field(factory=dict)
    custom_data: Dict[str, Any] = attrs.field(factory=dict)

    @property
    def lru_key(self) -> str:
        """The key (celery-ranch's name for it)."""
        return self.key

    @property
    def timestamp(self) -> Optional[float]:
        """``last_served`` under celery-ranch's name: the time of the key's last dispatch."""
        return self.last_served

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-ready copy."""
        return attrs.asdict(self)


@attrs.frozen
class SystemStatus:
    """Counters of one storage. Every field is O(1) to read."""

    backlog_size: int
    active_keys: int
    leased: int
    expired_total: int
    served_total: int

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-ready copy."""
        return attrs.asdict(self)
