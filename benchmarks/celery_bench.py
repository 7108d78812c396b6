"""ranch-celery throughput: plain ``.delay()`` vs ``lru_delay()`` on the same Redis and workers.

One run per mode on a throwaway ``redis-server`` (ranch_redis.testing):

1. the producer (this process, one thread) sends ``--calls`` no-op calls of
   key "bulk", then one call each for 10 quiet keys: producer calls/s;
2. then ``--workers`` ``celery worker`` processes (``-P prefork -c
   --concurrency``) start on the pre-filled queue and drain it: drain
   calls/s, from the first execution to the last (worker clocks, same host);
3. the quiet keys' wait: the execution number at which each quiet call ran
   (plain FIFO runs them after the whole flood).

Every call does one ``INCR`` on Redis (to count executions) in both modes.
Both modes use the same task (an ``lru_task``; plain mode calls its
``.delay()``), the same broker, result settings (ignored) and worker
settings (``acks_late``, prefetch multiplier 1, as the README recommends).
Prints a table and writes JSON.

    python benchmarks/celery_bench.py [--quick] [--out benchmarks/results/celery_bench.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

ENV_URL = "RANCH_BENCH_REDIS_URL"
ENV_EXPECTED = "RANCH_BENCH_EXPECTED"
COUNT = "bench:count"
FIRST = "bench:first"
LAST = "bench:last"
QUIET = "bench:quiet"
READY = "bench:ready"
QUIET_KEYS = [f"quiet{i}" for i in range(10)]


def build(url: str, expected: int) -> Any:
    """The benchmark's Celery app and no-op task (also what the worker processes import)."""
    import redis
    from celery import Celery
    from celery.signals import worker_ready
    from ranch_celery import lru_task

    client = redis.Redis.from_url(url)
    app = Celery("celery_bench", broker=url, set_as_current=False)
    app.conf.update(
        task_ignore_result=True,
        task_acks_late=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )

    def noop(key: str) -> None:
        n = client.incr(COUNT)
        if n == 1:
            client.set(FIRST, repr(time.time()))
        if key.startswith("quiet"):
            client.hset(QUIET, key, n)
        if n == expected:
            client.set(LAST, repr(time.time()))

    task = lru_task(app, name="bench.noop", shared=False)(noop)

    def ready(sender: Any = None, **_kwargs: Any) -> None:
        client.rpush(READY, getattr(sender, "hostname", "?"))

    worker_ready.connect(ready, weak=False)
    return app, task


if ENV_URL in os.environ and __name__ != "__main__":
    app, noop = build(os.environ[ENV_URL], int(os.environ[ENV_EXPECTED]))


def run_mode(mode: str, url: str, calls: int, workers: int, concurrency: int) -> Dict[str, Any]:
    import redis

    client = redis.Redis.from_url(url)
    client.flushall()
    expected = calls + len(QUIET_KEYS)
    _app, task = build(url, expected)
    start = time.perf_counter()
    if mode == "plain":
        for _ in range(calls):
            task.delay("bulk")
        for key in QUIET_KEYS:
            task.delay(key)
    else:
        for _ in range(calls):
            task.lru_delay("bulk", "bulk")
        for key in QUIET_KEYS:
            task.lru_delay(key, key)
    produce_s = time.perf_counter() - start
    env = dict(os.environ, **{ENV_URL: url, ENV_EXPECTED: str(expected)})
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parent), env.get("PYTHONPATH", "")])
    procs = []
    for number in range(workers):
        command = [
            sys.executable, "-m", "celery", "-A", "celery_bench", "worker", "-P", "prefork",
            "-c", str(concurrency), "-n", f"bench{number}@%h", "--prefetch-multiplier", "1",
            "--without-heartbeat", "--without-gossip", "--without-mingle", "-l", "WARNING",
        ]  # fmt: skip
        procs.append(
            subprocess.Popen(
                command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
            )
        )
    try:
        deadline = time.monotonic() + 600
        while client.get(LAST) is None:
            if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
                raise RuntimeError(f"{mode}: workers stopped or timed out")
            time.sleep(0.05)
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    first, last = float(client.get(FIRST)), float(client.get(LAST))  # type: ignore[arg-type]
    quiet = {k.decode(): int(v) for k, v in client.hgetall(QUIET).items()}
    drain_s = last - first
    executed = int(client.get(COUNT))  # type: ignore[arg-type]
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
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3,000 calls instead of 20,000")
    parser.add_argument("--calls", type=int, help="bulk calls per mode")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=os.cpu_count() or 1,
        help="prefork children per worker (default: the CPU count, as celery worker's own default)",
    )
    parser.add_argument("--out", default="benchmarks/results/celery_bench.json")
    args = parser.parse_args(argv)
    calls = args.calls or (3_000 if args.quick else 20_000)

    from ranch_redis.testing import RedisServer

    results: List[Dict[str, Any]] = []
    with RedisServer() as server:
        for mode in ("plain", "fair"):
            results.append(run_mode(mode, server.url, calls, args.workers, args.concurrency))
    plain, fair = results
    ratios = {
        "producer": fair["producer_calls_per_s"] / plain["producer_calls_per_s"],
        "drain": fair["drain_calls_per_s"] / plain["drain_calls_per_s"],
    }
    print(
        f"celery: {calls} bulk + {len(QUIET_KEYS)} quiet no-op calls, "
        f"{args.workers} worker processes x prefork {args.concurrency}, one run each"
    )
    print(f"{'mode':<9} {'produce/s':>10} {'drain/s':>10} {'quiet worst exec':>17} {'quiet median':>13}")
    for row in results:
        label = "plain" if row["mode"] == "plain" else "lru_delay"
        print(
            f"{label:<9} {row['producer_calls_per_s']:>10.0f} {row['drain_calls_per_s']:>10.0f} "
            f"{row['quiet_worst_execution']:>17} {row['quiet_median_execution']:>13}"
        )
    print(
        f"ratio lru_delay/plain: producer {ratios['producer']:.2f}x, "
        f"drain {ratios['drain']:.2f}x (target >= 0.6x)"
    )
    report = {
        "benchmark": "celery_bench",
        "quick": args.quick,
        "bulk_calls": calls,
        "quiet_keys": len(QUIET_KEYS),
        "workers": args.workers,
        "concurrency": args.concurrency,
        "pool": "prefork",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
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
