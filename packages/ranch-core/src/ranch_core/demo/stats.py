"""What one run recorded and the waits it shows: :class:`RunResult`, :class:`KeyStats`.

A call's wait *in executions* is the number of calls that started after it
was sent and before it started: how many others jumped ahead of it. It is the
one unit the report and the chart use (milliseconds depend on the machine).
"""

from __future__ import annotations

import math
import statistics
from bisect import bisect_left
from typing import Any, Dict, List, Optional, Protocol, Sequence, Tuple

import attrs

from ranch_core.demo.execution import Execution
from ranch_core.demo.workload import Workload

#: The two ways a demo run sends its calls.
MODES = ("plain", "fair")
MODE_TITLES = {"plain": "plain FIFO", "fair": "Ranch fair"}


@attrs.frozen
class KeyStats:
    """Waits of one key's calls in one run (executions and milliseconds)."""

    key: str
    tasks: int
    median_exec: float
    worst_exec: int
    median_ms: float
    worst_ms: float


class Planned(Protocol):
    """Any workload that says how many calls a run sends (the flood's or the ``limits`` scenario's)."""

    @property
    def total(self) -> int:
        """Number of calls one run sends, indexed ``0 .. total - 1``."""


def _to_executions(value: Sequence[Execution]) -> Tuple[Execution, ...]:
    return tuple(value)


@attrs.frozen
class RunResult:
    """Everything one run recorded. ``elapsed`` is seconds from first send to last finish."""

    mode: str
    executions: Tuple[Execution, ...] = attrs.field(converter=_to_executions)
    elapsed: float = 0.0
    backend: str = ""
    workers: int = 1

    def __attrs_post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")

    def ordered(self) -> List[Execution]:
        """Executions in the order they started."""
        return sorted(self.executions, key=lambda e: (e.started_at, e.index))

    def check_complete(self, workload: Planned) -> List[str]:
        """Problems found: calls that never ran or ran more than once (empty: all good)."""
        counts: Dict[int, int] = {}
        for execution in self.executions:
            counts[execution.index] = counts.get(execution.index, 0) + 1
        problems = [f"call {i} ran {n} times" for i, n in sorted(counts.items()) if n > 1]
        missing = [i for i in range(workload.total) if i not in counts]
        if missing:
            problems.append(f"{len(missing)} calls never ran (first: {missing[:5]})")
        return problems

    def started_before(self, moment: float) -> int:
        """How many calls had started before ``moment`` (wall-clock seconds)."""
        return bisect_left([e.started_at for e in self.ordered()], moment)

    def waits(self) -> Dict[int, Tuple[int, float]]:
        """``index -> (wait in executions, wait in ms)`` for every call that ran."""
        ordered = self.ordered()
        starts = [e.started_at for e in ordered]
        result: Dict[int, Tuple[int, float]] = {}
        for position, execution in enumerate(ordered):
            before_sent = bisect_left(starts, execution.submitted_at)
            jumped = max(0, position - before_sent)
            result[execution.index] = (jumped, max(0.0, execution.started_at - execution.submitted_at) * 1000)
        return result

    def stats(self, key: str) -> KeyStats:
        """The waits of ``key``'s calls."""
        waits = self.waits()
        mine = [waits[e.index] for e in self.executions if e.key == key]
        if not mine:
            return KeyStats(key, 0, math.nan, 0, math.nan, math.nan)
        execs = [w[0] for w in mine]
        millis = [w[1] for w in mine]
        return KeyStats(
            key, len(mine), statistics.median(execs), max(execs), statistics.median(millis), max(millis)
        )

    def first_quiet_call(self, workload: Workload) -> Optional[Tuple[int, int]]:
        """``(sent_at, started_at)`` of the first interactive call, as execution numbers.

        ``sent_at`` is how many calls had started when it was sent (the flood
        was already running), ``started_at`` its own position in the run.
        ``None`` if no interactive call ran.
        """
        ordered = self.ordered()
        quiet = [(pos, e) for pos, e in enumerate(ordered) if e.key in workload.interactive_keys]
        if not quiet:
            return None
        first_sent = min(e.submitted_at for _, e in quiet)
        return self.started_before(first_sent), quiet[0][0]

    def to_dict(self, workload: Workload) -> Dict[str, Any]:
        """JSON-ready summary: per-key stats and run totals."""
        return {
            "mode": self.mode,
            "backend": self.backend,
            "workers": self.workers,
            "elapsed_s": self.elapsed,
            "executions": len(self.executions),
            "keys": {key: attrs.asdict(self.stats(key)) for key in workload.keys},
        }
