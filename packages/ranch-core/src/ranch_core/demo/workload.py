"""What one demo run sends: the :class:`Workload`, its :class:`Submission` records, :func:`drive`.

One *bulk* key floods the queue, then a few *interactive* (quiet) keys send a
handful of calls each, while the workers are still busy with the flood.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, List, Sequence, Tuple

import attrs


def _check_positive_int(name: str) -> Callable[[Any, Any, Any], None]:
    def check(_instance: Any, _attribute: Any, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")

    return check


def _check_seconds(name: str) -> Callable[[Any, Any, Any], None]:
    def check(_instance: Any, _attribute: Any, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{name} must be a number, not {type(value).__name__}")
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")

    return check


def _to_keys(value: Sequence[str]) -> Tuple[str, ...]:
    return tuple(value)


def _check_keys(_instance: Any, _attribute: Any, value: Any) -> None:
    if not value or not all(isinstance(key, str) and key for key in value):
        raise ValueError("interactive_keys must be a non-empty sequence of non-empty strings")
    if len(set(value)) != len(value):
        raise ValueError("interactive_keys must be distinct")


@attrs.frozen
class Submission:
    """One call the producer sends: its key, its global index, when it was sent."""

    key: str
    index: int
    submitted_at: float


@attrs.frozen
class Workload:
    """The flood: ``bulk_calls`` for ``bulk_key``, then ``calls_per_key`` for each interactive key.

    The interactive calls are sent ``interactive_delay`` seconds after the
    last bulk call, round robin over the keys, while the workers are busy
    with the flood. Each call sleeps ``work_seconds`` on the worker.
    """

    bulk_calls: int = attrs.field(default=300, validator=_check_positive_int("bulk_calls"))
    interactive_keys: Tuple[str, ...] = attrs.field(
        default=("alice", "bob", "carol", "dave", "erin"), converter=_to_keys, validator=_check_keys
    )
    calls_per_key: int = attrs.field(default=3, validator=_check_positive_int("calls_per_key"))
    work_seconds: float = attrs.field(default=0.005, validator=_check_seconds("work_seconds"))
    interactive_delay: float = attrs.field(default=0.05, validator=_check_seconds("interactive_delay"))
    bulk_key: str = "bulk"

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.bulk_key, str) or not self.bulk_key:
            raise ValueError("bulk_key must be a non-empty string")
        if self.bulk_key in self.interactive_keys:
            raise ValueError("bulk_key must not also be an interactive key")

    @property
    def keys(self) -> List[str]:
        """The bulk key first, then the interactive keys."""
        return [self.bulk_key, *self.interactive_keys]

    @property
    def total(self) -> int:
        """Number of calls one run sends."""
        return self.bulk_calls + len(self.interactive_keys) * self.calls_per_key

    def plan(self) -> Tuple[List[Tuple[str, int]], List[Tuple[str, int]]]:
        """``(bulk, interactive)``: the ``(key, index)`` pairs in sending order."""
        bulk = [(self.bulk_key, index) for index in range(self.bulk_calls)]
        interactive = []
        index = self.bulk_calls
        for _ in range(self.calls_per_key):
            for key in self.interactive_keys:
                interactive.append((key, index))
                index += 1
        return bulk, interactive


#: How a backend sends one call (``.delay``/``.send`` or ``lru_delay``/``lru_send``).
Submit = Callable[[Submission], None]


def drive(workload: Workload, submit: Submit, clock: Callable[[], float] = time.time) -> List[Submission]:
    """Send the workload through ``submit`` in its order; return what was sent.

    ``submitted_at`` is taken just before each ``submit`` call, on ``clock``
    (wall-clock seconds, comparable across the worker processes of one host).
    """
    bulk, interactive = workload.plan()
    sent: List[Submission] = []
    for key, index in bulk:
        submission = Submission(key, index, clock())
        submit(submission)
        sent.append(submission)
    time.sleep(workload.interactive_delay)
    for key, index in interactive:
        submission = Submission(key, index, clock())
        submit(submission)
        sent.append(submission)
    return sent
