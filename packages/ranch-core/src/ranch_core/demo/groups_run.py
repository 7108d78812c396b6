"""The ``groups`` scenario's runs: :func:`run_groups` (worker threads, ranch-core alone).

Tenants with different numbers of users (by default ``A`` with one user and
``B`` with 60) keep every user backlogged for ``seconds`` while ``slots``
worker threads run the calls (each sleeps ``work_ms``), three times:
``plain`` (a FIFO queue, one call of each user sent in turn), ``flat``
(:class:`~ranch_core.FairScheduler`, each user its own string key
``"A:u0"``) and ``groups`` (the same scheduler, each user the pair
``("A", "u0")``). A run records who ran, in the order the calls started;
it lasts longer than ``seconds`` if fewer than :data:`FIRST` calls started
by then (a busy machine), so the report's first column is always full.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Dict, List, Optional, Tuple

import attrs

from ranch_core.demo.backlogged import drain, fifo_source, scheduler_source
from ranch_core.keys import Key, group_of, member_of
from ranch_core.scheduler import FairScheduler

#: The three runs, in the order the report shows them.
GROUPS_MODES = ("plain", "flat", "groups")
#: How the report names them.
GROUPS_TITLES = {"plain": "plain FIFO", "flat": "Ranch, flat keys", "groups": "Ranch, two-level keys"}
#: How many of the first executions the report looks at besides the whole run (the issue's measure).
FIRST = 100
#: A user gets this many more calls whenever fewer than half of it wait.
REFILL = 20

#: A user: ``(tenant, user)``.
User = Tuple[str, str]


def _check_members(value: Dict[str, int]) -> Dict[str, int]:
    if len(value) < 2:
        raise ValueError("members needs at least two tenants")
    for tenant, count in value.items():
        if not isinstance(tenant, str) or not tenant or ":" in tenant:
            raise ValueError(f"members: tenants must be non-empty strings without ':', got {tenant!r}")
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 10_000:
            raise ValueError(f"members[{tenant!r}] must be a number of users in 1..10000, got {count!r}")
    return dict(value)


def _positive(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


@attrs.frozen
class GroupsWorkload:
    """Tenants and their numbers of users, the time each call takes (ms), how
    long each run lasts (s) and how many worker threads run the calls."""

    members: Dict[str, int] = attrs.field(factory=lambda: {"A": 1, "B": 60}, converter=_check_members)
    work_ms: float = attrs.field(default=2.0, validator=_positive)
    seconds: float = attrs.field(default=2.0, validator=_positive)
    slots: int = attrs.field(default=1, validator=_positive)

    @property
    def tenants(self) -> List[str]:
        """The tenants, in the order given."""
        return list(self.members)

    @property
    def users(self) -> List[User]:
        """Every ``(tenant, user)``, tenant by tenant; users are ``u0``, ``u1``, ..."""
        return [(tenant, f"u{n}") for tenant, count in self.members.items() for n in range(count)]

    @property
    def fair_share(self) -> float:
        """Each tenant's share when tenants, not users, share the workers."""
        return 1 / len(self.members)


def key_of(mode: str, user: User) -> Key:
    """The key a run sends ``user``'s calls under: the pair in ``groups``, ``"A:u0"`` otherwise."""
    return user if mode == "groups" else f"{user[0]}:{user[1]}"


def user_of(key: Key) -> User:
    """The ``(tenant, user)`` behind a key of :func:`key_of`."""
    if isinstance(key, str):
        tenant, _, user = key.partition(":")
        return tenant, user
    return group_of(key), member_of(key)


@attrs.frozen
class GroupsRun:
    """What one run recorded: the user of each call, in the order the calls started."""

    mode: str
    order: List[User]

    def calls(self, tenant: str, first: Optional[int] = None) -> int:
        """Calls of ``tenant`` among the first ``first`` executions (all if ``None``)."""
        return sum(1 for owner, _ in self.order[:first] if owner == tenant)

    def share(self, tenant: str, first: Optional[int] = None) -> float:
        """``tenant``'s share of the first ``first`` executions (all if ``None``)."""
        window = self.order[:first]
        return self.calls(tenant, first) / len(window) if window else 0.0

    def running_share(self, tenant: str) -> List[float]:
        """``tenant``'s share of the first ``n`` executions, for ``n`` = 1, 2, ..."""
        shares: List[float] = []
        mine = 0
        for n, (owner, _) in enumerate(self.order, start=1):
            mine += owner == tenant
            shares.append(mine / n)
        return shares

    def to_dict(self, workload: GroupsWorkload) -> Dict[str, Any]:
        """A JSON-ready copy: the counts and shares per tenant (not the order)."""
        return {
            "mode": self.mode,
            "executions": len(self.order),
            "calls": {tenant: self.calls(tenant) for tenant in workload.tenants},
            "share": {tenant: self.share(tenant) for tenant in workload.tenants},
            f"share_of_first_{FIRST}": {tenant: self.share(tenant, FIRST) for tenant in workload.tenants},
        }


def run_groups(workload: GroupsWorkload, mode: str) -> GroupsRun:
    """Run ``workload`` once in ``mode`` (one of :data:`GROUPS_MODES`)."""
    if mode not in GROUPS_MODES:
        raise ValueError(f"mode must be one of {GROUPS_MODES}, got {mode!r}")
    users = workload.users
    if mode == "plain":
        source = fifo_source(users, REFILL)
    else:
        source = scheduler_source(FairScheduler(), REFILL, lambda user: key_of(mode, user), user_of)
    order: List[User] = []
    lock = threading.Lock()
    stop = time.monotonic() + workload.seconds

    def run(user: User) -> None:
        with lock:
            order.append(user)  # in the order the calls start
        time.sleep(workload.work_ms / 1000.0)

    drain(
        source,
        users,
        size=REFILL,
        slots=int(workload.slots),
        going=lambda: time.monotonic() < stop or len(order) < FIRST,
        run=run,
    )
    return GroupsRun(mode, order)


def run_all_groups(workload: GroupsWorkload) -> List[GroupsRun]:
    """One run per mode, in :data:`GROUPS_MODES` order."""
    return [run_groups(workload, mode) for mode in GROUPS_MODES]
