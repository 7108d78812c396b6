"""Fair by time: the share of worker time a slow key gets, by count and by run time.

The measure of issue 12, twice. First on ranch-core alone: two
always-backlogged keys whose calls take 100 ms ("slow") and 5 ms ("fast"),
``--slots`` worker threads (4) blocked in ``FairScheduler.pop(timeout=)`` on
the in-memory storage, each call a real ``time.sleep``; ``--seconds`` per mode
(60). Modes: ``FairScheduler()`` (``cost="calls"``) and
``FairScheduler(cost="runtime")`` (the storage measures each run from its pop
to its ack). Then the same keys with real Celery and Dramatiq workers (4
slots) on a throwaway redis-server, each adapter with ``cost="calls"`` and
``cost="runtime"``, ``--seconds`` each after a ``--warmup``
(``benchmarks/runtime_share_workers.py`` says how). Prints the slow key's
share of the worker time and of the calls, and writes JSON.

    python benchmarks/runtime_share.py [--quick] [--seconds 60] [--slots 4] [--adapters celery,dramatiq]
        [--out PATH.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict

import runtime_share_workers  # benchmarks/: on sys.path as the script's folder
from ranch_core import FairScheduler

RUN_SECONDS = {"slow": 0.100, "fast": 0.005}
REFILL = 200  # calls pushed to a key whenever fewer than this wait


def measure(cost: str, seconds: float, slots: int) -> Dict[str, Any]:
    scheduler = FairScheduler(cost=cost)
    busy = dict.fromkeys(RUN_SECONDS, 0.0)
    calls = dict.fromkeys(RUN_SECONDS, 0)
    lock = threading.Lock()
    stop = time.monotonic() + seconds
    for key in RUN_SECONDS:
        scheduler.push_many(key, [None] * REFILL)

    def work() -> None:
        while time.monotonic() < stop:
            task = scheduler.pop(timeout=0.5)
            if task is None:
                continue
            started = time.perf_counter()
            time.sleep(RUN_SECONDS[task.key])
            ran = time.perf_counter() - started
            scheduler.ack(task.task_id)
            with lock:
                busy[task.key] += ran
                calls[task.key] += 1
                if scheduler.metadata(task.key).pending_tasks < REFILL // 2:
                    scheduler.push_many(task.key, [None] * REFILL)

    threads = [threading.Thread(target=work) for _ in range(slots)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = sum(busy.values())
    return {
        "cost": cost,
        "seconds": seconds,
        "slots": slots,
        "slow_time_share": busy["slow"] / total,
        "slow_call_share": calls["slow"] / sum(calls.values()),
        "calls": calls,
        "busy_seconds": busy,
        "slow_estimate": scheduler.run_estimate("slow") if cost == "runtime" else None,
        "fast_estimate": scheduler.run_estimate("fast") if cost == "runtime" else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="per core mode and per worker run")
    parser.add_argument("--slots", type=int, default=4, help="worker threads of the core measure")
    parser.add_argument("--warmup", type=float, default=5.0, help="unmeasured start of a worker run")
    parser.add_argument("--adapters", default="celery,dramatiq", help="real workers to measure (empty: none)")
    parser.add_argument("--out", default="benchmarks/results/runtime_share.json")
    parser.add_argument("--quick", action="store_true", help="8 s per mode and per worker run, 2 s warm-up")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.warmup = 8.0, 2.0
    rows = [measure(cost, args.seconds, args.slots) for cost in ("calls", "runtime")]
    print(f"two backlogged keys, 100 ms and 5 ms calls, {args.slots} worker threads, {args.seconds:g} s each")
    print(f"{'cost':<8} {'slow: time share':>17} {'slow: call share':>17} {'calls slow/fast':>16}")
    for row in rows:
        pair = f"{row['calls']['slow']}/{row['calls']['fast']}"
        print(f"{row['cost']:<8} {row['slow_time_share']:>17.3f} {row['slow_call_share']:>17.3f} {pair:>16}")
    adapters = [name for name in args.adapters.split(",") if name]
    workers = runtime_share_workers.run_all(args.seconds, args.warmup, adapters) if adapters else []
    if workers:
        print(
            f"real workers on redis-server, {runtime_share_workers.SLOTS} slots, "
            f"{args.seconds:g} s each after {args.warmup:g} s warm-up "
            "(time: sleeps; slot: sleeps plus the gap before each call on its thread)"
        )
        print(runtime_share_workers.table(workers))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "results": rows,
        "workers": workers,
    }
    out.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
