"""Per-backlog and per-key metrics as the ``metrics.lua`` step reads them.

Bounded summaries the pop, finish and expire steps keep in Redis (see
:data:`ranch_redis.layout.WAIT_BOUNDS`): counters (served, expired,
retried, failed) and two histograms, wait (stored -> started) and run time
(started -> finished), per key and per namespace, never a per-call log. :meth:`RedisStorage.metrics`
returns a :class:`BacklogMetrics`; the exporter and the dashboard read it.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import attrs
from ranch_core.keys import Key

from ranch_redis import layout, records


def _count(raw: Any) -> int:
    try:
        value = int(raw) if raw not in (None, b"", "") else 0
    except ValueError:
        return 0
    return max(value, 0)


def _seconds(raw: Any) -> float:
    try:
        value = float(raw) if raw not in (None, b"", "") else 0.0
    except ValueError:
        return 0.0
    return value if math.isfinite(value) and value >= 0 else 0.0


@attrs.frozen
class WaitHistogram:
    """Durations (waits: stored -> started; run times: started -> finished):
    ``buckets[i]`` counts those up to ``layout.WAIT_BOUNDS[i]`` (the last
    one: longer), not cumulative; ``total`` their sum in seconds."""

    buckets: Tuple[int, ...] = (0,) * (len(layout.WAIT_BOUNDS) + 1)
    total: float = 0.0

    @classmethod
    def read(cls, raw: Sequence[Any]) -> WaitHistogram:
        """From ``[sum, bucket 0, ..., bucket N]`` as stored (unreadable fields as 0)."""
        return cls(tuple(_count(x) for x in raw[1:]), _seconds(raw[0]))

    @property
    def count(self) -> int:
        """Waits counted."""
        return sum(self.buckets)

    def cumulative(self) -> List[Tuple[float, int]]:
        """``(upper bound, waits up to it)`` for each bound and ``inf`` (Prometheus' buckets)."""
        out, running = [], 0
        for bound, n in zip((*layout.WAIT_BOUNDS, math.inf), self.buckets):
            running += n
            out.append((bound, running))
        return out

    def quantile(self, q: float) -> Optional[float]:
        """The ``q`` quantile's bucket bound (``inf`` if beyond the last bound);
        ``None`` with no waits counted."""
        if not 0 < q <= 1:
            raise ValueError(f"q must be in (0, 1], not {q!r}")
        total = self.count
        if total == 0:
            return None
        for bound, seen in self.cumulative():
            if seen >= q * total:
                return bound
        return math.inf  # pragma: no cover - the last bucket is inf

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-ready copy (bounds as strings, ``+Inf`` last)."""
        bounds = [repr(b) for b in layout.WAIT_BOUNDS] + ["+Inf"]
        return {"buckets": dict(zip(bounds, self.buckets)), "sum": self.total, "count": self.count}


@attrs.frozen
class KeyMetrics:
    """One key's metrics: waiting and running now, served, expired, retried and
    failed totals, and its wait and run-time histograms."""

    key: Key
    waiting: int
    running: int
    served: int
    expired: int
    retried: int
    wait: WaitHistogram
    failed: int = 0
    run: WaitHistogram = WaitHistogram()
    #: The key's moving average of run times, what ``cost="runtime"`` charges
    #: at dispatch (``None`` until a call of the key is measured).
    run_estimate: Optional[float] = None

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-ready copy."""
        return {**attrs.asdict(self, recurse=False), "wait": self.wait.to_dict(), "run": self.run.to_dict()}


@attrs.frozen
class BacklogMetrics:
    """A namespace's metrics and those of its top keys by waiting calls."""

    backlog: str
    waiting: int
    running: int
    active_keys: int
    served: int
    expired: int
    wait: WaitHistogram
    top_keys: Tuple[KeyMetrics, ...] = ()
    failed: int = 0
    run: WaitHistogram = WaitHistogram()

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-ready copy."""
        return {
            **attrs.asdict(self, recurse=False),
            "wait": self.wait.to_dict(),
            "run": self.run.to_dict(),
            "top_keys": [k.to_dict() for k in self.top_keys],
        }


def _estimate(raw: Any) -> Optional[float]:
    if raw in (None, b"", ""):
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def parse_metrics(backlog: str, reply: Sequence[Any]) -> BacklogMetrics:
    """``metrics.lua``'s reply as :class:`BacklogMetrics`."""
    width = len(layout.WAIT_BOUNDS) + 2  # hs, h0 ... hN (and us, u0 ... uN)
    summaries = 2 * width + 1  # wait histogram, failed, run histogram
    keys: List[KeyMetrics] = []
    at = 5 + summaries
    per_key = 7 + summaries  # the key's fields, then its run estimate
    while at + per_key <= len(reply):
        f = reply[at : at + per_key]
        keys.append(
            KeyMetrics(
                key=records.key_name(f[0]),
                waiting=_count(f[1]),
                running=_count(f[2]),
                served=_count(f[3]),
                expired=_count(f[4]),
                retried=_count(f[5]),
                wait=WaitHistogram.read(f[6 : 6 + width]),
                failed=_count(f[6 + width]),
                run=WaitHistogram.read(f[7 + width : per_key - 1]),
                run_estimate=_estimate(f[per_key - 1]),
            )
        )
        at += per_key
    return BacklogMetrics(
        backlog=backlog,
        waiting=max(int(reply[0]), 0),
        running=int(reply[1]),
        active_keys=int(reply[2]),
        served=int(reply[3]),
        expired=int(reply[4]),
        wait=WaitHistogram.read(reply[5 : 5 + width]),
        top_keys=tuple(keys),
        failed=_count(reply[5 + width]),
        run=WaitHistogram.read(reply[6 + width : 5 + summaries]),
    )
