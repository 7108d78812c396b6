"""Delayed calls of the in-memory storage: stored now, joining their key when due.

A call pushed with a ``not_before`` later than its ``enqueued_at`` (Celery's
``countdown``/``eta``, Dramatiq's ``delay``) is kept here, out of its key's
backlog: it is not waiting, not runnable and mints no immediate wake-up.
Calls are due in ``(due time, task id)`` order, the order the Redis storage's
zset gives, so both storages promote the same calls at the same step. Each
pop and wake-up sweep first moves a bounded batch of due calls to the tail
of their keys, exactly as a push at that moment would: a due call joins the
fair order of its key, never ahead of calls of other keys by its due time.
"""

from __future__ import annotations

import heapq
from typing import Dict, List, Optional, Sequence, Tuple

from ranch_core.backends.records import Record
from ranch_core.models import ScheduledTask


class DelayedCalls:
    """Delayed calls by due time: a heap of ``(due, task id)`` and the records
    by id (an entry whose id left, revoked or purged, is a tombstone)."""

    __slots__ = ("_heap", "records")

    def __init__(self) -> None:
        self._heap: List[Tuple[float, str]] = []
        #: task id -> (due, record)
        self.records: Dict[str, Tuple[float, Record]] = {}

    def __len__(self) -> int:
        return len(self.records)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self.records

    def add(self, due: float, record: Record) -> None:
        """Keep ``record`` until ``due``."""
        self.records[record.task_id] = (due, record)
        heapq.heappush(self._heap, (due, record.task_id))

    def take(self, task_id: str) -> Optional[Tuple[float, Record]]:
        """Remove a delayed call (revoked, purged, removed); ``None`` if it is not here."""
        return self.records.pop(task_id, None)

    def _live(self, due: float, task_id: str) -> bool:
        entry = self.records.get(task_id)
        return entry is not None and entry[0] == due

    def earliest(self) -> Optional[float]:
        """The earliest due time (tombstones on top are dropped), ``None`` if empty."""
        heap = self._heap
        while heap and not self._live(*heap[0]):
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def due(self, now: float, limit: int) -> List[Record]:
        """Take up to ``limit`` calls due at ``now`` (``due <= now``), earliest first; each
        record's ``enqueued_at`` becomes its due time (when it starts waiting in its key)."""
        out: List[Record] = []
        heap = self._heap
        while heap and heap[0][0] <= now and len(out) < limit:
            due, task_id = heapq.heappop(heap)
            if self._live(due, task_id):
                record = self.records.pop(task_id)[1]
                record.enqueued_at = due
                out.append(record)
        return out

    def of_key(self, ids: Dict[str, float], limit: int) -> List[Tuple[float, Record]]:
        """Up to ``limit`` of the delayed calls ``ids`` (a key's, id -> due) in due order."""
        ordered = sorted((due, task_id) for task_id, due in ids.items())[:limit]
        return [(due, self.records[task_id][1]) for due, task_id in ordered]


def delayed_until(tasks: Sequence[ScheduledTask]) -> Optional[float]:
    """The due time of a batch of delayed calls, ``None`` if they are not
    delayed (``not_before`` absent or not after ``enqueued_at``);
    ``ValueError`` if the batch mixes due times."""
    first = tasks[0].not_before
    if any(task.not_before != first for task in tasks):
        raise ValueError("push_many takes tasks of one not_before")
    if first is None or first <= tasks[-1].enqueued_at:
        return None
    return first
