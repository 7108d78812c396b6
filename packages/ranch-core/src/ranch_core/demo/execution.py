"""What one demo call does on the worker and what it records: :func:`perform`, :class:`Execution`."""

from __future__ import annotations

import json
import os
import time
from typing import Any, Callable

import attrs


@attrs.frozen
class Execution:
    """One demo call as its worker ran it."""

    key: str
    index: int
    submitted_at: float
    started_at: float
    finished_at: float
    worker: str = ""

    def to_json(self) -> str:
        """One line of JSON (backends with worker processes ship records this way)."""
        return json.dumps(attrs.asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, data: Any) -> Execution:
        """Inverse of :meth:`to_json` (``str`` or ``bytes``)."""
        fields = json.loads(data)
        if not isinstance(fields, dict):
            raise ValueError("an execution record must be a JSON object")
        return cls(**fields)


def perform(
    key: str,
    index: int,
    submitted_at: float,
    work_seconds: float,
    *,
    worker: str = "",
    clock: Callable[[], float] = time.time,
) -> Execution:
    """The body of the demo task: note the start, work (sleep), note the end."""
    started = clock()
    if work_seconds > 0:
        time.sleep(work_seconds)
    return Execution(key, index, submitted_at, started, clock(), worker or f"pid{os.getpid()}")
