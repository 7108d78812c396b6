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
    among the groups, its ready members in a heap of their own, its controls
    (the string key's: they hold for every member) and its running sums.

    A string key is its group's own member, so in a key space of strings
    every group has one member and the group's pass is the key's pass.
    """

    __slots__ = (
        "controls",
        "delayed",
        "expiring",
        "heap",
        "last_served",
        "members",
        "members_count",
        "name",
        "pass_",
        "pending",
        "queued",
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
        #: The group is in the storage's heap: it has a ready member and its
        #: controls let a call start (else it is parked, as a key is).
        self.queued = False
        #: As :attr:`KeyState.version`, for the group's entries in the storage's
        #: heap and parking lot.
        self.version = 0
        #: The controls set on the group's string key, its running calls and
        #: bucket; ``counted`` is what the group adds to the storage's
        #: runnable calls: ``min(its room, its ready members' counts)``.
        self.controls = KeyControls()
        #: Sums over the members, kept by each step (``metadata`` is O(1)):
        #: waiting calls (expiring ones also in ``expiring``) and delayed calls.
        self.pending = 0
        self.delayed = 0
        self.expiring = ExpiryIndex()
        #: The sum of the ready members' ``controls.counted``.
        self.members_count = 0


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
