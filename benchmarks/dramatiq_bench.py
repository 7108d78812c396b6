"""ranch-dramatiq throughput: plain ``.send()`` vs ``lru_send()`` on the same Redis and workers.

One run per mode on a throwaway ``redis-server`` (ranch_redis.testing):

1. the producer (this process, one thread) sends ``--calls`` no-op calls of
   key "bulk", then one call each for 10 quiet keys: producer calls/s;
2. then ``--processes`` x ``--threads`` ``dramatiq`` CLI workers start on the
   pre-filled queue and drain it: drain calls/s, from the first execution
   to the last (worker clocks, same host);
3. the quiet keys' wait: the execution number at which each quiet call ran
   (plain FIFO runs them after the whole flood).

Every call does one ``INCR`` on Redis (to count executions) in both modes.
Both modes use the same actor (an ``lru_actor``; plain mode calls its
``.send()``), the same broker, middleware and worker settings. Prints a
table and writes JSON.

    python benchmarks/dramatiq_bench.py [--quick] [--out benchmarks/results/dramatiq_bench.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

ENV_URL = "RANCH_BENCH_REDIS_URL"
COUNT = "bench:count"
FIRST = "bench:first"
LAST = "bench:last"
QUIET = "bench:quiet"
QUIET_KEYS = [f"quiet{i}" for i in range(10)]


def build(url: str, expected: int) -> Any:
    """The benchmark's broker and no-op actor (also what the worker processes import)."""
    import redis
    from dramatiq.brokers.redis import RedisBroker
    from ranch_dramatiq import lru_actor

    client = redis.Redis.from_url(url)
    broker = RedisBroker(url=url)

    @lru_actor(broker=broker, actor_name="bench_noop", max_retries=0)
    def noop(key: str) -> None:
        n = client.incr(COUNT)
        if n == 1:
            client.set(FIRST, repr(time.time()))
        if key.startswith("quiet"):
            client.hset(QUIET, key, n)
        if n == expected:
            client.set(LAST, repr(time.time()))

    return broker, noop


if ENV_URL in os.environ and __name__ != "__main__":
    import dramatiq

    broker, noop = build(os.environ[ENV_URL], int(os.environ["RANCH_BENCH_EXPECTED"]))
    dramatiq.set_broker(broker)


def run_mode(mode: str, url: str, calls: int, processes: int, threads: int) -> Dict[str, Any]:
    import redis

    client = redis.Redis.from_url(url)
    client.flushall()
    expected = calls + len(QUIET_KEYS)
    broker, actor = build(url, expected)
    start = time.perf_counter()
    if mode == "plain":
        for _ in range(calls):
            actor.send("bulk")
        for key in QUIET_KEYS:
            actor.send(key)
    else:
        for _ in range(calls):
            actor.lru_send("bulk", "bulk")
        for key in QUIET_KEYS:
            actor.lru_send(key, key)
    produce_s = time.perf_counter() - start
    env = dict(os.environ, **{ENV_URL: url, "RANCH_BENCH_EXPECTED": str(expected)})
    command = [sys.executable, "-m", "dramatiq", "dramatiq_bench", "--path", str(Path(__file__).parent)]
    command += ["--processes", str(processes), "--threads", str(threads), "--skip-logging"]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        while client.get(LAST) is None:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{mode}: workers stopped or timed out")
            time.sleep(0.05)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
    first, last = float(client.get(FIRST)), float(client.get(LAST))  # type: ignore[arg-type]
    quiet = {k.decode(): int(v) for k, v in client.hgetall(QUIET).items()}
    drain_s = last - first
    executed = int(client.get(COUNT))  # type: ignore[arg-type]
    broker.close()
    client.close()
    return {
        "mode": mode,
        "calls": expected,
        "executed": executed,
        "producer_s": produce_s,
        "producer_calls_per_s": expected / produce_s,
        "drain_s": drain_s,
        "drain_calls_per_s": expected / drain_s,
        "quiet_worst_execution": max(quiet.values()),
        "quiet_median_execution": sorted(quiet.values())[len(quiet) // 2],
    }


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3,000 calls instead of 20,000")
    parser.add_argument("--calls", type=int, help="bulk calls per mode")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--out", default="benchmarks/results/dramatiq_bench.json")
    args = parser.parse_args(argv)
    calls = args.calls or (3_000 if args.quick else 20_000)

    from ranch_redis.testing import RedisServer

    results: List[Dict[str, Any]] = []
    with RedisServer() as server:
        for mode in ("plain", "fair"):
            results.append(run_mode(mode, server.url, calls, args.processes, args.threads))
    plain, fair = results
    ratios = {
        "producer": fair["producer_calls_per_s"] / plain["producer_calls_per_s"],
        "drain": fair["drain_calls_per_s"] / plain["drain_calls_per_s"],
    }
    print(
        f"dramatiq: {calls} bulk + {len(QUIET_KEYS)} quiet no-op calls, "
        f"{args.processes} worker processes x {args.threads} threads, one run each"
    )
    print(f"{'mode':<8} {'produce/s':>10} {'drain/s':>10} {'quiet worst exec':>17} {'quiet median':>13}")
    for row in results:
        label = "plain" if row["mode"] == "plain" else "lru_send"
        print(
            f"{label:<8} {row['producer_calls_per_s']:>10.0f} {row['drain_calls_per_s']:>10.0f} "
            f"{row['quiet_worst_execution']:>17} {row['quiet_median_execution']:>13}"
        )
    print(
        f"ratio lru_send/plain: producer {ratios['producer']:.2f}x, "
        f"drain {ratios['drain']:.2f}x (target >= 0.6x)"
    )
    report = {
        "benchmark": "dramatiq_bench",
        "quick": args.quick,
        "bulk_calls": calls,
        "quiet_keys": len(QUIET_KEYS),
        "processes": args.processes,
        "threads": args.threads,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "runs": results,
        "ratios": ratios,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
