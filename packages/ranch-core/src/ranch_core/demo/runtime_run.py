"""The ``runtime`` scenario's runs: :func:`run_runtime` (worker threads, ranch-core alone).

Keys whose calls take different times (by default ``slow`` 100 ms and
``fast`` 5 ms) are kept backlogged for ``seconds`` while ``slots`` worker
threads run them, three times: ``plain`` (a FIFO queue, calls sent in turn),
``calls`` (:class:`~ranch_core.FairScheduler`, fair by count) and
``runtime`` (``FairScheduler(cost="runtime")``, fair by time). Each call
really sleeps its time; a run records every key's worker time and calls.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Dict, List

import attrs

from ranch_core.demo.backlogged import drain, fifo_source, scheduler_source
from ranch_core.keys import one_level
from ranch_core.scheduler import FairScheduler

#: The three runs, in the order the report shows them.
RUNTIME_MODES = ("plain", "calls", "runtime")
#: How the report names them.
RUNTIME_TITLES = {"plain": "plain FIFO", "calls": "Ranch, fair by count", "runtime": "Ranch, fair by time"}
#: A key gets this many more calls whenever fewer than half of it wait.
REFILL = 100


def _check_run_ms(value: Dict[str, float]) -> Dict[str, float]:
    if len(value) < 2:
        raise ValueError("run_ms needs at least two keys")
    for key, ms in value.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"run_ms keys must be non-empty strings, got {key!r}")
        if isinstance(ms, bool) or not isinstance(ms, (int, float)) or not 0 < ms <= 10_000:
            raise ValueError(f"run_ms[{key!r}] must be a time in (0, 10000] ms, got {ms!r}")
    return dict(value)


def _positive(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


@attrs.frozen
class RuntimeWorkload:
    """Keys and the time each of their calls takes (ms), how long each run
    lasts (s) and how many worker threads run the calls."""

    run_ms: Dict[str, float] = attrs.field(
        factory=lambda: {"slow": 100.0, "fast": 5.0}, converter=_check_run_ms
    )
    seconds: float = attrs.field(default=3.0, validator=_positive)
    slots: int = attrs.field(default=4, validator=_positive)

    @property
    def keys(self) -> List[str]:
        """The keys, in the order given."""
        return list(self.run_ms)


@attrs.frozen
class RuntimeRun:
    """What one run recorded: each key's worker time (s) and calls."""

    mode: str
    busy: Dict[str, float]
    calls: Dict[str, int]

    def time_share(self, key: str) -> float:
        """``key``'s share of the worker time."""
        total = sum(self.busy.values())
        return self.busy[key] / total if total else 0.0

    def call_share(self, key: str) -> float:
        """``key``'s share of the calls run."""
        total = sum(self.calls.values())
        return self.calls[key] / total if total else 0.0

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-ready copy, with the shares."""
        return {
            "mode": self.mode,
            "busy_seconds": dict(self.busy),
            "calls": dict(self.calls),
            "time_share": {key: self.time_share(key) for key in self.busy},
        }


def run_runtime(workload: RuntimeWorkload, mode: str) -> RuntimeRun:
    """Run ``workload`` once in ``mode`` (one of :data:`RUNTIME_MODES`): for
    ``workload.seconds``, and on until every key has run a call (a loaded
    machine may start none in a short run)."""
    if mode not in RUNTIME_MODES:
        raise ValueError(f"mode must be one of {RUNTIME_MODES}, got {mode!r}")
    keys = list(workload.keys)
    if mode == "plain":
        source = fifo_source(keys, REFILL)
    else:
        source = scheduler_source(FairScheduler(cost=mode), REFILL, lambda key: key, one_level)
    busy = dict.fromkeys(keys, 0.0)
    calls = dict.fromkeys(keys, 0)
    lock = threading.Lock()
    stop = time.monotonic() + workload.seconds

    def run(key: str) -> None:
        started = time.perf_counter()
        time.sleep(workload.run_ms[key] / 1000.0)
        ran = time.perf_counter() - started
        with lock:
            busy[key] += ran
            calls[key] += 1

    def going() -> bool:
        with lock:
            return time.monotonic() < stop or min(calls.values()) == 0

    drain(source, keys, size=REFILL, slots=int(workload.slots), going=going, run=run)
    return RuntimeRun(mode, busy, calls)


def run_all(workload: RuntimeWorkload) -> List[RuntimeRun]:
    """One run per mode, in :data:`RUNTIME_MODES` order."""
    return [run_runtime(workload, mode) for mode in RUNTIME_MODES]
