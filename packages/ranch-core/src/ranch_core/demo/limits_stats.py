"""What one run of the ``limits`` scenario recorded and what it shows: :class:`LimitsRun`.

Three measures, each from the calls' own records (:class:`Execution`):

* **running at once**: a call runs from its start to its end, both noted on
  the worker between ``pop`` and ``ack``, so the peak of overlapping calls
  is never above the number of leases the scheduler handed out;
* **started in any 1 s**: the most starts of a key in a window ``[t, t + 1)``
  opening at one of its starts, and the steady rate after its burst;
* **wait**: as in the flood scenario (:meth:`RunResult.stats`), in
  executions (calls started between sending a call and its start) and in ms.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from typing import Any, Dict, List, Optional, Sequence, Tuple

import attrs

from ranch_core.demo.execution import Execution
from ranch_core.demo.limits_workload import LimitsWorkload
from ranch_core.demo.stats import KeyStats, RunResult

#: The two runs of the scenario: the same calls without and with the controls.
LIMITS_MODES = ("free", "limited")
LIMITS_TITLES = {"free": "Ranch, no limits", "limited": "Ranch + limits"}


def start_end_events(executions: Sequence[Execution], origin: float = 0.0) -> List[Tuple[float, int]]:
    """``(seconds since origin, +1 start or -1 end)`` in time order; at one instant, ends first."""
    return sorted(
        [(e.started_at - origin, 1) for e in executions] + [(e.finished_at - origin, -1) for e in executions]
    )


def peak_running(executions: Sequence[Execution]) -> int:
    """The most calls running at once (a call that ends as another starts does not overlap it)."""
    running = peak = 0
    for _, step in start_end_events(executions):
        running += step
        peak = max(peak, running)
    return peak


def most_in_window(starts: Sequence[float], seconds: float = 1.0) -> int:
    """The most ``starts`` in any window ``[t, t + seconds)``."""
    ordered = sorted(starts)
    return max((bisect_left(ordered, t + seconds) - i for i, t in enumerate(ordered)), default=0)


def _to_executions(value: Sequence[Execution]) -> Tuple[Execution, ...]:
    return tuple(value)


@attrs.frozen
class LimitsRun:
    """Everything one run recorded; times are ``time.monotonic()`` seconds.

    ``started`` is when the first call was sent, ``resumed_at`` when
    ``resume_key`` was called (``None``: the run without controls never
    paused anything), ``elapsed`` from the first send to the last finish.
    """

    mode: str
    executions: Tuple[Execution, ...] = attrs.field(converter=_to_executions)
    started: float = 0.0
    elapsed: float = 0.0
    resumed_at: Optional[float] = None
    workers: int = 1

    def __attrs_post_init__(self) -> None:
        if self.mode not in LIMITS_MODES:
            raise ValueError(f"mode must be one of {LIMITS_MODES}, got {self.mode!r}")

    @property
    def limited(self) -> bool:
        """Whether this run had the controls on."""
        return self.mode == "limited"

    def of(self, key: str) -> List[Execution]:
        """``key``'s calls in the order they started."""
        return sorted((e for e in self.executions if e.key == key), key=lambda e: (e.started_at, e.index))

    def waits(self) -> RunResult:
        """The same records as a :class:`RunResult`, whose :meth:`~RunResult.stats` give the waits."""
        return RunResult(
            "fair", self.executions, elapsed=self.elapsed, backend="threads", workers=self.workers
        )

    def peak(self, key: str) -> int:
        """The most calls of ``key`` running at once."""
        return peak_running(self.of(key))

    def most_per_second(self, key: str) -> int:
        """The most calls of ``key`` started in any 1 s."""
        return most_in_window([e.started_at for e in self.of(key)])

    def steady_rate(self, key: str, burst: int) -> float:
        """Calls of ``key`` started per second after its first ``burst`` (NaN if too few)."""
        starts = [e.started_at for e in self.of(key)]
        if len(starts) <= burst:
            return math.nan
        span = starts[-1] - starts[burst - 1]
        return (len(starts) - burst) / span if span > 0 else math.inf

    def first_start(self, key: str) -> Optional[float]:
        """Seconds from the first send to ``key``'s first start (``None``: it never ran)."""
        mine = self.of(key)
        return mine[0].started_at - self.started if mine else None

    def after_resume(self, key: str) -> Optional[float]:
        """Seconds from ``resume_key`` to ``key``'s first start; negative if it started before."""
        mine = self.of(key)
        if self.resumed_at is None or not mine:
            return None
        return mine[0].started_at - self.resumed_at

    def worst_interactive(self, workload: LimitsWorkload) -> KeyStats:
        """The interactive key whose worst wait (executions, then ms) is the longest."""
        waits = self.waits()
        return max(
            (waits.stats(k) for k in workload.interactive_keys), key=lambda s: (s.worst_exec, s.worst_ms)
        )

    def problems(self, workload: LimitsWorkload) -> List[str]:
        """Calls missing or run twice, and, with the controls on, any control not held.

        The rate is checked against ``burst + rate * 1 s`` plus one: a start is
        noted just after its ``pop`` returns, so a late note can move one start
        into a window the scheduler's own clock had it outside of.
        """
        found = self.waits().check_complete(workload)
        if not self.limited:
            return found
        bulk, api, paused = workload.limited_keys
        if self.peak(bulk) > workload.bulk_limit:
            found.append(f"{bulk} ran {self.peak(bulk)} at once, past its cap {workload.bulk_limit}")
        allowed = math.floor(workload.burst + workload.rate_limit.per_second) + 1
        if self.most_per_second(api) > allowed:
            found.append(f"{api} started {self.most_per_second(api)} calls in 1 s, more than {allowed}")
        after = self.after_resume(paused)
        if after is not None and after < 0:
            found.append(f"{paused} ran before it was resumed")
        return found

    def to_dict(self, workload: LimitsWorkload) -> Dict[str, Any]:
        """JSON-ready summary: per-key peaks, rates and waits, and run totals."""
        waits = self.waits()
        return {
            "mode": self.mode,
            "workers": self.workers,
            "elapsed_s": self.elapsed,
            "executions": len(self.executions),
            "resumed_at_s": None if self.resumed_at is None else self.resumed_at - self.started,
            "keys": {
                key: {
                    **attrs.asdict(waits.stats(key)),
                    "peak_running": self.peak(key),
                    "most_in_1s": self.most_per_second(key),
                    "first_start_s": self.first_start(key),
                }
                for key in workload.keys
            },
        }
