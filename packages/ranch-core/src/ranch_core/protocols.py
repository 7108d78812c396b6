"""What a storage must do, split in two: the task backlog and the key tracker.

A storage implements both (:class:`Storage`). Each method of
:class:`Backlog` is one atomic step: in a shared storage such as Redis, two
workers can never pop the same task and a producer racing a worker never
loses one. :mod:`ranch_core.testing` checks an implementation against the
reference model; :class:`ranch_core.backends.memory.InMemoryStorage` is the
implementation to read first.
"""

from __future__ import annotations

from typing import Any, List, Optional, Protocol, runtime_checkable

from ranch_core.models import LRUKeyMetadata, PopResult, ScheduledTask, SystemStatus

#: At most this many expired leases are put back by one :meth:`Backlog.pop`.
RECLAIM_BATCH = 100
#: At most this many expired tasks are dropped by one :meth:`Backlog.pop`
#: before it returns early (task ``None``) so that no single step runs long.
EXPIRED_BATCH = 100


@runtime_checkable
class Backlog(Protocol):
    """Per-key FIFO backlogs, fair selection across keys, and leases."""

    def push(self, task: ScheduledTask, *, weight: Optional[float] = None) -> None:
        """Append ``task`` to the tail of its key; set the key's weight if given.

        Raises ``TypeError`` (payload not encodable) or ``ValueError``
        (``task_id`` already waiting or leased) before writing anything.
        A key that turns active starts at ``max(own pass, virtual time)``.
        """

    def pop(self, now: float, lease_seconds: float) -> PopResult:
        """Make the fair choice at ``now`` and lease it until ``now + lease_seconds``.

        In order: put back up to :data:`RECLAIM_BATCH` leases whose deadline
        is ``<= now`` (ordered by deadline then task id, re-inserted so the
        earliest ends at the head of its key); then take the head of the
        active key first in :func:`~ranch_core.algorithm.selection_order`,
        dropping it as expired if ``now >= expires_at`` (no charge to the key;
        after :data:`EXPIRED_BATCH` drops return early with task ``None``);
        serve it: virtual time = the key's pass, pass += weight, the key's
        serve sequence and ``last_served`` = ``now``.
        """

    def ack(self, task_id: str) -> bool:
        """Finish a leased task. ``False`` if it holds no lease (any more)."""

    def release(self, task_id: str) -> bool:
        """Put a leased task back at the head of its key. ``False`` if not leased."""

    def requeue(self, task: ScheduledTask) -> bool:
        """Finish ``task.task_id``'s lease and append ``task`` (same id, new
        payload and times) to the tail of its key, in one step: a retry.

        ``False``, with nothing written, if that id holds no lease (it ran out
        and the task went back already). ``TypeError`` if the payload cannot
        be encoded, before anything is written.
        """

    def extend(self, task_id: str, deadline: float) -> bool:
        """Move a lease's deadline to ``deadline``. ``False`` if not leased."""

    def reclaim(self, now: float) -> List[ScheduledTask]:
        """Put back every lease whose deadline is ``<= now``; return them."""

    def remove(self, key: str, task_id: str) -> bool:
        """Delete a waiting task (a producer whose publish failed). ``False`` if absent."""

    def charge(self, key: str, extra: float) -> None:
        """Add ``extra`` to the key's pass (a weight function's correction)."""

    def waiting(self) -> int:
        """Number of tasks waiting (not leased), expired ones not yet dropped included."""


@runtime_checkable
class Tracker(Protocol):
    """Per-key weights, tags, custom data and counters."""

    def set_weight(self, key: str, weight: float) -> None:
        """Set the key's weight; its pass is left alone."""

    def set_custom_data(self, key: str, name: str, value: Any) -> None:
        """Store one JSON-encodable value under ``name`` for the key."""

    def add_tag(self, key: str, name: str, value: str) -> None:
        """Tag the key ``name=value`` (replacing an earlier value of ``name``)."""

    def keys_with_tag(self, name: str, value: Optional[str] = None) -> List[str]:
        """Keys tagged ``name`` (with ``value``, if given), sorted."""

    def metadata(self, key: str) -> LRUKeyMetadata:
        """What is known of ``key``; defaults for a key never seen."""

    def status(self) -> SystemStatus:
        """Counters of the whole storage, in O(1)."""


@runtime_checkable
class Storage(Backlog, Tracker, Protocol):
    """A complete storage: what :class:`~ranch_core.FairScheduler` needs."""
