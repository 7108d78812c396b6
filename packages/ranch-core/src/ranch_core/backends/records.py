"""What :class:`~ranch_core.backends.memory.InMemoryStorage` keeps per task and per key."""

from __future__ import annotations

from collections import deque
from typing import Any, Deque, Dict, Optional

from ranch_core import algorithm
from ranch_core.backends.controls import KeyControls
from ranch_core.backends.expiry import ExpiryIndex


class Record:
    """A stored task: the payload kept encoded, as a shared storage would."""

    __slots__ = ("data", "enqueued_at", "expires_at", "key", "task_id")

    def __init__(
        self, task_id: str, key: str, data: Any, enqueued_at: float, expires_at: Optional[float]
    ) -> None:
        self.task_id = task_id
        self.key = key
        self.data = data
        self.enqueued_at = enqueued_at
        self.expires_at = expires_at


class KeyState:
    """What the in-memory storage keeps of one key: fairness state, tracker data, controls, its tasks."""

    __slots__ = (
        "active",
        "controls",
        "custom_data",
        "delayed",
        "expiring",
        "last_served",
        "pass_",
        "ready",
        "run_estimate",
        "seq",
        "served_total",
        "tags",
        "tasks",
        "version",
        "weight",
    )

    def __init__(self) -> None:
        self.weight = algorithm.DEFAULT_WEIGHT
        self.pass_ = 0.0
        self.seq = algorithm.NEVER_SERVED
        self.last_served: Optional[float] = None
        self.served_total = 0
        self.tasks: Deque[Record] = deque()
        self.tags: Dict[str, str] = {}
        self.custom_data: Dict[str, Any] = {}
        #: Calls wait in the key (it counts in ``active_keys``).
        self.active = False
        #: Active and eligible: the key is in the selection heap (else parked).
        self.ready = False
        self.controls = KeyControls()
        self.expiring = ExpiryIndex()
        #: The key's delayed calls not yet due: task id -> due time.
        self.delayed: Dict[str, float] = {}
        # Heap entries carry the version they were pushed with; a changed pass
        # bumps it, which turns older entries into tombstones (lazy deletion).
        self.version = 0
        #: Moving average of the key's measured run times (``cost="runtime"``).
        self.run_estimate: Optional[float] = None
