"""What the Celery and Dramatiq drain benchmarks share.

Both send ``calls`` no-op calls for key ``bulk`` and one for each of ten quiet
keys, plainly or through Ranch, then let the same workers drain them. The no-op
counts executions in Redis (:func:`record`); :func:`collect` turns the counters
into a result row. Each benchmark prints its own table and writes its JSON.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict

COUNT = "bench:count"
FIRST = "bench:first"
LAST = "bench:last"
QUIET = "bench:quiet"
QUIET_KEYS = [f"quiet{i}" for i in range(10)]


def record(client: Any, key: str, expected: int) -> None:
    """The no-op's body: count the execution, note first/last times and the quiet keys' positions."""
    n = client.incr(COUNT)
    if n == 1:
        client.set(FIRST, repr(time.time()))
    if key.startswith("quiet"):
        client.hset(QUIET, key, n)
    if n == expected:
        client.set(LAST, repr(time.time()))


def produce(send: Callable[[str], Any], calls: int) -> float:
    """Send the bulk calls, then the quiet keys' calls; seconds it took."""
    start = time.perf_counter()
    for _ in range(calls):
        send("bulk")
    for key in QUIET_KEYS:
        send(key)
    return time.perf_counter() - start


def wait_for_drain(client: Any, mode: str, workers_alive: Callable[[], bool], timeout: float = 600) -> None:
    """Block until the last call ran; ``RuntimeError`` if the workers died or time ran out."""
    deadline = time.monotonic() + timeout
    while client.get(LAST) is None:
        if not workers_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"{mode}: workers stopped or timed out")
        time.sleep(0.05)


def collect(client: Any, mode: str, expected: int, produce_s: float) -> Dict[str, Any]:
    """One result row from the counters the no-op left in Redis."""
    first, last = float(client.get(FIRST)), float(client.get(LAST))
    quiet = sorted(int(v) for v in client.hgetall(QUIET).values())
    drain_s = last - first
    return {
        "mode": mode,
        "calls": expected,
        "executed": int(client.get(COUNT)),
        "producer_s": produce_s,
        "producer_calls_per_s": expected / produce_s,
        "drain_s": drain_s,
        "drain_calls_per_s": expected / drain_s,
        "quiet_worst_execution": quiet[-1],
        "quiet_median_execution": quiet[len(quiet) // 2],
    }
