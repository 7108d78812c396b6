"""ranch-core speed: push+pop pairs through FairScheduler on the in-memory storage.

Scenarios: 10, 1,000 and 100,000 active keys, and 10 keys with 1,000,000
tasks waiting. Each timed step is ``push`` (to the next key round robin),
``pop`` and ``ack``; "ops/s" counts push and pop (2 per step). Every scenario
runs with the default JSON serializer and with ``serializer=None`` (payloads
kept as Python objects). Prints a table and writes JSON.

    python benchmarks/core_bench.py [--quick] [--out benchmarks/results/core_bench.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from ranch_core import FairScheduler, InMemoryStorage


def measure(keys: int, backlog: int, steps: int, serializer: Optional[str]) -> Dict[str, Any]:
    scheduler = FairScheduler(InMemoryStorage(serializer=serializer))
    names = [f"tenant-{n}" for n in range(keys)]
    per_key = max(1, backlog // keys)  # every key stays active: each step refills one
    for n in range(per_key):
        for name in names:
            scheduler.push(name, {"n": n})
    waiting = len(scheduler)
    active = scheduler.status().active_keys
    push, pop, ack = scheduler.push, scheduler.pop, scheduler.ack
    best = float("inf")
    for _ in range(3):  # best of three repetitions of `steps`
        start = time.perf_counter()
        for i in range(steps):
            push(names[i % keys], {"n": i})
            task = pop()
            ack(task.task_id)  # type: ignore[union-attr]
        best = min(best, time.perf_counter() - start)
    status = scheduler.status()
    assert status.backlog_size == waiting, "the benchmark must not change the backlog size"
    return {
        "active_keys": active,
        "active_keys_after": status.active_keys,
        "waiting": waiting,
        "serializer": serializer or "none",
        "steps": steps,
        "seconds": best,
        "ops_per_s": 2 * steps / best,
        "us_per_push_pop": best / steps * 1e6,
    }


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and a 100,000-task backlog")
    parser.add_argument("--out", default="benchmarks/results/core_bench.json")
    args = parser.parse_args(argv)
    steps = 20_000 if args.quick else 200_000
    big = 100_000 if args.quick else 1_000_000
    scenarios = [(10, 20), (1_000, 2_000), (100_000, 200_000), (10, big)]
    rows = []
    for serializer in ("json", None):
        for keys, backlog in scenarios:
            rows.append(measure(keys, backlog, steps, serializer))
    base = {row["serializer"]: row["ops_per_s"] for row in rows if row["waiting"] == 20}
    print(f"ranch-core on CPython {platform.python_version()}, {steps:,} push+pop+ack steps, best of 3")
    print(f"{'serializer':<11}{'active keys':>12}{'waiting':>11}{'ops/s':>12}{'us/pair':>9}{'slowdown':>10}")
    for row in rows:
        row["slowdown_vs_10_keys"] = base[row["serializer"]] / row["ops_per_s"]
        print(
            f"{row['serializer']:<11}{row['active_keys']:>12,}{row['waiting']:>11,}{row['ops_per_s']:>12,.0f}"
            f"{row['us_per_push_pop']:>9.2f}{row['slowdown_vs_10_keys']:>9.2f}x"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"python": sys.version, "quick": args.quick, "rows": rows}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
