"""``RedisReports``: how :class:`~ranch_redis.RedisStorage` reports corrupt data.

A task record that cannot be decoded is logged, counted, passed to the
storage's ``on_corrupt`` callback and removed; so is each fix made by the
repair sweep. A mixin of ``RedisStorage``, which provides the connection,
the serializer and the callback.
"""

from __future__ import annotations

import logging
from typing import Callable, List, Optional, Sequence, Set

from ranch_core.errors import CorruptTask
from ranch_core.models import ScheduledTask
from ranch_core.serializers import Serializer

from ranch_redis import records
from ranch_redis.steps import Steps, script

logger = logging.getLogger("ranch_redis")

CorruptCallback = Callable[[CorruptTask], None]


class RedisReports:
    """Reporting and removing corrupt records."""

    # Provided by RedisStorage.
    namespace: str
    serializer: Serializer
    corrupt_total: int
    on_corrupt: Optional[CorruptCallback]

    def _corrupt(self, task_id: bytes, reason: str) -> None:
        self._report_corrupt(
            f"namespace {self.namespace!r}: task {task_id.decode('utf-8', 'replace')!r} is corrupt "
            f"({reason}); removed"
        )

    def _report_corrupt(self, message: str) -> CorruptTask:
        self.corrupt_total += 1
        error = CorruptTask(message)
        logger.error("ranch: %s", error)
        if self.on_corrupt is not None:
            self.on_corrupt(error)
        return error

    def _decode_pairs(
        self, flat: Sequence[bytes], *, waiting: bool, corrupt: Optional[Set[bytes]] = None
    ) -> Steps[List[ScheduledTask]]:
        """Decode ``[tid, body, ...]``; corrupt ones are reported (their ids added
        to ``corrupt``) and removed."""
        tasks = []
        for index in range(0, len(flat), 2):
            task_id, body = flat[index], flat[index + 1]
            try:
                tasks.append(records.decode_task(self.serializer, task_id, body))
            except ValueError as exc:
                self._corrupt(task_id, str(exc))
                if corrupt is not None:
                    corrupt.add(task_id)
                if waiting:
                    parts = body.split(b",", 3)
                    if len(parts) == 4:
                        yield script("remove", parts[2], task_id)
        return tasks

    def _report_dropped(self, flat: Sequence[bytes]) -> None:
        for index in range(0, len(flat), 2):
            self._corrupt(flat[index], "unreadable task record")
