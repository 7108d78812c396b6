"""What the Celery and Dramatiq drain benchmarks share.

Both send ``calls`` no-op calls for key ``bulk`` and one for each of ten quiet
keys, plainly or through Ranch, then let the same workers drain them. The no-op
counts executions in Redis (:func:`record`); :func:`collect` turns the counters
into a result row and :func:`report` prints the side-by-side table and writes
the JSON.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

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


def report(
    name: str, fair_label: str, setup: str, results: List[Dict[str, Any]], out: str, **extra: Any
) -> int:
    """Print the table (plain vs fair) and the ratios; write the JSON to ``out``."""
    plain, fair = results
    ratios = {
        "producer": fair["producer_calls_per_s"] / plain["producer_calls_per_s"],
        "drain": fair["drain_calls_per_s"] / plain["drain_calls_per_s"],
    }
    print(f"{name}: {plain['calls'] - len(QUIET_KEYS)} bulk + {len(QUIET_KEYS)} quiet no-op calls, {setup}")
    width = max(len(fair_label), 5) + 1
    print(
        f"{'mode':<{width}} {'produce/s':>10} {'drain/s':>10} {'quiet worst exec':>17} {'quiet median':>13}"
    )
    for row in results:
        label = "plain" if row["mode"] == "plain" else fair_label
        print(
            f"{label:<{width}} {row['producer_calls_per_s']:>10.0f} {row['drain_calls_per_s']:>10.0f} "
            f"{row['quiet_worst_execution']:>17} {row['quiet_median_execution']:>13}"
        )
    print(
        f"ratio {fair_label}/plain: producer {ratios['producer']:.2f}x, "
        f"drain {ratios['drain']:.2f}x (target >= 0.6x)"
    )
    data = {
        "benchmark": name,
        **extra,
        "quiet_keys": len(QUIET_KEYS),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "runs": results,
        "ratios": ratios,
    }
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    print(f"written to {path}")
    return 0
