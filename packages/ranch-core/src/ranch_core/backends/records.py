"""What :class:`~ranch_core.backends.memory.InMemoryStorage` keeps per task and per key."""

from __future__ import annotations

from collections import deque
from typing import Any, Deque, Dict, List, Optional, Tuple

from ranch_core import algorithm
from ranch_core.backends.controls import KeyControls
from ranch_core.backends.expiry import ExpiryIndex
from ranch_core.keys import Key, member_of

#: A selection heap's entry: ``selection_order`` of a group (or a member,
#: by its member name), then the version it was pushed with.
HeapEntry = Tuple[float, int, str, int]


class Record:
    """A stored task: the payload kept encoded, as a shared storage would."""

    __slots__ = ("data", "enqueued_at", "expires_at", "key", "task_id")

    def __init__(
        self, task_id: str, key: Key, data: Any, enqueued_at: float, expires_at: Optional[float]
    ) -> None:
        self.task_id = task_id
        self.key = key
        self.data = data
        self.enqueued_at = enqueued_at
        self.expires_at = expires_at


class GroupState:
    """The fairness state of one group (:mod:`ranch_core.keys`): its pass
    among the groups, and its ready members in a heap of their own.

    A string key is its group's own member, so in a key space of strings
    every group has one member and the group's pass is the key's pass.
    """

    __slots__ = (
        "heap",
        "last_served",
        "members",
        "name",
        "pass_",
        "ready",
        "seq",
        "served_total",
        "version",
        "virtual_time",
        "weight",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.weight = algorithm.DEFAULT_WEIGHT
        self.pass_ = 0.0
        self.seq = algorithm.NEVER_SERVED
        self.last_served: Optional[float] = None
        self.served_total = 0
        #: The members' virtual time: the pass the last member served had.
        self.virtual_time = 0.0
        #: Members that are ready (in ``heap``); the group is in the
        #: storage's heap while there is one.
        self.ready = 0
        self.heap: List[HeapEntry] = []
        self.members: Dict[str, KeyState] = {}
        #: As :attr:`KeyState.version`, for the group's entries in the storage's heap.
        self.version = 0


class KeyState:
    """What the in-memory storage keeps of one key: fairness state, tracker data, controls, its tasks.

    ``pass_``, ``seq`` and ``weight`` are the key's place among its group's
    members; a string key's weight is its group's (:class:`GroupState`)."""

    __slots__ = (
        "active",
        "controls",
        "custom_data",
        "delayed",
        "expiring",
        "group",
        "key",
        "last_served",
        "member",
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

    def __init__(self, key: Key, group: GroupState) -> None:
        self.key = key
        self.group = group
        self.member = member_of(key)
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
